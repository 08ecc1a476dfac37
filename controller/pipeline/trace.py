"""Trace a packet through computed flows, without a switch (what ofproto/trace does on OVS).

Used by tests to check the pipeline's decisions and by the packet tracer (controller/northbound/pathtrace.py);
deliberately small: exact and masked matches, the actions flows.py defines, and meters recorded
rather than enforced. Every flow hit and every output is also kept in order as a Step, so a
trace reads like ofproto/trace's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

from controller.model import flows as f

Packet = dict[str, object]


@dataclass(frozen=True)
class Step:
    """One line of a trace: a flow hit, a table miss, an output, a punt or a group, at a nesting depth."""

    depth: int
    kind: str  # "flow" | "miss" | "output" | "controller" | "group"
    table: int | None = None
    flow: f.Flow | None = None
    port: int | None = None  # output: the port (OFPP_IN_PORT resolved)
    packet: Packet | None = None  # output, controller: the packet as it left
    meter: int | None = None  # controller: the meter the punt goes through
    group: int | None = None
    buckets: int = 0


@dataclass
class Trace:
    outputs: list[tuple[int, Packet]] = field(default_factory=list)  # (port, packet as sent)
    punts: list[tuple[Packet, int | None]] = field(default_factory=list)  # (packet, meter)
    path: list[f.Flow] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

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
        have = pkt[name]
        if isinstance(want, tuple):
            value, mask = (_as_int(x) for x in want)
            if _as_int(have) & mask != value & mask:
                return False
        elif have != want and (type(have) is type(want) or _as_int(have) != _as_int(want)):
            # Same type: the core writes MACs and IPs in one canonical form, so unequal is a miss
            # (cheap: a table holds one flow per endpoint); mixed forms are compared as numbers.
            return False
    return True


class Tracer:
    def __init__(self, flows: Iterable[f.Flow], groups: Iterable[f.GroupEntry] = ()) -> None:
        self.tables: dict[int, list[f.Flow]] = {}
        for fl in flows:
            self.tables.setdefault(fl.table, []).append(fl)
        self.sorted: set[int] = set()  # tables put in priority order: only those a trace visits
        self.groups = {g.group_id: g for g in groups}

    def _rows(self, table: int) -> list[f.Flow]:
        rows = self.tables.get(table, [])
        if table not in self.sorted:
            rows.sort(key=attrgetter("priority"), reverse=True)  # stable: ties keep their order
            self.sorted.add(table)
        return rows

    def trace(self, pkt: Packet, table: int = 0) -> Trace:
        result = Trace()
        self._table(dict(pkt), table, result, depth=0)
        return result

    def _table(self, pkt: Packet, table: int, out: Trace, depth: int) -> None:
        if depth > 32:
            raise RuntimeError("resubmit loop")
        flow = next((fl for fl in self._rows(table) if _matches(fl.match, pkt)), None)
        if flow is None:
            out.steps.append(Step(depth, "miss", table))
            return  # table miss: drop
        out.path.append(flow)
        out.steps.append(Step(depth, "flow", table, flow))
        self._actions(pkt, flow.actions, out, depth, flow.meter)
        if flow.goto is not None:
            self._table(pkt, flow.goto, out, depth)  # OVS shows goto_table at the same depth

    def _actions(self, pkt: Packet, actions: tuple, out: Trace, depth: int, meter: int | None) -> None:
        for a in actions:
            if isinstance(a, f.Output):
                if a.port == f.OFPP_CONTROLLER:
                    out.punts.append((dict(pkt), meter))
                    out.steps.append(Step(depth + 1, "controller", packet=dict(pkt), meter=meter))
                else:
                    port = int(pkt["in_port"] if a.port == f.OFPP_IN_PORT else a.port)  # type: ignore[call-overload]
                    out.outputs.append((port, dict(pkt)))
                    out.steps.append(Step(depth + 1, "output", port=port, packet=dict(pkt)))
            elif isinstance(a, f.PushVlan):
                pkt["vlan_vid"] = f.OFPVID_PRESENT
            elif isinstance(a, f.PopVlan):
                pkt["vlan_vid"] = 0
            elif isinstance(a, f.SetField):
                pkt[a.field] = a.value
            elif isinstance(a, f.Move):
                pkt[a.dst] = pkt[a.src]
            elif isinstance(a, f.Group):
                group = self.groups.get(a.group_id)
                buckets = group.buckets if group else ()
                out.steps.append(Step(depth + 1, "group", group=a.group_id, buckets=len(buckets)))
                for bucket in buckets:
                    self._actions(dict(pkt), bucket.actions, out, depth + 1, meter)
            elif isinstance(a, f.Resubmit):
                self._table(pkt, a.table, out, depth + 1)
            elif isinstance(a, f.Clone):
                self._actions(dict(pkt), a.actions, out, depth, meter)
            elif isinstance(a, f.Learn):
                pass  # the switch's own state: not modelled
            else:
                raise TypeError(a)


# ---- text, in ovs-ofctl's words ------------------------------------------------------------

HEX_FIELDS = frozenset({"vlan_vid", "tunnel_id", "eth_type", "nd_reserved"})  # as ovs-ofctl shows them


def _value_text(value: object, name: str = "") -> str:
    if isinstance(value, tuple):
        return "/".join(_value_text(v, name) for v in value)
    if isinstance(value, int) and name in HEX_FIELDS:
        return hex(value)
    return str(value)


def match_text(match: f.Match) -> str:
    return ",".join(f"{name}={_value_text(v, name)}" for name, v in match) or "(any)"


def _port_text(port: int) -> str:
    return {f.OFPP_CONTROLLER: "CONTROLLER", f.OFPP_IN_PORT: "IN_PORT"}.get(port, str(port))


def action_text(a: f.Action) -> str:
    if isinstance(a, f.Output):
        return f"output:{_port_text(a.port)}"
    if isinstance(a, f.PushVlan):
        return f"push_vlan:{a.ethertype:#x}"
    if isinstance(a, f.PopVlan):
        return "pop_vlan"
    if isinstance(a, f.SetField):
        return f"set_field:{_value_text(a.value, a.field)}->{a.field}"
    if isinstance(a, f.Move):
        return f"move:{a.src}[0..{a.n_bits - 1}]->{a.dst}[0..{a.n_bits - 1}]"
    if isinstance(a, f.Group):
        return f"group:{a.group_id}"
    if isinstance(a, f.Resubmit):
        return f"resubmit(,{a.table})"
    if isinstance(a, f.Clone):
        return f"clone({','.join(action_text(x) for x in a.actions)})"
    if isinstance(a, f.Learn):
        return f"learn(table={a.table},priority={a.priority},hard_timeout={a.hard_timeout},...)"
    raise TypeError(a)


def actions_text(flow: f.Flow) -> str:
    """The flow's instructions as ovs-ofctl prints them: meter, actions, goto_table."""
    parts = [f"meter:{flow.meter}"] if flow.meter is not None else []
    parts += [action_text(a) for a in flow.actions]
    if flow.goto is not None:
        parts.append(f"goto_table:{flow.goto}")
    return ",".join(parts) or "drop"
