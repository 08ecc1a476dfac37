"""Captures and raw frames of the lab: tcpdump with a stop sentinel, gratuitous ARPs, sending frames."""

from __future__ import annotations

import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from lab.procs import LabError, run, wait_for

# Local experimental ethertype (IEEE 802): frames of this type are never
# produced by the lab's traffic, so they can mark the end of a capture.
SENTINEL_ETHERTYPE = 0x88B5


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


def _send_frames(ns: str | list[str] | None, iface: str, frames: Sequence[bytes]) -> None:
    """Send raw frames out of ``iface`` of namespace ``ns`` (None: root; a list: the command
    prefix that enters the namespace, e.g. Mininet's mnexec)."""
    prefix = ns if isinstance(ns, list) else ["ip", "netns", "exec", ns] if ns else []
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
    counters of the interface they cross, see lab/README.md). Direction "in" (default) shows
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

