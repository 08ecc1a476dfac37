"""bench/scale.py end to end at a small size: every phase converges and the report is complete.

A benchmark run: marked slow, out of the default run (`pytest -m slow`).
"""

from __future__ import annotations

import json

import pytest

from bench import scale


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["dense", "sparse"])
def test_small_run_converges_and_reports(tmp_path, capsys, shape):
    out = tmp_path / "scale.json"
    assert scale.main(["--hosts", "4", "--shape", shape, "--vm-events", "3", "--joins", "1",
                       "--phase-timeout", "60", "--json", str(out)]) == 0
    [run] = json.loads(out.read_text())["runs"]
    assert all(p["converged"] for p in run["phases"].values()), run["phases"]
    assert run["phases"]["learn"]["endpoints_converged"] == run["endpoints"]
    assert run["flows_per_host"]["mean"] > 20 and run["flow_mods_received"] >= run["flows_total"]
    assert run["encoder"]["flows_per_s"] > 0 and run["cold_start_s"] > 0
    assert "| 4 |" in capsys.readouterr().out
