"""Ping matrix of Mininet VMs, decided by captures: same tenant must reach, other tenants must not.

Every VM captures what arrives on its interface while the others ping. A pair counts as reached
when b's capture holds a frame of a's MAC (and, in the same tenant, a's ping got its reply), so
"not reached" is a proof, not one lost ping, and the same-tenant frames seen by the very same
captures are the positive control. Addresses may overlap between tenants (--same-ips).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from lab.netlab import wait_for
from lab.overlay import Matrix, judge

BARRIER_SIZE = 1111  # payload of the echo that closes each capture: ICMP length 1119, seen nowhere else


def _ping_from(src: Any, dsts: list[Any]) -> dict[str, bool]:
    """One ping from src to each of dsts, all at once (a silent pair costs 1 s, not 3)."""
    if not dsts:
        return {}
    jobs = " ".join(f"(ping -n -c1 -W1 {d.IP()} >/dev/null 2>&1 && echo @{d.name} ok || echo @{d.name} no) &"
                    for d in dsts)
    out = src.cmd(jobs + " wait")
    return {m.group(1): m.group(2) == "ok" for m in re.finditer(r"^@(\S+) (ok|no)\s*$", out, re.M)}


class Captures:
    """tcpdump -Q in on every VM's interface, from start() until stop()."""

    def __init__(self, vms: list[Any]) -> None:
        self.vms = vms
        self.dir = Path(tempfile.mkdtemp(prefix="mn-captures-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> Captures:
        for v in self.vms:
            with open(self.dir / f"{v.name}.txt", "wb") as out, open(self.dir / f"{v.name}.err", "wb") as err:
                self.procs[v.name] = v.popen(["tcpdump", "-i", str(v.defaultIntf()), "-nn", "-e", "-l", "-Q", "in",
                                              "--immediate-mode"], stdout=out, stderr=err)
        wait_for(lambda: all("listening on" in (self.dir / f"{n}.err").read_text() or p.poll() is not None
                             for n, p in self.procs.items()), 10.0, 0.02, "tcpdump in every VM")
        dead = {n: (self.dir / f"{n}.err").read_text() for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"tcpdump failed: {dead}")
        return self

    def frames(self, vm: Any) -> list[str]:
        return (self.dir / f"{vm.name}.txt").read_text().splitlines()

    def close_with_barrier(self, vm: Any, peer: Any) -> None:
        """peer (same tenant) sends vm one last, recognisable echo; once vm's capture shows it,
        every frame that arrived before is in the capture too."""
        peer.cmd(f"ping -n -c1 -W1 -s {BARRIER_SIZE} {vm.IP()} >/dev/null 2>&1")
        wait_for(lambda: any(f"length {BARRIER_SIZE + 8}" in fr and peer.MAC() in fr for fr in self.frames(vm)),
                 5.0, 0.02, f"the closing echo {peer.name} -> {vm.name} captured")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def ping_matrix(vms: list[Any], deadline: float = 15.0) -> Matrix:
    """matrix[a][b]: a reached b. Every VM pings every other one (same-tenant pairs retried until
    ``deadline``: the controller learns as traffic starts) while every VM captures; see the module."""
    pinged: dict[str, dict[str, bool]] = {a.name: {b.name: False for b in vms if b is not a} for a in vms}
    caps = Captures(vms).start()
    try:
        end = time.monotonic() + deadline
        first = True
        while True:
            for a in vms:
                todo = [b for b in vms if b is not a and not pinged[a.name][b.name] and (first or b.tenant == a.tenant)]
                pinged[a.name].update(_ping_from(a, todo))
            first = False
            pending = any(not pinged[a.name][b.name] for a in vms for b in vms if b is not a and b.tenant == a.tenant)
            if not pending or time.monotonic() >= end:
                break
        for b in vms:
            peer = next((a for a in vms if a is not b and a.tenant == b.tenant), None)
            if peer is not None:
                caps.close_with_barrier(b, peer)
    finally:
        caps.stop()
    try:
        frames = {v.name: caps.frames(v) for v in vms}
    finally:
        caps.remove()
    names = [v.name for v in vms]
    return judge(names, names, {v.name: v.tenant for v in vms}, {v.name: v.MAC() for v in vms},
                 {(a, b) for a, row in pinged.items() for b, ok in row.items() if ok}, frames)
