"""The rules for tenants, as pure functions: validation of a request's JSON, conflicts, JSON merge
patch, entity tags and If-Match. A refused request raises a TenantError whose class says what went
wrong (Invalid, NotFound, Conflict, PreconditionFailed); the REST API (controller/northbound/rest.py)
turns that into a status code. A tenant's fields are declared here once (controller/model/fields.py):
the checks below and the OpenAPI schemas (controller/northbound/openapi.py) both come from TENANT,
and the etcd store (controller/ha/etcd_store.py) reads stored tenants with the same rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from controller.model import fields
from controller.model.fields import Int, ListOf, MapOf, Nullable, Record, Text
from controller.model.state import HOST_ID_RE, VLAN_MAX, VNI_MAX, Tenant, vlan_clash

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
HOST_RE = HOST_ID_RE  # OVSDB system-ids: the ones the OVSDB manager accepts (controller/model/state.py)
ETAG_LIST_RE = re.compile(r'\s*(W/)?"[^"]*"\s*(,\s*(W/)?"[^"]*"\s*)*')  # If-Match's list (RFC 9110)

NAME = Text("a tenant name: 1-63 letters, digits, '.', '_' or '-', starting alphanumeric", NAME_RE)
HOST_ID = Text("a host id: 1-255 printable characters, no '/'", HOST_RE)
VLAN = Int(1, VLAN_MAX)
TENANT = Record({"name": NAME, "vni": Int(1, VNI_MAX), "vlan": VLAN, "hosts": Nullable(ListOf(HOST_ID)),
                 "vlans": MapOf(HOST_ID, VLAN)}, required=("name", "vni", "vlan"))  # POST's body
TENANT_REPLACE = TENANT.requiring("vni", "vlan")  # PUT's: the name is the URL's
TENANT_PATCH = TENANT.merge_patch()  # PATCH's (RFC 7386)
FIELDS = tuple(TENANT.fields)


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

def _fits(record_or_field: Record | fields.Field, value: Any, where: str = "") -> Any:
    try:
        if isinstance(record_or_field, Record):
            return record_or_field.check(value)
        return record_or_field.check(value, where)
    except fields.Invalid as e:
        raise Invalid(str(e)) from None


def host_id(value: Any, where: str) -> str:
    """A host id (an OVSDB system-id) from a request; `where` names where it came from."""
    return _fits(HOST_ID, value, where)


def tenant_from_json(doc: Any, name: str | None = None) -> Tenant:
    """A Tenant from a request body; `name` comes from the URL for PUT and PATCH."""
    if isinstance(doc, dict) and name is not None and doc.get("name", name) != name:
        raise Invalid("'name' cannot be changed; create a new tenant instead")
    doc = _fits(TENANT if name is None else TENANT_REPLACE, doc)
    name = _fits(NAME, doc.get("name", name), "name")  # PUT's and PATCH's from the URL
    hosts = doc.get("hosts")
    if hosts is not None:
        hosts = frozenset(hosts)
    vlans = doc.get("vlans", {})
    for host in vlans:  # the one rule the schema cannot say
        if hosts is not None and host not in hosts:
            raise Invalid(f"'vlans' names host '{host}', which is not in 'hosts'")
    return Tenant(name, doc["vni"], doc["vlan"], hosts, tuple(sorted(vlans.items())))


def patch_from_json(patch: Any, name: str) -> dict:
    """A merge patch for tenant `name`, checked before it meets the current tenant: every field it
    names must be a tenant's (also one set to null, which would otherwise remove nothing)."""
    if isinstance(patch, dict) and "name" in patch and patch["name"] != name:  # also null: it would remove it
        raise Invalid("'name' cannot be changed; create a new tenant instead")
    return _fits(TENANT_PATCH, patch)


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
