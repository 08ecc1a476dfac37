"""bench/storms.py's verdicts, exit status and docs table, from values (no lab)."""

import json
from pathlib import Path

import bench.storms as storms
from bench.storms import ARP_LATENCY, FIRST_PING, KNOWN_ARPS, MISSING_ARPS, judged, markdown

REPO = Path(__file__).resolve().parents[3]


def test_each_workload_is_judged_against_its_target_and_one_without_target_only_reported():
    results = judged({KNOWN_ARPS: {"learn": 300, "controller": 0}, MISSING_ARPS: {"learn": 200, "controller": 22},
                      ARP_LATENCY: {"learn": 1.0, "controller": 0.25}, FIRST_PING: {"learn": 1.0, "controller": 2.0}})
    assert {name: v["met"] for name, v in results.items()} == \
        {KNOWN_ARPS: True, MISSING_ARPS: False, ARP_LATENCY: True, FIRST_PING: None}
    assert results[MISSING_ARPS]["ratio"] == 0.11


def test_a_missed_target_makes_the_run_exit_1(monkeypatch, capsys):
    measured = {"learn": {storms.ONE_ARP: 3, KNOWN_ARPS: 300, MISSING_ARPS: 200, ARP_LATENCY: 1.0, FIRST_PING: 1.0},
                "controller": {storms.ONE_ARP: 0, KNOWN_ARPS: 0, MISSING_ARPS: 2, ARP_LATENCY: 0.3, FIRST_PING: 1.0}}
    broadcast = {"learn": 3, "controller": 1}
    monkeypatch.setattr(storms, "article_lab", lambda mode, _tt: dict(measured[mode]))
    monkeypatch.setattr(storms, "partial_tenant_lab", lambda mode, _tt: {storms.BROADCAST: broadcast[mode]})
    assert storms.main([]) == 0
    broadcast["controller"] = 2  # k - 1 = 1 copy missed
    assert storms.main([]) == 1
    assert storms.BROADCAST in capsys.readouterr().err


def test_the_readme_table_is_the_committed_runs_json():
    doc = json.loads((REPO / "bench" / "storms.json").read_text())
    assert markdown(doc) in (REPO / "docs" / "benchmarks" / "storms.md").read_text()
