"""An overlay without switches: a Core driven as the app drives it, against fake switches that apply
its operations by key and fake OVSDB servers that carry out its port changes.

FakeSwitch holds what a br1 would: flows by (table, priority, match), groups, meters; it applies
FlowMod/FlowDelete strictly by key, FlowPurge non-strictly, and dumps itself for a read-back.
FakeOvsdb is one host's OVSDB: its view (tunnel ports with ofports that are never reused, the VLANs
of its VM ports) and the ports the core asked for or removed. Overlay runs the core with eager off
and drains it in slices, as the app's pump does, sending each operation to its switch or OVSDB in
order; an operation for a switch or OVSDB that is not connected is dropped, as the shell drops it.

`Overlay.problems()` says where the switches and the core disagree (tests/unit/core/test_core_model.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from controller.core.changes import Learned
from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import (
    AddTunnelPorts,
    DeletePorts,
    FlowDelete,
    FlowMod,
    FlowPurge,
    GroupMod,
    MeterMod,
    Op,
    ReadSwitch,
    Wipe,
)
from controller.model.state import HostView, Tenant, TunnelPort
from controller.pipeline import tunnel_ports
from controller.pipeline.settings import Settings
from controller.southbound.encoder import wire_cookie
from tests.unit.world import arp_frame, installed_flows

PATCH = 1
FlowKey = tuple[int, int, f.Match]


def _covers(purge: f.Match, match: f.Match) -> bool:
    """Does a non-strict delete with match `purge` take a flow with `match` (every field of purge,
    masked where purge masks it, is in match with that value)?"""
    have = dict(match)
    for name, want in purge:
        if name not in have:
            return False
        value, mask = want if isinstance(want, tuple) else (want, None)
        got = have[name]
        got = got[0] if isinstance(got, tuple) else got
        if mask is None and got != value:
            return False
        if mask is not None and (int(got) & mask) != (int(value) & mask):  # type: ignore[arg-type]
            return False
    return True


@dataclass
class FakeSwitch:
    dpid: int
    connected: bool = False
    flows: dict[FlowKey, f.Flow] = field(default_factory=dict)
    groups: dict[int, f.GroupEntry] = field(default_factory=dict)
    meters: dict[int, f.Meter] = field(default_factory=dict)

    def apply(self, op: Op) -> None:
        if isinstance(op, FlowMod):
            if op.delete:
                self.flows.pop(op.flow.key, None)
            else:
                self.flows[op.flow.key] = op.flow
        elif isinstance(op, FlowDelete):
            self.flows.pop((op.table, op.priority, op.match), None)
        elif isinstance(op, FlowPurge):
            for key in [k for k in self.flows if k[0] == op.table and _covers(op.match, k[2])]:
                del self.flows[key]
        elif isinstance(op, GroupMod):
            if op.command == "delete":
                self.groups.pop(op.group.group_id, None)
            else:
                self.groups[op.group.group_id] = op.group
        elif isinstance(op, MeterMod):
            if op.command == "delete":
                self.meters.pop(op.meter.meter_id, None)
            else:
                self.meters[op.meter.meter_id] = op.meter
        elif isinstance(op, Wipe):
            self.flows.clear()
            self.groups.clear()
            self.meters.clear()
        else:
            raise TypeError(op)

    def dump(self) -> SwitchDump:
        return SwitchDump({k: wire_cookie(fl) for k, fl in self.flows.items()}, set(self.groups), set(self.meters))

    def ours(self) -> dict[FlowKey, int]:
        """Flows by key (their wire cookie) but the hold-downs, which the core does not track
        (they expire by themselves)."""
        return {k: wire_cookie(fl) for k, fl in self.flows.items() if f.cookie_kind(fl.cookie) != f.COOKIE_HOLDDOWN}

    def naming(self, ports: set[int]) -> list[str]:
        """Flows and groups that send out of one of these ports."""
        out = [f"flow {fl.key} -> {sorted(f.outputs(fl.actions) & ports)}" for fl in self.flows.values()
               if f.outputs(fl.actions) & ports]
        for g in self.groups.values():
            named = set().union(*(f.outputs(b.actions) for b in g.buckets)) & ports
            if named:
                out.append(f"group {g.group_id} -> {sorted(named)}")
        return out


@dataclass
class FakeOvsdb:
    """One host's OVSDB: what it shows the controller, and the ports asked for or removed."""

    view: HostView
    connected: bool = False
    next_ofport: int = 10  # never reused: a stale reference to a removed port stays visible

    def carry_out(self, op: AddTunnelPorts | DeletePorts) -> None:
        if isinstance(op, DeletePorts):
            gone = set(op.port_uuids)
            self.view = replace(self.view, tunnels=tuple(p for p in self.view.tunnels if p.port_uuid not in gone))
            return
        names = {p.name for p in self.view.tunnels}
        added = []
        for ip in op.remote_ips:
            name = tunnel_ports.port_name(op.kind, ip)
            if name not in names:
                names.add(name)
                added.append(TunnelPort(name, op.kind, ip, None, True, f"uuid-{self.view.system_id}-{name}-"
                                        f"{self.next_ofport}"))
                self.next_ofport += 1  # a port's uuid is new each time it is made
        self.view = replace(self.view, tunnels=self.view.tunnels + tuple(added))

    def ports_up(self) -> None:
        """vswitchd numbered the new ports."""
        tunnels = []
        for p in self.view.tunnels:
            if p.ofport is None:
                p = replace(p, ofport=self.next_ofport)
                self.next_ofport += 1
            tunnels.append(p)
        self.view = replace(self.view, tunnels=tuple(tunnels))

    def ofports(self, uuids: set[str]) -> set[int]:
        return {p.ofport for p in self.view.tunnels if p.port_uuid in uuids and p.ofport}


def host_view(i: int, member_vlans: frozenset[int] = frozenset()) -> HostView:
    return HostView(f"h{i}", f"10.99.0.{i}", datapath_id=i, bridge_uuid=f"br-uuid-{i}", patch_ofport=PATCH,
                    member_vlans=member_vlans)


class Overlay:
    """A core with fake switches and OVSDBs, driven as the app drives it."""

    def __init__(self, settings: Settings, tenants: list) -> None:
        self.settings = settings
        self.core = Core(settings, tenants, cookie_of=wire_cookie)
        self.core.eager = False  # as in the app: events mark, the pump drains in slices
        self.switches: dict[int, FakeSwitch] = {}
        self.ovsdbs: dict[str, FakeOvsdb] = {}
        self.reads: set[int] = set()  # read-backs asked for, not answered yet
        self.now = 1.0
        self.violations: list[str] = []  # ports removed while a flow or group still sent out of them
        self.sent: list[Op] = []  # every operation carried out, in order

    # ---- carrying out --------------------------------------------------------------------------

    def run(self, ops: list[Op]) -> None:
        """Carry out an event's operations, then drain the core as the pump does."""
        self._carry_out(ops)
        while self.core.pending():
            self._carry_out(self.core.drain(budget_s=0.0) if self.core.marks.dirty else self.core.drain())

    def _carry_out(self, ops: list[Op]) -> None:
        self.sent += ops
        for op in ops:
            if isinstance(op, AddTunnelPorts | DeletePorts):
                db = self.ovsdbs.get(op.system_id)
                if db is None or not db.connected:
                    continue
                if isinstance(op, DeletePorts):
                    sw = self.switches.get(db.view.datapath_id or 0)
                    named = sw.naming(db.ofports(set(op.port_uuids))) if sw is not None else []
                    if named:
                        self.violations.append(f"{op.system_id}: ports removed while named: {named[:3]}")
                db.carry_out(op)
            elif isinstance(op, ReadSwitch):
                self.reads.add(op.dpid)
            else:
                sw = self.switches.get(op.dpid)  # type: ignore[union-attr]
                if sw is not None and sw.connected:
                    sw.apply(op)

    # ---- events --------------------------------------------------------------------------------

    def join(self, i: int, member_vlans: frozenset[int] = frozenset()) -> None:
        """A host connects both channels (its switch is read back when the read is answered)."""
        sid = f"h{i}"
        db = self.ovsdbs.get(sid)
        if db is None:
            db = self.ovsdbs[sid] = FakeOvsdb(host_view(i, member_vlans))
        self.switches.setdefault(i, FakeSwitch(i))
        self.ovsdb_connect(sid)
        self.openflow_connect(i)

    def openflow_connect(self, dpid: int) -> None:
        self.switches[dpid].connected = True
        self.run(self.core.datapath_up(dpid))

    def openflow_disconnect(self, dpid: int) -> None:
        self.switches[dpid].connected = False
        self.reads.discard(dpid)
        self.run(self.core.datapath_down(dpid, self.now))

    def answer_read(self, dpid: int) -> None:
        self.reads.discard(dpid)
        self.run(self.core.switch_read(dpid, self.switches[dpid].dump(), self.now))

    def ovsdb_connect(self, sid: str) -> None:
        self.ovsdbs[sid].connected = True
        self.report(sid)

    def ovsdb_disconnect(self, sid: str) -> None:
        self.ovsdbs[sid].connected = False
        self.run(self.core.ovsdb_down(sid, self.now))

    def report(self, sid: str, ports_up: bool = False) -> None:
        """The host's OVSDB tells the controller its view (with the new ports numbered, if up)."""
        db = self.ovsdbs[sid]
        if ports_up:
            db.ports_up()
        if db.connected:
            self.run(self.core.host_view(db.view, self.now))

    def settle_ovsdb(self, rounds: int = 6) -> None:
        """Every connected OVSDB numbers its ports and reports, until nothing changes."""
        for _ in range(rounds):
            before = {sid: db.view for sid, db in self.ovsdbs.items()}
            for sid, db in sorted(self.ovsdbs.items()):
                if db.connected:
                    self.report(sid, ports_up=True)
            if before == {sid: db.view for sid, db in self.ovsdbs.items()}:
                return

    def restart(self, recovery_s: float) -> None:
        """The controller is killed and started again: a new core with the same tenants and settings,
        recovering (endpoints come back from their hosts' switches, read back); every host reconnects."""
        self.core = Core(self.core.settings, list(self.core.tenants.values()), cookie_of=wire_cookie)
        self.core.eager = False
        self.core.recovering, self.core.recover_until = True, self.now + recovery_s
        self.reads.clear()
        for sid, db in sorted(self.ovsdbs.items()):
            if db.connected:
                self.report(sid)
        for dpid, sw in sorted(self.switches.items()):
            if sw.connected:
                self.run(self.core.datapath_up(dpid))

    def tick(self, dt: float) -> None:
        self.now += dt
        self.run(self.core.tick(self.now))

    # ---- what should hold ----------------------------------------------------------------------

    def programmed(self) -> list[int]:
        """Switches the core programs now: connected, read back, their host known."""
        return sorted(dpid for dpid in self.core.installed if dpid in self.core.datapaths
                      and (h := self.core.host_of_dpid(dpid)) is not None and self.core.is_programmable(h))

    def fresh(self) -> Core:
        """A new core given the same state (tenants, hosts' views, endpoints with their IPs),
        its switches empty and connected, drained."""
        core = Core(self.core.settings, list(self.core.tenants.values()), cookie_of=wire_cookie)
        for host in sorted(self.core.hosts.values(), key=lambda h: h.id):
            core.host_view(host.view, self.now)
        for dpid in self.programmed():
            core.datapath_up(dpid)
            core.switch_read(dpid, SwitchDump(), self.now)
        core.learn([Learned(copy.deepcopy(ep)) for _, ep in sorted(self.core.endpoints.items())], self.now)
        return core

    def problems(self) -> list[str]:
        """Where a switch, the core's view of it and a fresh core's disagree (empty: none)."""
        out = list(self.violations)
        fresh = self.fresh()
        for dpid in self.programmed():
            sw, inst = self.switches[dpid], self.core.installed[dpid]
            owned = believed_cookies(self.core, dpid)
            believed = owned | inst.unclaimed()
            wanted = believed_cookies(fresh, dpid)
            held = sw.ours()
            for what, a, b in (("switch vs core", held, believed), ("core vs fresh core", owned, wanted)):
                if a != b:
                    only_a = sorted(set(a.items()) - set(b.items()), key=repr)[:4]
                    only_b = sorted(set(b.items()) - set(a.items()), key=repr)[:4]
                    out.append(f"dpid {dpid} {what}: {len(a)} vs {len(b)} flows; only first {only_a}; "
                               f"only second {only_b}")
            groups = {gid: g for gid, g in inst.groups.items()}
            if set(sw.groups) != set(groups) or any(g is not None and sw.groups[gid] != g for gid, g in groups.items()):
                out.append(f"dpid {dpid} groups: switch {sw.groups} vs core {groups}")
            if groups != fresh.installed[dpid].groups:
                out.append(f"dpid {dpid} groups: core {groups} vs fresh core {fresh.installed[dpid].groups}")
        return out


def believed_cookies(core: Core, dpid: int) -> dict:
    """The cookie of every flow the core believes the switch holds (the core keeps a digest per
    flow: the flow is made again from the state; one it no longer makes shows as stale)."""
    made = {fl.key: fl for fl in installed_flows(core, dpid)}
    return {key: wire_cookie(made[key]) if key in made else ("stale", digest)
            for key, digest in core.installed[dpid].digests.items()}


def vm_mac(tenant: int, host: int) -> str:
    return f"02:00:00:00:0{tenant}:0{host}"


def vm_ip(tenant: int, host: int) -> str:
    return f"10.{tenant}.0.{host}"


def three_hosts(settings: Settings, tenants: list[Tenant]) -> Overlay:
    """Three joined, read-back hosts with a VM of each tenant on each (VM n of host i: vm_mac(n, i),
    vm_ip(n, i)), each announced by a gratuitous ARP; nothing amiss."""
    ov = Overlay(settings, tenants)
    for i in (1, 2, 3):
        ov.join(i, frozenset(tn.vlan for tn in tenants))
    for dpid in sorted(ov.reads):
        ov.answer_read(dpid)
    ov.settle_ovsdb()
    for i in (1, 2, 3):
        for n, tn in enumerate(tenants):
            frame = arp_frame(vm_mac(n, i), vm_ip(n, i), vm_ip(n, i), tn.vlan)
            ov.run(ov.core.packet_in(i, frame, ov.now, t.SRC_BINDING))
    assert ov.problems() == []
    return ov
