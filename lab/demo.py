"""The article's lab in one command: `.venv/bin/python -m lab.demo` (root; ./demo.sh does the set-up).

Builds 3 hosts x 2 VMs in 2 tenants that use the same IPs, against the real controller, twice:
once with the article's learn() pipeline (the baseline) and once controller-driven. Prints the
ping matrix, the endpoints the controller learned, and the underlay frames an ARP burst costs in
each mode. Leaves nothing running; --live keeps the controller-driven lab up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from controller.pipeline import tunnel_kinds as tunnels
from lab.controller import Controller
from lab.netlab import Host, Lab, Vm, wait_for
from lab.overlay import frames_of, judge, reachable_pairs, render_matrix, wait_meshed

TENANTS = {"blue": (5001, 10), "red": (5002, 20)}  # name -> (VNI, VLAN on br0)
HOSTS = 3
MISSING_IP = "192.168.1.99"


@dataclass
class Run:
    """One lab + controller, in one learning mode."""

    mode: str
    lab: Lab
    ctl: Controller
    hosts: list[Host] = field(default_factory=list)
    vms: list[Vm] = field(default_factory=list)

    def vm(self, name: str) -> Vm:
        return next(v for v in self.vms if v.name == name)

    def close(self) -> None:
        try:
            self.ctl.stop()
        finally:
            self.lab.close()
            shutil.rmtree(self.ctl.workdir, ignore_errors=True)


def tenant(vm: Vm) -> str:
    return vm.name.rstrip("0123456789")


def build(mode: str, tunnel_type: str) -> Run:
    """Controller, tenants over REST, then hosts joining as real ones do, 2 VMs each."""
    lab = Lab()
    try:
        ctl = Controller(lab.controller_ip, tunnel_type=tunnel_type, mac_learning=mode)
        run = Run(mode, lab, ctl)
    except BaseException:
        lab.close()
        raise
    try:
        ctl.start()
        for name, (vni, vlan) in TENANTS.items():
            ctl.api.post("/v1/tenants", {"name": name, "vni": vni, "vlan": vlan})
        for i in range(1, HOSTS + 1):
            ctl.admit(f"h{i}")  # the demo admits its own hosts, as an operator would (overlayctl hosts admit)
            h = lab.add_host(f"h{i}", of_port=ctl.of_port, ovsdb_port=ctl.ovsdb_port)
            run.hosts.append(h)
            for t, (name, (_vni, vlan)) in enumerate(TENANTS.items()):
                # same IPs in both tenants; MACs differ only to tell frames apart in captures
                mac = f"02:00:00:00:{t + 1:02x}:{i:02x}"
                run.vms.append(lab.add_vm(h, f"{name}{i}", vlan, f"192.168.1.{i}/24", mac=mac))
        wait_meshed(ctl, run.hosts, timeout=30.0)
        lab.settle_underlay()
        return run
    except BaseException:
        run.close()
        raise


# --------------------------------------------------------------------------
# what the demo shows


def ping_matrix(run: Run) -> dict[str, dict[str, bool]]:
    """matrix[a][b]: a reached b: a frame from a's MAC arrived at b while a pinged every address it
    has (captures on every VM; same tenant: also a's ping got its reply). The tenants share IPs, so
    a ping alone could not tell blue2 from red2; the same-tenant frames in the same captures prove
    that an empty cross-tenant capture could have seen something."""
    matrix: dict[str, dict[str, bool]] = {a.name: {} for a in run.vms}
    tenants = {v.name: tenant(v) for v in run.vms}
    macs = {v.name: v.mac for v in run.vms}
    for talker in TENANTS:
        talkers = [v for v in run.vms if tenant(v) == talker]
        caps = {v.name: v.capture().start() for v in run.vms}
        try:
            pinged = set(reachable_pairs(talkers))
        finally:
            seen = {name: cap.stop() for name, cap in caps.items()}
        for a, row in judge([v.name for v in talkers], list(macs), tenants, macs, pinged, seen).items():
            matrix[a].update(row)
    return matrix


def arp_burst(run: Run, src: Vm, ip: str, count: int) -> int:
    """Underlay frames caused by ``count`` ARP requests (10 ms apart) from src for ip."""
    return frames_of(run.hosts, lambda: src.exec(
        ["arping", "-i", "eth0", "-c", str(count), "-W", "0.01", "-w", str(count // 50 + 5), ip],
        check=False, timeout=count // 10 + 30))


def endpoints(run: Run) -> list[dict[str, Any]]:
    out = []
    for name in TENANTS:
        for ep in run.ctl.api.get(f"/v1/tenants/{name}/endpoints"):
            out.append({"tenant": name, **ep})
    return out


def measure(run: Run, count: int) -> dict[str, int]:
    src, dst = run.vm("blue1"), run.vm("blue2")
    # warm: the learn() pipeline learns from traffic, the controller from the first frames
    wait_for(lambda: src.ping(dst.ip, timeout=0.5), 5.0, 0.05, "blue1 -> blue2 before the burst")
    return {"existing": arp_burst(run, src, dst.ip, count), "missing": arp_burst(run, src, MISSING_IP, count)}


# --------------------------------------------------------------------------
# output


def render_endpoints(eps: list[dict[str, Any]]) -> str:
    lines = [f"  {'tenant':<7}{'mac':<19}{'ips':<16}{'host':<6}last seen"]
    now = time.time()
    for ep in sorted(eps, key=lambda e: (e["tenant"], e["mac"])):
        seen = ep.get("last_seen")
        age = f"{now - seen:.0f}s ago" if isinstance(seen, (int, float)) else str(seen)
        lines.append(f"  {ep['tenant']:<7}{ep['mac']:<19}{','.join(ep['ips']):<16}{ep['host']:<6}{age}")
    return "\n".join(lines) if eps else "  (none)"


def render_counts(counts: dict[str, dict[str, int]], count: int) -> str:
    rows = [(f"{count} ARP requests blue1 -> blue2 (192.168.1.2)", "existing"),
            (f"{count} ARP requests blue1 -> {MISSING_IP} (nobody)", "missing")]
    modes = list(counts)
    lines = [f"  {'':<50}" + "".join(f"{m + ' mode':>18}" for m in modes)]
    for label, key in rows:
        lines.append(f"  {label:<50}" + "".join(f"{counts[m][key]:>18}" for m in modes))
    return "\n".join(lines)


def live_help(run: Run) -> str:
    api = run.ctl.api.base
    lines = ["", "The controller-driven lab is up. Ctrl-C tears everything down.", "", "Shell in a VM:"]
    lines += [f"  ip netns exec {v.ns} bash        # {v.name}, {v.ip} on {v.host.name}" for v in run.vms]
    lines += ["", f"REST API (its token is the one the controller made at start, {run.ctl.token_path}):",
              f"  export OVERLAY_TOKEN=$(cat {run.ctl.token_path}) OVERLAY_URL={api}"]
    lines += [f'  curl -H "Authorization: Bearer $OVERLAY_TOKEN" {api}/v1/{p}'
              for p in ("hosts", "tenants", "tenants/blue/endpoints", "counters")]
    lines += ["  .venv/bin/overlayctl topology        # reads $OVERLAY_URL and $OVERLAY_TOKEN"]
    lines += ["", "Flows and OVS state (each host has its own ovsdb-server/ovs-vswitchd):"]
    for h in run.hosts:
        env = f"OVS_RUNDIR={h.rundir}"
        lines.append(f"  {env} ovs-ofctl -O OpenFlow13 dump-flows br1      # {h.name} ({h.underlay_ip})")
    h, b1, b2 = run.hosts[0], run.vm("blue1"), run.vm("blue2")
    flow = f"in_port=1,dl_vlan={TENANTS['blue'][1]},dl_src={b1.mac},dl_dst={b2.mac}"
    lines += [f"  ovs-vsctl --db={h.db} show",
              f"  ovs-appctl -t {h.rundir}/ovs-vswitchd.ctl ofproto/trace br1 {flow}   # blue1 -> blue2",
              f"  ip netns exec {h.ns} tcpdump -nn -e -i eth0      # {h.name}'s underlay NIC",
              "", f"Controller log: {run.ctl.log_path}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------


def traces(run: Run) -> dict[str, Any]:
    """What a run made, for a test to check that it is all gone afterwards."""
    return {"lab": run.lab.prefix, "workdir": str(run.ctl.workdir),
            "controller_pid": run.ctl.proc.pid if run.ctl.proc else None}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.demo", description=__doc__.split("\n\n")[1])
    p.add_argument("--tunnel-type", choices=tunnels.NAMES, default=tunnels.DEFAULT)
    p.add_argument("--count", type=int, default=100, help="ARP requests per burst (100)")
    p.add_argument("--live", action="store_true", help="keep the controller-driven lab up until Ctrl-C")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object (for tests)")
    return p.parse_args(argv)


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # tear down on kill as on Ctrl-C
    say = (lambda *_: None) if args.json else (lambda s="": print(s, flush=True))
    counts: dict[str, dict[str, int]] = {}
    result: dict[str, Any] = {"tunnel_type": args.tunnel_type, "count": args.count}
    made: list[dict[str, Any]] = []
    say(f"The article's lab: {HOSTS} hosts (br0 + br1 each), 2 VMs per host in tenants blue (VNI 5001) and "
        f"red (VNI 5002),\nboth using 192.168.1.1-3; {args.tunnel_type} tunnels made by the controller.\n"
        f"The demo admits its own hosts h1-h{HOSTS} by name (admission = approve, the default: a host nobody "
        "admitted gets nothing).\n")
    try:
        say("[1/2] learn() baseline: the article's pipeline, floods to every host ...")
        run = build("learn", args.tunnel_type)
        made.append(traces(run))
        try:
            counts["learn"] = measure(run, args.count)
        finally:
            run.close()
        say("[2/2] controller mode: ARP answered in the switch, floods only where needed ...")
        run = build("controller", args.tunnel_type)
        made.append(traces(run))
        try:
            # Measure first, as in learn mode: the matrix's pings leave ARP entries whose
            # reachability probes (unicast, not floods) would land in the counts.
            counts["controller"] = measure(run, args.count)
            matrix = ping_matrix(run)
            eps = endpoints(run)
            result.update(matrix=matrix, endpoints=eps, counts=counts)
            say("\nPing matrix (row pings column; ok = reached, . = not one frame arrived, ! = wrong):")
            names = [v.name for v in sorted(run.vms, key=lambda v: (tenant(v) != "blue", v.name))]
            say(render_matrix(names, {v.name: tenant(v) for v in run.vms}, matrix))
            say("\nEndpoints the controller learned (GET /v1/tenants/{name}/endpoints):")
            say(render_endpoints(eps))
            say("\nUnderlay frames (rx on every host's tunnel ports):")
            say(render_counts(counts, args.count))
            if args.json:  # with what was made, so that a test can check it is all gone
                result["made"] = made
                print(json.dumps(result))
            if args.live:
                say(live_help(run))
                while True:
                    signal.pause()
        finally:
            run.close()
    except KeyboardInterrupt:
        say("\ntorn down")
        return 0 if args.live else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
