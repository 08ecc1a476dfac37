"""The tenant service: the rules for tenants between the REST API (controller/northbound/rest.py) and the
core and store — validation, conflicts, JSON merge patch, entity tags and the write sequence.

It knows nothing of HTTP. A refused request raises a TenantError whose class says what went
wrong (Invalid, NotFound, Conflict, PreconditionFailed); rest.py turns that into a status code.
A refused request changes nothing. The patterns for names and host ids live here once; the
OpenAPI description (controller/northbound/openapi.py) takes its schemas from them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from controller.core.core import Core
from controller.ha.store import Behind, TenantStore
from controller.model.ops import Op
from controller.model.state import HOST_ID_RE, VLAN_MAX, VNI_MAX, Tenant, vlan_clash

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
HOST_RE = HOST_ID_RE  # OVSDB system-ids: the ones the OVSDB manager accepts (controller/model/state.py)
ETAG_LIST_RE = re.compile(r'\s*(W/)?"[^"]*"\s*(,\s*(W/)?"[^"]*"\s*)*')  # If-Match's list (RFC 9110)
FIELDS = ("name", "vni", "vlan", "hosts", "vlans")
MAX_ATTEMPTS = 30  # a write that lost its compare-and-swap this often in a row gives up with 409
# Between attempts a random pause, growing with the attempt and capped: writers racing on several
# instances spread out instead of colliding again in lockstep (under load, 10 immediate retries were
# seen to run out). time.sleep is green under osken-manager (hub.patch), so the loop keeps serving.
BACKOFF_STEP_S, BACKOFF_MAX_S = 0.003, 0.05
T = TypeVar("T")


class TenantError(Exception):
    """A refused tenant request; nothing changed. str() is the message for the operator."""


class Invalid(TenantError):
    """The request itself is wrong: a field, a body, an If-Match header."""


class NotFound(TenantError):
    """No tenant by that name."""


class Conflict(TenantError):
    """It clashes with existing state: the name, a VNI or a VLAN is taken."""


class PreconditionFailed(TenantError):
    """If-Match names a version of the tenant that is no longer current."""


# ---- validation (pure) -------------------------------------------------------------------

def _int_in(doc: dict, key: str, lo: int, hi: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise Invalid(f"'{key}' must be an integer from {lo} to {hi}")
    return value


def host_id(value: Any, what: str) -> str:
    """A host id (an OVSDB system-id) from a request; `what` names where it came from."""
    if not isinstance(value, str) or not HOST_RE.fullmatch(value):
        raise Invalid(f"{what} must be a host id: 1-255 printable characters, no '/'")
    return value


def tenant_from_json(doc: Any, name: str | None = None) -> Tenant:
    """A Tenant from a request body; `name` comes from the URL for PUT and PATCH."""
    if not isinstance(doc, dict):
        raise Invalid("body must be a JSON object")
    unknown = set(doc) - set(FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if name is not None and "name" in doc and doc["name"] != name:
        raise Invalid("'name' cannot be changed; create a new tenant instead")
    name = doc.get("name", name)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid("'name' must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric")
    vni = _int_in(doc, "vni", 1, VNI_MAX)
    vlan = _int_in(doc, "vlan", 1, VLAN_MAX)
    hosts = doc.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list):
            raise Invalid("'hosts' must be null (every host) or a list of host ids")
        hosts = frozenset(host_id(h, "each of 'hosts'") for h in hosts)
    vlans = doc.get("vlans", {})
    if not isinstance(vlans, dict):
        raise Invalid("'vlans' must be an object mapping host id to VLAN")
    for host, v in vlans.items():
        host_id(host, "each key of 'vlans'")
        _int_in({f"vlans.{host}": v}, f"vlans.{host}", 1, VLAN_MAX)
        if hosts is not None and host not in hosts:
            raise Invalid(f"'vlans' names host '{host}', which is not in 'hosts'")
    return Tenant(name, vni, vlan, hosts, tuple(sorted(vlans.items())))


def patch_from_json(patch: Any, name: str) -> dict:
    """A merge patch for tenant `name`, checked before it meets the current tenant."""
    if not isinstance(patch, dict):
        raise Invalid("body must be a JSON object")
    if "name" in patch and patch["name"] != name:  # also null: a merge patch would remove it
        raise Invalid("'name' cannot be changed; create a new tenant instead")
    return patch


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def check_conflicts(tenant: Tenant, others: list[Tenant]) -> None:
    for other in sorted(others, key=lambda x: x.name):
        if other.name == tenant.name:
            continue
        if other.vni == tenant.vni:
            raise Conflict(f"VNI {tenant.vni} is already used by tenant '{other.name}'")
        where = vlan_clash(tenant, other)
        if where is not None:
            place = "every host" if where == "*" else f"host '{where}'"
            raise Conflict(f"VLAN {tenant.vlan_on(where)} on {place} is already used by "
                           f"tenant '{other.name}'")


def etag(doc: dict) -> str:
    """A tenant's entity tag: a hash of its JSON, so any change to it changes the tag."""
    return '"' + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20] + '"'


def check_if_match(header: str | None, name: str, current: dict) -> None:
    """RFC 9110 If-Match with strong comparison: '*' or a list of quoted tags, one of them current."""
    if header is None or header.strip() == "*":
        return
    if not ETAG_LIST_RE.fullmatch(header):
        raise Invalid('If-Match must be * or a comma-separated list of quoted ETags, e.g. "1a2b"')
    tags = re.findall(r'(W/)?("[^"]*")', header)
    tag = etag(current)
    if not any(not weak and t == tag for weak, t in tags):
        raise PreconditionFailed(f"tenant '{name}' has changed since it was read: its ETag is {tag}, "
                                 f"If-Match gave {header.strip()}; GET it again and retry")


# ---- the service: runs on the app's event loop -------------------------------------------

class Backend(Protocol):
    core: Core
    store: TenantStore

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
    """Make the core's tenants equal to a full listing of the store. What went or changed is
    deleted first, so that no two tenants ever share a VNI or a VLAN in the core on the way.
    The operations go out once, at the end: apply() may yield to other requests, which must
    never see the listing half applied (a changed tenant deleted, not yet back: a 404), and a
    tenant deleted and put back in one step costs the switches only the net difference."""
    want = {t.name: t for t in listing}
    ops: list[Op] = []
    for name, tenant in sorted(b.core.tenants.items()):
        if want.get(name) != tenant:
            ops += b.core.delete_tenant(name)
    for name, tenant in sorted(want.items()):
        if b.core.tenants.get(name) != tenant:
            ops += b.core.put_tenant(tenant)
    b.apply(ops)


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
    """

    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def listing(self) -> list[dict]:
        return [t.to_json() for t in sorted(self.b.core.tenants.values(), key=lambda x: x.name)]

    def get(self, name: str) -> Tenant:
        tenant = self.b.core.tenants.get(name)
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
                apply_change(self.b, name, None)
        self._decided(attempt)

    def _decided(self, attempt: Callable[[], T]) -> T:
        """attempt(), decided again on the current state each time the store says it was behind."""
        for n in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except Behind as behind:
                if behind.listing is not None:
                    apply_listing(self.b, behind.listing)
            time.sleep(random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_STEP_S * (n + 1))))
        raise Conflict(f"the tenants changed under this request {MAX_ATTEMPTS} times in a row "
                       "(other writers); try again")

    def _write(self, tenant: Tenant, must_exist: bool) -> dict:
        core = self.b.core
        exists = tenant.name in core.tenants
        if must_exist and not exists:
            raise NotFound(f"no tenant named '{tenant.name}'")
        if not must_exist and exists:
            raise Conflict(f"tenant '{tenant.name}' already exists")
        check_conflicts(tenant, core.ix.clash_candidates(tenant))
        if core.tenants.get(tenant.name) != tenant:  # an unchanged PUT touches nothing
            if self.b.store.put_tenant(tenant):
                apply_change(self.b, tenant.name, tenant)
        return tenant.to_json()
