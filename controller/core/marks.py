"""What an event changed, marked per host as the partitions to recompute there (parts.py); the
drain (Core.drain, reconcile.py) takes them in turn. An observer (the EVPN speaker) may follow
every partition marked.

The marks also say which revision of the tenants (Core.revision, the store's) each switch's
flows were computed for: a host with nothing marked has every change handed out as operations,
up to the current revision; a marked one, up to the revision current when it was first marked,
until the drain has taken all of its marks. A host whose switch has not been programmed in full
since it was (re)read holds no known revision. The shell confirms the rest with barriers
(controller/southbound/revisions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controller.core.index import Flip, Index
from controller.core.parts import EpKey, Part


@dataclass
class Dirty:
    """A host's partitions to recompute, or all of them (full: its switch was (re)read)."""

    parts: set[Part] = field(default_factory=set)
    full: bool = False
    since: int = 0  # the revision of the tenants when the host was first marked: computed up to it


class Marks:
    def __init__(self, ix: Index, floods_to_every_host: Callable[[], bool],
                 revision: Callable[[], int] = lambda: 0) -> None:
        self.ix = ix
        self.floods_to_every_host = floods_to_every_host  # the learning mode's (a reload keeps it)
        self.revision = revision  # the core's current revision of the tenants
        self.dirty: dict[str, Dirty] = {}
        self.programmed: set[str] = set()  # hosts whose switch was programmed in full since (re)read
        # Partitions marked since an observer last looked (controller/bgp/speaker.py); None: nobody looks.
        self.changed: set[Part] | None = None

    def _entry(self, host_id: str) -> Dirty:
        d = self.dirty.get(host_id)
        if d is None:
            d = self.dirty[host_id] = Dirty(since=self.revision())
        return d

    def parts(self, host_id: str, parts: Iterable[Part]) -> None:
        self._entry(host_id).parts.update(parts)
        if self.changed is not None:
            self.changed.update(parts)

    def tenant(self, vni: int) -> None:
        """A tenant was put or removed: an observer looks at its VNI (routes a BGP peer sent for it
        count only while it exists), even where no host has anything of it to recompute."""
        if self.changed is not None:
            self.changed.add(vni)

    def full(self, host_id: str) -> None:
        """Everything, on a switch (re)read or re-tuned: it holds no known revision until done."""
        self._entry(host_id).full = True
        self.programmed.discard(host_id)

    def drained(self, host_id: str, programmed: bool) -> None:
        """The drain took the host's last mark: its operations are out (programmed), or it was
        left alone (not programmable, or this instance follows): then it holds no known revision."""
        del self.dirty[host_id]
        if programmed:
            self.programmed.add(host_id)
        else:
            self.programmed.discard(host_id)

    def forget(self, host_id: str) -> None:
        """The host left, or its switch did: nothing is known of what it holds."""
        self.dirty.pop(host_id, None)
        self.programmed.discard(host_id)

    def computed_for(self, host_id: str) -> int | None:
        """The revision of the tenants whose every change for this host's switch has been handed
        out as operations (None: it has not been programmed in full since it was read)."""
        if host_id not in self.programmed:
            return None
        d = self.dirty.get(host_id)
        return self.revision() if d is None else d.since

    def endpoint(self, key: EpKey, also: set[str]) -> None:
        """An endpoint's entries live on every member host of its tenant (and leave the others)."""
        for host_id in set(self.ix.members.get(key[0], ())) | also:
            self.parts(host_id, (key,))

    def flips(self, flips: list[Flip]) -> None:
        """A host joined or left a tenant: its copy of the tenant, and the others' flood buckets."""
        if self.floods_to_every_host():
            return  # placement and floods do not follow members
        for vni, host_id in flips:
            self.parts(host_id, {vni} | set(self.ix.eps_by_vni.get(vni, ())))
            for other in self.ix.members.get(vni, ()):
                if other != host_id:
                    self.parts(other, (vni,))
