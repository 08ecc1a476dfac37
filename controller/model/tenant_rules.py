"""The rules for tenants, as pure functions: validation of a request's JSON, conflicts, JSON merge
patch, entity tags and If-Match. A refused request raises a TenantError whose class says what went
wrong (Invalid, NotFound, Conflict, PreconditionFailed); the REST API (controller/northbound/rest.py)
turns that into a status code. The patterns for names and host ids live here once; the OpenAPI
description (controller/northbound/openapi.py) takes its schemas from them, and the etcd store
(controller/ha/etcd_store.py) reads stored tenants with the same rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from controller.model.state import HOST_ID_RE, VLAN_MAX, VNI_MAX, Tenant, vlan_clash

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
HOST_RE = HOST_ID_RE  # OVSDB system-ids: the ones the OVSDB manager accepts (controller/model/state.py)
ETAG_LIST_RE = re.compile(r'\s*(W/)?"[^"]*"\s*(,\s*(W/)?"[^"]*"\s*)*')  # If-Match's list (RFC 9110)
FIELDS = ("name", "vni", "vlan", "hosts", "vlans")


class TenantError(Exception):
    """A refused tenant request; nothing changed. str() is the message for the operator; `path`
    names the field at fault when there is one (keys from the body's top, e.g. ("vlans", "h1"))."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path


class Invalid(TenantError):
    """The request itself is wrong: a field, a body, an If-Match header."""


class NotFound(TenantError):
    """No tenant by that name."""


class Conflict(TenantError):
    """It clashes with existing state: the name, a VNI or a VLAN is taken."""


class PreconditionFailed(TenantError):
    """If-Match names a version of the tenant that is no longer current."""


# ---- validation (pure) -------------------------------------------------------------------

def _int_in(doc: dict, key: str, lo: int, hi: int, path: tuple[str | int, ...] = ()) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise Invalid(f"'{key}' must be an integer from {lo} to {hi}", path or (key,))
    return value


def host_id(value: Any, what: str, path: tuple[str | int, ...] = ()) -> str:
    """A host id (an OVSDB system-id) from a request; `what` names where it came from."""
    if not isinstance(value, str) or not HOST_RE.fullmatch(value):
        raise Invalid(f"{what} must be a host id: 1-255 printable characters, no '/'", path)
    return value


def tenant_from_json(doc: Any, name: str | None = None) -> Tenant:
    """A Tenant from a request body; `name` comes from the URL for PUT and PATCH."""
    if not isinstance(doc, dict):
        raise Invalid("body must be a JSON object")
    unknown = set(doc) - set(FIELDS)
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", (min(unknown),))
    if name is not None and "name" in doc and doc["name"] != name:
        raise Invalid("'name' cannot be changed; create a new tenant instead", ("name",))
    name = doc.get("name", name)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid("'name' must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric", ("name",))
    vni = _int_in(doc, "vni", 1, VNI_MAX)
    vlan = _int_in(doc, "vlan", 1, VLAN_MAX)
    hosts = doc.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list):
            raise Invalid("'hosts' must be null (every host) or a list of host ids", ("hosts",))
        hosts = frozenset(host_id(h, "each of 'hosts'", ("hosts", i)) for i, h in enumerate(hosts))
    vlans = doc.get("vlans", {})
    if not isinstance(vlans, dict):
        raise Invalid("'vlans' must be an object mapping host id to VLAN", ("vlans",))
    for host, v in vlans.items():
        host_id(host, "each key of 'vlans'", ("vlans", host))
        _int_in({f"vlans.{host}": v}, f"vlans.{host}", 1, VLAN_MAX, ("vlans", host))
        if hosts is not None and host not in hosts:
            raise Invalid(f"'vlans' names host '{host}', which is not in 'hosts'", ("vlans", host))
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
