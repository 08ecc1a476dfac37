"""The core and the encoder alone, in one process, on the scale benchmark's world: no sockets.

    .venv/bin/python -m bench.core_profile --hosts 1000 [--shape sparse] [--tunnel-ports flow] [--profile F]

The fast loop for performance work (no lab lock needed): the same plan as bench/scale.py
(bench/scale_plan.py), each host's OVSDB view built as its emulated host would report it
(a flow-based or per-peer tunnel port already up, its VMs' br0 ports), every switch read
back empty, then the hosts joined and every VM's gratuitous ARP learned the way a real br1
punts it, then --vm-events more VMs one at a time as the scale benchmark's vm phase adds
them. Each phase is drained in slices as the app's pump does and every operation is
encoded to bytes for its switch. Prints the CPU seconds per phase, per endpoint learned,
per VM after (p50), and the peak of Python's own allocations (tracemalloc, with --memory).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import sys
import time
import tracemalloc
from dataclasses import replace

from bench.emuhost import garp
from bench.scale_plan import Plan, plan
from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import tables as t
from controller.model.state import HostView, Tenant, TunnelPort
from controller.pipeline import tunnel_kinds, tunnel_ports
from controller.shell import loop
from controller.shell.config import defaults
from controller.southbound import encoder, ofmsg

PATCH = 1


def tenants_of(p: Plan) -> list[Tenant]:
    out = []
    for tn in p.tenants:
        default = next(iter(tn.vlans.values()))
        out.append(Tenant(tn.name, tn.vni, default, frozenset(tn.vlans) if tn.restricted else None,
                          tuple(sorted((h, v) for h, v in tn.vlans.items() if v != default))
                          if tn.restricted else ()))
    return out


def views_of(p: Plan, ports: str, kind: str = "vxlan") -> list[HostView]:
    k = tunnel_kinds.get(kind)
    vms: dict[str, list] = {}
    for vm in p.vms:
        vms.setdefault(vm.host, []).append(vm)
    out = []
    for hid, ip, dpid in p.hosts:
        if tunnel_ports.get(ports).per_peer:
            tunnels = tuple(TunnelPort(k.port_name(oip), kind, oip, 2 + n, True, f"u-{hid}-{n}")
                            for n, (_, oip, _) in enumerate(h for h in p.hosts if h[0] != hid))
        else:
            tunnels = (TunnelPort(k.flow_port_name, kind, tunnel_ports.FLOW, 2, True, f"u-{hid}"),)
        mine = vms.get(hid, [])
        out.append(HostView(hid, ip, dpid, f"br-{hid}", PATCH, tunnels,
                            frozenset(vm.vlan for vm in mine),
                            tuple((vm.mac, f"vm{i + 1}") for i, vm in enumerate(mine))))
    return out


class Wire:
    """What the shell does with operations: encode them per switch (bytes counted, not sent)."""

    def __init__(self) -> None:
        self.messages = self.bytes = 0
        self.seconds = 0.0  # spent encoding

    def send(self, ops: list) -> None:
        t0 = time.perf_counter()
        of_ops = [op for op in ops if not hasattr(op, "system_id")]
        for buf in ofmsg.batches(of_ops).values():
            self.bytes += len(buf)
        self.messages += len(of_ops)
        self.seconds += time.perf_counter() - t0


class Collector:
    """The garbage collector as the app keeps it (controller/shell/loop.py ticker): thresholds, and
    what survived a quarter of a second collected and frozen out of its sight."""

    def __init__(self) -> None:
        gc.set_threshold(*loop.GC_THRESHOLDS)
        self.frozen = time.perf_counter()

    def tick(self) -> None:
        if time.perf_counter() - self.frozen > loop.FREEZE_S:
            loop.freeze_survivors()
            self.frozen = time.perf_counter()


COLLECTOR = Collector()


DRAIN = [0.0]  # seconds in Core.drain


def pump(core: Core, wire: Wire) -> None:
    while core.pending():
        t0 = time.perf_counter()
        ops = core.drain(loop.SLICE_S)
        DRAIN[0] += time.perf_counter() - t0
        wire.send(ops)
        COLLECTOR.tick()


def run(args: argparse.Namespace) -> dict:
    p = plan(args.shape, args.hosts, args.tenants, args.vms, args.tenants_per_host, args.seed)
    settings = defaults(tunnel_type="vxlan", tunnel_ports=args.tunnel_ports)
    core = Core(settings, tenants_of(p), canon=ofmsg.canonical_match, cookie_of=encoder.wire_cookie)
    core.eager = False
    wire = Wire()
    views = views_of(p, args.tunnel_ports)
    out: dict = {"hosts": len(p.hosts), "tenants": len(p.tenants), "endpoints": len(p.vms)}
    if args.memory:
        tracemalloc.start()
    gc.freeze()
    COLLECTOR.__init__()

    def phase(name: str, fn) -> None:
        prof = cProfile.Profile() if args.profile and name in args.profile_phases else None
        c0 = time.process_time()
        if prof is not None:
            prof.enable()
        drain0, wire0 = DRAIN[0], wire.seconds
        fn()
        out[name + "_drain_s"] = round(DRAIN[0] - drain0, 3)
        out[name + "_encode_s"] = round(wire.seconds - wire0, 3)
        if prof is not None:
            prof.disable()
            prof.dump_stats(f"{args.profile}.{name}")
        out[name + "_cpu_s"] = round(time.process_time() - c0, 3)
        print(f"{name}: {out[name + '_cpu_s']} s", file=sys.stderr, flush=True)

    def connect() -> None:
        for v in views:
            wire.send(core.datapath_up(v.datapath_id))
            wire.send(core.switch_read(v.datapath_id, SwitchDump(), 0.0))
            wire.send(core.host_view(v, 0.0))
            pump(core, wire)  # the pump keeps up with hosts dialling in one by one
        pump(core, wire)

    dpid_of = {hid: dpid for hid, _, dpid in p.hosts}

    def learn() -> None:
        for n, vm in enumerate(p.vms):
            _, data = garp(vm.vlan, vm.mac, vm.ip)
            dpid = dpid_of[vm.host]
            for table in args.punts:  # a real br1 punts a new VM's GARP from these tables, in order
                wire.send(core.packet_in(dpid, data, 1.0 + n * 1e-4, table))
            if n % args.drain_every == 0:
                pump(core, wire)
        pump(core, wire)

    def vms() -> None:
        """One more VM at a time, as bench/scale.py's vm phase: its br0 port in its host's view,
        then its GARP, each drained and encoded. Its CPU apart: the in-process share of one more
        VM's figure there."""
        rng = random.Random(args.seed)
        view_of = {v.system_id: v for v in views}
        members: dict[str, list[str]] = {}
        for vm in p.vms:
            members.setdefault(vm.tenant.name, []).append(vm.host)
        cpu = []
        for n in range(args.vm_events):
            tn = rng.choice([tn for tn in p.tenants if tn.name in members])
            vm = p.add_vm(tn, rng.choice(sorted(members[tn.name])))
            v = view_of[vm.host] = replace(view_of[vm.host], member_vlans=view_of[vm.host].member_vlans | {vm.vlan},
                                           attached=(*view_of[vm.host].attached, (vm.mac, f"vm-more{n}")))
            _, data = garp(vm.vlan, vm.mac, vm.ip)
            c0 = time.process_time()
            wire.send(core.host_view(v, 2.0 + n))
            pump(core, wire)
            for table in args.punts:
                wire.send(core.packet_in(dpid_of[vm.host], data, 2.0 + n, table))
            pump(core, wire)
            cpu.append(time.process_time() - c0)
        cpu.sort()
        out["vm_events"] = len(cpu)
        out["vm_cpu_ms_p50"] = round(cpu[len(cpu) // 2] * 1e3, 3) if cpu else None

    phase("connect", connect)
    phase("learn", learn)
    phase("vm", vms)
    out["learn_us_per_endpoint"] = round(out["learn_cpu_s"] / len(p.vms) * 1e6, 1)
    out["messages"], out["bytes"] = wire.messages, wire.bytes
    out["flows_held"] = sum(len(inst.owner) for inst in core.installed.values())
    if args.memory:
        cur, peak = tracemalloc.get_traced_memory()
        out["traced_mb"], out["traced_peak_mb"] = round(cur / 2**20, 1), round(peak / 2**20, 1)
        if args.memory_top:
            snap = tracemalloc.take_snapshot()
            for stat in snap.statistics("lineno")[:args.memory_top]:
                print(stat, file=sys.stderr)
    with open("/proc/self/status") as st:
        out["rss_peak_mb"] = next(round(int(line.split()[1]) / 1024, 1) for line in st if line.startswith("VmHWM"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--shape", choices=["sparse", "dense"], default="sparse")
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--vms", type=int, default=None)
    ap.add_argument("--tenants-per-host", type=int, default=5)
    ap.add_argument("--tunnel-ports", choices=["mesh", "flow"], default="flow")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drain-every", type=int, default=20, help="GARPs between pump runs")
    ap.add_argument("--vm-events", type=int, default=300, help="steady-state VMs after learning, one at a time")
    ap.add_argument("--punts", default=f"{t.SRC_BINDING}",
                    help="the tables a new VM's GARP is punted from, in order")
    ap.add_argument("--profile", metavar="PREFIX", help="cProfile the phases into PREFIX.<phase>")
    ap.add_argument("--profile-phases", default="connect,learn")
    ap.add_argument("--memory", action="store_true", help="tracemalloc (slows everything down)")
    ap.add_argument("--memory-top", type=int, default=0)
    args = ap.parse_args(argv)
    args.punts = [int(x) for x in args.punts.split(",") if x]
    args.profile_phases = args.profile_phases.split(",")
    if args.vms is None:
        args.vms = 10 if args.shape == "dense" else 1
    out = run(args)
    print(json.dumps(out))
    if args.profile:
        for name in args.profile_phases:
            try:
                pstats.Stats(f"{args.profile}.{name}").sort_stats("cumulative").print_stats(0)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
