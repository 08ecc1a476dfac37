"""A standards-based EVPN leaf in the lab: FRR (zebra + bgpd) over Linux bridges and kernel VXLAN.

The leaf is one more network namespace on the lab's underlay and management bridges, numbered
like a host (its underlay and management addresses come from the same counter, so nothing
clashes). Per VNI it has a Linux bridge `br<vni>` with a kernel VXLAN device `vx<vni>`
(`nolearning`, local = the leaf's underlay address, dstport 4789): zebra reads them and bgpd
(`advertise-all-vni`) advertises what the bridges learn and installs what its peers advertise
(remote MACs and the flood list into the bridge FDB). Hosts behind it are lab `Vm`s: a namespace
with `eth0` on the VNI's bridge.

FRR runs by hand, one zebra and one bgpd per leaf, with their own config dir, pid files and vty
socket dir under the lab's run directory; the packaged service is never used. Everything lives in
the leaf's namespace or its lab-named veths, so `Lab.close()` and `cleanup_stale()` remove what a
crashed run left (they kill every process in a lab namespace), and `Leaf.close()` removes it
early. See lab/README.md "FRR" and docs/operator/evpn.md.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lab.labnode import LabNode
from lab.netlab import QUIET_SYSCTLS, Lab, LabError, Vm, run, wait_for
from lab.procs import _pid_alive

ZEBRA = "/usr/lib/frr/zebra"
BGPD = "/usr/lib/frr/bgpd"
VXLAN_PORT = 4789


@dataclass(eq=False, kw_only=True)
class Leaf(LabNode):
    """One FRR leaf (a ToR): `vtysh()`, `add_host()`, `evpn_routes()`, `close()`."""

    KIND: ClassVar[str] = "leaf"
    LETTER: ClassVar[str] = "l"

    asn: int
    vnis: set[int] = field(default_factory=set)

    # ---- commands ---------------------------------------------------------

    def exec(self, cmd: list[str], check: bool = True, timeout: float = 30) -> str:
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check, timeout=timeout).stdout

    def vtysh(self, *commands: str, check: bool = True) -> str:
        args = ["vtysh", "--vty_socket", str(self.rundir / "run")]
        for c in commands:
            args += ["-c", c]
        return self.exec(args, check=check)

    def vtysh_json(self, command: str) -> Any:
        return json.loads(self.vtysh(command + " json") or "{}")

    def pids(self) -> list[int]:
        out = []
        for daemon in ("bgpd", "zebra"):
            with contextlib.suppress(OSError, ValueError):
                pid = int((self.rundir / "run" / f"{daemon}.pid").read_text().strip())
                if _pid_alive(pid):
                    out.append(pid)
        return out

    # ---- what FRR knows ---------------------------------------------------

    def evpn_routes(self) -> list[dict[str, Any]]:
        """Every path in bgpd's EVPN table: type (2, 3), vni (from its label or PMSI), mac, ip,
        vtep (next hop, or the originator for a type 3), seq (MAC mobility), local, from RD."""
        table = self.vtysh_json("show bgp l2vpn evpn route")
        out: list[dict[str, Any]] = []
        for rd, prefixes in table.items():
            if not isinstance(prefixes, dict) or ":" not in rd:
                continue
            for prefix, entry in prefixes.items():
                if not isinstance(entry, dict):
                    continue
                for path in _paths(entry):
                    out.append(_route(rd, prefix, path))
        return out

    def macs(self, vni: int) -> dict[str, dict[str, Any]]:
        """zebra's MAC table of a VNI: MAC -> {"type": "local"|"remote", "remoteVtep": ip, ...}."""
        data = self.vtysh_json(f"show evpn mac vni {vni}")
        return data.get("macs", {}) if isinstance(data, dict) else {}

    def remote_vteps(self, vni: int) -> set[str]:
        """The VNI's flood list as zebra installed it from type-3 routes: the kernel VXLAN device's
        all-zero FDB entries (head-end replication)."""
        return {line.split(" dst ")[1].split()[0] for line in self.fdb(vni).splitlines()
                if line.startswith("00:00:00:00:00:00 dst ")}

    def fdb(self, vni: int) -> str:
        return self.exec(["bridge", "fdb", "show", "dev", f"vx{vni}"])

    def session_up(self, peer_ip: str) -> bool:
        data = self.vtysh_json(f"show bgp neighbors {peer_ip}")
        return isinstance(data, dict) and data.get(peer_ip, {}).get("bgpState") == "Established"

    # ---- hosts behind the leaf -------------------------------------------

    def add_vni(self, vni: int) -> None:
        """A bridge and a kernel VXLAN device for the VNI; zebra and bgpd pick them up at once."""
        br, vx = f"br{vni}", f"vx{vni}"
        mtu = self.lab.underlay_mtu - 50
        run(["ip", "-n", self.ns, "-batch", "-"], input=(
            f"link add {br} type bridge stp_state 0 mcast_snooping 0\n"
            f"link add {vx} type vxlan id {vni} local {self.underlay_ip} dstport {VXLAN_PORT} nolearning\n"
            f"link set {vx} mtu {mtu} master {br} addrgenmode none\n"
            f"link set {br} addrgenmode none\n"
            f"link set {vx} up\nlink set {br} up\n"))
        self.exec(["bridge", "link", "set", "dev", vx, "learning", "off"])
        self.vnis.add(vni)

    def add_host(self, name: str, vni: int, ip: str, mac: str) -> Vm:
        """A host namespace with eth0 on the VNI's bridge (a lab Vm: ping, capture, exec)."""
        if vni not in self.vnis:
            raise LabError(f"leaf {self.name} has no VNI {vni}")
        self.lab._vm_counter += 1
        j = self.lab._vm_counter
        iface = ipaddress.IPv4Interface(ip)
        vm = Vm(lab=self.lab, name=name, ns=self.lab._ns_name("v", name), host=self,  # type: ignore[arg-type]
                ip=str(iface.ip), cidr=str(iface), mac=mac.lower(), vlan=0, port=f"lp{j}")
        run(["ip", "netns", "add", vm.ns])
        self.vms[name] = vm
        run(["ip", "netns", "exec", vm.ns, "sysctl", "-qw", *QUIET_SYSCTLS])
        mtu = str(self.lab.vm_mtu)
        run(["ip", "-n", self.ns, "link", "add", vm.port, "mtu", mtu, "type", "veth",
             "peer", "name", "eth0", "netns", vm.ns, "mtu", mtu])
        run(["ip", "netns", "exec", vm.ns, "ethtool", "-K", "eth0", "tx", "off"])
        run(["ip", "-n", vm.ns, "-batch", "-"], input=(
            f"link set lo up\nlink set eth0 address {vm.mac}\naddr add {vm.cidr} dev eth0\nlink set eth0 up\n"))
        run(["ip", "-n", self.ns, "link", "set", vm.port, "master", f"br{vni}", "up"])
        return vm

    def neighbour(self, vm: Vm, vni: int, state: str = "reachable") -> None:
        """The host's IP in the kernel's neighbour table of the VNI's bridge (its SVI), as the
        kernel keeps it for hosts that talk to their gateway: zebra then has FRR advertise the
        host's MAC together with its IP. (No VRF module here, so the SVIs of VNIs that reuse
        one subnet cannot all carry an address; the entry is set instead of learned.)"""
        self.exec(["ip", "neigh", "replace", vm.ip, "lladdr", vm.mac, "dev", f"br{vni}", "nud", state])

    def announce(self) -> None:
        """A gratuitous ARP out of the underlay port: the hosts' OVS learn where the leaf is."""
        self.exec(["arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", self.underlay_ip], check=False)

    # ---- the BGP session --------------------------------------------------

    def cut_session(self) -> None:
        """Take the management link down (the leaf keeps running): the session dies by its hold timer."""
        run(["ip", "link", "set", self.mgmt_veth, "down"])

    def restore_session(self) -> None:
        run(["ip", "link", "set", self.mgmt_veth, "up"])

    # ---- teardown ---------------------------------------------------------

    def close(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self.unplumb(self.pids(), [vm.ns for vm in self.vms.values()])
        self.vms.clear()


def _paths(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """FRR 8.4 nests a prefix's paths as a list of lists ("paths": [[{...}], ...])."""
    out: list[dict[str, Any]] = []
    for p in entry.get("paths", []):
        out += p if isinstance(p, list) else [p]
    return out


def _route(rd: str, prefix: str, path: dict[str, Any]) -> dict[str, Any]:
    """One EVPN path of `show bgp l2vpn evpn route json`, flattened."""
    kind = 2 if prefix.startswith("[2]") else 3 if prefix.startswith("[3]") else 0
    parts = prefix.strip("[]").split("]:[")
    mac = ip = None
    vtep = path.get("nexthops", [{}])[0].get("ip")
    if kind == 2:  # [2]:[ET]:[48]:[mac] or [2]:[ET]:[48]:[mac]:[32]:[ip]
        mac = parts[3] if len(parts) > 3 else None
        ip = parts[5] if len(parts) > 5 else None
    elif kind == 3:  # [3]:[ET]:[32]:[originator]
        vtep = parts[3] if len(parts) > 3 else vtep
    ext = path.get("extendedCommunity", {}).get("string", "")
    seq = 0
    for word in ext.split():
        if word.startswith("MM:"):
            seq = int(word[3:].split(",")[0])
    return {"type": kind, "rd": rd, "prefix": prefix, "mac": mac, "ip": ip, "vtep": vtep, "seq": seq,
            "local": path.get("local", False) or path.get("peerId") == "(unspec)",
            "peer": path.get("peerId"), "ext": ext, "vni": _vni(path)}


def _vni(path: dict[str, Any]) -> int | None:
    for key in ("vni", "label"):
        if key in path:
            with contextlib.suppress(ValueError, TypeError):
                return int(path[key])
    return None


def add_leaf(lab: Lab, name: str, *, asn: int, peer_ip: str, peer_as: int, peer_port: int = 179,
             hold: int = 3, password: str | None = None) -> Leaf:
    """Build a leaf on the lab's underlay and management bridges, peering with peer_ip (the
    controller) for l2vpn evpn; iBGP when asn == peer_as. hold: the BGP hold time (keepalive
    a third of it), short so a lost session is noticed in seconds. password: the session's TCP
    MD5 password (the controller's [bgp] password_file)."""
    lab._check()
    leaf = Leaf.numbered(lab, name, asn=asn)
    try:
        _build(leaf, peer_ip, peer_as, peer_port, hold, password)
    except BaseException:
        leaf.close()
        raise
    return leaf


def _build(leaf: Leaf, peer_ip: str, peer_as: int, peer_port: int, hold: int, password: str | None) -> None:
    lab = leaf.lab
    (leaf.rundir / "etc").mkdir(parents=True)
    (leaf.rundir / "run").mkdir()
    leaf.plumb(f"link set eth0 address {leaf.underlay_mac}\n"
               f"addr add {leaf.underlay_ip}/{lab.underlay_net.prefixlen} dev eth0\nlink set eth0 up\n")
    # The kernel leaves the VXLAN UDP checksum to the (veth) offload, which never computes it: the
    # userspace OVS on the other end would drop every frame for its bad checksum.
    run(["ip", "netns", "exec", leaf.ns, "ethtool", "-K", "eth0", "tx", "off"])
    conf = leaf.rundir / "etc" / "frr.conf"
    conf.write_text(frr_conf(leaf.name, leaf.underlay_ip, leaf.asn, peer_ip, peer_as, peer_port, hold,
                             leaf.rundir / "frr.log", password))
    shutil.chown(leaf.rundir, "frr", "frr")
    for sub in ("etc", "run"):
        shutil.chown(leaf.rundir / sub, "frr", "frr")
    shutil.chown(conf, "frr", "frr")
    rund = leaf.rundir / "run"
    common = ["-d", "-N", leaf.ns, "-z", str(rund / "zserv.api"), "--vty_socket", str(rund), "-f", str(conf)]
    run(["ip", "netns", "exec", leaf.ns, ZEBRA, *common, "-i", str(rund / "zebra.pid")])
    wait_for(lambda: (rund / "zserv.api").exists(), 10, 0.05, f"zebra of leaf {leaf.name} listening")
    run(["ip", "netns", "exec", leaf.ns, BGPD, *common, "-i", str(rund / "bgpd.pid")])
    wait_for(lambda: (rund / "bgpd.vty").exists(), 10, 0.05, f"bgpd of leaf {leaf.name} up")
    wait_for(lambda: len(leaf.pids()) == 2, 10, 0.05, f"zebra and bgpd of leaf {leaf.name} running")


def frr_conf(hostname: str, router_id: str, asn: int, peer_ip: str, peer_as: int, peer_port: int, hold: int,
             log: Path | str, password: str | None = None) -> str:
    """The leaf's frr.conf: one l2vpn evpn neighbour, every VNI advertised (docs/operator/evpn.md)."""
    keepalive = max(1, hold // 3)
    port = f" neighbor {peer_ip} port {peer_port}\n" if peer_port != 179 else ""
    if password:
        port += f" neighbor {peer_ip} password {password}\n"
    return textwrap.dedent(f"""\
        hostname {hostname}
        log file {log}
        !
        router bgp {asn}
         bgp router-id {router_id}
         no bgp default ipv4-unicast
         no bgp ebgp-requires-policy
         neighbor {peer_ip} remote-as {peer_as}
        """) + port + textwrap.dedent(f"""\
         neighbor {peer_ip} timers {keepalive} {hold}
         neighbor {peer_ip} timers connect 1
         !
         address-family l2vpn evpn
          neighbor {peer_ip} activate
          advertise-all-vni
         exit-address-family
        !
        """)
