"""A VM of the lab (lab/netlab.py makes them): its own namespace with eth0, an access port on its
host's br0; what a test does from inside it (ping, ARP, captures)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.capture import Capture, _garp_frame, _send_frames
from lab.ovshost import Host
from lab.procs import run


@dataclass(eq=False)
class Vm:
    """A VM: its own namespace with eth0, access port on its host's br0."""

    lab: Any = field(repr=False)  # the Lab it belongs to (lab/netlab.py)
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

    def gratuitous_arp(self, ip: str) -> None:
        """What keepalived sends when it takes over a VIP: sender IP = target IP = ip, from our MAC.

        (`arping -U ip` alone is not this: it sends from the interface's primary address.)
        """
        _send_frames(self.ns, "eth0", [_garp_frame(self.mac, ip)])

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
