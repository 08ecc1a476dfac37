"""Processes, namespaces and run directories of the lab harness (lab/netlab.py, mininet_topos/).

Running a command, polling a condition, finding and stopping processes (by pid, pidfile or
network namespace), deleting namespaces, and the owner record of a run directory
(``state.json``: pid + start time) that tells a live run from one a killed process left behind.
Only stdlib: mininet_topos/ imports this under Debian's /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("lab.netlab")

# Namespace sysctls that keep unsolicited frames off lab wires: IPv6 (RS,
# MLD, DAD) and IGMP reports for 224.0.0.x (Linux reports 224.0.0.106 on every
# interface that comes up) would spoil frame counts.
QUIET_SYSCTLS = (
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
    "net.ipv4.igmp_link_local_mcast_reports=0",
)
RUN_ROOT = Path("/run/overlay-lab")  # lab/netlab.py's labs, one directory per prefix
# A run directory without state.json is this young at most while its owner writes it.
CLAIM_GRACE = 60

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

    A bind without SO_REUSEPORT: it fails where anything listens (os-ken's servers and eventlet
    set SO_REUSEPORT by default, so a plain second listener could share the port; the
    controller's own listeners do not, controller/shell/listeners.py).
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


def _link_in_ns(ns: str, name: str) -> bool:
    return subprocess.run(["ip", "-n", ns, "link", "show", name], capture_output=True).returncode == 0


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



def _pid_netns_inode(pid: int) -> int | None:
    """Inode of the network namespace of a process (None: it is gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


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


def daemon_pids(rundir: Path, names: Sequence[str] = ("ovs-vswitchd", "ovsdb-server")) -> list[int]:
    """Pids of the OVS daemons whose pidfiles are in rundir and that still run."""
    return [p for n in names if (p := _daemon_pid(Path(rundir), n))]


# --------------------------------------------------------------------------
# run directories: who owns one, which are stale


def write_state(rundir: Path, extra: dict[str, Any]) -> None:
    """Record this process as the owner of rundir (state.json, atomically for readers)."""
    state = {"pid": os.getpid(), "starttime": _proc_starttime(os.getpid()), **extra}
    tmp = rundir / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.rename(rundir / "state.json")


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


def is_stale(rundir: Path) -> bool:
    """True if rundir's owner is gone; a run dir still without state.json is just being claimed."""
    if _state_owner_alive(rundir):
        return False
    if not (rundir / "state.json").exists():
        with contextlib.suppress(OSError):
            return time.time() - rundir.stat().st_mtime >= CLAIM_GRACE
    return True


# --------------------------------------------------------------------------
# a Lab's objects by prefix (Lab.close() and cleanup_stale())


def _prefix_for(tag: str) -> str:
    """Short name prefix: 'ol' + tag if tag is tiny, else 'ol' + a hash of it.

    At most 6 characters, so '<prefix>u123' etc. stay within IFNAMSIZ (15).
    """
    if re.fullmatch(r"[a-z0-9]{1,4}", tag):
        return "ol" + tag
    return "ol" + hashlib.sha1(tag.encode()).hexdigest()[:4]


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
                pids += daemon_pids(hdir)
    _kill_and_wait(pids)
    _delete_namespaces(_lab_namespaces(prefix))
    for link in _lab_links(prefix):
        run(["ip", "link", "del", link], check=False)
    wait_for(lambda: not _lab_links(prefix), 10, 0.02,
             f"links of lab {prefix} did not vanish: {_lab_links(prefix)}")
    shutil.rmtree(rundir, ignore_errors=True)


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
        if not rundir.is_dir() or not is_stale(rundir):
            continue  # alive, or just claimed: its owner writes the state next
        _teardown_prefix(prefix)
        cleaned.append(prefix)
    return cleaned
