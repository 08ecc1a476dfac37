"""Ping matrix of Mininet VMs: same tenant must reach, other tenants must not."""

from __future__ import annotations

import re
import time
from typing import Any

Matrix = dict[str, dict[str, bool | None]]


def _ping_from(src: Any, dsts: list[Any]) -> dict[str, bool]:
    """One ping from src to each of dsts, all at once (a silent pair costs 1 s, not 3)."""
    if not dsts:
        return {}
    jobs = " ".join(f"(ping -n -c1 -W1 {d.IP()} >/dev/null 2>&1 && echo @{d.name} ok || echo @{d.name} no) &"
                    for d in dsts)
    out = src.cmd(jobs + " wait")
    return {m.group(1): m.group(2) == "ok" for m in re.finditer(r"^@(\S+) (ok|no)\s*$", out, re.M)}


def ping_matrix(vms: list[Any], deadline: float = 15.0) -> Matrix:
    """matrix[a][b]: a pinged b. Same-tenant pairs are retried until ``deadline`` (the controller
    learns as traffic starts); other pairs get one ping. None: b's IP is also a same-tenant IP of a
    (--same-ips), so a ping cannot tell."""
    matrix: Matrix = {a.name: {} for a in vms}
    for a in vms:
        own_ips = {b.IP() for b in vms if b is not a and b.tenant == a.tenant}
        for b in vms:
            if b is not a:
                matrix[a.name][b.name] = None if b.tenant != a.tenant and b.IP() in own_ips else False
    end = time.monotonic() + deadline
    first = True
    while True:
        for a in vms:
            todo = [b for b in vms if matrix[a.name].get(b.name) is False
                    and (first or b.tenant == a.tenant)]
            for name, ok in _ping_from(a, todo).items():
                matrix[a.name][name] = ok
        first = False
        pending = any(matrix[a.name][b.name] is False for a in vms for b in vms
                      if b is not a and b.tenant == a.tenant)
        if not pending or time.monotonic() >= end:
            return matrix


def verdict(vms: list[Any], matrix: Matrix) -> bool:
    tenant = {v.name: v.tenant for v in vms}
    return all(ok is None or ok == (tenant[a] == tenant[b]) for a, row in matrix.items() for b, ok in row.items())


def render_matrix(vms: list[Any], matrix: Matrix) -> str:
    """Rows ping columns: 'ok' reached, '.' not reached, '?' untestable (same IP); '!' marks a wrong result."""
    names = [v.name for v in vms]
    tenant = {v.name: v.tenant for v in vms}
    w = max(len(n) for n in names) + 1
    lines = [" " * w + "".join(f"{n:>{w}}" for n in names)]
    for a in names:
        cells = []
        for b in names:
            ok = matrix[a].get(b)
            cell = "-" if a == b else "?" if ok is None else "ok" if ok else "."
            if a != b and ok is not None and ok != (tenant[a] == tenant[b]):
                cell += "!"
            cells.append(f"{cell:>{w}}")
        lines.append(f"{a:<{w}}" + "".join(cells))
    good = verdict(vms, matrix)
    lines.append("same tenant reachable, other tenants not: " + ("YES" if good else "NO ('!' marks wrong pairs)"))
    return "\n".join(lines)
