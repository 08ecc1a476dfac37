"""Build the article's lab against the real controller: hosts, tenants over REST, VMs, underlay counts."""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lab.controller import Controller
from lab.netlab import Host, Lab, Vm, group_buckets, wait_for

TENANTS = {"blue": (5001, 10), "red": (5002, 20)}


@dataclass
class Overlay:
    lab: Lab
    ctl: Controller
    hosts: list[Host] = field(default_factory=list)
    vms: dict[tuple[str, int], Vm] = field(default_factory=dict)  # (tenant, host index) -> VM

    def add_host(self, tenants: dict[str, tuple[int, int]] = TENANTS, same_macs: bool = False) -> Host:
        i = len(self.hosts) + 1
        host = self.lab.add_host(f"h{i}", of_port=self.ctl.of_port, ovsdb_port=self.ctl.ovsdb_port)
        self.hosts.append(host)
        for t, (name, (_vni, vlan)) in enumerate(sorted(tenants.items())):
            mac = f"02:00:00:00:{0 if same_macs else t + 1:02x}:{i:02x}"
            self.vms[(name, i)] = self.lab.add_vm(host, f"{name[0]}{i}", vlan, f"192.168.1.{i}/24", mac=mac)
        return host

    def tenant_vms(self, tenant: str) -> list[Vm]:
        return [vm for (t, _), vm in sorted(self.vms.items(), key=lambda kv: kv[0][1]) if t == tenant]

    def wait_meshed(self, timeout: float = 20.0, settle: bool = False) -> None:
        """Until every host is connected and holds a tunnel (with an ofport) to every other one.

        settle: also let the first hosts learn each other's underlay MACs (lab/README.md: a
        host without tunnels misses a peer's announcement); only for a freshly built lab.
        """
        want = len(self.hosts)

        def meshed() -> bool:
            hosts = self.ctl.api.get("/v1/hosts")
            if len(hosts) != want:
                return False
            return all(h["connected"]["openflow"] and len([p for p in h["tunnels"] if p["ofport"]]) >= want - 1
                       for h in hosts)
        wait_for(meshed, timeout, 0.1, f"{want} hosts meshed with tunnels\n{self.ctl.log_tail()}")
        for host in self.hosts:  # and their classify flows are in
            wait_for(lambda h=host: h.ofctl("dump-flows", "br1", "table=0").count("goto_table:3") >= want - 1,
                     timeout, 0.1, f"tunnel classify flows on {host.name}")
        if settle:
            self.lab.settle_underlay()


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


def all_pairs(vms: list[Vm]) -> list[tuple[str, str]]:
    return [(a.name, b.name) for a in vms for b in vms if a is not b]


def underlay_rx(hosts: list[Host]) -> dict[str, int]:
    """Frames each host received from the overlay: rx on its tunnel ports (LAB.md: never tx)."""
    out = {}
    for h in hosts:
        stats = h.port_stats()
        ports = list(h.tunnel_ports())
        missing = [name for name in ports if "rx_packets" not in stats.get(name, {})]
        if missing:  # a port renamed or not yet numbered must not count as silent
            raise LookupError(f"{h.name}: no rx counter for tunnel ports {missing} (counters: {sorted(stats)})")
        out[h.name] = sum(stats[name]["rx_packets"] for name in ports)
    return out


def flood_buckets(host: Host) -> dict[int, int]:
    """Tenant VNI -> how many hosts host's br1 floods that tenant to."""
    return group_buckets(host.ofctl("dump-groups", "br1"))


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def arp_burst(vm: Vm, ip: str, count: int, interval: float = 0.01) -> list[str]:
    """Send `count` ARP requests for ip; the MACs that answered, one per reply."""
    cp = vm.exec(["arping", "-i", "eth0", "-c", str(count), "-W", f"{interval:g}", "-w", "2", ip],
                 check=False, timeout=60)
    return re.findall(r"bytes from ([0-9a-f:]{17})", cp.stdout)


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
