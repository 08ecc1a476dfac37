"""What the core is told it learned: typed values, applied by Core.learn (controller/core/core.py).

Packet-ins become changes in the learner (controller/core/learning.py), routes of BGP EVPN peers in
the translator (controller/bgp/external.py); the core applies both alike. `count` names the core
counter a change adds one to, when its source counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.core.parts import EpKey
from controller.model.state import Endpoint


@dataclass(frozen=True)
class Learned:
    """A MAC seen for the first time (with the IPs it announced)."""

    endpoint: Endpoint
    count: str | None = None


@dataclass(frozen=True)
class Moved:
    """A known MAC behind another host (a migrated VM's GARP, or a route from a peer)."""

    key: EpKey
    host_id: str
    vlan: int
    count: str | None = None


@dataclass(frozen=True)
class Bound:
    """An IP announced by this MAC (taking it from another, as a VIP does)."""

    key: EpKey
    ip: str


@dataclass(frozen=True)
class Unbound:
    """IPs the MAC no longer announces (a peer's route lost them)."""

    key: EpKey
    ips: frozenset[str]


@dataclass(frozen=True)
class Seen:
    """The endpoint is alive at this time."""

    key: EpKey
    at: float


@dataclass(frozen=True)
class Forgotten:
    """The endpoint is gone (its peer withdrew it)."""

    key: EpKey
    count: str | None = None


@dataclass(frozen=True)
class VtepNamed:
    """An external VTEP a peer named: a tunnel peer of every host from the first time on."""

    vtep_id: str  # its id among the peers (never a host's)
    ip: str
    peer: str  # the BGP peer that named it


@dataclass(frozen=True)
class FloodMember:
    """A peer in (or out of) a VNI's flood list, as a br0 port tags an OVS host."""

    vni: int
    peer_id: str
    member: bool


@dataclass(frozen=True)
class Noted:
    """Nothing changes; the counter records why."""

    count: str


Change = Learned | Moved | Bound | Unbound | Seen | Forgotten | VtepNamed | FloodMember | Noted
