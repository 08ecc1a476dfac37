"""bench/store_latency.py at a small size: every store measured, the table and the JSON complete.

A benchmark run: marked slow, out of the default run (`pytest -m slow`).
"""

from __future__ import annotations

import json

import pytest

from bench import store_latency


@pytest.mark.slow
def test_small_run_measures_every_store_against_sqlite(tmp_path, capsys) -> None:
    out = tmp_path / "store.json"
    assert store_latency.main(["--count", "5", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert list(doc["results"]) == list(store_latency.STORES)
    for store, ops in doc["results"].items():
        assert list(ops) == list(store_latency.OPS)
        assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in ops.values()), (store, ops)
    # every ratio is the store's figure over SQLite's, measured in the same run; etcd's writes cost more
    # (measured 2.3-6.8x at 200 requests)
    res, ratio = doc["results"], doc["ratio_to_sqlite"]
    for store, ops in res.items():
        for op, r in ops.items():
            for q in ("p50_ms", "p99_ms"):
                assert ratio[store][op][q] == pytest.approx(r[q] / res["sqlite"][op][q], abs=0.006), (store, op, q)
            if store != "sqlite":
                assert ratio[store][op]["p50_ms"] > 1, (store, op, r, res["sqlite"][op])
    assert "| etcd-3 | delete |" in capsys.readouterr().out
