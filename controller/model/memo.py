"""Memos for values made of immutable objects the pipeline shares: by an object's identity, or by key.

The pipeline hands the same action tuple to every host an endpoint's or a tenant's entries go to
(its caches in controller/pipeline/desired.py); what is made of such a tuple (its hash for a
flow's digest, its bytes on the wire) is worth remembering per object, and hashing a tuple of
dataclasses by value costs about as much as making the thing again. The object is kept with its
value, so its id cannot be reused while remembered. Two generations: when the young one is full
it becomes the old one, and what is used again from the old one moves back (a cheap LRU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    def __init__(self, make: Callable[[K], V], size: int = 1 << 15) -> None:
        self.make = make
        self.size = size  # per generation
        self.young: dict[int, tuple[K, V]] = {}
        self.old: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        key = id(obj)
        hit = self.young.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        hit = self.old.get(key)
        if hit is None or hit[0] is not obj:
            hit = (obj, self.make(obj))
        if len(self.young) >= self.size:
            self.old, self.young = self.young, {}
        self.young[key] = hit
        return hit[1]

    def clear(self) -> None:
        self.young.clear()
        self.old.clear()


class Recent(Generic[K, V]):
    """The values of the keys used last, two generations of `size` as ByIdentity keeps them: at most
    2 x size kept, and a key used again within size others is kept (a dict cleared when full drops
    everything at once, also what the next moment needs)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[K, V] = {}
        self.old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self.young.get(key)
        if value is None:
            value = self.old.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self.young) >= self.size:
            self.old, self.young = self.young, {}
        self.young[key] = value

    def clear(self) -> None:
        self.young.clear()
        self.old.clear()
