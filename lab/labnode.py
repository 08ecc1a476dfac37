"""A numbered node of the lab: a namespace on its underlay and management bridges.

An emulated host (lab/ovshost.py `Host`) and an FRR leaf (lab/frr.py `Leaf`) are both: numbered
from one counter, so their underlay and management addresses, veths and run directories never
clash, and plumbed and removed alike. Only stdlib: lab/ovshost.py (which mininet_topos/ imports
under /usr/bin/python3) builds on this.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from lab.procs import (
    QUIET_SYSCTLS,
    LabError,
    _delete_namespaces,
    _kill_and_wait,
    _link_exists,
    _root_sysctl,
    run,
    wait_for,
)

MAX_NODES = 250  # the node number is the last octet of its underlay and management addresses


class NodeLab(Protocol):
    """What a node uses of its lab (lab/netlab.py's Lab, which builds on the nodes): the addressing,
    the bridges, the counters and captures."""

    prefix: str
    underlay_net: ipaddress.IPv4Network
    mgmt_net: ipaddress.IPv4Network
    underlay_mtu: int
    underlay_bridge: str
    mgmt_bridge: str
    rundir: Path
    controller_ip: str
    _host_counter: int
    _lab_num: int

    def _ns_name(self, letter: str, name: str) -> str: ...

    def _new_capture(self, *args: Any) -> Any: ...


@dataclass(eq=False, kw_only=True)
class LabNode:
    lab: NodeLab = field(repr=False)
    name: str
    index: int
    ns: str
    underlay_ip: str
    underlay_mac: str
    mgmt_ip: str
    rundir: Path
    ul_veth: str  # root-namespace end of the underlay veth
    mgmt_veth: str  # root-namespace end of the management veth
    vms: dict[str, Any] = field(default_factory=dict, repr=False)  # lab/netlab.py's Vms, by name
    alive: bool = True

    KIND: ClassVar[str] = "node"  # what messages call it
    LETTER: ClassVar[str] = "n"  # its namespace and run directory: <letter><number>

    @classmethod
    def numbered(cls, lab: NodeLab, name: str, **own: object) -> Self:
        """The lab's next node, addressed by its number; `own`: the subclass's fields."""
        lab._host_counter += 1
        i = lab._host_counter
        if i > MAX_NODES:
            raise LabError("too many hosts")
        p = lab.prefix
        return cls(lab=lab, name=name, index=i, ns=lab._ns_name(cls.LETTER, name),
                   underlay_ip=str(lab.underlay_net.network_address + i),
                   underlay_mac=f"02:99:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
                   mgmt_ip=str(lab.mgmt_net.network_address + 1 + i), rundir=lab.rundir / f"{cls.LETTER}{i}",
                   ul_veth=f"{p}u{i}", mgmt_veth=f"{p}m{i}", **own)  # type: ignore[arg-type]

    def plumb(self, eth0_setup: str) -> None:
        """Its namespace: eth0 on the underlay bridge (eth0_setup: `ip -batch` lines that bring it
        up), mgmt0 with mgmt_ip on the management bridge."""
        lab = self.lab
        run(["ip", "netns", "add", self.ns])
        run(["ip", "netns", "exec", self.ns, "sysctl", "-qw", *QUIET_SYSCTLS, "net.ipv4.conf.all.arp_ignore=1"])
        # veths are created with their inner end directly in the namespace
        mtu = str(lab.underlay_mtu)
        for root_end, inner, m in ((self.ul_veth, "eth0", mtu), (self.mgmt_veth, "mgmt0", "1500")):
            run(["ip", "link", "add", root_end, "mtu", m, "type", "veth", "peer", "name", inner, "netns", self.ns,
                 "mtu", m])
            _root_sysctl(f"net/ipv6/conf/{root_end}/disable_ipv6", "1")
        run(["ip", "link", "set", self.ul_veth, "master", lab.underlay_bridge, "up"])
        run(["ip", "link", "set", self.mgmt_veth, "master", lab.mgmt_bridge, "up"])
        run(["ip", "-n", self.ns, "-batch", "-"], input=(
            "link set lo up\n" + eth0_setup
            + f"addr add {self.mgmt_ip}/{lab.mgmt_net.prefixlen} dev mgmt0\nlink set mgmt0 up\n"))

    def unplumb(self, pids: Sequence[int], namespaces: Sequence[str] = ()) -> None:
        """Stop its processes, remove its namespace (and `namespaces`), veths and run directory."""
        _kill_and_wait(list(pids))
        _delete_namespaces([*namespaces, self.ns])
        for link in (self.ul_veth, self.mgmt_veth):
            if _link_exists(link):
                run(["ip", "link", "del", link], check=False)
        # namespace deletion is asynchronous: names are free only once gone
        wait_for(lambda: not _link_exists(self.ul_veth) and not _link_exists(self.mgmt_veth),
                 10, 0.02, f"veths of {self.KIND} {self.name} did not vanish")
        shutil.rmtree(self.rundir, ignore_errors=True)
