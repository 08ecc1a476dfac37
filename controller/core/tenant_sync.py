"""Committed tenant changes into the core and out to the switches: for a REST write on this
instance and for one that another instance made alike (the etcd store's watch)."""

from __future__ import annotations

from typing import Protocol

from controller.core.core import Core
from controller.model.ops import Op
from controller.model.state import Tenant


class Backend(Protocol):
    """What takes the core's operations to the switches (the app)."""

    core: Core

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB."""


def apply_change(b: Backend, name: str, tenant: Tenant | None) -> None:
    """A committed change (put, or delete when tenant is None) into the core and out to the
    switches: for a REST write on this instance and for one that another instance made alike."""
    if tenant is None:
        if name in b.core.tenants:
            b.apply(b.core.delete_tenant(name))
    elif b.core.tenants.get(name) != tenant:
        b.apply(b.core.put_tenant(tenant))


def apply_listing(b: Backend, listing: list[Tenant]) -> None:
    """Make the core's tenants equal to a full listing of the store (Core.replace_tenants: what
    went or changed is retired first, so no two tenants ever share a VNI or a VLAN on the way; a
    changed tenant keeps its endpoints). The operations go out once, at the end: apply() may
    yield to other requests, which must never see the listing half applied (a changed tenant
    retired, not yet back: a 404), and the switches get only the net difference."""
    b.apply(b.core.replace_tenants(listing))
