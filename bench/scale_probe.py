"""What bench/scale.py measures besides the emulated tables: REST health, /proc, the encoder."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time

from bench.emuhost import EmuHost
from bench.scale_plan import Plan, percentiles
from controller.model.ops import FlowMod
from controller.model.state import Endpoint, Host, HostView, Tenant, TunnelPort
from controller.pipeline.desired import base_flows, endpoint_flows, tenant_flows, tunnel_classify
from controller.shell.config import defaults
from controller.southbound import encoder, ofmsg
from lab.traffic import LatencySampler

HEALTH_EVERY_S = 0.1
# Every cache on the way from a Flow to its bytes: the bound is the uncached rate.
ENCODING_CACHES = (encoder.clear_caches,)
HEALTH_TIMEOUT_S = 10.0
PUSH_S = 0.5  # how long the pre-serialised push is measured


class HealthProbe(LatencySampler):
    """GET /v1/health every 100 ms in a process of its own; latencies are grouped by phase afterwards.

    Not a thread here: the emulated hosts keep this process's GIL busy, and a probe waiting
    for it would add the emulator's stalls to the controller's latency. (time.monotonic is the
    system's clock, so the samples line up with the phases measured here.)
    """

    def __init__(self, url: str) -> None:
        super().__init__(url, HEALTH_EVERY_S, HEALTH_TIMEOUT_S)
        self.phases: dict[str, tuple[float, float]] = {}
        ctx = multiprocessing.get_context("fork")
        self._stop, (self._rx, self._tx) = ctx.Event(), ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=self._child, daemon=True)

    def _child(self) -> None:
        self.stopping = self._stop  # type: ignore[assignment]  # same wait/set/is_set
        self._loop()
        self._tx.send(self.samples)

    def start(self) -> HealthProbe:
        self._proc.start()
        return self

    def stop(self) -> HealthProbe:
        self._stop.set()
        if self._rx.poll(self.timeout + 2):
            self.samples = self._rx.recv()
        self._proc.join(1)
        return self

    def mark(self, phase: str, start: float, end: float) -> None:
        self.phases[phase] = (start, end)

    def summary(self, groups: dict[str, tuple[str, ...]]) -> dict:
        out = {}
        for name, phases in groups.items():
            windows = [self.phases[p] for p in phases if p in self.phases]
            picked = [(d, ok) for t, d, ok in self.samples if any(a <= t <= b for a, b in windows)]
            out[name] = {**percentiles([d for d, _ in picked], 1000), "failed": sum(not ok for _, ok in picked)}
        return out


class ProcStat:
    """CPU seconds and memory of a process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        """CPU seconds of all its threads, to the nanosecond (schedstat), else in clock ticks (stat).

        Ticks (10 ms) are too coarse for one event's few milliseconds."""
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            tasks = []
        ns = 0
        for t in tasks:
            try:
                ns += int(open(f"/proc/{self.pid}/task/{t}/schedstat").read().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
        if ns:
            return ns / 1e9
        try:
            fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def sys(self) -> float:
        """CPU seconds in the kernel (stime, in clock ticks): what sending and receiving cost there."""
        try:
            return int(open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()[12]) / self.tick
        except (OSError, ValueError, IndexError):
            return float("nan")

    def rss_mb(self) -> dict:
        out = {}
        try:
            for line in open(f"/proc/{self.pid}/status"):
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = round(int(value.split()[0]) / 1024, 1)
        except OSError:
            pass
        return out


def encoder_rate(p: Plan, hosts: dict[str, EmuHost], ports: str = "mesh", sample: int = 4000,
                 sample_hosts: int = 40) -> dict:
    """Flows/s of ofmsg's batched encoding, uncached, and the flows the overlay needs in all.

    The flows are computed with controller/pipeline/desired.py from the run's hosts (their real
    tunnel ofports), tenants and every planned endpoint: the whole overlay converged, which
    a run that timed out never reached. `needed` is counted on up to `sample_hosts` hosts
    and scaled to all; up to `sample` distinct flows of them are encoded (each once).
    """
    settings = defaults(tunnel_type="vxlan", tunnel_ports=ports)
    tenants = {tn.name: Tenant(tn.name, tn.vni, next(iter(tn.vlans.values())),
                               frozenset(tn.vlans) if tn.restricted else None,
                               tuple(sorted(tn.vlans.items())) if tn.restricted else ()) for tn in p.tenants}
    views: dict[str, Host] = {}
    for h in hosts.values():
        tunnels = []
        for row in h.db.tables["Interface"].values():
            if row.get("type") == "vxlan" and isinstance(row.get("ofport"), int):
                remote = dict(row["options"][1]).get("remote_ip", "")
                tunnels.append(TunnelPort(row["name"], "vxlan", remote, row["ofport"], True))
        views[h.id] = Host(HostView(h.id, h.ip, h.dpid, "br1", 1, tuple(sorted(tunnels, key=lambda x: x.name))))
    by_tenant: dict[str, list] = {}
    for vm in p.vms:
        by_tenant.setdefault(vm.tenant.name, []).append(vm)
    flows: dict = {}
    counted: list[int] = []
    every = max(1, len(views) // sample_hosts)
    for hid, host in list(views.items())[::every]:
        here = base_flows(settings, host)
        for port in host.view.tunnels:
            here |= tunnel_classify(host, port.name)
        for tn in tenants.values():
            if not tn.present_on(hid):
                continue
            here |= tenant_flows(settings, host, tn)
            for vm in by_tenant.get(tn.name, ()):
                ep = Endpoint(tn.vni, vm.mac, vm.host, vm.vlan, 0.0, {vm.ip})
                here |= endpoint_flows(settings, host, tn, ep, views)
        counted.append(len(here))
        for fl in here:
            if len(flows) < sample:
                flows[fl] = host.view.datapath_id
    ops = [FlowMod(dpid, fl) for fl, dpid in flows.items()]
    seconds = float("inf")
    for _ in range(3):  # the fastest of three: other processes share the cores
        for clear in ENCODING_CACHES:
            clear()
        for fl in flows:
            fl._add = b""  # the bytes a flow keeps once encoded (encoder.flow_mod)
        t0 = time.perf_counter()
        writes = ofmsg.batches(ops)
        seconds = min(seconds, time.perf_counter() - t0)
    size = sum(len(w) for w in writes.values())
    return {"flows": len(ops), "seconds": round(seconds, 3), "flows_per_s": round(len(ops) / seconds),
            "bytes": size, "needed_per_host": round(sum(counted) / len(counted)),
            "needed_total": round(sum(counted) / len(counted) * len(views)),
            "push_bytes_per_s": round(push_rate(list(writes.values()))), "bytes_per_flow": round(size / len(ops), 1)}


def push_rate(writes: list[bytes], seconds: float = PUSH_S) -> float:
    """Bytes per second of pre-serialised flow-mods (one write per switch, as the controller sends
    them) pushed over loopback TCP into a reader that drops them: the physical limit, no encoding,
    no switch. The reader runs in a process of its own, as a switch would."""
    server = socket.create_server(("127.0.0.1", 0))
    ctx = multiprocessing.get_context("fork")
    reader = ctx.Process(target=_drain, args=(server,), daemon=True)
    reader.start()
    sent = 0
    with socket.create_connection(server.getsockname()) as out:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for w in writes:
                out.sendall(w)
                sent += len(w)
    reader.join(30)  # until it has read everything
    elapsed = time.perf_counter() - t0
    server.close()
    return sent / elapsed


def _drain(server: socket.socket) -> None:
    conn, _ = server.accept()
    with conn:
        while conn.recv(1 << 20):
            pass
