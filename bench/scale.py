"""Scale: the real controller against hundreds of emulated hosts, many per process.

    .venv/bin/python -m bench.scale --hosts 10,100,1000 --shape sparse|dense [--json F] [--plot F]

Each size runs a fresh controller (`osken-manager apps/overlay.py`, lab/controller.py) on
loopback and emulated hosts (bench/emuhost.py) that speak OVSDB and OpenFlow 1.3 to it.
Phases, each with its own timeout (a phase that times out reports how much converged):

  tenants   every tenant created over REST (`hosts` lists restrict placement)
  connect   every host dials in with its VMs' br0 ports: converged when every host holds
            its tunnels (classify flows), base pipeline, its tenants' tunnel-in flows and
            flood groups with one bucket per other member host
  learn     every VM announces itself (GARP): converged when its entries are on every
            member host (source entry at home, unicast + ARP responder elsewhere)
  vm        steady state: one more VM at a time (br0 port over OVSDB, then its GARP)
  join      steady state: one more host at a time (tunnels and flows on it and its peers)

"Converged" means the entries are in the emulated tables and the switch has since answered
a barrier. Cold start = connect + learn. The baseline measured in the same run is the
encoder bound: the flows the whole overlay needs (controller/pipeline/desired.py), divided by the
batched encoding rate of controller/southbound/ofmsg.py (uncached) on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import scale_report
from bench.emuhost import EmuHost, ip_int, mac_int
from bench.scale_plan import VLAN_BASE, Plan, TenantPlan, VmPlan, host_tuple, percentiles, plan
from bench.scale_probe import HealthProbe, ProcStat, encoder_rate
from controller.pipeline import tunnel_ports
from lab.controller import ApiError, Controller

TUNNEL_TYPE = "vxlan"
EVENT_POLL_S = 0.002  # a steady-state event's CPU is read this soon after it is done: less routine to net out
PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")
EMULATOR_GC = (100_000, 20, 1000)  # collector thresholds in this process while a size runs
EMULATOR_FREEZE_S = 0.25  # what survived this long is frozen out of the collector's sight
BACKGROUND_S = 3.0  # the window the controller's routine CPU rate is measured over, before the steady-state events


class Tracker:
    """Waits for marks (bench/emu_of.py mark_of) to appear on switches, without polling tables."""

    def __init__(self) -> None:
        self.waiting: dict[tuple[int, tuple], list[Expect]] = {}
        self.met: list[Expect] = []  # every mark there, not yet confirmed by a barrier reply

    def watch(self, host: EmuHost) -> None:
        host.switch.watch = self._seen

    def _seen(self, switch, mark: tuple, now: float) -> None:
        for e in self.waiting.pop((id(switch), mark), ()):
            e.missing -= 1
            e.last[switch] = now  # marks are seen in time order, each after its expectation began
            if e.missing == 0:
                self.met.append(e)

    def expect(self, needs: list[tuple[EmuHost, tuple]], t0: float) -> Expect:
        e = Expect(t0)
        for host, mark in needs:
            sw = host.switch
            if mark in sw.marks:
                continue  # there already: nothing to wait for on this account
            e.missing += 1
            self.waiting.setdefault((id(sw), mark), []).append(e)
        if e.missing == 0:
            self.met.append(e)
        return e

    def confirm(self) -> None:
        """Those met whose switches have answered a barrier since are done."""
        self.met = [e for e in self.met if e.check() is None]


@dataclass
class Expect:
    t0: float
    missing: int = 0
    last: dict = field(default_factory=dict)  # switch -> when its last needed mark appeared
    done: float | None = None

    def check(self) -> float | None:
        if self.done is None and self.missing == 0:
            confirmed = [sw.confirmed_at(t) for sw, t in self.last.items()]
            if all(c is not None for c in confirmed):
                self.done = max([self.t0, *confirmed])  # type: ignore[type-var]
        return self.done


async def wait(tracker: Tracker, expects: list[Expect], deadline: float, every_s: Callable[[], object] | None = None,
               poll_s: float = 0.05) -> bool:
    """Until every expectation is met (True) or the deadline; every_s() is called once a second.
    Each poll looks only at those met and not yet confirmed, and past those done (mostly in order)."""
    tick = time.monotonic()
    first = 0  # expects[:first] are done
    while True:
        tracker.confirm()
        while first < len(expects) and expects[first].done is not None:
            first += 1
        if first == len(expects):
            return True
        if time.monotonic() >= deadline:
            return False
        if every_s is not None and time.monotonic() - tick >= 1.0:
            tick = time.monotonic()
            every_s()
        await asyncio.sleep(poll_s)


async def keep_collector_away() -> None:
    """The emulated hosts' millions of long-lived objects out of the garbage collector's sight, as
    the controller keeps its own (controller/shell/loop.py ticker): collections over them took a
    third of the emulator's time at 1,000 hosts."""
    gc.set_threshold(*EMULATOR_GC)
    while True:
        await asyncio.sleep(EMULATOR_FREEZE_S)
        gc.freeze()


def stop(spies: list[subprocess.Popen]) -> list[subprocess.Popen]:
    for spy in spies:  # py-spy writes its flame graph when interrupted
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(60)
    return []


class Run:
    """One size: a controller, its hosts, the phases."""

    def __init__(self, p: Plan, args: argparse.Namespace) -> None:
        self.p, self.args = p, args
        # The benchmark admits its own hosts, by name in the config ([overlay] admitted_hosts): every
        # planned host and every one the joins phase adds.
        admitted = ",".join(host_tuple(i)[0] for i in range(1, len(p.hosts) + args.joins + 1))
        self.ctl = Controller("127.0.0.1", tunnel_type=TUNNEL_TYPE, tunnel_ports=args.tunnel_ports,
                              extra={"overlay": {"stats_interval": args.stats_interval, "admitted_hosts": admitted}})
        self.hosts: dict[str, EmuHost] = {}
        self.members: dict[str, set[str]] = {tn.name: set(tn.vlans) for tn in p.tenants}
        self.learned: list[VmPlan] = []
        self.vms_by_host: dict[str, list[VmPlan]] = {}
        for vm in p.vms:
            self.vms_by_host.setdefault(vm.host, []).append(vm)
        self.tracker = Tracker()
        self.out: dict = {"hosts": len(p.hosts), "tenants": len(p.tenants), "endpoints": len(p.vms), "phases": {}}
        self.pool = ThreadPoolExecutor(8)
        self.rng = random.Random(args.seed + 1)
        self.cpu_at_start = time.process_time()  # this process: the emulated hosts must not be the bottleneck
        self.ports = tunnel_ports.get(args.tunnel_ports)
        self.out["tunnel_ports"] = args.tunnel_ports

    def tunnel_toward(self, peer: EmuHost) -> tuple:
        """The mark of the classify flow for traffic from peer: its own port (mesh), the flow port (flow)."""
        return ("tun", self.ports.classify_port(TUNNEL_TYPE, peer.ip))

    def host_needs(self, h: EmuHost) -> list[tuple[EmuHost, tuple]]:
        """What a connected host must hold: tunnels, base pipeline, its tenants and their flood groups."""
        needs: list[tuple[EmuHost, tuple]] = [(h, ("base",))]
        needs += list(dict.fromkeys((h, self.tunnel_toward(o)) for o in self.hosts.values() if o is not h))
        for tn in self.p.tenants:
            if h.id in self.members[tn.name]:
                needs += [(h, ("tin", tn.vni)), (h, ("grp", tn.vni, len(self.members[tn.name]) - 1))]
        return needs

    def vm_needs(self, vm: VmPlan, on: list[str] | None = None) -> list[tuple[EmuHost, tuple]]:
        """A learned VM: its source entry at home; unicast and ARP responder entries on the other members."""
        needs: list[tuple[EmuHost, tuple]] = []
        for hid in on if on is not None else sorted(self.members[vm.tenant.name]):
            h = self.hosts.get(hid)
            if h is None:
                continue
            if hid == vm.host:
                needs.append((h, ("src", mac_int(vm.mac))))
            else:
                vlan = vm.tenant.vlans.get(hid, vm.tenant.vlans.get(vm.host))
                needs += [(h, ("uc", mac_int(vm.mac))), (h, ("arp", vlan, ip_int(vm.ip)))]
        return needs

    def new_host(self, hid: str, ip: str, dpid: int) -> EmuHost:
        h = EmuHost(hid, ip, dpid)
        for vm in self.vms_by_host.get(hid, ()):
            h.add_vm(vm.vlan, vm.mac)
        self.tracker.watch(h)
        self.hosts[hid] = h
        return h

    async def rest(self, fn, *a):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *a)

    def phase(self, name: str, started: float, ok: bool, **extra) -> dict:
        doc = {"seconds": round(time.monotonic() - started, 3), "converged": ok, **extra}
        self.out["phases"][name] = doc
        self.probe.mark(name, started, time.monotonic())
        print(f"  {len(self.p.hosts)} hosts {name}: {doc}", file=sys.stderr, flush=True)
        return doc

    def profile(self, phase: str) -> list[subprocess.Popen]:
        """py-spy on the controller and on this process (the emulated hosts) over one phase: flame
        graphs (SVG) into --profile DIR, named by shape, size, phase and process."""
        if not self.args.profile:
            return []
        os.makedirs(self.args.profile, exist_ok=True)
        spies = []
        # The controller paused for each sample (without, py-spy dropped a third of them); the
        # emulator not, so that the load it offers stays as it is.
        for who, pid, pause in (("controller", self.ctl.proc.pid, []),  # type: ignore[union-attr]
                                ("emulator", os.getpid(), ["--nonblocking"])):
            ext = "svg" if self.args.profile_format == "flamegraph" else "txt"
            out = os.path.join(self.args.profile, f"{self.args.shape}-{len(self.p.hosts)}-{phase}-{who}.{ext}")
            spies.append(subprocess.Popen([PY_SPY, "record", "--pid", str(pid), "--rate", "100", *pause,
                                           "--format", self.args.profile_format, "--output", out],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return spies

    async def run(self) -> dict:
        self.ctl.start()
        self.proc = ProcStat(self.ctl.proc.pid)  # type: ignore[union-attr]
        self.probe = HealthProbe(f"http://127.0.0.1:{self.ctl.rest_port}/v1/health").start()
        spies: list[subprocess.Popen] = []
        collector = asyncio.create_task(keep_collector_away())
        try:
            for step in (self.tenants, self.connect, self.learn, self.vm_events, self.joins, self.totals):
                spies = stop(spies)
                if step in (self.connect, self.learn, self.vm_events):
                    spies = self.profile(step.__name__)
                try:
                    await step()
                except Exception as e:  # reported; the later phases still say what they can
                    self.out.setdefault("errors", []).append(f"{step.__name__}: {e!r}")
                    print(f"  {len(self.p.hosts)} hosts {step.__name__} failed: {e!r}", file=sys.stderr, flush=True)
        finally:
            collector.cancel()
            gc.unfreeze()
            stop(spies)
            self.probe.stop()
            for h in self.hosts.values():
                h.close()
            await asyncio.sleep(0.1)
            self.out["controller_log_tail"] = self.ctl.log_tail(5)
            self.ctl.stop()
            shutil.rmtree(self.ctl.workdir, ignore_errors=True)
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.out["health"] = self.probe.summary({"convergence": ("connect", "learn"), "steady": ("vm", "join")})
        return self.out

    async def tenants(self) -> None:
        started = time.monotonic()
        deadline = started + self.args.phase_timeout
        done = errors = 0

        def post(tn: TenantPlan) -> bool:
            if time.monotonic() > deadline:
                return False
            try:
                self.ctl.api.post("/v1/tenants", tn.body())
                return True
            except (ApiError, OSError):
                return False
        for ok in await asyncio.gather(*(self.rest(post, tn) for tn in self.p.tenants)):
            done, errors = done + ok, errors + (not ok)
        self.phase("tenants", started, errors == 0, created=done, failed=errors)

    async def connect(self) -> None:
        for hid, ip, dpid in self.p.hosts:
            self.new_host(hid, ip, dpid)
        cpu0, sys0, started = self.proc.cpu(), self.proc.sys(), time.monotonic()
        expects = [self.tracker.expect(self.host_needs(h), started) for h in self.hosts.values()]
        deadline = started + self.args.phase_timeout
        gate = asyncio.Semaphore(64)  # no more SYNs at once than the controller's accept backlog

        async def dial(h: EmuHost) -> bool:
            async with gate:
                return await h.dial(self.ctl.of_port, self.ctl.ovsdb_port, deadline)
        await asyncio.gather(*(dial(h) for h in self.hosts.values()))
        while time.monotonic() < deadline and not all(h.ready for h in self.hosts.values()):
            await asyncio.sleep(0.05)
        connected = time.monotonic() - started
        ok = await wait(self.tracker, expects, deadline)
        done = [e.done - started for e in expects if e.done is not None]
        self.phase("connect", started, ok, all_connected_s=round(connected, 3),
                   hosts_converged=len(done), converged_s=round(max(done), 3) if ok and done else None,
                   cpu_s=round(self.proc.cpu() - cpu0, 3), cpu_sys_s=round(self.proc.sys() - sys0, 2))

    async def learn(self) -> None:
        cpu0, sys0, started = self.proc.cpu(), self.proc.sys(), time.monotonic()
        deadline = started + self.args.phase_timeout
        order = [vm for group in itertools.zip_longest(*self.vms_by_host.values()) for vm in group if vm is not None]
        expects: list[Expect] = []
        unheard: list[VmPlan] = []  # GARPs br1 dropped (no learning flows yet): the VM repeats it
        step = max(1, self.args.announce_rate // 20)
        for i in range(0, len(order), step):
            if time.monotonic() > deadline:
                break
            now = time.monotonic()
            for vm in order[i:i + step]:
                expects.append(self.tracker.expect(self.vm_needs(vm), now))
                if self.hosts[vm.host].announce(vm.vlan, vm.mac, vm.ip) == 0:
                    unheard.append(vm)
            await asyncio.sleep(step / self.args.announce_rate)
        lost = len(unheard)

        def repeat() -> None:
            unheard[:] = [vm for vm in unheard if self.hosts[vm.host].announce(vm.vlan, vm.mac, vm.ip) == 0]
        ok = await wait(self.tracker, expects, deadline, repeat) and len(expects) == len(order)
        lat = [e.done - e.t0 for e in expects if e.done is not None]
        self.learned = [vm for vm, e in zip(order, expects, strict=False) if e.done is not None]
        self.phase("learn", started, ok, announced=len(expects), repeated=lost, endpoints_converged=len(lat),
                   converged_s=round(max(e.done for e in expects) - started, 3) if ok and expects else None,
                   latency_ms=percentiles(lat, 1000), cpu_s=round(self.proc.cpu() - cpu0, 3),
                   cpu_sys_s=round(self.proc.sys() - sys0, 2))

    async def background_cpu(self, seconds: float = BACKGROUND_S) -> float:
        """The controller's CPU seconds per second with nothing happening but its own routine
        (counter polling, ageing ticks) and the health probe: what an event's CPU includes anyway."""
        c0, t0 = self.proc.cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        return (self.proc.cpu() - c0) / (time.monotonic() - t0)

    async def event_figures(self, background: float, lat: list[float], cpu: list[float],
                            window: list[float]) -> dict:
        """Steady-state events' latency and CPU; the CPU also net of the routine over the span each
        was read over, at the smaller of the rates before and after them (work left over from the
        phase before must not count as routine: that would flatter the events)."""
        background = min(background, await self.background_cpu())
        net = [c - background * w for c, w in zip(cpu, window, strict=True)]
        return {"events": len(lat), "latency_ms": percentiles(lat, 1000), "cpu_ms": percentiles(cpu, 1000),
                "net_cpu_ms": percentiles(net, 1000), "background_cpu_ms_per_s": round(background * 1000, 2)}

    async def vm_events(self) -> None:
        background = await self.background_cpu()
        started = time.monotonic()
        deadline = started + self.args.phase_timeout
        lat, cpu, window = [], [], []  # window: the span the CPU was read over (past the event's end)
        for _ in range(self.args.vm_events):
            if time.monotonic() > deadline:
                break
            tn = self.rng.choice(self.p.tenants)
            host = self.rng.choice(sorted(self.members[tn.name]))
            vm = self.p.add_vm(tn, host)
            c0, t0 = self.proc.cpu(), time.monotonic()
            self.hosts[host].add_vm(vm.vlan, vm.mac)  # the VM boots: its port appears on br0
            self.hosts[host].announce(vm.vlan, vm.mac, vm.ip)
            e = self.tracker.expect(self.vm_needs(vm), t0)
            if not await wait(self.tracker, [e], min(deadline, t0 + self.args.event_timeout), poll_s=EVENT_POLL_S):
                break
            lat.append(e.done - t0)  # type: ignore[operator]
            cpu.append(self.proc.cpu() - c0)
            window.append(time.monotonic() - t0)
        self.phase("vm", started, len(lat) == self.args.vm_events,
                   **await self.event_figures(background, lat, cpu, window))

    async def joins(self) -> None:
        background = await self.background_cpu()
        started = time.monotonic()
        deadline = started + self.args.phase_timeout
        lat, cpu, window = [], [], []  # window: the span the CPU was read over (past the event's end)
        for j in range(self.args.joins):
            if time.monotonic() > deadline:
                break
            hid, ip, dpid = host_tuple(len(self.p.hosts) + j + 1)
            h = EmuHost(hid, ip, dpid)
            self.tracker.watch(h)
            for tn in self.p.tenants:  # dense: the new host has VMs of every tenant; sparse: of none
                if not tn.restricted:
                    tn.vlans[hid] = VLAN_BASE + self.p.tenants.index(tn)
                    self.members[tn.name].add(hid)
                    for _ in range(self.args.vms):
                        h.add_vm(tn.vlans[hid], self.p.new_mac())
            peers = list(self.hosts.values())
            self.hosts[hid] = h
            # What to wait for is the plan, worked out before the clock starts (at 1,000 hosts and
            # 5,000 tenants, going through every pair took longer than the join itself).
            needs = self.host_needs(h)
            shared = [tn for tn in self.p.tenants if hid in self.members[tn.name]]
            for o in peers:
                needs.append((o, self.tunnel_toward(h)))
                needs += [(o, ("grp", tn.vni, len(self.members[tn.name]) - 1))
                          for tn in shared if o.id in self.members[tn.name]]
            for vm in self.learned:  # every endpoint of its tenants, on it
                if hid in self.members[vm.tenant.name]:
                    needs += self.vm_needs(vm, on=[hid])
            c0, t0 = self.proc.cpu(), time.monotonic()
            e = self.tracker.expect(needs, t0)
            until = min(deadline, t0 + self.args.event_timeout)
            if not await h.dial(self.ctl.of_port, self.ctl.ovsdb_port, until) \
                    or not await wait(self.tracker, [e], until, poll_s=EVENT_POLL_S):
                break
            lat.append(e.done - t0)  # type: ignore[operator]
            cpu.append(self.proc.cpu() - c0)
            window.append(time.monotonic() - t0)
        self.phase("join", started, len(lat) == self.args.joins,
                   **await self.event_figures(background, lat, cpu, window))

    async def totals(self) -> None:
        emulator_cpu = time.process_time() - self.cpu_at_start  # the baselines below are not the emulator's
        flows = [len(h.switch.table.flows) for h in self.hosts.values()]
        counts = [h.switch.counts for h in self.hosts.values()]
        try:
            counters = await asyncio.wait_for(self.rest(self.ctl.api.get, "/v1/counters"), 30)
        except (TimeoutError, ApiError, OSError):
            counters = {}
        rate = encoder_rate(self.p, self.hosts, self.args.tunnel_ports)
        total = sum(flows)
        self.out.update({
            "flows_total": total, "flows_needed_per_host": rate["needed_per_host"],
            "flows_per_host": {"mean": round(statistics.fmean(flows), 1), "max": max(flows)},
            "groups_total": sum(len(h.switch.groups) for h in self.hosts.values()),
            "flow_mods_received": sum(c["flow_mod"] for c in counts),
            "flow_mods_core": counters.get("flow_mods"),
            "packet_ins_sent": sum(c["packet_in"] for c in counts),
            "barriers_received": sum(len(h.switch.barriers) for h in self.hosts.values()),
            "stats_requests": sum(c["stats_requests"] for c in counts),
            "controller_cpu_s": round(self.proc.cpu(), 2), "controller_rss_mb": self.proc.rss_mb(),
            "emulator_cpu_s": round(emulator_cpu, 2),
            "encoder": rate, "encoder_bound_s": round(rate["needed_total"] / rate["flows_per_s"], 3),
            "push_bound_s": round(rate["needed_total"] * rate["bytes_per_flow"] / rate["push_bytes_per_s"], 3),
        })
        phases = self.out["phases"]
        if phases.get("connect", {}).get("converged") and phases.get("learn", {}).get("converged"):
            self.out["cold_start_s"] = round(phases["connect"]["converged_s"] + phases["learn"]["converged_s"], 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", default="10,100", help="comma-separated host counts (default 10,100)")
    ap.add_argument("--shape", choices=["sparse", "dense"], default="sparse")
    ap.add_argument("--tenants", type=int, default=4, help="dense: tenants on every host (4)")
    ap.add_argument("--vms", type=int, default=None, help="VMs per host per tenant (dense 10, sparse 1)")
    ap.add_argument("--tenants-per-host", type=int, default=5, help="sparse: tenants = this x hosts (5)")
    ap.add_argument("--announce-rate", type=int, default=2000, help="GARPs per second, all hosts together")
    ap.add_argument("--vm-events", type=int, default=100,
                    help="steady-state VMs added one at a time (100: a p50 of 10 moved by 0.4 ms between runs)")
    ap.add_argument("--joins", type=int, default=2, help="steady-state hosts joined one at a time")
    ap.add_argument("--phase-timeout", type=float, default=90.0, help="seconds per phase")
    ap.add_argument("--event-timeout", type=float, default=20.0, help="seconds per steady-state event")
    ap.add_argument("--stats-interval", type=float, default=2.0, help="the controller's [overlay] stats_interval")
    ap.add_argument("--tunnel-ports", choices=["mesh", "flow"], default="mesh",
                    help="the controller's [overlay] tunnel_ports: a port per peer (mesh) or one in all (flow)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    ap.add_argument("--plot", metavar="PNG", help="plot each figure against hosts (needs the bench extra)")
    ap.add_argument("--replot", metavar="JSON[,JSON...]",
                    help="no run: the tables (and --plot, every shape in one) of earlier --json files, merged")
    ap.add_argument("--note", default="", help="--plot: the conditions, in the title")
    ap.add_argument("--profile", metavar="DIR", help="py-spy flame graphs of the controller and of the emulated "
                    "hosts over connect, learn and the steady-state VMs, per size, into DIR (pip install py-spy)")
    ap.add_argument("--profile-format", choices=["flamegraph", "raw"], default="flamegraph",
                    help="--profile: SVG flame graphs, or raw collapsed stacks (one line a stack, for reading)")
    args = ap.parse_args(argv)
    if args.replot:
        docs = []
        for name in args.replot.split(","):
            with open(name) as f:
                docs.append(json.load(f))
        docs = scale_report.merge(docs)
        print("\n\n".join(scale_report.table(doc) for doc in docs))
        if args.plot:
            scale_report.plot(docs, args.plot, args.note)
        return 0
    if args.vms is None:
        args.vms = 10 if args.shape == "dense" else 1
    scale_report.raise_fd_limit()
    runs = []
    for n in [int(x) for x in args.hosts.split(",")]:
        p = plan(args.shape, n, args.tenants, args.vms, args.tenants_per_host, args.seed)
        print(f"{args.shape}, {n} hosts: {len(p.tenants)} tenants, {len(p.vms)} endpoints (hosts admitted by name "
              "in the controller's config)", file=sys.stderr, flush=True)
        runs.append(asyncio.run(Run(p, args).run()))
    doc = {"bench": "scale", "shape": args.shape, "args": vars(args), "cpus": os.cpu_count(), "runs": runs}
    print(scale_report.table(doc))
    print(json.dumps(doc))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(doc, out, indent=1)
    if args.plot:
        scale_report.plot([doc], args.plot, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
