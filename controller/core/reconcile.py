"""From a dirty partition to operations: what the host should hold there (controller/pipeline/),
against what its switch holds (controller/core/switch_state.py). Core.drain takes the dirty hosts
in turn; this is what it does for one of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.core.flood_cap import LearningCap
from controller.core.index import Index
from controller.core.marks import Dirty
from controller.core.parts import BASE, LEFTOVERS, Part, TunnelPart
from controller.core.switch_state import CookieOf, FlowKey, Installed
from controller.model import flows as f
from controller.model.ops import FlowDelete, FlowMod, GroupMod, MeterMod, Op
from controller.model.state import Host, PortRule
from controller.pipeline import port_security
from controller.pipeline.desired import (
    base_flows,
    endpoint_flows,
    flood_group,
    meters,
    tenant_flows,
    tenant_inputs,
    tunnel_classify,
)
from controller.pipeline.settings import Settings

LOG = logging.getLogger("controller.core.core")  # where the core logged it before


@dataclass
class Batch:
    """The operations of one drain, in the order a switch needs them: meters and groups before the
    flows that use them, adds before the deletes they replace, group deletes last."""

    first: list[Op] = field(default_factory=list)
    adds: list[Op] = field(default_factory=list)
    deletes: list[Op] = field(default_factory=list)
    last: list[Op] = field(default_factory=list)

    def ops(self, owned: Callable[[int, FlowKey], bool]) -> list[Op]:
        """The operations in order. A delete of a key that a partition owns by the end of the batch
        is not sent: one partition released the key and another (or the same, again) claimed it
        later in the batch, and the add, sent first, already replaced the flow. Partitions share
        keys: an old and a new VNI's entries that match only the VLAN, an IP's answer when it moves
        to another MAC; which of the two is recomputed first is a set's order."""
        deletes = [op for op in self.deletes if not owned(*_deleted_key(op))]
        return self.first + self.adds + deletes + self.last


def expand_full(s: Settings, ix: Index, inst: Installed, host: Host, placed: set[int], d: Dirty) -> list[Op]:
    """Everything a host should hold, and everything it holds: the meters now, the rest as parts."""
    d.full = False
    dpid = host.view.datapath_id
    ops: list[Op] = []
    want = {m.meter_id: m for m in meters(s)}
    for mid, m in want.items():
        if inst.meters.get(mid) != m:
            ops.append(MeterMod(dpid, m, "modify" if mid in inst.meters else "add"))  # type: ignore[arg-type]
    inst.meters = dict(want)
    parts: set[Part] = {BASE} | placed | set(inst.parts) | set(inst.groups)
    parts |= {TunnelPart(p.name) for p in host.view.tunnels}
    for vni in placed:
        parts |= ix.eps_by_vni.get(vni, set())
    d.parts |= parts
    if inst.read_back():
        d.parts.add(LEFTOVERS)
    return ops


def take(d: Dirty, n: int) -> list[Part]:
    """Up to n parts, LEFTOVERS only once everything else is done (without copying the set)."""
    batch: list[Part] = []
    leftovers = False
    while d.parts and len(batch) < n:
        part = d.parts.pop()
        if part is LEFTOVERS:
            leftovers = True
        else:
            batch.append(part)
    if leftovers:
        if batch or d.parts:
            d.parts.add(LEFTOVERS)
        else:
            batch.append(LEFTOVERS)
    return batch


Want = tuple[set[f.Flow] | None, f.GroupEntry | None, object]  # flows (None: as held), group, inputs


def desired(s: Settings, ix: Index, cap: LearningCap, host: Host, part: Part,
            placed_on: Callable[[Host], set[int]], rules: Mapping[str, PortRule] = {},  # noqa: B006
            inst: Installed | None = None) -> Want:
    """What the host should hold in one partition: its flows, (a tenant's) its flood group, and what
    the flows were computed from, where that says more cheaply that they are what the switch holds
    (given inst: then the flows are None). `rules`: the host's port rules (port security)."""
    if part is BASE:
        return base_flows(s, host), None, None
    if isinstance(part, TunnelPart):
        return tunnel_classify(host, part.port), None, None
    vni = part if isinstance(part, int) else part[0]  # type: ignore[index]
    tenant = ix.tenant_by_vni(vni)
    if tenant is None or vni not in placed_on(host):
        return set(), None, None
    if not isinstance(part, int):  # an endpoint
        ep = ix.endpoints.get(part)  # type: ignore[arg-type]
        if ep is None:
            return set(), None, None
        return endpoint_flows(s, host, tenant, ep, ix.peers, capped=(vni, host.id) in cap.sources), None, None
    group = flood_group(s, host, tenant, ix.peers, ix.members.get(tenant.vni, set()))
    capped = (vni, host.id) in cap.narrowed
    guard = port_security.guard(rules, host.view, tenant.vlan_on(host.id)) if rules else None
    inputs = tenant_inputs(s, host, tenant, capped, guard)
    if inst is not None and inst.same_inputs(part, inputs):
        return None, group, inputs
    return tenant_flows(s, host, tenant, capped, guard), group, inputs


def diff(inst: Installed, dpid: int, part: Part, want: Want, canon: Callable[[f.Match], f.Match],
         out: Batch, cookie_of: CookieOf | None = None) -> None:
    """The operations that make the switch's partition what is wanted; inst follows them."""
    want_flows, want_group, inputs = want
    if want_flows is not None:
        send, gone = inst.put(part, want_flows, canon, inputs, cookie_of)
        out.adds += [FlowMod(dpid, fl) for fl in send]
        out.deletes += [FlowDelete(dpid, *key) for key in gone]
    if not isinstance(part, int):
        return
    have_group = inst.groups.get(part, Installed.ABSENT)
    if want_group is not None and want_group != have_group:
        out.first.append(GroupMod(dpid, want_group, "add" if have_group is Installed.ABSENT else "modify"))
        inst.groups[part] = want_group
    elif want_group is None and have_group is not Installed.ABSENT:
        out.last.append(GroupMod(dpid, f.GroupEntry(part), "delete"))
        del inst.groups[part]


def installed_flows(s: Settings, ix: Index, cap: LearningCap, host: Host, inst: Installed,
                    placed_on: Callable[[Host], set[int]], rules: Mapping[str, PortRule]) -> list[f.Flow]:
    """The flows the switch holds as the controller installed them, made again: each partition's
    wanted flows that the switch holds as they are (one changed since and not yet sent is left out)."""
    out = []
    for part in list(inst.parts):
        if part is LEFTOVERS:
            continue
        flows, _, _ = desired(s, ix, cap, host, part, placed_on, rules)
        out += [fl for fl in flows or () if inst.owner.get(fl.key) == part and inst.digests.get(fl.key) == fl.digest]
    return out


def naming(s: Settings, ix: Index, cap: LearningCap, host: Host, inst: Installed,
           placed_on: Callable[[Host], set[int]], rules: Mapping[str, PortRule], ports: set[int]) -> set[object]:
    """The partitions whose flows or groups on the switch send out of one of these ports. The core
    keeps a digest per flow, not the flow: each partition's flows are made again, and one the switch
    may hold otherwise than made now counts as naming them (it is about to be rewritten)."""
    out: set[object] = set()
    for part in list(inst.parts):
        if part is LEFTOVERS:
            continue
        flows, _, _ = desired(s, ix, cap, host, part, placed_on, rules)
        made = {fl.key: fl for fl in flows or ()}
        for key in inst.keys_of(part):
            fl = made.get(key)
            if fl is None or inst.digests.get(key) != fl.digest or f.outputs(fl.actions) & ports:
                out.add(part)
                break
    out |= {part for part, g in inst.groups.items()
            if g is not None and any(f.outputs(b.actions) & ports for b in g.buckets)}
    return out


def leftovers(inst: Installed, dpid: int, recovering: bool, keep_learned: bool) -> list[Op]:
    """Flows a read-back switch holds that nothing wants: ours go, strangers go with a word."""
    gone, strangers = inst.unwanted(recovering, keep_learned=keep_learned)
    if strangers:
        LOG.warning("switch %016x held %d flows not made by this controller: removed", dpid, strangers)
    return [FlowDelete(dpid, *key) for key in gone]


def _deleted_key(op: Op) -> tuple[int, FlowKey]:
    """(switch, flow key) of a delete: a FlowMod's flow's, or a FlowDelete's."""
    if isinstance(op, FlowMod):
        return op.dpid, op.flow.key
    return op.dpid, (op.table, op.priority, op.match)  # type: ignore[union-attr]
