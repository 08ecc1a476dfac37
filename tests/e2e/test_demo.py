"""The one-command demo (lab/demo.py), non-interactive, as CI runs it: results and a clean machine after."""

import json
import os
import subprocess
import sys
from pathlib import Path

from lab.controller import REPO

COUNT = 50


def test_demo_shows_isolation_endpoints_and_fewer_underlay_frames_and_leaves_nothing():
    cp = subprocess.run([sys.executable, "-m", "lab.demo", "--json", "--count", str(COUNT)], cwd=REPO,
                        capture_output=True, text=True, timeout=600, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = json.loads(cp.stdout.strip().splitlines()[-1])

    tenant = {f"{t}{i}": t for t in ("blue", "red") for i in (1, 2, 3)}
    assert {a: {b: tenant[a] == tenant[b] for b in tenant if b != a} for a in tenant} == out["matrix"]

    eps = {(e["tenant"], e["mac"]): (e["ips"], e["host"]) for e in out["endpoints"]}
    assert eps == {(t, f"02:00:00:00:{k:02x}:{i:02x}"): ([f"192.168.1.{i}"], f"h{i}")
                   for k, t in ((1, "blue"), (2, "red")) for i in (1, 2, 3)}

    learn, ctl = out["counts"]["learn"], out["counts"]["controller"]
    # learn(): every request flooded to both other hosts (+ the replies for an existing VM)
    assert learn["existing"] >= 3 * COUNT and learn["missing"] >= 2 * COUNT, out["counts"]
    # controller: answered inside the switch; an unanswered IP is flooded once, as the baseline
    # floods each request (one copy to each of the 2 other hosts), then held down
    one_flood = learn["missing"] // COUNT
    assert ctl["existing"] == 0, out["counts"]
    assert one_flood == 2 and ctl["missing"] == one_flood, out["counts"]

    assert len(out["made"]) == 2, out["made"]  # learn, then controller: both checked below
    for made in out["made"]:
        prefix = made["lab"]
        assert not Path(f"/run/overlay-lab/{prefix}").exists()
        assert not [n for n in os.listdir("/run/netns") if n.startswith(prefix + "-")]
        assert not [n for n in os.listdir("/sys/class/net") if n.startswith(prefix)]
        assert not Path(made["workdir"]).exists()
        assert not Path(f"/proc/{made['controller_pid']}").exists()
