"""What the core's tenants are kept in: the interface every store implements (SQLite,
controller/ha/store.py; etcd, controller/ha/etcd_store.py) and the errors a store raises. The tenant
service (controller/northbound/tenants.py) and the app use a store through this alone.

The store also keeps what the operator decided about hosts (controller/core/admission.py): each
admitted (True) or revoked (False) host, and the port-security rules of their br0 ports. These
are written as they come (the last write wins: an admission is idempotent) and, with etcd, every
instance applies them through its watch (controller/core/host_sync.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.model.host_doc import HostWrites
from controller.model.state import PortRule, Tenant

HostRecords = tuple[dict[str, bool], list[PortRule]]  # (host -> admitted or revoked, port rules)


class StoreError(Exception):
    """The database refused a write or read (disk full, read-only, corrupt, unreachable...)."""


class Behind(Exception):
    """A shared store refused a write because it changed since this instance last saw it;
    `listing` is all of it now, at `revision` (None: the instance has caught up meanwhile). Apply
    it, then decide the request again."""

    def __init__(self, listing: list[Tenant] | None, revision: int = 0) -> None:
        super().__init__("the store changed since this instance last read it")
        self.listing = listing
        self.revision = revision


class TooLarge(StoreError):
    """One write of more changes than the store takes in one transaction (etcd's --max-txn-ops)."""


class TenantStore(Protocol):
    # The store's revision of the tenants as this instance last wrote or saw them: every write
    # (one tenant, or a whole apply) makes one, higher than any before (SQLite: a counter kept
    # with the tenants; etcd: the revision of its transaction).
    revision: int

    def tenants(self) -> list[Tenant]:
        """Every tenant, by name: the state a controller starts from."""

    def put_tenant(self, t: Tenant) -> bool:
        """Create or replace; durable when it returns. True: the caller applies it to the core;
        False: it is there already (a shared store's watch was faster). StoreError: not written."""

    def delete_tenant(self, name: str) -> bool:
        """Durable when it returns; the result as put_tenant's. StoreError: nothing was written."""

    def apply(self, puts: list[Tenant], deletes: list[str], hosts: HostWrites | None = None) -> bool:
        """Deletes, then puts, and the host records' writes (an apply of the overlay document), in
        one transaction and one revision: all of them or none. The result as put_tenant's (for the
        tenants; the host records are applied alike either way); TooLarge: more than the store
        takes at once, nothing written."""

    def host_records(self) -> HostRecords:
        """The operator's decisions about hosts and their ports' rules: what a controller starts from."""

    def put_admission(self, host_id: str, admitted: bool) -> None:
        """Admit (True) or revoke (False) a host; durable when it returns. StoreError: not written."""

    def put_port_rule(self, rule: PortRule) -> None:
        """Create or replace a br0 port's rule; durable when it returns."""

    def delete_port_rule(self, host_id: str, port: str) -> None:
        """Durable when it returns (nothing to delete is not an error)."""

    def watch_hosts(self, backend: Any) -> None:
        """Apply other writers' host records to backend, until close(); returns at once if none can exist."""

    def ping(self) -> None:
        """Raise StoreError unless the store answers a read."""

    def watch(self, backend: Any) -> None:
        """Apply other writers' changes to backend, until close(); returns at once if none can exist."""

    def close(self) -> None: ...
