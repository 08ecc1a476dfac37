"""Trace a packet through computed flows, without a switch (what ofproto/trace does on OVS).

Used by tests to check the pipeline's decisions; deliberately small: exact and masked
matches, the actions flows.py defines, and meters recorded rather than enforced.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from controller import flows as f

Packet = dict[str, object]


@dataclass
class Trace:
    outputs: list[tuple[int, Packet]] = field(default_factory=list)  # (port, packet as sent)
    punts: list[tuple[Packet, int | None]] = field(default_factory=list)  # (packet, meter)
    path: list[f.Flow] = field(default_factory=list)

    def ports(self) -> list[int]:
        return [p for p, _ in self.outputs]


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.count(":") == 5 and len(text) == 17:
        return int(text.replace(":", ""), 16)
    return int(ipaddress.ip_address(text))


def _matches(match: f.Match, pkt: Packet) -> bool:
    for name, want in match:
        if name not in pkt:
            return False
        if isinstance(want, tuple):
            value, mask = (_as_int(x) for x in want)
            if _as_int(pkt[name]) & mask != value & mask:
                return False
        elif _as_int(pkt[name]) != _as_int(want):
            return False
    return True


class Tracer:
    def __init__(self, flows: Iterable[f.Flow], groups: Iterable[f.GroupEntry] = ()) -> None:
        self.tables: dict[int, list[f.Flow]] = {}
        for fl in flows:
            self.tables.setdefault(fl.table, []).append(fl)
        for rows in self.tables.values():
            rows.sort(key=lambda x: -x.priority)
        self.groups = {g.group_id: g for g in groups}

    def trace(self, pkt: Packet, table: int = 0) -> Trace:
        result = Trace()
        self._table(dict(pkt), table, result, depth=0)
        return result

    def _table(self, pkt: Packet, table: int, out: Trace, depth: int) -> None:
        if depth > 32:
            raise RuntimeError("resubmit loop")
        flow = next((fl for fl in self.tables.get(table, []) if _matches(fl.match, pkt)), None)
        if flow is None:
            return  # table miss: drop
        out.path.append(flow)
        self._actions(pkt, flow.actions, out, depth, flow.meter)
        if flow.goto is not None:
            self._table(pkt, flow.goto, out, depth + 1)

    def _actions(self, pkt: Packet, actions: tuple, out: Trace, depth: int, meter: int | None) -> None:
        for a in actions:
            if isinstance(a, f.Output):
                if a.port == f.OFPP_CONTROLLER:
                    out.punts.append((dict(pkt), meter))
                else:
                    port = pkt["in_port"] if a.port == f.OFPP_IN_PORT else a.port
                    out.outputs.append((int(port), dict(pkt)))  # type: ignore[arg-type]
            elif isinstance(a, f.PushVlan):
                pkt["vlan_vid"] = f.OFPVID_PRESENT
            elif isinstance(a, f.PopVlan):
                pkt["vlan_vid"] = 0
            elif isinstance(a, f.SetField):
                pkt[a.field] = a.value
            elif isinstance(a, f.Move):
                pkt[a.dst] = pkt[a.src]
            elif isinstance(a, f.Group):
                for bucket in self.groups[a.group_id].buckets:
                    self._actions(dict(pkt), bucket.actions, out, depth, meter)
            elif isinstance(a, f.Resubmit):
                self._table(pkt, a.table, out, depth + 1)
            elif isinstance(a, f.Clone):
                self._actions(dict(pkt), a.actions, out, depth, meter)
            elif isinstance(a, f.Learn):
                pass  # the switch's own state: not modelled
            else:
                raise TypeError(a)
