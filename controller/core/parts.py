"""The partitions of a switch's flows: what the core recomputes independently, and marks dirty.

    BASE         the fixed pipeline of a host
    TunnelPart   one tunnel port's classify flow (ports come and go on their own)
    a VNI (int)  one tenant: its flows and its flood group (the group's id is the VNI)
    EpKey        one learned endpoint, (VNI, MAC): its entries on that switch
    LEFTOVERS    after a full pass: what a read-back switch holds that nobody wants

EpKey is a named tuple and TunnelPart a str: as cheap to hash and compare as what they are, and
equal to a plain (VNI, MAC) tuple or port name.
A tenant's partition is its VNI itself (TenantPart), allocated nowhere: it is marked on every
membership change and is the key of the switch's groups.
"""

from __future__ import annotations

import enum
from typing import NamedTuple, NewType

TenantPart = NewType("TenantPart", int)  # a tenant's VNI


class Special(enum.Enum):
    BASE = "base"
    LEFTOVERS = "leftovers"


BASE = Special.BASE
LEFTOVERS = Special.LEFTOVERS


class EpKey(NamedTuple):
    """A learned endpoint: its tenant's VNI and its MAC (the index's key for it too)."""

    vni: int
    mac: str


class TunnelPart(str):
    """A tunnel port's classify flow, by the port's name (a str of its own type: no other part is)."""

    __slots__ = ()

    @property
    def port(self) -> str:
        return str(self)


Part = Special | TunnelPart | int | EpKey
