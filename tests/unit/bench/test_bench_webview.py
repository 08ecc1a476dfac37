"""bench/webview.py at a small size: every read measured against the per-pair baseline, the table
and the JSON complete, and a read that changed nothing recounts nothing.

A benchmark run: marked slow, out of the default run (`pytest -m slow`).
"""

from __future__ import annotations

import json

import pytest

from bench import webview


@pytest.mark.slow
def test_small_run_measures_every_read_against_the_per_pair_document(tmp_path, capsys) -> None:
    out = tmp_path / "webview.json"
    assert webview.main(["--hosts", "60", "--tenants", "5", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert list(doc["results"]) == list(webview.READS)
    base = doc["results"][webview.READS[0]]
    assert base["pairs"] == 60 * 59
    for read in webview.READS[1:]:
        r = doc["results"][read]
        assert 0 < r["loop_ms"] and r["bytes"] < base["bytes"], read
    assert doc["results"]["next read, nothing changed"]["slices"] == 1
    assert "| per pair (before) |" in capsys.readouterr().out
