"""Mininet nodes for the overlay lab: a physical host with its own Open vSwitch, VMs, root bridges.

Runs under the system /usr/bin/python3 (Debian's python3-mininet); stdlib + Mininet only.

Mininet puts every OVSSwitch into one ovs-vswitchd with one OVSDB, i.e. one Open_vSwitch row,
one system-id and one overlay-ip, while the controller tells hosts apart by their OVSDB
connection. So each emulated physical host here is an ``OverlayHost``: a Mininet node in its
own network namespace that runs its *own* ovsdb-server + ovs-vswitchd (state in
/run/overlay-mn/<run>/<host>/) and joins the controller exactly like a real host
(docs/user/joining-a-host.md): system-id, overlay-ip, set-manager, br1 (secure, OpenFlow13, in-band off,
unique datapath-id) with the controller, br0 patched to br1 (br1 ofport 1), VMs on br0 access
ports tagged with their tenant's VLAN, the underlay address on br-phy. The controller makes
the tunnels. Nothing of the system OVS is used or touched.

The join sequence itself is lab/ovshost.py's (the same as the namespace lab's hosts), and
processes, namespaces and stale runs are handled by lab/procs.py. In the Mininet CLI, address
a host's daemons by their control sockets: `h1 ovs-appctl -t $OVS_RUNDIR/ovs-vswitchd.ctl ...`.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mininet.node import Host, Switch

from controller.pipeline import tunnel_kinds as kinds
from lab.ovshost import OvsHost
from lab.procs import (
    QUIET_SYSCTLS,
    LabError,
    _kill_and_wait,
    _pid_netns_inode,
    _pids_in_netns,
    daemon_pids,
    is_stale,
    write_state,
)
from lab.procs import (
    run as _run,
)

RUN_ROOT = Path("/run/overlay-mn")
TUNNEL_TYPES = {k.ovsdb_type for k in kinds.KINDS}
UNDERLAY_MTU = 1600  # VXLAN adds 50 bytes, GRE 42: VMs keep MTU 1500
UNDERLAY_NET = ipaddress.IPv4Network("10.99.0.0/24")  # inside host namespaces only


class NodeError(LabError):
    pass


def sh(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 30,
       check: bool = True, input: str | None = None) -> str:
    """Run a command (no shell); raise LabError with its stderr when it fails."""
    return _run(cmd, env=env, timeout=timeout, check=check, input=input).stdout


# --------------------------------------------------------------------------
# run bookkeeping: what this process created, so that only that is removed


class Run:
    """One topology instance: /run/overlay-mn/<id>/state.json names its owner and root bridges."""

    current: dict[str, Run] = {}  # runs of this process

    def __init__(self, run_id: str) -> None:
        self.id = run_id
        self.dir = RUN_ROOT / run_id
        self.bridges: list[str] = []
        self.netns: set[int] = set()  # namespaces of our nodes, swept at exit

    @classmethod
    def claim(cls) -> Run:
        RUN_ROOT.mkdir(parents=True, exist_ok=True)
        cleanup_stale()
        for _ in range(50):
            run = cls(os.urandom(2).hex())
            try:
                run.dir.mkdir()
            except FileExistsError:
                continue
            run.save()
            cls.current[run.id] = run
            if len(cls.current) == 1:
                atexit.register(cleanup_current)
            return run
        raise NodeError("no free run id under /run/overlay-mn")

    @classmethod
    def get(cls, run_id: str) -> Run:
        if run_id not in cls.current:
            raise NodeError(f"run {run_id} was not claimed by this process")
        return cls.current[run_id]

    def save(self) -> None:
        write_state(self.dir, {"bridges": self.bridges})

    def add_bridge(self, name: str) -> None:
        self.bridges.append(name)
        self.save()  # recorded before it exists, so a killed run can still be cleaned

    def remove(self) -> None:
        """Stop every daemon, process and bridge of this run. Idempotent."""
        _kill_and_wait([p for d in self.dir.glob("*/") for p in daemon_pids(d)])
        if self.netns:  # e.g. `tcpdump -D &` left in a VM: it would keep the namespace alive
            _kill_and_wait(_pids_in_netns(self.netns))
        for br in self.bridges:
            if Path(f"/sys/class/net/{br}").exists():
                sh(["ip", "link", "del", br], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        Run.current.pop(self.id, None)


def _load_stale(d: Path) -> Run | None:
    if not is_stale(d):  # alive, or just claimed
        return None
    run = Run(d.name)
    with contextlib.suppress(OSError, ValueError):
        run.bridges = list(json.loads((d / "state.json").read_text()).get("bridges", []))
    return run


def cleanup_stale() -> list[str]:
    """Remove runs whose owning process is gone (killed mn, crashed script); return their ids."""
    cleaned = []
    for d in sorted(RUN_ROOT.glob("*/")) if RUN_ROOT.is_dir() else []:
        run = _load_stale(d)
        if run is not None:
            run.remove()
            cleaned.append(run.id)
    return cleaned


def cleanup_current() -> None:
    """Remove what this process created; at exit, and instead of Mininet's cleanup() (see overlay.py)."""
    for run in list(Run.current.values()):
        run.remove()


# --------------------------------------------------------------------------
# management network: how hosts reach the controller


def _local_ipv4() -> set[str]:
    out = json.loads(sh(["ip", "-j", "-4", "addr", "show"]) or "[]")
    return {a["local"] for link in out for a in link.get("addr_info", [])}


def mgmt_plan(ctl_ip: str, mgmt_net: str) -> tuple[ipaddress.IPv4Interface, list[str], bool]:
    """(management bridge address, host addresses in order, hosts need a /32 route to ctl_ip).

    The controller must listen on an address the host namespaces reach. A free address
    (e.g. ip=10.97.0.1) goes on the management bridge itself, with the hosts in its /24;
    an address the machine already has (not loopback) is reached through the bridge, which
    then takes the first address of ``mgmt_net``.
    """
    ip = ipaddress.IPv4Address(ctl_ip)
    if ip.is_loopback or ip.is_unspecified:
        raise NodeError(f"controller ip {ip}: host namespaces cannot reach it; give the controller's "
                        "OpenFlow/OVSDB listeners all addresses and pass e.g. ip=10.97.0.1")
    if str(ip) in _local_ipv4():
        net = ipaddress.IPv4Network(mgmt_net)
        gw = next(net.hosts())
        return ipaddress.IPv4Interface(f"{gw}/{net.prefixlen}"), [str(a) for a in net.hosts() if a != gw], True
    net = ipaddress.IPv4Network(f"{ip}/24", strict=False)
    return ipaddress.IPv4Interface(f"{ip}/24"), [str(a) for a in net.hosts() if a != ip], False


# --------------------------------------------------------------------------
# nodes


class RootBridge(Switch):
    """A Linux bridge in the root namespace: the underlay or the management network.

    Not OpenFlow. Its name is the bridge's name (unique per run: Mininet deletes
    same-named root-namespace interfaces before creating a link).
    """

    def __init__(self, name: str, run: str, role: str, mgmt_net: str = "10.97.0.0/24", **params: Any) -> None:
        params["inNamespace"] = False
        Switch.__init__(self, name, dpid="1", **params)
        self.run, self.role, self.mgmt_net = Run.get(run), role, mgmt_net
        self.run.add_bridge(name)
        mtu = UNDERLAY_MTU if role == "underlay" else 1500
        sh(["ip", "link", "add", name, "mtu", str(mtu), "type", "bridge"])
        Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
        # bridged lab frames must not meet the machine's netfilter rules
        sh(["ip", "link", "set", name, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0",
            "nf_call_arptables", "0"], check=False)

    def start(self, controllers: list) -> None:
        mtu = UNDERLAY_MTU if self.role == "underlay" else 1500
        for intf in self.intfList():
            if intf.name != "lo":
                Path(f"/proc/sys/net/ipv6/conf/{intf.name}/disable_ipv6").write_text("1")
                sh(["ip", "link", "set", intf.name, "mtu", str(mtu), "master", self.name, "up"])
        if self.role == "mgmt":
            addr, _hosts, _route = mgmt_plan(controller_of(controllers)[0], self.mgmt_net)
            sh(["ip", "addr", "replace", str(addr), "dev", self.name])
        sh(["ip", "link", "set", self.name, "up"])

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        sh(["ip", "link", "del", self.name], check=False)
        Switch.stop(self, deleteIntfs)


class Vm(Host):
    """A VM: a Mininet host on its physical host's br0, in tenant ``tenant`` (VLAN ``vlan``)."""

    def __init__(self, name: str, run: str, tenant: str = "", vlan: int = 0, **params: Any) -> None:
        Host.__init__(self, name, **params)
        self.tenant, self.vlan = tenant, vlan
        Run.get(run).netns.add(_pid_netns_inode(self.pid))

    def config(self, **params: Any) -> Any:
        r = Host.config(self, **params)
        self.cmd("sysctl -qw " + " ".join(QUIET_SYSCTLS))
        # userspace OVS reads this veth: TCP checksums must be complete (lab/README.md)
        self.cmd(f"ethtool -K {self.defaultIntf()} tx off >/dev/null")
        return r


def controller_of(controllers: list) -> tuple[str, int]:
    if not controllers:
        raise NodeError("no controller: run with --controller remote,ip=IP,port=OPENFLOW_PORT")
    c = controllers[0]
    return c.IP(), int(c.port)


def _kernel_datapath() -> bool:
    sh(["modprobe", "openvswitch"], check=False)
    return Path("/sys/module/openvswitch").exists()


def _peer(intf: Any) -> Any:
    link = intf.link
    return (link.intf2 if link.intf1 is intf else link.intf1).node


class OverlayHost(Switch, OvsHost):
    """An emulated physical host with its own ovsdb-server and ovs-vswitchd (see module doc).

    ``datapath``: "user" (netdev; no OVS kernel module needed) or "kernel" (system datapath).
    ``tunnels``: None (the controller creates them) or a tunnel kind (controller/pipeline/tunnel_kinds.py):
    ports made here as in the article (ofports 2.., towards every other host), which the controller adopts.
    """

    hosts: dict[str, list[OverlayHost]] = {}  # per run, in index order: peers for tunnels/neighbours
    underlay_net = UNDERLAY_NET
    underlay_mtu = UNDERLAY_MTU

    def __init__(self, name: str, run: str, index: int, ovsdb_port: int = 6640, datapath: str = "user",
                 tunnels: str | None = None, **params: Any) -> None:
        if datapath not in ("user", "kernel"):
            raise NodeError(f"datapath must be user or kernel, not {datapath!r}")
        if tunnels is not None and tunnels not in kinds.NAMES:
            raise NodeError(f"tunnels must be one of {', '.join(kinds.NAMES)}, not {tunnels!r}")
        if datapath == "kernel" and not _kernel_datapath():
            raise NodeError("datapath=kernel needs the openvswitch kernel module, which this machine lacks: "
                            "use datapath=user")
        params["inNamespace"] = True
        self.run = Run.get(run)
        self.index = index
        # unique per run and distinguishable from other labs' bridges on the same controller
        dpid = f"6d6e{int(self.run.id, 16):04x}{index:08x}"
        Switch.__init__(self, name, dpid=dpid, **params)
        self.datapath_id = dpid
        self.run.netns.add(_pid_netns_inode(self.pid))
        self.ovsdb_port = ovsdb_port
        self.datapath_type = "netdev" if datapath == "user" else "system"
        self.tunnels = tunnels
        self.underlay_ip = str(UNDERLAY_NET.network_address + index)
        self.underlay_mac = f"02:99:00:00:{index >> 8:02x}:{index & 0xFF:02x}"
        self.rundir = self.run.dir / name
        self.rundir.mkdir()
        OverlayHost.hosts.setdefault(self.run.id, []).append(self)
        # so that `h1 ovs-vsctl show`, `h1 ovs-ofctl -O OpenFlow13 dump-flows br1` work in the CLI
        self.cmd(f"export OVS_RUNDIR={self.rundir} OVS_DBDIR={self.rundir} OVS_LOGDIR={self.rundir}")

    def netns_cmd(self) -> list[str]:
        return ["mnexec", "-a", str(self.pid)]  # as Mininet's popen does

    # ---- lifecycle ---------------------------------------------------------

    def start(self, controllers: list) -> None:
        ctl_ip, of_port = controller_of(controllers)
        peers = OverlayHost.hosts[self.run.id]
        _addr, mgmt_ips, route = mgmt_plan(ctl_ip, self._mgmt_net())
        underlay = mgmt = None
        vms: list[tuple[str, Vm]] = []
        for intf in self.intfList():
            if intf.name == "lo":
                continue
            node = _peer(intf)
            if isinstance(node, RootBridge):
                if node.role == "underlay":
                    underlay = intf.name
                else:
                    mgmt = intf.name
            elif isinstance(node, Vm):
                vms.append((intf.name, node))
        if underlay is None or mgmt is None:
            raise NodeError(f"{self.name}: needs a link to the underlay and to the management bridge")

        sh([*self.netns_cmd(), "sysctl", "-qw", *QUIET_SYSCTLS, "net.ipv4.conf.all.arp_ignore=1"])
        batch = f"link set lo up\nlink set {underlay} mtu {UNDERLAY_MTU} up\n"
        batch += f"addr add {mgmt_ips[self.index - 1]}/24 dev {mgmt}\nlink set {mgmt} up\n"
        if route:
            batch += f"route add {ctl_ip}/32 via {_addr.ip} dev {mgmt}\n"
        sh([*self.netns_cmd(), "ip", "-batch", "-"], input=batch)
        self.join(ctl_ip, of_port, self.ovsdb_port, underlay_port=underlay,
                  vm_ports=[(port, vm.vlan, vm.MAC(), vm.name) for port, vm in vms],
                  neighbours=[(p.underlay_ip, p.underlay_mac) for p in peers if p is not self],
                  announce=False, before_manager=(lambda: self._hand_tunnels(peers)) if self.tunnels else None)

    def _mgmt_net(self) -> str:
        bridges = [n for i in self.intfList() if i.name != "lo" and isinstance(n := _peer(i), RootBridge)]
        return next(b.mgmt_net for b in bridges if b.role == "mgmt")

    def _hand_tunnels(self, peers: list[OverlayHost]) -> None:
        args: list[str] = []
        kind = kinds.get(self.tunnels)
        for n, p in enumerate([p for p in peers if p is not self], start=2):
            name = f"{self.tunnels}-{p.name}"[:15]
            args += ["--", "add-port", "br1", name, "--", "set", "Interface", name, f"type={kind.ovsdb_type}",
                     f"options:remote_ip={p.underlay_ip}", f"options:local_ip={self.underlay_ip}",
                     "options:key=flow", f"ofport_request={n}"]
        if args:
            self.vsctl(*args)

    def connected(self) -> bool:
        """br1 and the manager are connected and the controller has meshed this host.

        Mininet's waitConnected() (mn --wait, --test) polls this.
        """
        try:
            if not all(r["is_connected"] is True for t in ("Controller", "Manager")
                       for r in self.vsctl_json("--columns=is_connected", "list", t) or [{"is_connected": 0}]):
                return False
            peers = len(OverlayHost.hosts[self.run.id]) - 1
            tunnels = [r for r in self.vsctl_json("--columns=type,ofport", "list", "Interface")
                       if r["type"] in TUNNEL_TYPES and isinstance(r["ofport"], int) and r["ofport"] > 0]
            # the controller's classify flows for the tunnels are in
            return len(tunnels) >= peers and self.tunnel_classify_flows() >= peers
        except LabError:
            return False

    def status(self) -> str:
        """What connected() looks at, for a report when it stays False."""
        try:
            conns = {t: [r["is_connected"] for r in self.vsctl_json("--columns=is_connected", "list", t)]
                     for t in ("Controller", "Manager")}
            tunnels = {r["name"]: r["ofport"] for r in self.vsctl_json("--columns=name,type,ofport", "list",
                                                                       "Interface") if r["type"] in TUNNEL_TYPES}
            classify = self.tunnel_classify_flows()
            return f"{self.name}: connected {conns}, tunnels {tunnels}, classify flows {classify}"
        except LabError as e:
            return f"{self.name}: {e}"

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        if self.datapath_type == "system" and daemon_pids(self.rundir):
            # the kernel datapath outlives vswitchd unless asked to go with it
            with contextlib.suppress(LabError, subprocess.TimeoutExpired):
                self.appctl("exit", "--cleanup")
        _kill_and_wait(daemon_pids(self.rundir))
        Switch.stop(self, deleteIntfs)

