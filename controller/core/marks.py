"""What an event changed, marked per host as the partitions to recompute there (parts.py); the
drain (Core.drain, reconcile.py) takes them in turn. An observer (the EVPN speaker) may follow
every partition marked."""

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


class Marks:
    def __init__(self, ix: Index, floods_to_every_host: Callable[[], bool]) -> None:
        self.ix = ix
        self.floods_to_every_host = floods_to_every_host  # the learning mode's (a reload keeps it)
        self.dirty: dict[str, Dirty] = {}
        # Partitions marked since an observer last looked (controller/bgp/speaker.py); None: nobody looks.
        self.changed: set[Part] | None = None

    def parts(self, host_id: str, parts: Iterable[Part]) -> None:
        self.dirty.setdefault(host_id, Dirty()).parts.update(parts)
        if self.changed is not None:
            self.changed.update(parts)

    def tenant(self, vni: int) -> None:
        """A tenant was put or removed: an observer looks at its VNI (routes a BGP peer sent for it
        count only while it exists), even where no host has anything of it to recompute."""
        if self.changed is not None:
            self.changed.add(vni)

    def full(self, host_id: str) -> None:
        self.dirty.setdefault(host_id, Dirty()).full = True

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
