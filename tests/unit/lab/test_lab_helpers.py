"""The lab's shared helpers without a lab: the reachability matrix and run-dir ownership."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab.overlay import judge, render_matrix, verdict
from lab.procs import is_stale, write_state

TENANT = {"b1": "blue", "b2": "blue", "r1": "red"}
MAC = {"b1": "02:00:00:00:01:01", "b2": "02:00:00:00:01:02", "r1": "02:00:00:00:02:01"}


def _echo(src: str) -> str:
    return f"12:00:00.0 {MAC[src]} > ff:ff:ff:ff:ff:ff, ethertype IPv4, ICMP echo request"


def test_judge_needs_reply_and_captured_echo_in_tenant_and_any_frame_across() -> None:
    frames = {"b1": [], "b2": [_echo("b1")], "r1": [_echo("b1")]}
    m = judge(["b1"], TENANT, TENANT, MAC, {("b1", "b2")}, frames)
    assert m == {"b1": {"b2": True, "r1": True}}
    assert not verdict(TENANT, m)  # b1's frame reached red
    # a reply without the echo in b2's capture is not reached; an empty capture across is isolation
    m = judge(["b1"], TENANT, TENANT, MAC, {("b1", "b2")}, {"b1": [], "b2": [], "r1": []})
    assert m == {"b1": {"b2": False, "r1": False}}
    assert not verdict(TENANT, m)


def test_render_marks_wrong_pairs() -> None:
    good = {"b1": {"b2": True, "r1": False}, "b2": {"b1": True, "r1": False}, "r1": {"b1": False, "b2": False}}
    out = render_matrix(["b1", "b2", "r1"], TENANT, good)
    assert "!" not in out and out.endswith("YES")
    bad = {**good, "r1": {"b1": True, "b2": False}}
    out = render_matrix(["b1", "b2", "r1"], TENANT, bad)
    assert "ok!" in out.splitlines()[3] and "NO" in out.splitlines()[-1]


def test_run_dir_of_a_live_owner_is_not_stale_of_a_dead_one_is(tmp_path: Path) -> None:
    live, dead, claimed = (tmp_path / n for n in ("live", "dead", "claimed"))
    for d in (live, dead, claimed):
        d.mkdir()
    write_state(live, {"tag": "x"})
    assert not is_stale(live)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (dead / "state.json").write_text(f'{{"pid": {child.pid}, "starttime": "1"}}')
    assert is_stale(dead)
    assert not is_stale(claimed)  # no state yet, just made: its owner writes it next
    os.utime(claimed, (0, 0))
    assert is_stale(claimed)
