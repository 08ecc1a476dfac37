"""What changed, as values: the events GET /v1/events streams (docs/reference/events.md).

The core makes the ones its state decides (a host joined, left or was refused; an endpoint
learned, moved, aged or forgotten; a tenant changed) and hands them out like its operations
(Core.take_events); the shell adds what only it sees (a revision a switch confirmed, a change of
leader, the counters) and fans them all out (controller/northbound/events.py). Each is a small
frozen value; `kind` is its name on the stream, `to_json()` its data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HostJoined(Event):
    """A host's OVSDB view arrived and it can join (first time, or back after leaving)."""

    kind: ClassVar[str] = "host_joined"
    host: str
    overlay_ip: str | None


@dataclass(frozen=True)
class HostLeft(Event):
    kind: ClassVar[str] = "host_left"
    host: str
    reason: str


@dataclass(frozen=True)
class HostRefused(Event):
    """A host that cannot join the overlay, and why (GET /v1/hosts says the same)."""

    kind: ClassVar[str] = "host_refused"
    host: str
    reason: str


@dataclass(frozen=True)
class EndpointLearned(Event):
    kind: ClassVar[str] = "endpoint_learned"
    tenant: str
    vni: int
    mac: str
    host: str


@dataclass(frozen=True)
class EndpointMoved(Event):
    kind: ClassVar[str] = "endpoint_moved"
    tenant: str
    vni: int
    mac: str
    host: str  # where it is now
    previous: str  # where it was


@dataclass(frozen=True)
class EndpointAged(Event):
    """Its source entry idled out on its host's switch: the MAC went silent."""

    kind: ClassVar[str] = "endpoint_aged"
    tenant: str
    vni: int
    mac: str
    host: str


@dataclass(frozen=True)
class EndpointForgotten(Event):
    """Gone otherwise: its host withdrawn after host_grace or forgotten, or a BGP route withdrawn."""

    kind: ClassVar[str] = "endpoint_forgotten"
    tenant: str
    vni: int
    mac: str
    host: str
    reason: str


@dataclass(frozen=True)
class TenantChanged(Event):
    kind: ClassVar[str] = "tenant_changed"
    tenant: str
    change: str  # created, changed or deleted
    revision: int  # the store's revision it came with


@dataclass(frozen=True)
class RevisionApplied(Event):
    """A switch's barrier reply confirmed the flows of this revision of the tenants (and of every
    one before it). A revision that changed nothing on a switch counts there at once, without
    an event: GET /v1/status says which revision each switch holds."""

    kind: ClassVar[str] = "revision_applied"
    host: str
    revision: int


@dataclass(frozen=True)
class LeaderChanged(Event):
    kind: ClassVar[str] = "leader_changed"
    leader: str | None  # the leader's instance name, when known
    generation: int
    role: str  # this instance's: leader or follower


@dataclass(frozen=True)
class CountersChanged(Event):
    """The event counters moved since the last one (at most one a second): those that did."""

    kind: ClassVar[str] = "counters"
    changed: dict[str, int]


@dataclass(frozen=True)
class Reset(Event):
    """The stream lost events for this client (it was too slow, or resumed from an ID the
    buffer no longer holds): read the state again, then follow on."""

    kind: ClassVar[str] = "reset"
    reason: str


KINDS = tuple(c.kind for c in (HostJoined, HostLeft, HostRefused, EndpointLearned, EndpointMoved, EndpointAged,
                               EndpointForgotten, TenantChanged, RevisionApplied, LeaderChanged, CountersChanged,
                               Reset))
