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
    assert all(r["p50_ms"] == 1.0 for r in doc["ratio_to_sqlite"]["sqlite"].values())
    assert "| etcd-3 | delete |" in capsys.readouterr().out
