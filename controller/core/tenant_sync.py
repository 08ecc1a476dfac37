"""Committed tenant changes into the core and out to the switches: for a REST write on this
instance and for one that another instance made alike (the etcd store's watch). Each comes with
the store's revision it made: the core holds the tenants of that revision from then on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from controller.core.core import Core
from controller.model.ops import Op
from controller.model.state import Tenant


class Backend(Protocol):
    """What takes the core's operations to the switches (the app)."""

    core: Core

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB."""


def apply_change(b: Backend, name: str, tenant: Tenant | None, revision: int) -> None:
    """A committed change (put, or delete when tenant is None) into the core and out to the
    switches: for a REST write on this instance and for one that another instance made alike."""
    apply_changes(b, {name: tenant}, revision)


def apply_changes(b: Backend, changes: Mapping[str, Tenant | None], revision: int) -> None:
    """Committed changes of one revision (one write, or a whole apply), tenant name -> the tenant
    or None (deleted), into the core at once (Core.change_tenants: no two tenants share a VNI or a
    VLAN on the way, a changed tenant keeps its endpoints, the switches get the net difference).
    The revision is the core's before the operations go out: apply() may yield to other
    requests, which must never see the tenants of a revision under an older number, nor half of
    one applied."""
    b.apply(b.core.change_tenants(changes, revision))


def apply_listing(b: Backend, listing: list[Tenant], revision: int) -> None:
    """Make the core's tenants equal to a full listing of the store, at its revision."""
    changes: dict[str, Tenant | None] = dict.fromkeys(b.core.tenants)
    changes.update((t.name, t) for t in listing)
    apply_changes(b, changes, revision)
