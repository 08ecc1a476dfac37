"""bench/failover.py end to end with two trials: each hands over and the report is complete.

A benchmark run: marked slow, out of the default run (`pytest -m slow`).
"""

from __future__ import annotations

import json

import pytest

from bench import failover


@pytest.mark.slow
def test_two_trials_hand_over_and_report(tmp_path, capsys):
    out = tmp_path / "failover.json"
    assert failover.main(["--trials", "2", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["trials"]) == 2 and len(doc["lease_expiry_s"]) == 2
    for t in doc["trials"]:
        assert t["leader"] != t["killed"] and 0 < t["elected_s"] <= t["master_everywhere_s"] < 5
    assert "| 2 |" in capsys.readouterr().out
