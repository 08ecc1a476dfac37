"""mininet_topos/ against the real controller: the script form and `mn --custom ... --test pingall`.

Mininet imports only under the system /usr/bin/python3, so each topology runs as a subprocess.
Each emulated host runs its own ovsdb-server + ovs-vswitchd and joins like a real host; the
controller listens on all addresses and the topology puts the controller's address on its
management bridge.
"""

import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from lab.controller import REPO, Controller
from lab.netlab import run

SYSTEM_PY = "/usr/bin/python3"
TOPOS = REPO / "mininet_topos" / "overlay.py"


def missing_tools() -> str:
    """Why this module cannot run here ('' when it can)."""
    if not Path(SYSTEM_PY).exists() or \
            subprocess.run([SYSTEM_PY, "-c", "import mininet.net"], capture_output=True, check=False).returncode:
        return f"Mininet is missing for {SYSTEM_PY}: run ./setup.sh (apt package mininet)"
    if not shutil.which("mn"):
        return "mn is missing: run ./setup.sh (apt package mininet)"
    return ""


MISSING = missing_tools()


@pytest.fixture(autouse=True)
def mininet_installed():
    """Fail (not skip) this module's tests, not the whole collection: setup.sh installs Mininet,
    so where it is missing the set-up is broken and CI must say so."""
    if MISSING:
        pytest.fail(MISSING, pytrace=False)


def free_mgmt_ip() -> str:
    """.1 of a 10.97.X.0/24 that no root-namespace route or address uses."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    used = []
    for r in routes:
        if r.get("dst") not in (None, "default"):
            used.append(ipaddress.IPv4Network(r["dst"], strict=False))
    for x in random.sample(range(1, 250), 249):
        net = ipaddress.IPv4Network(f"10.97.{x}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net.network_address + 1)
    raise RuntimeError("no free 10.97.X.0/24")


@pytest.fixture
def controller(request):
    """Start controller(tunnel_type) listening on all addresses; stopped after the test."""
    made = []

    def start(tunnel_type: str = "vxlan") -> Controller:
        ctl = Controller("0.0.0.0", tunnel_type=tunnel_type)
        made.append(ctl)
        return ctl.start()

    yield start
    for ctl in made:
        if getattr(getattr(request.node, "rep_call", None), "failed", False):
            print(f"--- controller log\n{ctl.log_tail(80)}")
        ctl.stop()
        shutil.rmtree(ctl.workdir, ignore_errors=True)


def leftovers(run_id: str) -> list[str]:
    """Anything of Mininet run ``run_id`` still on the machine."""
    left = [f"dir {p}" for p in [Path(f"/run/overlay-mn/{run_id}")] if p.exists()]
    left += [f"link {n}" for n in os.listdir("/sys/class/net") if run_id in n]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"/run/overlay-mn/{run_id}/" in cmd:
            left.append(f"process {pid}: {cmd}")
    return left


def mininet_shells() -> int:
    """Mininet node shells (`bash ... mininet:NAME`) on the machine."""
    return sum(b"mininet:" in Path(f"/proc/{p}/cmdline").read_bytes()
               for p in filter(str.isdigit, os.listdir("/proc")) if Path(f"/proc/{p}/cmdline").exists())


def script(ctl: Controller, *args: str, timeout: float = 300) -> dict:
    ip = free_mgmt_ip()
    cmd = [SYSTEM_PY, str(TOPOS), *args, "--controller", f"{ip}:{ctl.of_port}", "--ovsdb-port",
           str(ctl.ovsdb_port), "--api", ctl.api.base, "--token-file", str(ctl.token_path), "--check", "--json"]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert cp.stdout.strip(), cp.stderr
    return json.loads(cp.stdout.strip().splitlines()[-1]) | {"returncode": cp.returncode, "stderr": cp.stderr}


def expected(tenants: dict[str, str]) -> dict[str, dict[str, bool]]:
    return {a: {b: tenants[a] == tenants[b] for b in tenants if b != a} for a in tenants}


def test_article_topology_pings_within_tenants_only_and_leaves_nothing(controller):
    shells = mininet_shells()
    ctl = controller("vxlan")
    out = script(ctl, "article")
    assert out["tenants"] == {f"{t}{i}": t for t in ("blue", "red") for i in (1, 2, 3)}
    assert out["matrix"] == expected(out["tenants"]), out["stderr"]
    assert out["ok"] and out["returncode"] == 0
    # they joined as real hosts: one controller host per emulated host, meshed with vxlan tunnels
    hosts = {h["id"]: h for h in ctl.api.get("/v1/hosts")}
    assert sorted(hosts) == ["h1", "h2", "h3"]
    assert all(len(h["tunnels"]) == 2 and {t["type"] for t in h["tunnels"]} == {"vxlan"} for h in hosts.values())
    assert leftovers(out["run"]) == []
    assert mininet_shells() <= shells


def test_spread_topology_over_hand_made_gre_tunnels(controller):
    ctl = controller("gre")
    out = script(ctl, "overlay", "--hosts", "4", "--vms", "3", "--tenants", "3", "--tunnels", "gre")
    assert sorted(set(out["tenants"].values())) == ["blue", "green", "red"]
    # uneven on purpose: blue on 4 hosts, red on 3, green on 2
    hosts_of = {t: {re.sub(r"\D*(\d+)\D*", r"\1", vm) for vm, tt in out["tenants"].items() if tt == t}
                for t in ("blue", "red", "green")}
    assert {t: len(h) for t, h in hosts_of.items()} == {"blue": 4, "red": 3, "green": 2}
    assert out["matrix"] == expected(out["tenants"]), out["stderr"]
    # floods go only to hosts with members: from h1, blue reaches 3 hosts, red 2, green 1
    assert out["flood_buckets"]["h1"] == {"1": 3, "2": 2, "3": 1}, out["flood_buckets"]
    # the article's hand-made ports (ofport 2..) were adopted, not replaced
    tunnels = [t for h in ctl.api.get("/v1/hosts") for t in h["tunnels"]]
    assert len(tunnels) == 12 and all(t["type"] == "gre" and t["name"].startswith("gre-h") for t in tunnels)
    assert leftovers(out["run"]) == []


def test_mn_custom_pingall_reaches_same_tenant_only(controller):
    ctl = controller("vxlan")
    ip = free_mgmt_ip()
    topo = f"article,ovsdb={ctl.ovsdb_port},api={ctl.api.base},token={ctl.token_path}"
    cmd = ["mn", "--custom", str(TOPOS), "--topo", topo,
           "--controller", f"remote,ip={ip},port={ctl.of_port}", "--test", "pingall"]
    mn = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text, _ = mn.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        mn.send_signal(signal.SIGINT)  # mn's Ctrl-C path: the topology removes what it made
        text, _ = mn.communicate(timeout=60)
        raise AssertionError(f"mn timed out:\n{text}") from None
    rows = dict(re.findall(r"^(\w+) -> (.*?)\s*$", text, re.M))
    assert rows == {
        "blue1": "blue2 blue3 X X X", "blue2": "blue1 blue3 X X X", "blue3": "blue1 blue2 X X X",
        "red1": "X X X red2 red3", "red2": "X X X red1 red3", "red3": "X X X red1 red2",
    }, text
    assert "Results: 60% dropped (12/30 received)" in text
    run_id = re.search(r"\bmg([0-9a-f]{4})\b", text).group(1)
    assert leftovers(run_id) == []
