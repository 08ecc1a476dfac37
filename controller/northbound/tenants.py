"""The tenant service: the write sequence between the REST API (controller/northbound/rest.py), the
store and the core. The rules it decides with (validation, conflicts, merge patch, entity tags) are
controller/model/tenant_rules.py; it knows nothing of HTTP. A refused request changes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from controller.core import host_sync
from controller.core.core import Core
from controller.core.store import Behind, TenantStore
from controller.core.tenant_sync import apply_change, apply_listing
from controller.model import overlay_doc
from controller.model.ops import Op
from controller.model.state import Tenant
from controller.model.tenant_rules import (
    Conflict,
    NotFound,
    check_conflicts,
    check_if_match,
    merge_patch,
    tenant_from_json,
)

MAX_ATTEMPTS = 30  # a write that lost its compare-and-swap this often in a row gives up with 409
# Between attempts a random pause, growing with the attempt and capped: writers racing on several
# instances spread out instead of colliding again in lockstep (under load, 10 immediate retries were
# seen to run out). time.sleep is green under osken-manager (hub.patch), so the loop keeps serving.
BACKOFF_STEP_S, BACKOFF_MAX_S = 0.003, 0.05
T = TypeVar("T")


class Backend(Protocol):
    core: Core
    store: TenantStore

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB."""

    def now(self) -> float:
        """Wall-clock seconds."""


class Tenants:
    """Reads and writes of tenants. Call every method on the app's event loop: with SQLite a
    read-check-write then runs as one step, and no other write can come between (with etcd the
    request yields while etcd answers; the compare-and-swap below keeps it just as safe).

    The write sequence: the store first, then the core, then the core's operations are applied.
    When the store fails (StoreError) nothing was committed, and the core and the switches were
    not touched either; the error goes up to the caller (rest.py answers 503).

    A shared store (etcd) commits only if nothing changed since this instance's view; otherwise
    it raises Behind with the current listing: the core takes it and the request is decided
    again from the start (If-Match, conflicts, the merge patch), so no update is ever lost.

    Every write leaves the core at the store's revision that has it (`revision()`: what the API
    answers, and what GET /v1/status?revision= waits for); a write that changes nothing makes
    none.
    """

    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def revision(self) -> int:
        return self.b.core.read.revision

    def listing(self) -> list[dict]:
        return [t.to_json() for t in sorted(self.b.core.read.tenants.values(), key=lambda x: x.name)]

    def get(self, name: str) -> Tenant:
        tenant = self.b.core.read.tenants.get(name)
        if tenant is None:
            raise NotFound(f"no tenant named '{name}'")
        return tenant

    def create(self, tenant: Tenant) -> dict:
        return self._decided(lambda: self._write(tenant, must_exist=False))

    def replace(self, tenant: Tenant, if_match: str | None = None) -> dict:
        def attempt() -> dict:
            check_if_match(if_match, tenant.name, self.get(tenant.name).to_json())
            return self._write(tenant, must_exist=True)
        return self._decided(attempt)

    def update(self, name: str, patch: dict, if_match: str | None = None) -> dict:
        def attempt() -> dict:
            current = self.get(name).to_json()
            check_if_match(if_match, name, current)
            return self._write(tenant_from_json(merge_patch(current, patch), name=name), must_exist=True)
        return self._decided(attempt)

    def delete(self, name: str, if_match: str | None = None) -> None:
        def attempt() -> None:
            check_if_match(if_match, name, self.get(name).to_json())
            if self.b.store.delete_tenant(name):
                apply_change(self.b, name, None, self.b.store.revision)
        self._decided(attempt)

    def apply(self, desired: overlay_doc.Document, prune: bool, dry_run: bool) -> overlay_doc.Plan:
        """Make the tenants and host records the document's (overlay_doc.py, host_doc.py): every
        create, change and (prune) delete in one write of the store, one revision, all or nothing;
        then into the core at once. dry_run: only the plan."""
        def attempt() -> overlay_doc.Plan:
            current, policy = self.b.core.read.tenants, self.b.core.policy
            plan = overlay_doc.plan_document(current, policy.decisions, policy.rules, desired, prune)
            overlay_doc.check(current, plan)
            if not plan.changes or dry_run:
                return plan
            writes = plan.hosts.writes()
            tenants_new = self.b.store.apply(plan.puts(), plan.deletes(), writes if writes else None)
            # The host records first: what they mark is computed up to the revision before this one,
            # which change_tenants then makes the core's (marks.py).
            ops = host_sync.written_ops(self.b.core, writes, self.b.now())
            changes: dict[str, Tenant | None] = dict.fromkeys(plan.deletes()) if tenants_new else {}
            changes.update((tn.name, tn) for tn in plan.puts() if tenants_new)
            self.b.apply(ops + self.b.core.change_tenants(changes, self.b.store.revision))
            return plan
        return self._decided(attempt)

    def _decided(self, attempt: Callable[[], T]) -> T:
        """attempt(), decided again on the current state each time the store says it was behind."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except Behind as behind:
                if behind.listing is not None:
                    apply_listing(self.b, behind.listing, behind.revision)
            time.sleep(random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_STEP_S * (n + 1))))
        raise Conflict(f"the tenants changed under this request {MAX_ATTEMPTS} times in a row "
                       "(other writers); try again")

    def _write(self, tenant: Tenant, must_exist: bool) -> dict:
        r = self.b.core.read
        exists = tenant.name in r.tenants
        if must_exist and not exists:
            raise NotFound(f"no tenant named '{tenant.name}'")
        if not must_exist and exists:
            raise Conflict(f"tenant '{tenant.name}' already exists")
        check_conflicts(tenant, r.clash_candidates(tenant))
        if r.tenants.get(tenant.name) != tenant:  # an unchanged PUT touches nothing
            if self.b.store.put_tenant(tenant):
                apply_change(self.b, tenant.name, tenant, self.b.store.revision)
        return tenant.to_json()
