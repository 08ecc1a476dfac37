"""One host's Open vSwitch: its own ovsdb-server + ovs-vswitchd and bridges, and how it joins.

``OvsHost.join`` is the one join sequence of a host (lab/README.md, README "Joining a host"):
daemons, br-phy/br1/br0 and the patch pair in one transaction (br1's controller set at
creation), the underlay address and route, underlay neighbours, and the controller's OVSDB
manager last. lab/netlab.py's ``Host`` and mininet_topos/nodes.py's ``OverlayHost`` both are
OvsHosts; they differ in how a command enters the host's namespace (``netns_cmd``).
Only stdlib (+ controller.tables): mininet_topos/ imports this under /usr/bin/python3.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from controller.model.tables import CLASSIFY, TUNNEL_IN
from controller.pipeline import tunnel_kinds as kinds
from lab.capture import Capture, _garp_frame, _send_frames
from lab.labnode import LabNode
from lab.pki import HostTls
from lab.procs import LabError, _daemon_pid, _kill_and_wait, run, wait_for

OF13, OFPT_HELLO, OFPT_MULTIPART_REPLY, OFPMPF_REPLY_MORE = 0x04, 0, 19, 1

OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
VSCTL_TIMEOUT = 10
TUNNEL_TYPES = tuple(k.ovsdb_type for k in kinds.KINDS)


def _ovs_map(value: Any) -> dict[str, str]:
    """Decode an OVSDB JSON map (["map", [[k, v], ...]])."""
    if isinstance(value, list) and value and value[0] == "map":
        return {k: v for k, v in value[1]}
    return {}


def _ovs_scalar(value: Any) -> Any:
    """Decode an OVSDB JSON optional scalar (["set", []] means empty)."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1][0] if value[1] else None
    return value


def _parse_ovs_json(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    cols = data["headings"]
    return [dict(zip(cols, row, strict=True)) for row in data["data"]]


def group_buckets(dump_groups: str) -> dict[int, int]:
    """Group id -> its bucket count, from `ovs-ofctl dump-groups` output (a flood group's id is
    its tenant's VNI, each bucket one host its floods reach)."""
    return {int(m.group(1)): m.group(2).count("bucket=")
            for m in re.finditer(r"group_id=(\d+),(.*)", dump_groups)}


# --------------------------------------------------------------------------
# one host's OVS


class OvsHost:
    """What joins a host's OVS to the controller; subclasses provide these attributes."""

    name: str
    rundir: str | Path  # the daemons' pidfiles, sockets, logs and database
    underlay_ip: str
    underlay_mac: str
    datapath_id: str
    datapath_type: str = "netdev"  # userspace; "system" needs the OVS kernel module
    underlay_net: ipaddress.IPv4Network
    underlay_mtu: int
    tls: HostTls | None = None  # set: both channels over ssl: with these files (lab/pki.py)

    @property
    def scheme(self) -> str:
        """How br1's controller and the OVSDB manager are reached: ssl: with a certificate, else tcp:."""
        return "tcp" if self.tls is None else "ssl"

    def netns_cmd(self) -> list[str]:
        """The command prefix that runs a command in this host's network namespace."""
        raise NotImplementedError

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        d = str(self.rundir)
        env.update(OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d)
        return env

    @property
    def db(self) -> str:
        return f"unix:{self.rundir}/db.sock"

    def start_vswitchd(self) -> None:
        d = self.rundir
        run([*self.netns_cmd(), "ovs-vswitchd", f"unix:{d}/db.sock",
             f"--pidfile={d}/ovs-vswitchd.pid", f"--log-file={d}/ovs-vswitchd.log",
             f"--unixctl={d}/ovs-vswitchd.ctl", "--detach", "--no-chdir"],
            env=self.env)

    def configure_underlay(self) -> None:
        """The underlay address on br-phy's internal port (userspace tunnels leave through it)."""
        net = self.underlay_net
        wait_for(lambda: run([*self.netns_cmd(), "ip", "link", "show", "br-phy"], check=False).returncode == 0,
                 5, 0.02, f"host {self.name}: br-phy device")
        run([*self.netns_cmd(), "ip", "-batch", "-"], input=(
            f"addr replace {self.underlay_ip}/{net.prefixlen} dev br-phy\n"
            "link set br-phy up\n"
        ))
        if self.datapath_type != "netdev":
            return  # the kernel datapath routes and resolves tunnel underlay by itself
        # ovs-router learns the kernel route asynchronously; tunnels need it
        wait_for(lambda: any(str(net) in ln and "br-phy" in ln
                             for ln in self.appctl("ovs/route/show").splitlines()),
                 5, 0.02, f"host {self.name}: ovs-router never learned {net}")

    def restart_vswitchd(self) -> None:
        """What an OVS upgrade or crash does: every flow is gone, the daemon comes back empty.

        Its br-phy internal port (a tap) goes with it, so the host's network configuration
        (the underlay address) is applied again, as a real host's would be.
        """
        pid = _daemon_pid(Path(self.rundir), "ovs-vswitchd")
        if pid is not None:
            _kill_and_wait([pid])
        self.start_vswitchd()
        self.configure_underlay()
        self.announce()

    def openflow(self, request: bytes, timeout: float = 5.0) -> list[bytes]:
        """Send one OpenFlow 1.3 request to br1 over its management socket, as ovs-ofctl does, and
        return the replies to it (same xid): the parts of a multipart reply up to its last, or the
        one other message (an error included)."""
        xid = struct.unpack_from("!I", request, 4)[0]
        replies: list[bytes] = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(f"{self.rundir}/br1.mgmt")
            s.sendall(struct.pack("!BBHI", OF13, OFPT_HELLO, 8, xid ^ 0xFFFF) + request)
            buf = b""
            while True:
                while len(buf) < 8 or len(buf) < struct.unpack_from("!H", buf, 2)[0]:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise ConnectionError(f"{self.name}: br1 closed the management connection")
                    buf += chunk
                length = struct.unpack_from("!H", buf, 2)[0]
                msg, buf = buf[:length], buf[length:]
                kind, got_xid = msg[1], struct.unpack_from("!I", msg, 4)[0]
                if got_xid != xid or kind == OFPT_HELLO:
                    continue
                replies.append(msg)
                if kind != OFPT_MULTIPART_REPLY or not struct.unpack_from("!H", msg, 10)[0] & OFPMPF_REPLY_MORE:
                    return replies

    def vsctl(self, *args: str, timeout: float = VSCTL_TIMEOUT,
              check: bool = True) -> str:
        # --timeout: without it ovs-vsctl hangs forever if vswitchd is down
        return run(
            ["ovs-vsctl", f"--db={self.db}", f"--timeout={int(timeout)}", *args],
            env=self.env, timeout=timeout + 5, check=check,
        ).stdout

    def vsctl_json(self, *args: str) -> list[dict[str, Any]]:
        return _parse_ovs_json(self.vsctl("--format=json", *args))

    def ofctl(self, *args: str, protocol: str | None = "OpenFlow13",
              input: str | None = None, check: bool = True) -> str:
        cmd = ["ovs-ofctl"] + (["-O", protocol] if protocol else []) + list(args)
        return run(cmd, env=self.env, input=input, check=check).stdout

    def appctl(self, *args: str, target: str = "ovs-vswitchd",
               check: bool = True) -> str:
        if "/" not in target:  # daemons run with --unixctl=<rundir>/<name>.ctl
            target = f"{self.rundir}/{target}.ctl"
        return run(
            ["ovs-appctl", "--timeout=10", "-t", target, *args],
            env=self.env, timeout=15, check=check,
        ).stdout

    def ofport(self, iface: str) -> int:
        value = self.vsctl("get", "Interface", iface, "ofport").strip()
        return int(value.strip("[]") or -1)

    def set_neighbour(self, ip: str, mac: str) -> None:
        self.appctl("tnl/neigh/set", "br-phy", ip, mac)

    def announce(self) -> None:
        """Send a gratuitous ARP for the underlay IP out of br-phy.

        Peers' ovs-vswitchd snoop gratuitous ARPs into their tunnel neighbour
        cache, but only while they have at least one tunnel port (see lab/README.md).
        """
        _send_frames(self.netns_cmd(), "br-phy",
                     [_garp_frame(self.underlay_mac, self.underlay_ip)])

    def start_ovsdb(self) -> None:
        """A fresh database and its server; system-id and overlay-ip name the host to the controller."""
        d = self.rundir
        run(["ovsdb-tool", "create", f"{d}/conf.db", str(OVS_SCHEMA)])
        run([*self.netns_cmd(), "ovsdb-server", f"{d}/conf.db",
             f"--remote=punix:{d}/db.sock",
             # without this remote, `set-manager` is stored but never dialled
             "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
             # ssl: managers take their key and certificates from the SSL table (`set-ssl`), as ovs-ctl says
             "--private-key=db:Open_vSwitch,SSL,private_key", "--certificate=db:Open_vSwitch,SSL,certificate",
             "--ca-cert=db:Open_vSwitch,SSL,ca_cert",
             f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log",
             f"--unixctl={d}/ovsdb-server.ctl", "--detach", "--no-chdir"],
            env=self.env)
        self.vsctl("--no-wait", "init", "--", "set", "Open_vSwitch", ".",
                   f"external_ids:system-id={getattr(self, 'system_id', None) or self.name}",
                   f"external_ids:overlay-ip={self.underlay_ip}",
                   f"external_ids:hostname={self.name}")
        if self.tls is not None:  # one SSL row for both channels: ovs-vswitchd's and ovsdb-server's
            self.vsctl("--no-wait", "set-ssl", *map(str, self.tls))

    def add_bridges(self, controller_ip: str | Sequence[str], of_port: int, underlay_port: str,
                    vm_ports: Sequence[tuple[str, int, str, str]] = ()) -> None:
        """br-phy (underlay), br1 (tunnels) with its controller, br0 (VMs) and the patch pair.

        One transaction: br1's controller is set at creation (set-controller later
        would flush the app's flows). No tunnel ports: the controller's job.
        ``vm_ports``: (port, VLAN, MAC, VM name) access ports on br0 made with it.
        Several controller addresses: br1 connects to each (one leads, docs/operator/ha.md).
        """
        dp = f"datapath_type={self.datapath_type}"
        ips = [controller_ip] if isinstance(controller_ip, str) else list(controller_ip)
        controllers = []
        for k, ip in enumerate(ips):
            controllers += ["--", f"--id=@ctl{k}", "create", "Controller", f"target=\"{self.scheme}:{ip}:{of_port}\"",
                            "max_backoff=1000"]
        args = [
            "--", "add-br", "br-phy",
            "--", "set", "Bridge", "br-phy", dp,
            f"other_config:hwaddr={self.underlay_mac}",
            "--", "set", "Interface", "br-phy", f"mtu_request={self.underlay_mtu}",
            "--", "add-port", "br-phy", underlay_port,
            "--", "add-br", "br1",
            "--", "set", "Bridge", "br1", dp, "fail_mode=secure",
            "protocols=OpenFlow13", "other_config:disable-in-band=true",
            f"other_config:datapath-id={self.datapath_id}",
            *controllers,
            "--", "set", "Bridge", "br1", "controller=" + ",".join(f"@ctl{k}" for k in range(len(ips))),
            "--", "add-br", "br0",
            "--", "set", "Bridge", "br0", dp,
            "fail_mode=standalone",
            "--", "add-port", "br1", "patch-int",
            "--", "set", "Interface", "patch-int", "type=patch",
            "options:peer=patch-tun", "ofport_request=1",
            "--", "add-port", "br0", "patch-tun",
            "--", "set", "Interface", "patch-tun", "type=patch",
            "options:peer=patch-int",
        ]
        for port, vlan, mac, vm in vm_ports:
            args += ["--", "add-port", "br0", port, f"tag={vlan}", "--", "set", "Interface", port,
                     f"external_ids:attached-mac={mac}", f"external_ids:vm-id={vm}"]
        self.vsctl(*args)
        # ovs-vsctl exits 0 even if a bridge failed to come up: check ofports
        rows = self.vsctl_json("--columns=name,ofport,error", "list", "Interface")
        bad = [r for r in rows if _ovs_scalar(r["ofport"]) in (None, -1)
               or _ovs_scalar(r["error"])]
        if bad or len(rows) != 6 + len(vm_ports):
            raise LabError(f"host {self.name}: interfaces not up: {rows} (datapath "
                           f"{self.datapath_type}; log {self.rundir}/ovs-vswitchd.log)")
        if self.ofport("patch-int") != 1:
            raise LabError(f"host {self.name}: patch-int did not get ofport 1")

    def set_manager(self, controller_ip: str | Sequence[str], ovsdb_port: int) -> None:
        ips = [controller_ip] if isinstance(controller_ip, str) else list(controller_ip)
        args = []
        for k, ip in enumerate(ips):
            args += ["--", f"--id=@m{k}", "create", "Manager", f"target=\"{self.scheme}:{ip}:{ovsdb_port}\"",
                     "max_backoff=1000"]
        self.vsctl(*args, "--", "set", "Open_vSwitch", ".",
                   "manager_options=" + ",".join(f"@m{k}" for k in range(len(ips))))

    def join(self, controller_ip: str | Sequence[str], of_port: int, ovsdb_port: int, *,
             underlay_port: str = "eth0",
             vm_ports: Sequence[tuple[str, int, str, str]] = (),
             neighbours: Sequence[tuple[str, str]] = (), announce: bool = True,
             before_manager: Callable[[], None] | None = None) -> None:
        """Join the controller the way a real host does (see the module doc).

        ``neighbours``: (underlay IP, MAC) of the peers this host joins: static entries, so
        its first packets are not lost; ``announce``: a gratuitous ARP so that peers' OVS
        snoop its MAC (lab/README.md). Both only on the userspace datapath.
        """
        self.start_ovsdb()
        self.start_vswitchd()
        self.add_bridges(controller_ip, of_port, underlay_port, vm_ports)
        self.configure_underlay()
        if self.datapath_type == "netdev":
            for ip, mac in neighbours:
                self.set_neighbour(ip, mac)
            if announce:
                self.announce()
        if before_manager is not None:
            before_manager()
        # Joining the controller's OVSDB manager is the last step.
        self.set_manager(controller_ip, ovsdb_port)

    def tunnel_classify_flows(self) -> int:
        """br1's classify flows that send a tunnel port's packets on (the controller's, per tunnel)."""
        return self.ofctl("dump-flows", "br1", f"table={CLASSIFY}").count(f"goto_table:{TUNNEL_IN}")


# --------------------------------------------------------------------------
# a host of lab/netlab.py's Lab


@dataclass(eq=False, kw_only=True)
class Host(LabNode, OvsHost):
    """An emulated physical host: a namespace with its own OVS daemons."""

    KIND: ClassVar[str] = "host"
    LETTER: ClassVar[str] = "h"

    of_port: int
    ovsdb_port: int
    controller_ips: tuple[str, ...] = ()  # several controllers (lab/ha.py); empty: the lab's one
    # Who it says it is: its name and its own datapath ID, unless a test makes it claim another's
    # (an impostor: tests/e2e/test_trust.py).
    system_id: str | None = None
    datapath_id: str = ""

    def __post_init__(self) -> None:
        self.datapath_id = self.datapath_id or f"{self.lab._lab_num:08x}{self.index:08x}"

    @property
    def controllers(self) -> tuple[str, ...]:
        return self.controller_ips or (self.lab.controller_ip,)

    @property
    def underlay_net(self) -> ipaddress.IPv4Network:  # type: ignore[override]
        return self.lab.underlay_net

    @property
    def underlay_mtu(self) -> int:  # type: ignore[override]
        return self.lab.underlay_mtu

    def netns_cmd(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns]

    def exec(self, cmd: Sequence[str], check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check,
                   timeout=timeout, input=input)

    def port_stats(self, bridge: str = "br1") -> dict[str, dict[str, int]]:
        """Live OpenFlow port counters per port name (ovs-ofctl dump-ports).

        The OVSDB statistics column lags by up to 5 s, hence OpenFlow. Mind
        lab/README.md: userspace tunnel tx counters count packets twice, use rx.
        """
        protocol = "OpenFlow13" if bridge == "br1" else None
        text = self.ofctl("--names", "dump-ports", bridge, protocol=protocol)
        stats: dict[str, dict[str, int]] = {}
        cur: dict[str, int] | None = None
        for line in text.splitlines():
            m = re.match(r'\s*port\s+"?([^":]+?)"?:\s*(rx|tx)\s+(.*)', line)
            if m:
                cur = stats.setdefault(m.group(1).strip(), {})
                kind, rest = m.group(2), m.group(3)
            else:
                m2 = re.match(r"\s*(rx|tx)\s+(.*)", line)
                if not m2 or cur is None:
                    continue
                kind, rest = m2.group(1), m2.group(2)
            for key, val in re.findall(r"(\w+)=(\d+|\?)", rest):
                name = {"pkts": "packets"}.get(key, key)
                cur[f"{kind}_{name}"] = int(val) if val.isdigit() else -1
        return stats

    def tunnel_ports(self) -> dict[str, dict[str, Any]]:
        """Tunnel interfaces of this host: name -> {type, remote_ip, ofport, ...}."""
        rows = self.vsctl_json("--columns=name,type,options,ofport",
                               "list", "Interface")
        result = {}
        for r in rows:
            if r["type"] not in TUNNEL_TYPES:
                continue
            opts = _ovs_map(r["options"])
            result[r["name"]] = {
                "type": r["type"],
                "remote_ip": opts.get("remote_ip"),
                "local_ip": opts.get("local_ip"),
                "key": opts.get("key"),
                "ofport": _ovs_scalar(r["ofport"]),
                "options": opts,
            }
        return result


    def neighbours(self) -> dict[str, str]:
        """OVS tunnel neighbour cache of br-phy: underlay IP -> MAC."""
        out = self.appctl("tnl/neigh/show")
        result = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "br-phy" and "STALE" not in parts:
                result[parts[0]] = parts[1]
        return result



    def established_peers(self) -> set[str]:
        """'ip:port' of every established TCP peer of this host namespace."""
        out = self.exec(["ss", "-Htn", "state", "established"]).stdout
        return {line.split()[-1] for line in out.splitlines() if line.strip()}

    # TCP-level checks: OVSDB's is_connected columns are refreshed lazily
    # (measured: 2-5 s after the connection was up).
    def controller_connected(self) -> bool:
        peers = self.established_peers()
        return all(f"{ip}:{self.of_port}" in peers for ip in self.controllers)

    def manager_connected(self) -> bool:
        peers = self.established_peers()
        return all(f"{ip}:{self.ovsdb_port}" in peers for ip in self.controllers)

    def capture(self, iface: str = "eth0", direction: str | None = "in",
                bpf: str | None = None) -> Capture:
        """tcpdump inside the host namespace, e.g. the underlay NIC eth0.

        Count underlay frames with direction "in" (lab/README.md: tunnel tx counters
        lie). On eth0 the stop sentinel is sent from the root-namespace end of
        the underlay veth: it reaches only this host (br-phy floods it to its
        own kernel, which drops it), never the other hosts.
        """
        inject = (None, self.ul_veth, "02:ff:00:00:00:01") if iface == "eth0" else None
        return self.lab._new_capture(self.ns, iface, direction, bpf, inject)

    def vswitchd_log(self) -> str:
        p = Path(self.rundir) / "ovs-vswitchd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def diagnostics(self) -> str:
        """A state dump for test failure reports (never raises)."""
        parts = [f"=== host {self.name} ns={self.ns} ul={self.underlay_ip}"]
        probes: list[tuple[str, Callable[[], str]]] = [
            ("vsctl show", lambda: self.vsctl("show")),
            ("br1 flows", lambda: self.ofctl("dump-flows", "br1")),
            ("br1 groups", lambda: self.ofctl("dump-groups", "br1")),
            ("neigh", lambda: self.appctl("tnl/neigh/show")),
            ("routes", lambda: self.appctl("ovs/route/show")),
        ]
        for title, fn in probes:
            try:
                parts.append(f"--- {title}\n{fn()}")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                parts.append(f"--- {title}: failed: {exc}")
        return "\n".join(parts)
