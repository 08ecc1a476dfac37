"""A memo keyed by an object's identity, for values made of immutable objects the pipeline shares.

The pipeline hands the same action tuple to every host an endpoint's or a tenant's entries go to
(its caches in controller/pipeline/desired.py); what is made of such a tuple (its repr for the
cookie digest, its bytes on the wire) is worth remembering per object, and hashing a tuple of
dataclasses by value costs about as much as making the thing again. The object is kept with its
value, so its id cannot be reused while remembered; the memo forgets everything when full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    def __init__(self, make: Callable[[K], V], size: int = 1 << 14) -> None:
        self.make = make
        self.size = size
        self.seen: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        hit = self.seen.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self.make(obj)
        if len(self.seen) >= self.size:
            self.seen.clear()
        self.seen[id(obj)] = (obj, value)
        return value

    def clear(self) -> None:
        self.seen.clear()
