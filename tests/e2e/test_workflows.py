"""Operator workflows on the 3-host lab, through the real overlayctl (issue 26): a file of 50 tenants
applied with --wait is on every switch when the command returns (looked at once, no polling);
the same file again changes nothing (no write, no flow-mod); a bad file changes nothing; the
event stream shows a VM's move within a second, and a client that resumes loses no event."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from controller.model import tables as t
from lab.netlab import wait_for
from lab.overlay import TENANTS, announce, flood_buckets

OVERLAYCTL = Path(sys.executable).parent / "overlayctl"
FILE_TENANTS = {f"t{i:02d}": (6000 + i, 100 + i) for i in range(50)}  # name -> (VNI, VLAN)
SENTINEL = ("sentinel", 5999, 99)  # tells when the controller has seen the hosts' new ports


def overlayctl(ov, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **ov.ctl.cli_env()}
    return subprocess.run([str(OVERLAYCTL), *args], capture_output=True, text=True, env=env, timeout=timeout)


def member_everywhere(ov) -> None:
    """A br0 port in every file tenant's VLAN on every host (and one in the sentinel's, in the same
    OVSDB transaction): each host holds each tenant's flows once it exists."""
    name, vni, vlan = SENTINEL
    ov.ctl.api.post("/v1/tenants", {"name": name, "vni": vni, "vlan": vlan})
    for h in ov.hosts:
        args: list[str] = []
        for v in [vlan] + [v for _, v in FILE_TENANTS.values()]:
            args += ["--", "add-port", "br0", f"m{v}", f"tag={v}", "--", "set", "Interface", f"m{v}", "type=internal"]
        h.vsctl(*args)
    wait_for(lambda: all(next(x for x in ov.ctl.api.get(f"/v1/hosts/{h.name}/vlans") if x["tenant"] == name)["members"]
                         for h in ov.hosts), 20, 0.1, "every host's new br0 ports seen by the controller")


def tenant_flows_everywhere(ov) -> list[str]:
    """What is missing, per host and file tenant, from its br1 right now: the tunnel-in entry
    (VNI -> its VLAN), the flood entry (its VLAN -> its group) and the group copying to both peers."""
    missing = []
    for h in ov.hosts:
        flows = h.ofctl("dump-flows", "br1", "--no-stats")
        buckets = flood_buckets(h)
        for name, (vni, vlan) in FILE_TENANTS.items():
            if not re.search(rf"table={t.TUNNEL_IN},.*tun_id={vni:#x} .*set_field:{vlan | 0x1000}->vlan_vid", flows):
                missing.append(f"{h.name}: {name}'s tunnel-in entry")
            if not re.search(rf"table={t.FLOOD},.*dl_vlan={vlan} .*group:{vni}\b", flows):
                missing.append(f"{h.name}: {name}'s flood entry")
            if buckets.get(vni) != 2:
                missing.append(f"{h.name}: {name}'s flood group ({buckets.get(vni)} buckets)")
    return missing


def test_a_file_of_50_tenants_is_on_every_switch_when_apply_wait_returns(make_overlay, tmp_path):
    ov = make_overlay("vxlan", "controller")
    member_everywhere(ov)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"tenants": {n: {"vni": vni, "vlan": vlan}
                                                   for n, (vni, vlan) in FILE_TENANTS.items()}}))
    diff = overlayctl(ov, "diff", "-f", str(overlay))
    assert diff.returncode == 1 and diff.stdout.count("\n+ ") + diff.stdout.startswith("+ ") == 50, diff

    done = overlayctl(ov, "apply", "-f", str(overlay), "--wait", "--timeout", "60", "-o", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result["create"]) == 50 and result["applied"] and "is live" in done.stderr
    # At once, no polling: --wait returned when every switch had confirmed the revision.
    assert tenant_flows_everywhere(ov) == []
    status = ov.ctl.api.get(f"/v1/status?revision={result['revision']}")
    assert status["live"] and status["holding"] == 3

    # The same file again: nothing written, no revision, no flow-mod.
    flow_mods = ov.ctl.api.get("/v1/counters")["flow_mods"]
    events = ov.ctl.api.get("/v1/events")["last_id"]
    again = overlayctl(ov, "apply", "-f", str(overlay), "--wait")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again
    assert f"revision {result['revision']}" in again.stdout
    assert overlayctl(ov, "diff", "-f", str(overlay)).returncode == 0
    time.sleep(1.0)  # a negative, nothing to wait for: a flow-mod would have been counted by now
    assert ov.ctl.api.get("/v1/counters")["flow_mods"] == flow_mods
    assert [e["kind"] for e in ov.ctl.api.get(f"/v1/events?since={events}&kinds=tenant_changed")["events"]] == []
    assert overlayctl(ov, "export", "-o", "json").stdout.count('"vni"') == 50 + 3  # and blue, red, sentinel

    # A file with a bad tenant changes nothing, not even its good changes: refused here with its
    # line, or by the API (t49 on blue's VNI: blue is not in the file and stays) with its line too.
    def variant(name: str, **changes: tuple[int, int]) -> tuple[Path, list[str]]:
        tenants = {n: {"vni": vni, "vlan": vlan} for n, (vni, vlan) in {**FILE_TENANTS, **changes}.items()}
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"tenants": tenants}))
        return path, path.read_text().splitlines()
    bad, lines = variant("bad.yaml", t00=(6000, 150), t07=(6007, 4095))
    refused = overlayctl(ov, "apply", "-f", str(bad))
    line = lines.index("    vlan: 4095") + 1
    assert refused.returncode == 2 and f"bad.yaml:{line}: tenants.t07.vlan" in refused.stderr, refused.stderr
    clash, lines = variant("clash.yaml", t00=(6000, 150), t49=(TENANTS["blue"][0], 149))
    refused = overlayctl(ov, "apply", "-f", str(clash))
    line = lines.index(f"    vni: {TENANTS['blue'][0]}") + 1
    assert refused.returncode == 1 and f"clash.yaml:{line}: tenants.t49.vni" in refused.stderr, refused.stderr
    assert ov.ctl.api.get("/v1/tenants/t00")["vlan"] == 100 and ov.ctl.api.get("/v1/tenants/t49")["vni"] == 6049
    assert ov.ctl.api.get("/v1/status")["revision"] == result["revision"]
    assert ov.ctl.api.get("/v1/counters")["flow_mods"] == flow_mods


def test_the_event_stream_shows_a_move_within_a_second_and_a_resumed_one_misses_nothing(make_overlay):
    ov = make_overlay("vxlan", "controller")
    announce(list(ov.vms.values()))
    env = {**os.environ, **ov.ctl.cli_env()}
    since = ov.ctl.api.get("/v1/events")["last_id"]  # from here on: nothing is missed while it connects
    stream = subprocess.Popen([str(OVERLAYCTL), "events", "-o", "json", "--since", since], stdout=subprocess.PIPE,
                              text=True, env=env)
    got: list[tuple[float, dict]] = []

    def read() -> None:
        assert stream.stdout is not None
        for line in stream.stdout:
            got.append((time.monotonic(), json.loads(line)))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ov.ctl.api.post("/v1/tenants", {"name": "hello", "vni": 5100, "vlan": 90})  # the stream is up once seen
        wait_for(lambda: any(e["kind"] == "tenant_changed" and e["tenant"] == "hello" for _, e in got), 10, 0.02,
                 "the stream delivering events")
        b3 = ov.vms[("blue", 3)]
        mac, ip = b3.mac, b3.cidr
        ov.lab.add_vm(ov.hosts[2], "b3stay", TENANTS["blue"][1], "192.168.1.33/24")  # h3 keeps blue
        ov.lab.remove_vm(b3)
        moved = ov.lab.add_vm(ov.hosts[1], "b3moved", TENANTS["blue"][1], ip, mac=mac)
        start = time.monotonic()
        moved.gratuitous_arp(moved.ip)
        at = wait_for(lambda: next((when for when, e in got if e["kind"] == "endpoint_moved" and e["mac"] == mac),
                                   None), 5, 0.01, "the move on the stream")
        took = at - start
        event = next(e for _, e in got if e["kind"] == "endpoint_moved")
        assert (event["tenant"], event["host"], event["previous"]) == ("blue", "h2", "h3")
        print(f"the move reached overlayctl events {took * 1000:.0f} ms after the gratuitous ARP")
        assert took < 1.0, f"the move reached the stream after {took:.3f} s"
    finally:
        stream.terminate()
        stream.wait(10)
    reader.join(5)
    last = got[-1][1]["id"]

    # Nobody listens while things change; a client that resumes from the last ID it saw gets all
    # of them, in order, without a gap.
    for n in range(5):
        ov.ctl.api.post("/v1/tenants", {"name": f"away{n}", "vni": 5200 + n, "vlan": 200 + n})
    ov.ctl.api.delete("/v1/tenants/away0")
    resumed = subprocess.Popen([str(OVERLAYCTL), "events", "-o", "json", "--since", last], stdout=subprocess.PIPE,
                               text=True, env=env)
    after: list[dict] = []
    try:
        assert resumed.stdout is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after.append(json.loads(resumed.stdout.readline()))
            if after[-1]["kind"] == "tenant_changed" and after[-1]["change"] == "deleted":
                break
    finally:
        resumed.terminate()
        resumed.wait(10)
    epoch, n = last.rsplit("-", 1)
    assert [e["id"] for e in after] == [f"{epoch}-{int(n) + k}" for k in range(1, len(after) + 1)]
    changes = [(e["tenant"], e["change"]) for e in after if e["kind"] == "tenant_changed"]
    assert changes == [(f"away{n}", "created") for n in range(5)] + [("away0", "deleted")]
