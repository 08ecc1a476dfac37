"""What a packet-in teaches: a new endpoint, a move, an IP (re)binding — within bounds.

Parsing happens once here; `learn` returns the changes as typed values (controller/core/changes.py)
for Core.learn to apply: Learned (a MAC seen for the first time, with the IP it announced, if any),
Moved (a known MAC behind another host: a migrated VM's GARP), Bound (an IP announced by this MAC,
taking it from another, as a VIP does).
Claims stay within their rights: a binding is per tenant (an IP moves only to another MAC of the
same tenant, never across tenants), packet-ins count only from admitted hosts' switches (a host
not admitted is not in the index: `parse` finds no host), and where a br0 port has a rule
(controller/pipeline/port_security.py) a MAC may claim only the IPs it allows (else ignored,
counted as port_security_claims_ignored).
Bounds: at most `max_endpoints` per (host, tenant) (controller/core/flood_cap.py), so one VM
spraying random source MACs cannot make the whole overlay learn them; and a MAC flapping between
hosts (a loop, a cloned VM) is held where it is for a back-off that doubles with each flap instead
of moving on every frame.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from controller.core.changes import Bound, Change, Learned, Moved
from controller.core.flood_cap import LearningCap
from controller.core.index import Index
from controller.core.parts import EpKey
from controller.model import packets
from controller.model.state import Endpoint, Host, Tenant
from controller.pipeline.port_security import Guard
from controller.pipeline.settings import Settings

LOG = logging.getLogger(__name__)
FLAP_WINDOW_S = 10.0  # moves closer together than this count as one flapping run
FLAP_MOVES = 3  # the move that starts damping: A -> B -> A -> B within the window
FLAP_HOLD_S = 2.0  # first hold; doubles per further flap, up to FLAP_HOLD_MAX_S
FLAP_HOLD_MAX_S = 120.0

@dataclass
class _Flap:
    last_move: float
    moves: int = 1
    hold_until: float = 0.0


class Learner:
    def __init__(self, settings: Settings, ix: Index, counters: Counter[str], cap: LearningCap,
                 guard: Callable[[Host, int], Guard | None] = lambda host, vlan: None) -> None:
        self.settings = settings
        self.ix = ix
        self.counters = counters
        self.cap = cap
        self.guard = guard  # port security of a VLAN on a host (controller/pipeline/port_security.py)
        self._flaps: dict[EpKey, _Flap] = {}

    def parse(self, dpid: int, data: bytes) -> tuple[Host, Tenant, packets.Frame] | None:
        self.counters["packet_in"] += 1
        frame = packets.parse(data)
        if frame is None:
            self.counters["packet_in_malformed"] += 1
            return None
        host = self.ix.host_of_dpid(dpid)
        if host is None or not self.settings.learning.learns_from_packet_ins:
            self.counters["packet_in_ignored"] += 1
            return None
        tenant = self.ix.tenant_on(host.id, frame.vlan)
        if tenant is None:
            self.counters["packet_in_unknown_vlan"] += 1
            return None
        return host, tenant, frame

    def learn(self, host: Host, tenant: Tenant, frame: packets.Frame, now: float) -> list[Change]:
        guard = self.guard(host, frame.vlan)
        if guard is not None and not guard.admits(frame.src, frame.ip):
            self.counters["port_security_claims_ignored"] += 1  # the switch drops these; a race got one here
            return []
        key = EpKey(tenant.vni, frame.src)
        ep = self.ix.endpoints.get(key)
        changes: list[Change] = []
        if ep is None:
            if self._over_cap(tenant, host.id, now):
                return []
            self.counters["endpoints_learned"] += 1
            new = Endpoint(tenant.vni, frame.src, host.id, frame.vlan, now)
            if frame.ip is not None:
                new.ips.add(frame.ip)
                self._count_rebind(tenant, frame.ip, frame.src)
            return [Learned(new)]
        if ep.host_id != host.id:
            if self._damped(key, now) or self._over_cap(tenant, host.id, now):
                return []
            LOG.info("MAC %s of %s moved %s -> %s", frame.src, tenant.name, ep.host_id, host.id)
            self.counters["mac_moves"] += 1
            changes.append(Moved(key, host.id, frame.vlan))
        ep.last_seen = now
        if frame.ip is not None and self.ix.bindings.get((tenant.vni, frame.ip)) != frame.src:
            self._count_rebind(tenant, frame.ip, frame.src)
            changes.append(Bound(key, frame.ip))
        return changes

    def _count_rebind(self, tenant: Tenant, ip: str, mac: str) -> None:
        previous = self.ix.bindings.get((tenant.vni, ip))
        self.counters["bindings_learned"] += 1
        if previous is not None and previous != mac:
            self.counters["ip_rebinds"] += 1
            LOG.info("IP %s of %s rebound %s -> %s", ip, tenant.name, previous, mac)

    def _over_cap(self, tenant: Tenant, host_id: str, now: float) -> bool:
        count = self.ix.ep_count.get((tenant.vni, host_id), 0)
        return not self.cap.admits(tenant, host_id, count, now, self.counters)

    def _damped(self, key: EpKey, now: float) -> bool:
        st = self._flaps.get(key)
        if st is not None and now < st.hold_until:
            self.counters["mac_flaps_damped"] += 1
            return True
        if st is None or now - st.last_move > FLAP_WINDOW_S:
            self._flaps[key] = _Flap(now)
            return False
        st.moves += 1
        st.last_move = now
        if st.moves >= FLAP_MOVES:
            hold = min(FLAP_HOLD_MAX_S, FLAP_HOLD_S * 2 ** (st.moves - FLAP_MOVES))
            st.hold_until = now + hold
            self.counters["mac_flaps"] += 1
            LOG.warning("MAC %s of VNI %d flaps between hosts (%d moves): held for %.0f s",
                        key[1], key[0], st.moves, hold)
        return False

    def forget(self, key: EpKey) -> None:
        self._flaps.pop(key, None)
