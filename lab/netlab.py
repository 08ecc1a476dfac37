"""Multi-host Open vSwitch lab on one Linux machine (see lab/README.md).

Every emulated physical host is a network namespace running its own
ovsdb-server and ovs-vswitchd (userspace datapath: this machine has no OVS
kernel module). Hosts share an underlay (a Linux bridge in the root namespace)
and reach the controller under test through a management Linux bridge in the
root namespace that holds ``Lab.controller_ip``.

Only stdlib; everything is done with ip/ovs-vsctl/ovs-ofctl/ovs-appctl.
This module keeps the Lab (its VMs are lab/vm.py); a host's OVS and its join sequence are in
lab/ovshost.py, captures and raw frames in lab/capture.py, processes, namespaces and
run directories in lab/procs.py. Their public names are importable from here too.
Every object the lab creates is named with a per-lab prefix and recorded under
``/run/overlay-lab/<prefix>/`` (written before anything is created), so that
``cleanup_stale()`` can remove what a killed run left behind and nothing else.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

from controller.pipeline import tunnel_kinds as kinds
from controller.pipeline.tunnel_ports import is_flow_remote
from lab.capture import SENTINEL_ETHERTYPE, Capture, _garp_frame, _send_frames, _sentinel_frame
from lab.ovshost import (
    OVS_SCHEMA,
    TUNNEL_TYPES,
    VSCTL_TIMEOUT,
    Host,
    OvsHost,
    _ovs_map,
    _ovs_scalar,
    _parse_ovs_json,
    group_buckets,
)
from lab.pki import HostTls, Pki
from lab.procs import (
    QUIET_SYSCTLS,
    RUN_ROOT,
    LabError,
    _delete_namespaces,
    _link_in_ns,
    _netns_inode,
    _pid_alive,
    _pids_in_netns,
    _prefix_for,
    _proc_cmdline,
    _proc_starttime,
    _root_sysctl,
    _state_owner_alive,
    _teardown_prefix,
    cleanup_stale,
    daemon_pids,
    free_tcp_ports,
    run,
    tcp_port_free,
    wait_for,
    write_state,
)
from lab.vm import Vm

__all__ = [
    "OVS_SCHEMA", "QUIET_SYSCTLS", "RUN_ROOT", "SENTINEL_ETHERTYPE", "TUNNEL_TYPES", "VSCTL_TIMEOUT",
    "Capture", "Host", "Lab", "LabError", "OvsHost", "Vm", "cleanup_stale", "free_tcp_ports",
    "group_buckets", "run", "tcp_port_free", "wait_for",
]
# private helpers other modules and tests used from here, kept importable
_REEXPORTED = (_proc_starttime, _garp_frame, _send_frames, _sentinel_frame, _ovs_map, _parse_ovs_json, _link_in_ns,
               _netns_inode, _pid_alive, _pids_in_netns, _proc_cmdline)

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def _used_root_networks() -> list[ipaddress.IPv4Network]:
    out = run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout
    nets = []
    for r in json.loads(out or "[]"):
        dst = r.get("dst")
        if not dst or dst == "default":
            continue
        with contextlib.suppress(ValueError):
            nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


class Lab:
    """N emulated hosts + VMs; a context manager. close() removes everything."""

    def __init__(
        self,
        tag: str | None = None,
        underlay_mtu: int = 1600,
        mgmt_subnet: str | None = None,
        underlay_subnet: str | None = None,
    ) -> None:
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, Vm] = {}
        self.underlay_mtu = underlay_mtu
        # VXLAN costs 50 bytes: keep VM frames within the underlay MTU
        self.vm_mtu = min(1500, underlay_mtu - 50)
        self._closed = False
        self._captures: list[Capture] = []
        self._host_counter = 0
        self._vm_counter = 0
        RUN_ROOT.mkdir(parents=True, exist_ok=True)
        # leftovers of killed runs hold subnets and names: clear them first
        try:
            cleanup_stale()
        except (LabError, TimeoutError) as exc:  # theirs; must not stop ours
            log.warning("cleanup of stale labs failed: %s", exc)
        self.tag, self.prefix, self.rundir = self._claim(tag)
        try:
            self._lab_num = int(hashlib.sha1(self.prefix.encode()).hexdigest()[:8], 16)
            self.mgmt_net, self.underlay_net = self._pick_subnets(
                mgmt_subnet, underlay_subnet)
            self.controller_ip = str(self.mgmt_net.network_address + 1)
            self.mgmt_bridge = f"{self.prefix}mg"
            self.underlay_bridge = f"{self.prefix}ul"
            self._write_state({"mgmt_subnet": str(self.mgmt_net),
                               "underlay_subnet": str(self.underlay_net)})
            atexit.register(self.close)
            self._make_bridge(self.mgmt_bridge, 1500,
                              f"{self.controller_ip}/{self.mgmt_net.prefixlen}")
            self._make_bridge(self.underlay_bridge, underlay_mtu, None)
        except BaseException:
            self.close()
            raise

    # ---- bookkeeping ----------------------------------------------------

    def _claim(self, tag: str | None) -> tuple[str, str, Path]:
        """Reserve /run/overlay-lab/<prefix>; clean it first if stale."""
        for _ in range(20):
            t = tag if tag is not None else secrets.token_hex(2)
            prefix = _prefix_for(t)
            rundir = RUN_ROOT / prefix
            if rundir.exists():
                owner = _state_owner_alive(rundir)
                if owner:
                    if tag is not None:
                        raise LabError(
                            f"lab prefix {prefix} (tag {tag!r}) is in use by pid {owner}")
                    continue
                _teardown_prefix(prefix)
            try:
                rundir.mkdir()
            except FileExistsError:
                if tag is not None:
                    raise LabError(f"lab prefix {prefix} was claimed concurrently") from None
                continue
            # own it at once, so a concurrent cleanup_stale() leaves it alone
            self.tag, self.prefix, self.rundir = t, prefix, rundir
            self._write_state({})
            return t, prefix, rundir
        raise LabError("could not find a free lab prefix")

    def _write_state(self, extra: dict[str, str]) -> None:
        write_state(self.rundir, {"tag": self.tag, "prefix": self.prefix, **extra})

    def _pick_subnets(
        self, mgmt: str | None, underlay: str | None
    ) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
        used = _used_root_networks()
        for other in RUN_ROOT.glob("*/state.json"):
            with contextlib.suppress(ValueError, KeyError, OSError):
                used.append(ipaddress.IPv4Network(json.loads(other.read_text())["mgmt_subnet"]))
        if mgmt is not None:
            net = ipaddress.IPv4Network(mgmt)
            if any(net.overlaps(u) for u in used):
                raise LabError(f"management subnet {net} overlaps a root-namespace route")
            ul = ipaddress.IPv4Network(underlay or f"10.99.{net.network_address.packed[2]}.0/24")
            return net, ul
        start = self._lab_num % 200 + 20
        for i in range(200):
            x = (start + i - 20) % 200 + 20
            net = ipaddress.IPv4Network(f"10.98.{x}.0/24")
            if not any(net.overlaps(u) for u in used):
                ul = ipaddress.IPv4Network(underlay or f"10.99.{x}.0/24")
                return net, ul
        raise LabError("no free 10.98.X.0/24 management subnet")

    def _make_bridge(self, name: str, mtu: int, addr: str | None) -> None:
        run(["ip", "link", "add", name, "mtu", str(mtu), "type", "bridge"])
        # keep root-namespace IPv6 chatter (RS, MLD, DAD) off the lab wires
        _root_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1")
        # bridged lab frames must not meet the host's netfilter rules
        run(["ip", "link", "set", name, "type", "bridge", "nf_call_iptables", "0",
             "nf_call_ip6tables", "0", "nf_call_arptables", "0"], check=False)
        if addr:
            run(["ip", "addr", "add", addr, "dev", name])
        run(["ip", "link", "set", name, "up"])

    def _ns_name(self, kind: str, name: str) -> str:
        return f"{self.prefix}-{kind}-{name}"

    def _new_capture(self, ns: str, iface: str, direction: str | None, bpf: str | None,
                     inject: tuple[str | None, str, str] | None) -> Capture:
        cap = Capture(ns, iface, direction=direction, bpf=bpf, inject=inject,
                      workdir=self.rundir, on_stop=self._captures_discard)
        self._captures.append(cap)
        return cap

    def _captures_discard(self, cap: Capture) -> None:
        with contextlib.suppress(ValueError):
            self._captures.remove(cap)

    def _check(self) -> None:
        if self._closed:
            raise LabError("lab is closed")

    # ---- hosts ------------------------------------------------------------

    @functools.cached_property
    def pki(self) -> Pki:
        """This run's certificates (ovs-pki, in its run directory; lab/pki.py), made when first asked for."""
        return Pki(self.rundir / "pki")

    def add_host(self, name: str, *, of_port: int, ovsdb_port: int,
                 announce: bool = True, preset_neighbours: bool = True,
                 controller_ips: Sequence[str] = (), tls: HostTls | None = None, system_id: str | None = None,
                 datapath_id: str | None = None) -> Host:
        """Build a host the way a real one joins (see lab/README.md).

        ``controller_ips``: several controllers (lab/ha.py), each on of_port and ovsdb_port;
        empty: the one at ``controller_ip``. ``tls``: join over ssl: with these files
        (``lab.pki.host_tls(name)``), else tcp:. ``system_id``, ``datapath_id``: claim another host's
        (an impostor); by default its name and a datapath ID of its own.

        ``announce``/``preset_neighbours`` exist to show what happens without
        them (first packets lost); keep them on otherwise.
        """
        self._check()
        if not _NAME_RE.match(name) or name in self.hosts:
            raise LabError(f"bad or duplicate host name {name!r}")
        host = Host.numbered(self, name, of_port=of_port, ovsdb_port=ovsdb_port,
                             controller_ips=tuple(controller_ips), system_id=system_id,
                             datapath_id=datapath_id or "")
        host.tls = tls
        self.hosts[name] = host
        try:
            self._build_host(host, announce, preset_neighbours)
        except BaseException:
            self._teardown_host(host)
            self.hosts.pop(name, None)
            raise
        return host

    def _build_host(self, h: Host, announce: bool, preset_neighbours: bool) -> None:
        os.makedirs(h.rundir)
        h.plumb("link set eth0 up\n")  # its underlay address goes on br-phy (OvsHost.join)

        # own ovsdb-server + ovs-vswitchd, all state under h.rundir; the peers it
        # joins preset as underlay neighbours (only the live ones)
        neighbours = [(peer.underlay_ip, peer.underlay_mac) for peer in self.hosts.values()
                      if peer is not h and peer.alive] if preset_neighbours else []
        h.join(h.controllers, h.of_port, h.ovsdb_port, neighbours=neighbours, announce=announce)

    def remove_host(self, host: Host | str) -> None:
        h = self.hosts[host] if isinstance(host, str) else host
        try:
            self._teardown_host(h)
        finally:
            self.hosts.pop(h.name, None)

    def _teardown_host(self, h: Host) -> None:
        errors = []
        for vm in list(h.vms.values()):
            try:
                self._teardown_vm(vm, delete_port=False)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                errors.append(exc)
        h.alive = False
        h.unplumb(daemon_pids(h.rundir))
        if errors:
            raise LabError(f"host {h.name} teardown: {errors}")

    def add_controller_ns(self, k: int) -> tuple[str, str]:
        """Namespace c<k> (1-3) on the management network, for one of several controllers
        (lab/ha.py): its name and address. Removed with the lab, as hosts are."""
        self._check()
        if not 1 <= k <= 3:
            raise LabError("controller namespaces are c1..c3")
        ns, veth = self._ns_name("c", f"c{k}"), f"{self.prefix}m{250 + k}"  # host veths stop at m250
        ip = str(self.mgmt_net.network_address + 251 + k)  # hosts use .2-.251
        run(["ip", "netns", "add", ns])
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", *QUIET_SYSCTLS])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "mgmt0", "netns", ns])
        _root_sysctl(f"net/ipv6/conf/{veth}/disable_ipv6", "1")
        run(["ip", "link", "set", veth, "master", self.mgmt_bridge, "up"])
        run(["ip", "-n", ns, "-batch", "-"], input=(
            "link set lo up\n"
            f"addr add {ip}/{self.mgmt_net.prefixlen} dev mgmt0\n"
            "link set mgmt0 up\n"))
        return ns, ip

    # ---- tunnels (by hand, as in the article) -----------------------------

    def add_hand_tunnel(self, host: Host, peer: Host, tunnel_type: str = "vxlan",
                        name: str | None = None, ofport: int | None = None) -> str:
        """Add a br1 tunnel port towards ``peer`` as the article does by hand."""
        self._check()
        if tunnel_type not in kinds.NAMES:
            raise LabError(f"unknown tunnel type {tunnel_type}: one of {', '.join(kinds.NAMES)}")
        name = name or f"{tunnel_type}-{peer.name}"[:15]
        if ofport is None:  # the article numbers br1's tunnels from 2 up
            on_br1 = set(host.vsctl("list-ifaces", "br1").split())
            used = {_ovs_scalar(r["ofport"]) for r in
                    host.vsctl_json("--columns=name,ofport", "list", "Interface")
                    if r["name"] in on_br1}
            ofport = next(n for n in range(2, 65280) if n not in used)
        host.vsctl(
            "add-port", "br1", name, "--", "set", "Interface", name,
            f"type={kinds.get(tunnel_type).ovsdb_type}", f"options:remote_ip={peer.underlay_ip}",
            f"options:local_ip={host.underlay_ip}", "options:key=flow",
            f"ofport_request={ofport}",
        )
        got = host.ofport(name)
        if got != ofport:
            raise LabError(f"{host.name}: tunnel {name} got ofport {got}, wanted {ofport}")
        return name

    # ---- VMs --------------------------------------------------------------

    def add_vm(self, host: Host | str, name: str, vlan: int, ip: str,
               mac: str | None = None, ipv6: str | None = None) -> Vm:
        self._check()
        h = self.hosts[host] if isinstance(host, str) else host
        if not _NAME_RE.match(name) or name in self.vms:
            raise LabError(f"bad or duplicate VM name {name!r}")
        if "/" not in ip:
            raise LabError(f"VM address needs a prefix length: {ip!r}")
        iface = ipaddress.IPv4Interface(ip)
        self._vm_counter += 1
        j = self._vm_counter
        vm = Vm(
            lab=self,
            name=name,
            ns=self._ns_name("v", name),
            host=h,
            ip=str(iface.ip),
            cidr=str(iface),
            mac=(mac or f"02:00:00:{h.index:02x}:{j >> 8 & 0xFF:02x}:{j & 0xFF:02x}").lower(),
            vlan=vlan,
            port=f"{self.prefix}v{j}",
            ipv6=ipv6.split("/")[0] if ipv6 else None,
        )
        self.vms[name] = vm
        h.vms[name] = vm
        try:
            self._build_vm(vm, ipv6)
        except BaseException:
            with contextlib.suppress(Exception):
                self._teardown_vm(vm, delete_port=True)
            raise
        return vm

    def _build_vm(self, vm: Vm, ipv6: str | None) -> None:
        h = vm.host
        run(["ip", "netns", "add", vm.ns])
        run(["ip", "netns", "exec", vm.ns, "sysctl", "-qw", *QUIET_SYSCTLS])
        mtu = str(self.vm_mtu)
        run(["ip", "-n", h.ns, "link", "add", vm.port, "mtu", mtu, "type", "veth",
             "peer", "name", "eth0", "netns", vm.ns, "mtu", mtu])
        # checksum offload on a veth whose other end is read by userspace OVS
        # leaves TCP checksums unfinished (lab/README.md): compute them in the VM
        run(["ip", "netns", "exec", vm.ns, "ethtool", "-K", "eth0", "tx", "off"])
        batch = (
            "link set lo up\n"
            f"link set eth0 address {vm.mac}\n"
            f"addr add {vm.cidr} dev eth0\n"
        )
        if ipv6:
            run(["ip", "netns", "exec", vm.ns, "sysctl", "-qw",
                 "net.ipv6.conf.eth0.disable_ipv6=0",
                 "net.ipv6.conf.eth0.accept_dad=0",
                 "net.ipv6.conf.eth0.accept_ra=0",
                 "net.ipv6.conf.eth0.router_solicitations=0"])
            batch += f"addr add {ipv6} dev eth0 nodad\n"
        batch += "link set eth0 up\n"
        run(["ip", "-n", vm.ns, "-batch", "-"], input=batch)
        run(["ip", "-n", h.ns, "link", "set", vm.port, "up"])
        h.vsctl(
            "add-port", "br0", vm.port, f"tag={vm.vlan}",
            "--", "set", "Interface", vm.port,
            f"external_ids:attached-mac={vm.mac}", f"external_ids:vm-id={vm.name}",
        )
        if h.ofport(vm.port) in (-1, 0):
            raise LabError(f"VM port {vm.port} on {h.name} did not come up")

    def remove_vm(self, vm: Vm | str) -> None:
        v = self.vms[vm] if isinstance(vm, str) else vm
        self._teardown_vm(v, delete_port=True)

    def _teardown_vm(self, vm: Vm, delete_port: bool) -> None:
        vm.alive = False
        for cap in [c for c in self._captures if c.ns == vm.ns]:
            with contextlib.suppress(Exception):
                cap.stop()
        try:
            if delete_port and vm.host.alive:
                vm.host.vsctl("--if-exists", "del-port", "br0", vm.port)
            _delete_namespaces([vm.ns])
            if vm.host.alive:
                wait_for(
                    lambda: run(["ip", "-n", vm.host.ns, "link", "show", vm.port],
                                check=False).returncode != 0,
                    10, 0.02, f"veth {vm.port} of VM {vm.name} did not vanish")
        finally:
            self.vms.pop(vm.name, None)
            vm.host.vms.pop(vm.name, None)

    # ---- whole lab ----------------------------------------------------------

    def wait_connected(self, timeout: float = 15.0, hosts: Iterable[Host] | None = None,
                       manager: bool = True) -> None:
        """Wait until every host's br1 (and OVSDB manager) has its TCP session up."""
        hs = list(hosts) if hosts is not None else list(self.hosts.values())
        wait_for(
            lambda: all(h.controller_connected() and
                        (not manager or h.manager_connected()) for h in hs),
            timeout, 0.1, "hosts did not connect to the controller: "
            + ", ".join(h.name for h in hs),
        )

    def settle_underlay(self, timeout: float = 5.0) -> None:
        """Every host with tunnel ports announces itself again; then wait
        until each host's OVS knows the underlay MAC of every peer it has a
        tunnel to. For fixtures, once the tunnels exist: hosts that had no
        tunnel port when a peer joined missed its announcement (lab/README.md).
        """
        hosts = [h for h in self.hosts.values() if h.alive]
        ips = {h.underlay_ip for h in hosts}
        for h in hosts:
            if h.tunnel_ports():
                h.announce()

        def missing() -> list[str]:
            out = []
            for h in hosts:
                remotes = {t["remote_ip"] for t in h.tunnel_ports().values()}
                # a flow-based port (remote_ip=flow) may send to any peer
                want = (ips - {h.underlay_ip}) if any(map(is_flow_remote, remotes)) else remotes & ips
                out += [f"{h.name}->{ip}" for ip in sorted(want - set(h.neighbours()))]
            return out

        wait_for(lambda: not missing(), timeout, 0.05,
                 f"underlay neighbours still unknown: {missing()}")

    def diagnostics(self) -> str:
        return "\n".join(h.diagnostics() for h in self.hosts.values())

    def close(self) -> None:
        """Remove everything this lab created. Idempotent; never half-stops."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        errors: list[BaseException] = []
        for cap in list(self._captures):
            with contextlib.suppress(Exception):
                cap.stop()
        for h in list(self.hosts.values()):
            try:
                self.remove_host(h)
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                errors.append(exc)
        if hasattr(self, "prefix"):
            try:
                _teardown_prefix(self.prefix)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        self.vms.clear()
        if errors:
            raise LabError(f"lab {getattr(self, 'prefix', '?')} close: {errors}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
