"""Broadcast storms on the underlay: the article's learn() pipeline vs controller-driven mode.

Both modes run in the same invocation on identical labs, so the ratio is meaningful on a
noisy machine. Frames are counted as rx on the tunnel ports of every host (LAB.md: tunnel
tx counters double-count on the userspace datapath).

    .venv/bin/python -m bench.storms [--tunnel-type vxlan|gre] [--json results.json]

Prints a table for people, then one JSON line for machines.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable

from controller import tunnels
from lab.controller import Controller
from lab.netlab import Lab, Vm, wait_for
from lab.overlay import Overlay, announce, arp_burst, create_tenants, underlay_rx

MODES = ("learn", "controller")
BASELINE = "learn"


def settled_frames(ov: Overlay) -> int:
    """Total underlay rx, read once it has stopped changing (frames still in flight land first)."""
    last = [-1]

    def stable() -> int | None:
        now = sum(underlay_rx(ov.hosts).values())
        same, last[0] = now == last[0], now
        return now if same else None
    return wait_for(lambda: (v := stable()) is not None and (v,), 5.0, 0.15, "underlay counters settle")[0]


def frames_of(ov: Overlay, work: Callable[[], object]) -> int:
    before = settled_frames(ov)
    work()
    return settled_frames(ov) - before


def arp_latency_ms(vm: Vm, ip: str, count: int = 20) -> float:
    out = vm.exec(["arping", "-i", "eth0", "-c", str(count), "-W", "0.05", ip], check=False).stdout
    times = [float(v) * (1e-3 if unit == "usec" else 1.0)
             for v, unit in re.findall(r"time=([\d.]+) (usec|msec)", out)]
    if not times:
        raise RuntimeError(f"no ARP replies from {ip}:\n{out}")
    return statistics.median(times)


def first_ping_ms(vm: Vm, ip: str, rounds: int = 10) -> float:
    """A ping with a cold ARP cache: the RTT includes resolving the address."""
    times = []
    for _ in range(rounds):
        vm.exec(["ip", "neigh", "flush", "dev", "eth0"])
        out = vm.exec(["ping", "-n", "-c", "1", "-W", "2", ip], check=False).stdout
        m = re.search(r"time=([\d.]+) ms", out)
        if m is None:
            raise RuntimeError(f"first ping to {ip} lost:\n{out}")
        times.append(float(m.group(1)))
    return statistics.median(times)


def ready(ov: Overlay, mode: str) -> None:
    announce(list(ov.vms.values()))
    if mode == "controller":
        wait_for(lambda: all(len(ov.ctl.api.get(f"/v1/tenants/{t}/endpoints")) == 3 for t in ("blue", "red")),
                 5.0, 0.05, "endpoints learned")


def article_lab(mode: str, tunnel_type: str) -> dict[str, float]:
    with Lab() as lab:
        ctl = Controller(lab.controller_ip, tunnel_type=tunnel_type, mac_learning=mode).start()
        try:
            create_tenants(ctl)
            ov = Overlay(lab, ctl)
            for _ in range(3):
                ov.add_host()
            ov.wait_meshed(settle=True)
            ready(ov, mode)
            b1, b2 = ov.vms[("blue", 1)], ov.vms[("blue", 2)]
            return {
                "one ARP resolution (frames)": frames_of(ov, lambda: arp_burst(b1, b2.ip, 1)),
                "100 ARPs to an existing VM (frames)": frames_of(ov, lambda: arp_burst(b1, b2.ip, 100)),
                "100 ARPs to a missing IP (frames)": frames_of(ov, lambda: arp_burst(b1, "192.168.1.200", 100)),
                "ARP resolution latency (ms, median)": arp_latency_ms(b1, b2.ip),
                "first-ping latency, cold ARP cache (ms, median)": first_ping_ms(b1, b2.ip),
            }
        finally:
            ctl.stop()


def partial_tenant_lab(mode: str, tunnel_type: str) -> dict[str, float]:
    """4 hosts; tenant green lives on 2 of them: one broadcast should cost k - 1 = 1 frame."""
    with Lab() as lab:
        ctl = Controller(lab.controller_ip, tunnel_type=tunnel_type, mac_learning=mode).start()
        try:
            ctl.api.post("/v1/tenants", {"name": "green", "vni": 7000, "vlan": 30})
            ov = Overlay(lab, ctl)
            for _ in range(4):
                ov.add_host(tenants={})
            ov.wait_meshed(settle=True)
            g1 = lab.add_vm(ov.hosts[0], "g1", 30, "172.16.0.1/24")
            g2 = lab.add_vm(ov.hosts[1], "g2", 30, "172.16.0.2/24")
            announce([g1, g2])
            if mode == "controller":
                wait_for(lambda: len(ctl.api.get("/v1/tenants/green/endpoints")) == 2, 5.0, 0.05, "green learned")
            broadcast = ["arping", "-i", "eth0", "-c", "1", "-w", "1", "172.16.0.99"]
            return {"one broadcast, tenant on 2 of 4 hosts (frames)":
                    frames_of(ov, lambda: g1.exec(broadcast, check=False))}
        finally:
            ctl.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tunnel-type", choices=tunnels.NAMES, default=tunnels.DEFAULT)
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    args = ap.parse_args(argv)
    started = time.time()
    results: dict[str, dict[str, float]] = {}
    for mode in MODES:
        for name, value in {**article_lab(mode, args.tunnel_type),
                            **partial_tenant_lab(mode, args.tunnel_type)}.items():
            results.setdefault(name, {})[mode] = value
    rows = []
    for name, values in results.items():
        base, ours = values[BASELINE], values["controller"]
        values["ratio"] = round(ours / base, 3) if base else (0.0 if ours == 0 else float("inf"))
        rows.append((name, base, ours, values["ratio"]))
    width = max(len(r[0]) for r in rows)
    print(f"{'workload':<{width}}  {'learn() baseline':>16}  {'controller':>10}  {'ratio':>6}")
    for name, base, ours, ratio in rows:
        print(f"{name:<{width}}  {base:>16.3g}  {ours:>10.3g}  {ratio:>6.3g}")
    doc = {"bench": "storms", "tunnel_type": args.tunnel_type, "baseline": BASELINE,
           "seconds": round(time.time() - started, 1), "results": results}
    print(json.dumps(doc))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(doc, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
