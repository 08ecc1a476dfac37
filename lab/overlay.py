"""Lab scenarios against the real controller, written once for the tests, the demo, the benchmarks and
the Mininet check: hosts, tenants over REST, VMs, meshing, underlay counts, ping pairs and the
reachability matrix. Only stdlib (mininet_topos/check.py imports it under /usr/bin/python3)."""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controller.model.flows import COOKIE_HOLDDOWN, OUR_KINDS, cookie_kind, cookie_vni
from controller.pipeline.tunnel_ports import is_flow_remote
from lab.controller import Controller
from lab.netlab import Host, Lab, Vm, group_buckets, wait_for

TENANTS = {"blue": (5001, 10), "red": (5002, 20)}


@dataclass
class Overlay:
    lab: Lab
    ctl: Controller
    hosts: list[Host] = field(default_factory=list)
    vms: dict[tuple[str, int], Vm] = field(default_factory=dict)  # (tenant, host index) -> VM
    controller_ips: tuple[str, ...] = ()  # several instances (lab/ha.py): hosts join all of them

    def add_host(self, tenants: dict[str, tuple[int, int]] = TENANTS, same_macs: bool = False) -> Host:
        """Host h<i>, admitted first over REST (the lab is its own operator), then joined as a real one."""
        i = len(self.hosts) + 1
        self.ctl.admit(f"h{i}")
        host = self.lab.add_host(f"h{i}", of_port=self.ctl.of_port, ovsdb_port=self.ctl.ovsdb_port,
                                 controller_ips=self.controller_ips, tls=self.ctl.host_tls(f"h{i}"))
        self.hosts.append(host)
        for t, (name, (_vni, vlan)) in enumerate(sorted(tenants.items())):
            mac = f"02:00:00:00:{0 if same_macs else t + 1:02x}:{i:02x}"
            self.vms[(name, i)] = self.lab.add_vm(host, f"{name[0]}{i}", vlan, f"192.168.1.{i}/24", mac=mac)
        return host

    def tenant_vms(self, tenant: str) -> list[Vm]:
        return [vm for (t, _), vm in sorted(self.vms.items(), key=lambda kv: kv[0][1]) if t == tenant]

    def wait_meshed(self, timeout: float = 20.0, settle: bool = False) -> None:
        """Until every host is connected and holds a tunnel (with an ofport) to every other one,
        or (tunnel_ports = flow) its one flow-based port, and their classify flows are in.

        settle: also let the first hosts learn each other's underlay MACs (lab/README.md: a
        host without tunnels misses a peer's announcement); only for a freshly built lab.
        """
        wait_meshed(self.ctl, self.hosts, timeout)
        if settle:
            self.lab.settle_underlay()


def wait_meshed(ctl: Controller, hosts: list[Host], timeout: float = 20.0) -> None:
    """Until the controller has every host connected with a tunnel (with an ofport) to every other
    one, or (tunnel_ports = flow) its one flow-based port, and each host's br1 holds the classify
    flows of those tunnels."""
    want = len(hosts)

    def meshed() -> bool:
        got = ctl.api.get("/v1/hosts")
        if len(got) != want:
            return False
        return all(h["connected"]["openflow"] and (len(up := [p for p in h["tunnels"] if p["ofport"]]) >= want - 1
                                                   or any(is_flow_remote(p["remote_ip"]) for p in up))
                   for h in got)
    wait_for(meshed, timeout, 0.1, f"{want} hosts meshed with tunnels\n{ctl.log_tail()}")
    for host in hosts:
        ports = 1 if is_flow_based(host) else want - 1
        wait_for(lambda h=host, n=ports: h.tunnel_classify_flows() >= n,
                 timeout, 0.1, f"tunnel classify flows on {host.name}")


def is_flow_based(host: Host) -> bool:
    """The host reaches its peers through a remote_ip=flow port (tunnel_ports = flow)."""
    return any(is_flow_remote(p["remote_ip"]) for p in host.tunnel_ports().values())


def port_toward(host: Host, peer: Host) -> int:
    """The ofport br1 of host sends to peer by: its tunnel to peer, or the flow-based port."""
    ports = host.tunnel_ports().values()
    return next(p["ofport"] for p in ports if p["remote_ip"] == peer.underlay_ip or is_flow_remote(p["remote_ip"]))


def create_tenants(ctl: Controller, tenants: dict[str, tuple[int, int]] = TENANTS) -> None:
    for name, (vni, vlan) in tenants.items():
        ctl.api.post("/v1/tenants", {"name": name, "vni": vni, "vlan": vlan})


def reachable_pairs(vms: list[Vm], deadline: float = 5.0) -> list[tuple[str, str]]:
    """Pairs (a, b) where a reached b's IP; each pair retried until the deadline."""
    out = []
    for a in vms:
        for b in vms:
            if a is not b:
                try:
                    wait_for(lambda a=a, b=b: a.ping(b.ip, timeout=0.5), deadline, 0.05)
                    out.append((a.name, b.name))
                except TimeoutError:
                    pass
    return out


# --------------------------------------------------------------------------
# the reachability matrix: rows ping columns, decided by captures (the demo, the Mininet check)

Matrix = dict[str, dict[str, bool]]


def judge(talkers: Iterable[str], vms: Iterable[str], tenant: Mapping[str, str], mac: Mapping[str, str],
          pinged: Collection[tuple[str, str]], frames: Mapping[str, list[str]]) -> Matrix:
    """matrix[a][b] for each talker a: a reached b. Same tenant: a's ping got its reply and b's capture
    shows a's echo request (the positive control); other tenant: b's capture holds any frame from a's
    MAC. ``frames``: what each VM captured while the talkers pinged; ``pinged``: pairs that got replies."""
    cols = list(vms)
    matrix: Matrix = {}
    for a in talkers:
        row = matrix.setdefault(a, {})
        for b in cols:
            if b != a:
                seen = [fr for fr in frames[b] if mac[a] in fr]
                row[b] = (a, b) in pinged and any("echo request" in fr for fr in seen) \
                    if tenant[a] == tenant[b] else bool(seen)
    return matrix


def verdict(tenant: Mapping[str, str], matrix: Matrix) -> bool:
    """Same tenant reachable, other tenants not."""
    return all(ok == (tenant[a] == tenant[b]) for a, row in matrix.items() for b, ok in row.items())


def render_matrix(names: list[str], tenant: Mapping[str, str], matrix: Matrix) -> str:
    """Rows ping columns: 'ok' reached, '.' not one frame arrived; '!' marks a wrong result."""
    w = max(len(n) for n in names) + 1
    lines = [" " * w + "".join(f"{n:>{w}}" for n in names)]
    for a in names:
        cells = []
        for b in names:
            ok = matrix[a].get(b)
            cell = "-" if a == b else "ok" if ok else "."
            if a != b and ok != (tenant[a] == tenant[b]):
                cell += "!"
            cells.append(f"{cell:>{w}}")
        lines.append(f"{a:<{w}}" + "".join(cells))
    good = verdict(tenant, matrix)
    lines.append("same tenant reachable, other tenants not: " + ("YES" if good else "NO ('!' marks wrong pairs)"))
    return "\n".join(lines)


def all_pairs(vms: list[Vm]) -> list[tuple[str, str]]:
    return [(a.name, b.name) for a in vms for b in vms if a is not b]


def underlay_rx(hosts: list[Host]) -> dict[str, int]:
    """Frames each host received from the overlay: rx on its tunnel ports (lab/README.md: never tx)."""
    out = {}
    for h in hosts:
        stats = h.port_stats()
        ports = list(h.tunnel_ports())
        missing = [name for name in ports if "rx_packets" not in stats.get(name, {})]
        if missing:  # a port renamed or not yet numbered must not count as silent
            raise LookupError(f"{h.name}: no rx counter for tunnel ports {missing} (counters: {sorted(stats)})")
        out[h.name] = sum(stats[name]["rx_packets"] for name in ports)
    return out


def settled_rx(hosts: list[Host], quiet: float = 0.5, timeout: float = 15.0) -> int:
    """Total underlay rx of hosts once it has not moved for ``quiet`` seconds (frames in flight land first)."""
    last = [sum(underlay_rx(hosts).values()), time.monotonic()]

    def steady() -> int | None:
        now = sum(underlay_rx(hosts).values())
        if now != last[0]:
            last[:] = [now, time.monotonic()]
            return None
        return now if time.monotonic() - last[1] >= quiet else None
    # (value,): a settled total of 0 is an answer too
    return wait_for(lambda: (v := steady()) is not None and (v,), timeout, 0.1, "underlay counters kept moving")[0]


def frames_of(hosts: list[Host], work: Callable[[], object]) -> int:
    """Underlay frames (rx on every tunnel port of hosts) that ``work`` caused."""
    before = settled_rx(hosts)
    work()
    return settled_rx(hosts) - before


def flood_buckets(host: Host) -> dict[int, int]:
    """Tenant VNI -> how many hosts host's br1 floods that tenant to."""
    return group_buckets(host.ofctl("dump-groups", "br1"))


# Fields of a dumped flow that change while it lives; the rest says what the flow is.
_LIVE = re.compile(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^ ,]+,? ?")


def flow_table(host: Host) -> dict[str, tuple[float, int]]:
    """br1's flows: what each is -> (duration, packets)."""
    out = {}
    for line in host.ofctl("dump-flows", "br1").splitlines():
        d, n = re.search(r"duration=([0-9.]+)s", line), re.search(r"n_packets=(\d+)", line)
        if d and n:
            out[_LIVE.sub("", line).strip()] = (float(d.group(1)), int(n.group(1)))
    return out


def our_flows(host: Host) -> list[tuple[int, str]]:
    """br1's flows the controller made and keeps track of, as (cookie, what the flow is): the
    hold-downs (they expire by themselves) and learn()'s own entries left out."""
    out = []
    for line in host.ofctl("dump-flows", "br1").splitlines():
        m = re.search(r"cookie=(0x[0-9a-f]+)", line)
        if m and cookie_kind(ck := int(m.group(1), 16)) in OUR_KINDS and cookie_kind(ck) != COOKIE_HOLDDOWN:
            out.append((ck, _LIVE.sub("", line).strip()))
    return out


def tenant_shape(host: Host, vni: int) -> Counter[str]:
    """br1's flows of the tenant with this VNI (by their cookies), the VNI written as VNI: what must
    stay the same when the tenant is renumbered."""
    shape: Counter[str] = Counter()
    for ck, text in our_flows(host):
        if cookie_vni(ck) == vni:
            text = re.sub(r"cookie=0x[0-9a-f]+, ?", "", text)
            shape[re.sub(rf"\b(0x{vni:x}|{vni})\b", "VNI", text)] += 1
    return shape


def controller_flows(ctl: Controller) -> dict[str, int]:
    """The flows the controller believes each host's br1 holds (overlay_host_flows)."""
    text = ctl.metrics_text()
    return {m.group(1): int(float(m.group(2)))
            for m in re.finditer(r'^overlay_host_flows\{host="([^"]+)"\} (\S+)$', text, re.M)}


def flush_neighbours(vms: Iterable[Vm]) -> None:
    """The VMs forget the MACs they learned: their next packets start with ARP (or ND) again."""
    for vm in vms:
        vm.exec(["ip", "neigh", "flush", "all"])


def assert_kept(before: dict[str, dict[str, tuple[float, int]]], after: dict[str, dict[str, tuple[float, int]]]) -> int:
    """Every flow of `before` (host -> flow_table) is still there, neither rewritten nor re-added (its
    duration and packets ran on); how many."""
    kept = 0
    for name, flows in before.items():
        for flow, (duration, packets) in flows.items():
            assert flow in after[name], f"{name}: flow gone or rewritten: {flow}"
            assert after[name][flow][0] >= duration and after[name][flow][1] >= packets, flow
            kept += 1
    return kept


def kept_through_recovery(ctl: Controller, since: int, before: dict[str, dict[str, tuple[float, int]]],
                          hosts: list[Host]) -> tuple[int, dict]:
    """assert_kept(before, now) once ctl's recovery window, begun after its log offset since (a start,
    a takeover), has ended with its pass over what nobody claimed; (flows kept, ctl's counters then).
    The counters are read first: they hold that pass's flow-mods, even those still on the way."""
    ctl.wait_recovery_over(since)
    counters = ctl.api.get("/v1/counters")
    return assert_kept(before, {h.name: flow_table(h) for h in hosts}), counters


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def arp_burst(vm: Vm, ip: str, count: int, interval: float = 0.01) -> list[str]:
    """Send `count` ARP requests for ip; the MACs that answered, one per reply."""
    cp = vm.exec(["arping", "-i", "eth0", "-c", str(count), "-W", f"{interval:g}", "-w", "2", ip],
                 check=False, timeout=60)
    return re.findall(r"bytes from ([0-9a-f:]{17})", cp.stdout)


def neighbour_answers(vm: Vm, ip: str) -> list[str]:
    """One ARP request (IPv4) or neighbour solicitation (IPv6) for ip from vm's eth0, sent whatever
    vm's neighbour cache holds: the MACs that answered (lower case)."""
    if ":" not in ip:
        return arp_burst(vm, ip, 1)
    out = vm.exec(["ndisc6", "-r", "1", "-w", "1000", ip, "eth0"], check=False).stdout
    return [m.lower() for m in re.findall(r"Target link-layer address: ([0-9A-Fa-f:]{17})", out)]


def cold_ping_ms(vm: Vm, ip: str) -> float | None:
    """One ping from vm to ip with vm's ARP cache flushed first: the reply's RTT (ms), which
    includes resolving ip, or None when no reply came within 2 s."""
    vm.exec(["ip", "neigh", "flush", "dev", "eth0"])
    m = re.search(r"time=([\d.]+) ms", vm.exec(["ping", "-n", "-c", "1", "-W", "2", ip], check=False).stdout)
    return float(m.group(1)) if m else None


def announce(vms: list[Vm]) -> None:
    """What a booting VM does: a gratuitous ARP, so the overlay learns where it is."""
    for vm in vms:
        vm.exec(["arping", "-U", "-i", "eth0", "-c", "1", "-w", "1", vm.ip], check=False)


class PingStream:
    """Echo requests from vm to ip every ``interval`` s for as long as the ``with`` body runs.

    Entering returns once the first reply is back (the stream runs before the body starts);
    ``running()`` tells the body that it still does (the body overlapped it). Leaving waits for
    one more reply (the path works after the body), stops ping and sets ``lost``: the sequence
    numbers up to the last reply that got none, and ``replies``: how many came back.
    """

    def __init__(self, vm: Vm, ip: str, interval: float = 0.02) -> None:
        self.vm, self.ip, self.interval = vm, ip, interval
        self.lost: list[int] = []
        self.replies = 0
        self._log = Path(tempfile.mkstemp(prefix="pingstream-", suffix=".txt")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    def _seqs(self) -> set[int]:
        return {int(s) for s in re.findall(r"icmp_seq=(\d+) ttl=", self._log.read_text())}

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PingStream:
        with open(self._log, "wb") as out:
            self._proc = subprocess.Popen(["ip", "netns", "exec", self.vm.ns, "ping", "-n", "-i",
                                           f"{self.interval:g}", "-W", "1", self.ip],
                                          stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self._seqs() or not self.running(), 5.0, 0.01, f"{self.vm.name}: first reply")
            assert self._seqs(), self._log.read_text()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None and self.running():
                last = max(self._seqs())
                wait_for(lambda: max(self._seqs()) > last, 3.0, 0.01, f"{self.vm.name}: a reply after the body")
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
            got = self._seqs()
            self.replies = len(got)
            self.lost = [s for s in range(1, max(got, default=0)) if s not in got]
            self._proc = None
        self._log.unlink(missing_ok=True)
