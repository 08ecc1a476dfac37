"""Broadcast storms on the underlay: the article's learn() pipeline vs controller-driven mode.

Both modes run in the same invocation on identical labs, so the ratio is meaningful on a
noisy machine. Frames are counted as rx on the tunnel ports of every host (lab/README.md: tunnel
tx counters double-count on the userspace datapath).

    .venv/bin/python -m bench.storms [--tunnel-type vxlan|gre] [--json results.json]
    .venv/bin/python -m bench.storms --markdown results.json     # docs/benchmarks/storms.md's table

Prints a table for people, then one JSON line for machines; exits 1 when a ratio misses its
target (TARGETS, from issue 3).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable

from bench.report import markdown_table, publish
from controller.pipeline import learning_modes
from controller.pipeline import tunnel_kinds as tunnels
from lab.controller import Controller
from lab.netlab import Lab, Vm, wait_for
from lab.overlay import Overlay, announce, arp_burst, cold_ping_ms, create_tenants, frames_of

MODES = ("learn", "controller")
BASELINE = "learn"
ONE_ARP, KNOWN_ARPS, MISSING_ARPS = ("one ARP resolution (frames)", "100 ARPs to an existing VM (frames)",
                                     "100 ARPs to a missing IP (frames)")
ARP_LATENCY, FIRST_PING = "ARP resolution latency (ms, median)", "first-ping latency, cold ARP cache (ms, median)"
BROADCAST = "one broadcast, tenant on 2 of 4 hosts (frames)"
# workload -> (the target as people read it, its test on (baseline, controller, ratio)); no target: reported only
TARGETS: dict[str, tuple[str, Callable[[float, float, float], bool]]] = {
    ONE_ARP: ("0 frames", lambda base, ours, ratio: ours == 0),
    KNOWN_ARPS: ("0 frames", lambda base, ours, ratio: ours == 0),
    MISSING_ARPS: ("<= 10 % of baseline", lambda base, ours, ratio: ratio <= 0.10),
    ARP_LATENCY: ("<= baseline", lambda base, ours, ratio: ratio <= 1.0),
    BROADCAST: ("k - 1 = 1 frame", lambda base, ours, ratio: ours == 1),
}


def arp_latency_ms(vm: Vm, ip: str, count: int = 20) -> float:
    out = vm.exec(["arping", "-i", "eth0", "-c", str(count), "-W", "0.05", ip], check=False).stdout
    times = [float(v) * (1e-3 if unit == "usec" else 1.0)
             for v, unit in re.findall(r"time=([\d.]+) (usec|msec)", out)]
    if not times:
        raise RuntimeError(f"no ARP replies from {ip}:\n{out}")
    return statistics.median(times)


def first_ping_ms(vm: Vm, ip: str, rounds: int = 10) -> float:
    """A ping with a cold ARP cache: the RTT includes resolving the address."""
    times = [cold_ping_ms(vm, ip) for _ in range(rounds)]
    if None in times:
        raise RuntimeError(f"a first ping to {ip} was lost: {times}")
    return statistics.median(times)


def ready(ov: Overlay, mode: str) -> None:
    announce(list(ov.vms.values()))
    if learning_modes.get(mode).learns_from_packet_ins:
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
                ONE_ARP: frames_of(ov.hosts, lambda: arp_burst(b1, b2.ip, 1)),
                KNOWN_ARPS: frames_of(ov.hosts, lambda: arp_burst(b1, b2.ip, 100)),
                MISSING_ARPS: frames_of(ov.hosts, lambda: arp_burst(b1, "192.168.1.200", 100)),
                ARP_LATENCY: arp_latency_ms(b1, b2.ip),
                FIRST_PING: first_ping_ms(b1, b2.ip),
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
            if learning_modes.get(mode).learns_from_packet_ins:
                wait_for(lambda: len(ctl.api.get("/v1/tenants/green/endpoints")) == 2, 5.0, 0.05, "green learned")
            broadcast = ["arping", "-i", "eth0", "-c", "1", "-w", "1", "172.16.0.99"]
            return {BROADCAST: frames_of(ov.hosts, lambda: g1.exec(broadcast, check=False))}
        finally:
            ctl.stop()


def judged(results: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Each workload's values with its ratio, target and whether it met it (None: no target)."""
    out = {}
    for name, values in results.items():
        base, ours = values[BASELINE], values["controller"]
        ratio = round(ours / base, 3) if base else (0.0 if ours == 0 else float("inf"))
        target, test = TARGETS.get(name, ("", None))
        out[name] = {**values, "ratio": ratio, "target": target,
                     "met": None if test is None else bool(test(base, ours, ratio))}
    return out


def markdown(doc: dict) -> str:
    """docs/benchmarks/storms.md's table, from a run's JSON."""
    met = {True: "yes", False: "**no**", None: ""}
    return markdown_table(("workload", "learn() baseline", "controller", "ratio", "target", "met"),
                          [(name, *(f"{v[k]:.3g}" for k in (BASELINE, "controller", "ratio")), v["target"],
                            met[v["met"]]) for name, v in doc["results"].items()], "lrrrll")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tunnel-type", choices=tunnels.NAMES, default=tunnels.DEFAULT)
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    ap.add_argument("--markdown", metavar="FILE", help="print the Markdown table of a run's JSON FILE; run nothing")
    args = ap.parse_args(argv)
    if args.markdown:
        with open(args.markdown) as f:
            print(markdown(json.load(f)))
        return 0
    started = time.time()
    measured: dict[str, dict[str, float]] = {}
    for mode in MODES:
        for name, value in {**article_lab(mode, args.tunnel_type),
                            **partial_tenant_lab(mode, args.tunnel_type)}.items():
            measured.setdefault(name, {})[mode] = value
    assert set(TARGETS) <= set(measured), set(TARGETS) - set(measured)
    results = judged(measured)
    doc = {"bench": "storms", "tunnel_type": args.tunnel_type, "baseline": BASELINE,
           "seconds": round(time.time() - started, 1), "results": results}
    publish(markdown(doc), doc, args.json)
    missed = [name for name, v in results.items() if v["met"] is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
