"""Multi-host Open vSwitch lab on one Linux machine (see lab/README.md).

Every emulated physical host is a network namespace running its own
ovsdb-server and ovs-vswitchd (userspace datapath: this machine has no OVS
kernel module). Hosts share an underlay (a Linux bridge in the root namespace)
and reach the controller under test through a management Linux bridge in the
root namespace that holds ``Lab.controller_ip``.

Only stdlib; everything is done with ip/ovs-vsctl/ovs-ofctl/ovs-appctl.
Every object the lab creates is named with a per-lab prefix and recorded under
``/run/overlay-lab/<prefix>/`` (written before anything is created), so that
``cleanup_stale()`` can remove what a killed run left behind and nothing else.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from controller import tunnels as kinds

log = logging.getLogger(__name__)

RUN_ROOT = Path("/run/overlay-lab")
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
VSCTL_TIMEOUT = 10
TUNNEL_TYPES = tuple(k.ovsdb_type for k in kinds.KINDS)
# Local experimental ethertype (IEEE 802): frames of this type are never
# produced by the lab's traffic, so they can mark the end of a capture.
SENTINEL_ETHERTYPE = 0x88B5
# Namespace sysctls that keep unsolicited frames off lab wires: IPv6 (RS,
# MLD, DAD) and IGMP reports for 224.0.0.x (Linux reports 224.0.0.106 on every
# interface that comes up) would spoil frame counts.
QUIET_SYSCTLS = (
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv4.igmp_link_local_mcast_reports=0",
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")

T = TypeVar("T")


class LabError(RuntimeError):
    """A lab command failed or the lab is in an unexpected state."""


# --------------------------------------------------------------------------
# small helpers


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell); raise LabError with its stderr on failure."""
    log.debug("run: %s", " ".join(cmd))
    try:
        cp = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            input=input,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    if check and cp.returncode != 0:
        raise LabError(
            f"command failed ({cp.returncode}): {' '.join(cmd)}\n"
            f"stdout: {cp.stdout.strip()}\nstderr: {cp.stderr.strip()}"
        )
    return cp


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises TimeoutError(message) when the deadline passes. Exceptions raised
    by the predicate propagate (a broken probe should not look like a slow one).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


def tcp_port_free(port: int, ip: str = "0.0.0.0") -> bool:
    """True if nobody listens on ip:port.

    os-ken binds with SO_REUSEPORT, so a leftover controller would silently
    share the port with a new one; a bind without SO_REUSEPORT detects it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def free_tcp_ports(count: int, ip: str = "0.0.0.0") -> list[int]:
    """Return ``count`` distinct TCP ports that are currently free on ip."""
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((ip, 0))
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def _root_sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/{path}", "w") as f:
        f.write(value)


def _pid_alive(pid: int) -> bool:
    """True if pid runs; a zombie counts as gone.

    Detached OVS daemons are reparented to whatever reaps orphans here, which
    may take a while to reap: kill(pid, 0) alone would still see them.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _proc_starttime(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22 (starttime); the command name (field 2) may contain spaces
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def _kill_and_wait(pids: Iterable[int], timeout: float = 5.0) -> None:
    """SIGTERM the given pids, SIGKILL whatever survives ``timeout``."""
    pids = [p for p in pids if _pid_alive(p)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: not any(_pid_alive(p) for p in pids), timeout, 0.02)
    except TimeoutError:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: not any(_pid_alive(p) for p in pids),
            timeout,
            0.02,
            f"processes {pids} survived SIGKILL",
        )


def _netns_inode(ns: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return None


def _pids_in_netns(inodes: set[int]) -> list[int]:
    """Pids whose network namespace is one of ``inodes``.

    A process left in a deleted namespace keeps it (and its veths) alive, so
    teardown must find them all, not only the daemons it knows by pidfile.
    """
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        if ino in inodes:
            found.append(int(entry))
    return found


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


def _prefix_for(tag: str) -> str:
    """Short name prefix: 'ol' + tag if tag is tiny, else 'ol' + a hash of it.

    At most 6 characters, so '<prefix>u123' etc. stay within IFNAMSIZ (15).
    """
    if re.fullmatch(r"[a-z0-9]{1,4}", tag):
        return "ol" + tag
    return "ol" + hashlib.sha1(tag.encode()).hexdigest()[:4]


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


def _sentinel_frame(dst_mac: str, token: str) -> bytes:
    dst = bytes.fromhex(dst_mac.replace(":", ""))
    src = bytes.fromhex("02ffffffffff")
    payload = f"overlay-lab-sentinel {token}".encode().ljust(46, b"\0")
    return dst + src + SENTINEL_ETHERTYPE.to_bytes(2, "big") + payload


def _garp_frame(mac: str, ip: str) -> bytes:
    """Gratuitous ARP request (sender IP == target IP), as Linux sends one."""
    m = bytes.fromhex(mac.replace(":", ""))
    a = socket.inet_aton(ip)
    arp = (
        b"\x00\x01\x08\x00\x06\x04\x00\x01"  # Ethernet/IPv4, request
        + m + a + b"\x00" * 6 + a
    )
    return b"\xff" * 6 + m + b"\x08\x06" + arp


# Runs inside a namespace (via `ip netns exec ... python -c`): sends raw frames.
_SEND_FRAMES = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
    "s.bind((sys.argv[1],0))\n"
    "for h in sys.argv[2:]: s.send(bytes.fromhex(h))\n"
)


def _send_frames(ns: str | None, iface: str, frames: Sequence[bytes]) -> None:
    """Send raw frames out of ``iface`` of namespace ``ns`` (None: root)."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    run(prefix + [sys.executable, "-c", _SEND_FRAMES, iface] + [f.hex() for f in frames])


# --------------------------------------------------------------------------
# capture


class Capture:
    """tcpdump on one interface of one namespace, text output into a file.

    ``start()`` returns only once tcpdump has opened the capture. With an
    ``inject`` point, ``stop()`` first sends a sentinel frame to the interface
    from its peer and waits until tcpdump has printed it, so a frame that
    arrived before stop() cannot be missed: that makes "no frame seen" a real
    proof. A tcpdump that died early raises instead of returning nothing.
    Sentinels are removed from the result (they do count in the kernel
    counters of the interface they cross, see README). Direction "in" (default) shows
    frames delivered to the interface only; None shows both; "out" gets no
    sentinel (it arrives inbound).
    """

    def __init__(
        self,
        ns: str,
        iface: str,
        *,
        direction: str | None = "in",
        bpf: str | None = None,
        inject: tuple[str | None, str, str] | None = None,
        workdir: Path | None = None,
        on_stop: Callable[[Capture], None] | None = None,
    ) -> None:
        self.ns = ns
        self.iface = iface
        self.direction = direction
        self.bpf = bpf
        # (namespace or None for root, interface, dst MAC) from which a
        # sentinel reaches iface; it arrives inbound, so not with -Q out
        self.inject = inject if direction in ("in", None) else None
        self._dir = Path(tempfile.mkdtemp(prefix="cap-", dir=workdir))
        self.path = self._dir / "frames.txt"
        self._err = self._dir / "tcpdump.err"
        self._proc: subprocess.Popen[bytes] | None = None
        self._on_stop = on_stop
        self.frames: list[str] = []

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 5.0) -> Capture:
        cmd = ["ip", "netns", "exec", self.ns, "tcpdump", "-i", self.iface,
               "-nn", "-e", "-l", "--immediate-mode"]
        if self.direction:
            cmd += ["-Q", self.direction]
        if self.bpf:
            expr = " ".join(shlex.split(self.bpf))
            if self.inject:  # the filter must not hide the sentinel
                expr = f"({expr}) or ether proto {SENTINEL_ETHERTYPE:#x}"
            cmd.append(expr)
        with open(self.path, "wb") as out, open(self._err, "wb") as err:
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        # tcpdump prints "listening on ..." once the socket is open
        wait_for(
            lambda: "listening on" in self._err.read_text() or self._died(),
            timeout,
            0.01,
            f"tcpdump on {self.ns}/{self.iface} did not start",
        )
        if self._died():
            raise LabError(f"tcpdump failed: {self._err.read_text()}")
        return self

    def _died(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None

    def lines(self) -> list[str]:
        """Frames printed so far, one string each (sentinels excluded).

        tcpdump continues a frame on indented lines (e.g. hex dumps of
        unknown protocols); those are folded into their frame's string.
        """
        if not self.path.exists():
            return self.frames
        frames: list[str] = []
        for ln in self.path.read_text().splitlines():
            if not ln.strip():
                continue
            if ln[0].isspace() and frames:
                frames[-1] += "\n" + ln
            else:
                frames.append(ln)
        marker = f"0x{SENTINEL_ETHERTYPE:04x}"
        return [f for f in frames if marker not in f.splitlines()[0].lower()]

    def stop(self, timeout: float = 5.0) -> list[str]:
        if self._proc is None:
            return self.frames
        died_early = ""
        try:
            if self._died():
                died_early = self._err.read_text()
            elif self.inject:
                token = secrets.token_hex(4)
                ns, iface, mac = self.inject
                _send_frames(ns, iface, [_sentinel_frame(mac, token)])
                wait_for(
                    lambda: f"0x{SENTINEL_ETHERTYPE:04x}" in
                    self.path.read_text().lower() or self._died(),
                    timeout,
                    0.01,
                    f"capture sentinel never reached {self.ns}/{self.iface}",
                )
                if self._died():
                    died_early = self._err.read_text()
        finally:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout)
            self.frames = self.lines()
            self._proc = None
            shutil.rmtree(self._dir, ignore_errors=True)
            if self._on_stop:
                self._on_stop(self)
        if died_early:
            raise LabError(f"capture on {self.ns}/{self.iface} died early: {died_early}")
        return self.frames

    def __enter__(self) -> Self:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# hosts and VMs


@dataclass(eq=False)
class Host:
    """An emulated physical host: a namespace with its own OVS daemons."""

    lab: Lab = field(repr=False)
    name: str
    index: int
    ns: str
    underlay_ip: str
    underlay_mac: str
    mgmt_ip: str
    rundir: str
    datapath_id: str
    of_port: int
    ovsdb_port: int
    ul_veth: str  # root-namespace end of the underlay veth
    mgmt_veth: str  # root-namespace end of the management veth
    vms: dict[str, Vm] = field(default_factory=dict, repr=False)
    alive: bool = True

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(OVS_RUNDIR=self.rundir, OVS_DBDIR=self.rundir,
                   OVS_LOGDIR=self.rundir)
        return env

    @property
    def db(self) -> str:
        return f"unix:{self.rundir}/db.sock"

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

    def exec(self, cmd: Sequence[str], check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check,
                   timeout=timeout, input=input)

    def port_stats(self, bridge: str = "br1") -> dict[str, dict[str, int]]:
        """Live OpenFlow port counters per port name (ovs-ofctl dump-ports).

        The OVSDB statistics column lags by up to 5 s, hence OpenFlow. Mind
        LAB.md: userspace tunnel tx counters count packets twice, use rx.
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

    def ofport(self, iface: str) -> int:
        value = self.vsctl("get", "Interface", iface, "ofport").strip()
        return int(value.strip("[]") or -1)

    def neighbours(self) -> dict[str, str]:
        """OVS tunnel neighbour cache of br-phy: underlay IP -> MAC."""
        out = self.appctl("tnl/neigh/show")
        result = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "br-phy" and "STALE" not in parts:
                result[parts[0]] = parts[1]
        return result

    def set_neighbour(self, ip: str, mac: str) -> None:
        self.appctl("tnl/neigh/set", "br-phy", ip, mac)

    def announce(self) -> None:
        """Send a gratuitous ARP for the underlay IP out of br-phy.

        Peers' ovs-vswitchd snoop gratuitous ARPs into their tunnel neighbour
        cache, but only while they have at least one tunnel port (see README).
        """
        _send_frames(self.ns, "br-phy",
                     [_garp_frame(self.underlay_mac, self.underlay_ip)])

    def established_peers(self) -> set[str]:
        """'ip:port' of every established TCP peer of this host namespace."""
        out = self.exec(["ss", "-Htn", "state", "established"]).stdout
        return {line.split()[-1] for line in out.splitlines() if line.strip()}

    # TCP-level checks: OVSDB's is_connected columns are refreshed lazily
    # (measured: 2-5 s after the connection was up).
    def controller_connected(self) -> bool:
        return f"{self.lab.controller_ip}:{self.of_port}" in self.established_peers()

    def manager_connected(self) -> bool:
        return f"{self.lab.controller_ip}:{self.ovsdb_port}" in self.established_peers()

    def capture(self, iface: str = "eth0", direction: str | None = "in",
                bpf: str | None = None) -> Capture:
        """tcpdump inside the host namespace, e.g. the underlay NIC eth0.

        Count underlay frames with direction "in" (LAB.md: tunnel tx counters
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


@dataclass(eq=False)
class Vm:
    """A VM: its own namespace with eth0, access port on its host's br0."""

    lab: Lab = field(repr=False)
    name: str
    ns: str
    host: Host
    ip: str
    cidr: str
    mac: str
    vlan: int
    port: str  # the access port name on br0 (host-namespace veth end)
    ipv6: str | None = None
    alive: bool = True

    def exec(self, cmd: Sequence[str], check: bool = True, timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check,
                   timeout=timeout, input=input)

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0,
             interval: float = 0.05) -> bool:
        """True only if all ``count`` echo replies came back."""
        cmd = ["ping", "-n", "-c", str(count), "-W", f"{timeout:g}"]
        if count > 1:
            cmd += ["-i", f"{interval:g}"]
        if ":" in ip:
            cmd.insert(1, "-6")
        cp = self.exec(cmd + [ip], check=False,
                       timeout=timeout * count + count * interval + 10)
        m = re.search(r"(\d+) received", cp.stdout)
        return bool(m) and int(m.group(1)) == count

    def arping(self, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        """True if ``count`` ARP replies came back within ``timeout`` seconds."""
        cp = self.exec(
            ["arping", "-i", "eth0", "-c", str(count), "-C", str(count),
             "-w", f"{timeout:g}", ip],
            check=False, timeout=timeout + 10,
        )
        m = re.search(r"(\d+) packets received", cp.stdout)
        return bool(m) and int(m.group(1)) >= count

    def capture(self, direction: str | None = "in",
                bpf: str | None = None) -> Capture:
        """tcpdump -i eth0 -nn -e in this VM; use as a context manager.

        ``with vm.capture() as cap: ...`` then ``cap.frames``; the stop waits
        for a sentinel frame sent from the host side, see Capture.
        """
        return self.lab._new_capture(
            self.ns, "eth0", direction, bpf, (self.host.ns, self.port, self.mac)
        )


# --------------------------------------------------------------------------
# the lab


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
        state = {
            "pid": os.getpid(),
            "starttime": _proc_starttime(os.getpid()),
            "tag": self.tag,
            "prefix": self.prefix,
            **extra,
        }
        tmp = self.rundir / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.rename(self.rundir / "state.json")  # atomic for readers

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

    def add_host(self, name: str, *, of_port: int, ovsdb_port: int,
                 announce: bool = True, preset_neighbours: bool = True) -> Host:
        """Build a host the way a real one joins (see lab/README.md).

        ``announce``/``preset_neighbours`` exist to show what happens without
        them (first packets lost); keep them on otherwise.
        """
        self._check()
        if not _NAME_RE.match(name) or name in self.hosts:
            raise LabError(f"bad or duplicate host name {name!r}")
        self._host_counter += 1
        i = self._host_counter
        if i > 250:
            raise LabError("too many hosts")
        p = self.prefix
        host = Host(
            lab=self,
            name=name,
            index=i,
            ns=self._ns_name("h", name),
            underlay_ip=str(self.underlay_net.network_address + i),
            underlay_mac=f"02:99:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
            mgmt_ip=str(self.mgmt_net.network_address + 1 + i),
            rundir=str(self.rundir / f"h{i}"),
            datapath_id=f"{self._lab_num:08x}{i:08x}",
            of_port=of_port,
            ovsdb_port=ovsdb_port,
            ul_veth=f"{p}u{i}",
            mgmt_veth=f"{p}m{i}",
        )
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
        run(["ip", "netns", "add", h.ns])
        run(["ip", "netns", "exec", h.ns, "sysctl", "-qw", *QUIET_SYSCTLS,
             "net.ipv4.conf.all.arp_ignore=1"])
        # veths are created with their inner end directly in the namespace
        mtu = str(self.underlay_mtu)
        mgmt_prefix = self.mgmt_net.prefixlen
        for root_end, inner, m in ((h.ul_veth, "eth0", mtu), (h.mgmt_veth, "mgmt0", "1500")):
            run(["ip", "link", "add", root_end, "mtu", m, "type", "veth",
                 "peer", "name", inner, "netns", h.ns, "mtu", m])
            _root_sysctl(f"net/ipv6/conf/{root_end}/disable_ipv6", "1")
        run(["ip", "link", "set", h.ul_veth, "master", self.underlay_bridge, "up"])
        run(["ip", "link", "set", h.mgmt_veth, "master", self.mgmt_bridge, "up"])
        run(["ip", "-n", h.ns, "-batch", "-"], input=(
            "link set lo up\n"
            "link set eth0 up\n"
            f"addr add {h.mgmt_ip}/{mgmt_prefix} dev mgmt0\n"
            "link set mgmt0 up\n"
        ))

        # own ovsdb-server + ovs-vswitchd, all state under h.rundir
        d = h.rundir
        run(["ovsdb-tool", "create", f"{d}/conf.db", str(OVS_SCHEMA)])
        run(["ip", "netns", "exec", h.ns, "ovsdb-server", f"{d}/conf.db",
             f"--remote=punix:{d}/db.sock",
             # without this remote, `set-manager` is stored but never dialled
             "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
             f"--pidfile={d}/ovsdb-server.pid", f"--log-file={d}/ovsdb-server.log",
             f"--unixctl={d}/ovsdb-server.ctl", "--detach", "--no-chdir"],
            env=h.env)
        h.vsctl("--no-wait", "init", "--", "set", "Open_vSwitch", ".",
                f"external_ids:system-id={h.name}",
                f"external_ids:overlay-ip={h.underlay_ip}",
                f"external_ids:hostname={h.name}")
        run(["ip", "netns", "exec", h.ns, "ovs-vswitchd", f"unix:{d}/db.sock",
             f"--pidfile={d}/ovs-vswitchd.pid", f"--log-file={d}/ovs-vswitchd.log",
             f"--unixctl={d}/ovs-vswitchd.ctl", "--detach", "--no-chdir"],
            env=h.env)

        # One transaction: underlay bridge, tunnel bridge with its controller
        # (set at creation: set-controller later would flush the app's flows),
        # VM bridge and the patch pair. No tunnel ports: the controller's job.
        h.vsctl(
            "--", "add-br", "br-phy",
            "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
            f"other_config:hwaddr={h.underlay_mac}",
            "--", "set", "Interface", "br-phy", f"mtu_request={self.underlay_mtu}",
            "--", "add-port", "br-phy", "eth0",
            "--", "add-br", "br1",
            "--", "set", "Bridge", "br1", "datapath_type=netdev", "fail_mode=secure",
            "protocols=OpenFlow13", "other_config:disable-in-band=true",
            f"other_config:datapath-id={h.datapath_id}",
            "--", "--id=@ctl", "create", "Controller",
            f"target=\"tcp:{self.controller_ip}:{h.of_port}\"", "max_backoff=1000",
            "--", "set", "Bridge", "br1", "controller=@ctl",
            "--", "add-br", "br0",
            "--", "set", "Bridge", "br0", "datapath_type=netdev",
            "fail_mode=standalone",
            "--", "add-port", "br1", "patch-int",
            "--", "set", "Interface", "patch-int", "type=patch",
            "options:peer=patch-tun", "ofport_request=1",
            "--", "add-port", "br0", "patch-tun",
            "--", "set", "Interface", "patch-tun", "type=patch",
            "options:peer=patch-int",
        )
        # ovs-vsctl exits 0 even if a bridge failed to come up: check ofports
        rows = h.vsctl_json("--columns=name,ofport,error", "list", "Interface")
        bad = [r for r in rows if _ovs_scalar(r["ofport"]) in (None, -1)
               or _ovs_scalar(r["error"])]
        if bad or len(rows) != 6:
            raise LabError(f"host {h.name}: interfaces not up: {rows}")
        if h.ofport("patch-int") != 1:
            raise LabError(f"host {h.name}: patch-int did not get ofport 1")

        run(["ip", "-n", h.ns, "-batch", "-"], input=(
            f"addr add {h.underlay_ip}/{self.underlay_net.prefixlen} dev br-phy\n"
            "link set br-phy up\n"
        ))
        # ovs-router learns the kernel route asynchronously; tunnels need it
        net = str(self.underlay_net)
        wait_for(lambda: any(net in ln and "br-phy" in ln
                             for ln in h.appctl("ovs/route/show").splitlines()),
                 5, 0.02, f"host {h.name}: ovs-router never learned {net}")

        # Underlay neighbours, from this host's side only: it knows the peers
        # it is joining (static entries, so its first packets are not lost)
        # and announces itself so that peers' OVS snoop its MAC (README).
        if preset_neighbours:
            for peer in self.hosts.values():
                if peer is not h and peer.alive:
                    h.set_neighbour(peer.underlay_ip, peer.underlay_mac)
        if announce:
            h.announce()

        # Joining the controller's OVSDB manager is the last step.
        h.vsctl(
            "--", "--id=@m", "create", "Manager",
            f"target=\"tcp:{self.controller_ip}:{h.ovsdb_port}\"",
            "max_backoff=1000",
            "--", "set", "Open_vSwitch", ".", "manager_options=@m",
        )

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
        pids = [pid for name in ("ovs-vswitchd", "ovsdb-server")
                if (pid := _daemon_pid(Path(h.rundir), name))]
        _kill_and_wait(pids)
        _delete_namespaces([h.ns])
        for link in (h.ul_veth, h.mgmt_veth):
            if _link_exists(link):
                run(["ip", "link", "del", link], check=False)
        # namespace deletion is asynchronous: names are free only once gone
        wait_for(lambda: not _link_exists(h.ul_veth) and not _link_exists(h.mgmt_veth),
                 10, 0.02, f"veths of host {h.name} did not vanish")
        shutil.rmtree(h.rundir, ignore_errors=True)
        if errors:
            raise LabError(f"host {h.name} teardown: {errors}")

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
        # leaves TCP checksums unfinished (LAB.md): compute them in the VM
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
        tunnel port when a peer joined missed its announcement (README).
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
                want = (ips - {h.underlay_ip}) if "flow" in remotes else remotes & ips
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


# --------------------------------------------------------------------------
# teardown by prefix (used by close() and cleanup_stale())


def _daemon_pid(rundir: Path, name: str) -> int | None:
    """Pid from an OVS pidfile, only if that pid still runs that daemon."""
    try:
        pid = int((rundir / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _proc_cmdline(pid)
    return pid if cmd and Path(cmd[0]).name == name else None


def _delete_namespaces(names: Sequence[str]) -> None:
    present = [n for n in names if _netns_inode(n) is not None]
    if not present:
        return
    inodes = {i for n in present if (i := _netns_inode(n)) is not None}
    # leftover processes would keep a deleted namespace (and its veths) alive
    _kill_and_wait(_pids_in_netns(inodes))
    for n in present:
        run(["ip", "netns", "del", n], check=False)


def _lab_namespaces(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix + "-"))
    except FileNotFoundError:
        return []


def _lab_links(prefix: str) -> list[str]:
    pat = re.compile(rf"^{re.escape(prefix)}(mg|ul|[mu]\d+)$")
    return sorted(n for n in os.listdir("/sys/class/net") if pat.match(n))


def _teardown_prefix(prefix: str) -> None:
    rundir = RUN_ROOT / prefix
    pids = []
    if rundir.is_dir():
        for hdir in rundir.iterdir():
            if hdir.is_dir():
                pids += [p for n in ("ovs-vswitchd", "ovsdb-server")
                         if (p := _daemon_pid(hdir, n))]
    _kill_and_wait(pids)
    _delete_namespaces(_lab_namespaces(prefix))
    for link in _lab_links(prefix):
        run(["ip", "link", "del", link], check=False)
    wait_for(lambda: not _lab_links(prefix), 10, 0.02,
             f"links of lab {prefix} did not vanish: {_lab_links(prefix)}")
    shutil.rmtree(rundir, ignore_errors=True)


def _state_owner_alive(rundir: Path) -> int | None:
    """Pid of the live process that owns a lab run dir, else None."""
    try:
        state = json.loads((rundir / "state.json").read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError):
        return None
    if _pid_alive(pid) and _proc_starttime(pid) == state.get("starttime"):
        return pid
    return None


def cleanup_stale(tag: str | None = None) -> list[str]:
    """Tear down labs whose owning process is gone; return their prefixes.

    Only objects recorded under /run/overlay-lab/<prefix>/ (daemon pidfiles)
    or named with such a prefix are touched; a prefix without a run dir is
    never guessed at.
    """
    if not RUN_ROOT.is_dir():
        return []
    prefixes = [_prefix_for(tag)] if tag is not None else sorted(
        d.name for d in RUN_ROOT.iterdir() if d.is_dir())
    cleaned = []
    for prefix in prefixes:
        rundir = RUN_ROOT / prefix
        if not rundir.is_dir() or _state_owner_alive(rundir):
            continue
        if not (rundir / "state.json").exists() and \
                time.time() - rundir.stat().st_mtime < 60:
            continue  # just claimed; its owner writes the state next
        _teardown_prefix(prefix)
        cleaned.append(prefix)
    return cleaned
