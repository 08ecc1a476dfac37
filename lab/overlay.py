"""Build the article's lab against the real controller: hosts, tenants over REST, VMs, underlay counts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lab.controller import Controller
from lab.netlab import Host, Lab, Vm, wait_for

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
        """Until every host is connected and holds a tunnel (with an ofport) to every other one,
        or (tunnel_ports = flow) its one flow-based port, and their classify flows are in.

        settle: also let the first hosts learn each other's underlay MACs (lab/README.md: a
        host without tunnels misses a peer's announcement); only for a freshly built lab.
        """
        want = len(self.hosts)

        def meshed() -> bool:
            hosts = self.ctl.api.get("/v1/hosts")
            if len(hosts) != want:
                return False
            return all(h["connected"]["openflow"] and (len(up := [p for p in h["tunnels"] if p["ofport"]]) >= want - 1
                                                       or any(p["remote_ip"] == "flow" for p in up))
                       for h in hosts)
        wait_for(meshed, timeout, 0.1, f"{want} hosts meshed with tunnels\n{self.ctl.log_tail()}")
        for host in self.hosts:  # and their classify flows are in
            ports = 1 if is_flow_based(host) else want - 1
            wait_for(lambda h=host, n=ports: h.ofctl("dump-flows", "br1", "table=0").count("goto_table:3") >= n,
                     timeout, 0.1, f"tunnel classify flows on {host.name}")
        if settle:
            self.lab.settle_underlay()


def is_flow_based(host: Host) -> bool:
    """The host reaches its peers through a remote_ip=flow port (tunnel_ports = flow)."""
    return any(p["remote_ip"] == "flow" for p in host.tunnel_ports().values())


def port_toward(host: Host, peer: Host) -> int:
    """The ofport br1 of host sends to peer by: its tunnel to peer, or the flow-based port."""
    ports = host.tunnel_ports().values()
    return next(p["ofport"] for p in ports if p["remote_ip"] in (peer.underlay_ip, "flow"))


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
        out[h.name] = sum(stats.get(name, {}).get("rx_packets", 0) for name in h.tunnel_ports())
    return out


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def arp_burst(vm: Vm, ip: str, count: int, interval: float = 0.01) -> list[str]:
    """Send `count` ARP requests for ip; the MACs that answered, one per reply."""
    cp = vm.exec(["arping", "-i", "eth0", "-c", str(count), "-W", f"{interval:g}", "-w", "2", ip],
                 check=False, timeout=60)
    return re.findall(r"bytes from ([0-9a-f:]{17})", cp.stdout)


def announce(vms: list[Vm]) -> None:
    """What a booting VM does: a gratuitous ARP, so the overlay learns where it is."""
    for vm in vms:
        vm.exec(["arping", "-U", "-i", "eth0", "-c", "1", "-w", "1", vm.ip], check=False)
