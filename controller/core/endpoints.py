"""The core's endpoint events: what was learned (from a packet-in, or imported over EVPN) applied
as typed changes (controller/core/changes.py), and an endpoint that went silent forgotten.

A part of Core (controller/core/core.py), kept here so that each file stays one concern, as
controller/core/trust.py and tenancy.py are: Core inherits these methods; they read and change its
state as its own methods do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from controller.core.changes import (
    Bound,
    Change,
    FloodMember,
    Forgotten,
    Learned,
    Moved,
    Noted,
    Seen,
    Unbound,
    VtepNamed,
)
from controller.core.index import Index
from controller.core.learning import Learner
from controller.core.marks import Marks
from controller.core.parts import EpKey
from controller.core.switch_state import Installed
from controller.core.tunnel_ops import TunnelBook
from controller.model import events as ev
from controller.model import tables as t
from controller.model.ops import FlowMod, Op
from controller.model.state import Endpoint, HostView
from controller.pipeline.desired import holddown_flow, source_key, source_of
from controller.pipeline.settings import Settings

OFPRR_IDLE_TIMEOUT = 0


class Endpoints:
    """Core's endpoint events. The state named below is Core's (set up in Core.__init__)."""

    settings: Settings
    ix: Index
    marks: Marks
    counters: Counter[str]
    events: list[ev.Event]
    learner: Learner
    installed: dict[int, Installed]
    tunnels: TunnelBook

    # Core's own, used here
    def _tunnel_ops(self, ops: list[Op]) -> list[Op]:
        raise NotImplementedError

    def _flush(self) -> list[Op]:
        raise NotImplementedError

    def packet_in(self, dpid: int, data: bytes, now: float, table: int | None = None) -> list[Op]:
        """Learn from a packet-in; a request the responders could not answer also holds its IP down."""
        seen = self.learner.parse(dpid, data)
        if seen is None:
            return []
        host, tenant, frame = seen
        ops = self.learn(self.learner.learn(host, tenant, frame, now), now)
        if frame.asks_for and self.settings.learning.responder_missed(table, frame) \
                and (tenant.vni, frame.asks_for) not in self.ix.bindings:
            self.counters["unknown_ip_holddowns"] += 1
            ops.append(FlowMod(dpid, holddown_flow(self.settings, tenant, host.id, frame.asks_for)))
        return ops

    def learn(self, changes: Iterable[Change], now: float) -> list[Op]:
        """Apply what was learned (controller/core/changes.py), in order, and return the operations.

        `changes` may be a generator that reads the state as it goes (controller/bgp/external.py):
        each change is applied before the next one is made.
        """
        ops: list[Op] = []
        for change in changes:
            count = getattr(change, "count", None)
            if count is not None:
                self.counters[count] += 1
            ops += self._apply(change, now)
        return ops + self._flush()

    def _apply(self, change: Change, now: float) -> list[Op]:
        if isinstance(change, Learned):
            self._learned(change.endpoint)
        elif isinstance(change, Moved):
            key = change.key
            was = self.ix.endpoints[key].host_id
            before = set(self.ix.members.get(key[0], ())) | {was}
            if change.host_id != was:
                self.events.append(ev.EndpointMoved(self._tenant_name(key.vni), key.vni, key.mac, change.host_id, was))
            self.marks.flips(self.ix.move_endpoint(key, change.host_id, change.vlan))
            self.marks.endpoint(key, before)
        elif isinstance(change, Bound):
            before = set(self.ix.members.get(change.key[0], ()))
            previous = self.ix.bind(change.key, change.ip)
            if previous is not None:
                self.marks.endpoint(previous, before)
            self.marks.endpoint(change.key, before)
        elif isinstance(change, Unbound):
            self.ix.unbind(change.key, change.ips)
            self.marks.endpoint(change.key, set())
        elif isinstance(change, Seen):
            self.ix.endpoints[change.key].last_seen = change.at
        elif isinstance(change, Forgotten):
            self._drop(change.key, "withdrawn by the peer that advertised it")
        elif isinstance(change, VtepNamed):
            return self._vtep(change, now)
        elif isinstance(change, FloodMember):
            self.marks.flips(self.ix.set_flood_member(change.vni, change.peer_id, change.member))
        elif not isinstance(change, Noted):
            raise TypeError(change)
        return []

    def _vtep(self, change: VtepNamed, now: float) -> list[Op]:
        """An external VTEP: a tunnel peer (never a host), with a port toward it on every host."""
        vtep = self.ix.put_vtep(HostView(system_id=change.vtep_id, overlay_ip=change.ip, external=change.peer))
        self.tunnels.forgotten_ips.discard(change.ip)
        self.counters["evpn_vteps"] += 1
        return self._tunnel_ops(self.tunnels.ops(self.settings, now, list(self.ix.hosts.values()), toward=[vtep]))

    def _tenant_name(self, vni: int) -> str:
        tn = self.ix.by_vni.get(vni)
        return tn.name if tn is not None else ""

    def _learned(self, ep: Endpoint) -> None:
        key = EpKey(ep.vni, ep.mac)
        self.events.append(ev.EndpointLearned(self._tenant_name(ep.vni), ep.vni, ep.mac, ep.host_id))
        ips = set(ep.ips)
        ep.ips = set()
        self.marks.flips(self.ix.add_endpoint(ep))
        for ip in sorted(ips):
            previous = self.ix.bind(key, ip)
            if previous is not None:
                self.marks.endpoint(previous, set())
        self.marks.endpoint(key, set())

    def _drop(self, key: EpKey, why: str | None = None) -> None:
        """Forget an endpoint everywhere; `why` for the event (None: it aged out)."""
        ep = self.ix.endpoints[key]
        name = self._tenant_name(key.vni)
        self.events.append(ev.EndpointAged(name, key.vni, key.mac, ep.host_id) if why is None
                           else ev.EndpointForgotten(name, key.vni, key.mac, ep.host_id, why))
        before = set(self.ix.members.get(key[0], ())) | {ep.host_id}
        self.marks.flips(self.ix.drop_endpoint(key))
        self.learner.forget(key)
        self.marks.endpoint(key, before)

    def flow_removed(self, dpid: int, table: int, reason: int, match: dict, now: float,
                     cookie: int | None = None) -> list[Op]:
        """A source entry idled out: the MAC went silent, so it is forgotten everywhere."""
        host = self.ix.host_of_dpid(dpid)
        if host is None or table != t.SRC_MAC or reason != OFPRR_IDLE_TIMEOUT:
            return []
        vid, mac = source_of(match)
        tenant = self.ix.tenant_on(host.id, (vid or 0) & 0x0FFF)  # type: ignore[operator]  # masked: TypeError,
        if tenant is None or not isinstance(mac, str):  # and the guard closes the switch's connection
            return []
        key = EpKey(tenant.vni, mac)
        ep = self.ix.endpoints.get(key)
        if ep is None or ep.host_id != host.id:
            return []
        inst = self.installed.get(dpid)
        if inst is not None:  # the switch has already removed it
            inst.forget(source_key(vid, mac))  # type: ignore[arg-type]
        self._drop(key)
        self.counters["endpoints_aged"] += 1
        return self._flush()
