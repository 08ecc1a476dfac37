"""The OpenAPI 3 description of the REST API, served at /v1/openapi.json.

tests/unit/test_rest_openapi.py keeps it true: every route in rest.ROUTES is here and nothing
else is, and a schemathesis fuzz drives the API from it. The schemas mirror rest.py's checks.
"""

from __future__ import annotations

from typing import Any

from controller import tunnels
from controller.state import VLAN_MAX, VNI_MAX

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
HOST_PATTERN = r"^[^\x00-\x1f\x7f/]{1,255}$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    400: "invalid request (malformed JSON, missing or out-of-range field); nothing changed",
    401: "missing or wrong bearer token; nothing changed",
    404: "no such tenant or host",
    409: "conflicts with another tenant (name, VNI or VLAN); nothing changed",
    413: "body larger than 64 KiB",
    415: "wrong Content-Type",
    503: "the database could not be written; nothing changed",
}


def _errors(*codes: int) -> dict:
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}


def _op(summary: str, op_id: str, ok: dict, errors: tuple[int, ...], *, body: dict | None = None,
        public: bool = False, params: tuple[str, ...] = ()) -> dict:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": {**ok, **_errors(*errors)}}
    if params:
        op["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in params]
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if public:
        op["security"] = []
    return op


VLAN = {"type": "integer", "minimum": 1, "maximum": VLAN_MAX}
HOST_ID = {"type": "string", "pattern": HOST_PATTERN}
TENANT_PROPS = {
    "name": {"type": "string", "pattern": NAME_PATTERN, "example": "blue"},
    "vni": {"type": "integer", "minimum": 1, "maximum": VNI_MAX, "example": 5001,
            "description": "the tenant's tunnel key on the wire (the VNI or GRE key of every tunnel kind)"},
    "vlan": {**VLAN, "example": 10, "description": "its br0 VLAN on every host, unless overridden in 'vlans'"},
    "hosts": {"type": "array", "items": HOST_ID, "nullable": True,
              "description": "the hosts it exists on; null = every host"},
    "vlans": {"type": "object", "additionalProperties": VLAN,
              "description": "per-host VLAN overrides: host id -> VLAN (hosts must be in 'hosts' if given)"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Tenant": {"type": "object", "required": list(TENANT_PROPS), "additionalProperties": False,
               "properties": TENANT_PROPS},
    "TenantCreate": {"type": "object", "required": ["name", "vni", "vlan"], "additionalProperties": False,
                     "properties": TENANT_PROPS},
    "TenantReplace": {"type": "object", "required": ["vni", "vlan"], "additionalProperties": False,
                      "properties": TENANT_PROPS,
                      "description": "the whole tenant; 'name', if given, must be the one in the URL"},
    "TenantPatch": {
        "type": "object", "additionalProperties": False,
        "description": "JSON Merge Patch (RFC 7386): given fields replace, null removes ('hosts': null = "
                       "every host, 'vlans': {'h1': null} drops one override)",
        "properties": {
            "name": TENANT_PROPS["name"],
            "vni": TENANT_PROPS["vni"],
            "vlan": TENANT_PROPS["vlan"],
            "hosts": TENANT_PROPS["hosts"],
            "vlans": {"type": "object", "nullable": True,
                      "additionalProperties": {**VLAN, "nullable": True}},
        },
    },
    "Endpoint": {
        "type": "object", "required": ["mac", "ips", "host", "port", "vlan", "last_seen", "idle_s"],
        "properties": {
            "mac": {"type": "string", "example": "02:00:00:00:01:01"},
            "ips": {"type": "array", "items": {"type": "string"}},
            "host": {"type": "string", "description": "the host it sits behind"},
            "port": {"type": "string", "nullable": True,
                     "description": "its br0 port, when the host records attached-mac on the interface"},
            "vlan": {**VLAN, "description": "its br0 VLAN on that host"},
            "last_seen": {"type": "number", "description": "Unix time of its last packet seen by the controller"},
            "idle_s": {"type": "number", "minimum": 0, "description": "seconds since last_seen"},
        },
    },
    "HostTenant": {
        "type": "object", "required": ["name", "vni", "vlan", "members"],
        "properties": {"name": {"type": "string"}, "vni": {"type": "integer"}, "vlan": VLAN,
                       "members": {"type": "boolean", "description": "the host has endpoints of it"}},
    },
    "Tunnel": {
        "type": "object", "required": ["name", "type", "remote_ip", "ofport", "managed", "peer"],
        "properties": {
            "name": {"type": "string"}, "type": {"type": "string", "enum": list(tunnels.NAMES)},
            "remote_ip": {"type": "string"}, "ofport": {"type": "integer", "nullable": True},
            "managed": {"type": "boolean", "description": "created by the controller (else adopted)"},
            "peer": {"type": "string", "nullable": True, "description": "the host at remote_ip"},
        },
    },
    "Host": {
        "type": "object", "required": ["id", "overlay_ip", "datapath_id", "connected", "tunnels", "tenants"],
        "properties": {
            "id": {"type": "string", "description": "its OVSDB system-id"},
            "overlay_ip": {"type": "string", "nullable": True},
            "datapath_id": {"type": "string", "nullable": True, "description": "br1's, 16 hex digits"},
            "connected": {"type": "object", "required": ["ovsdb", "openflow"],
                          "properties": {"ovsdb": {"type": "boolean"}, "openflow": {"type": "boolean"}}},
            "tunnels": {"type": "array", "items": _ref("Tunnel")},
            "tenants": {"type": "array", "items": _ref("HostTenant")},
        },
    },
    "HostVlan": {
        "type": "object", "required": ["vlan", "tenant", "vni", "members"],
        "properties": {"vlan": VLAN, "tenant": {"type": "string"}, "vni": {"type": "integer"},
                       "members": {"type": "boolean"}},
    },
    "Health": {
        "type": "object", "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"},
                       "tenants": {"type": "integer"}, "hosts": {"type": "integer"},
                       "openflow_connections": {"type": "integer"}},
    },
    "Counters": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                 "description": "the core's event counters by name (packet_in, flow_mods, arp_proxied, ...)"},
}

TENANT_BODY = {"application/json": {"schema": _ref("TenantCreate")}}
REPLACE_BODY = {"application/json": {"schema": _ref("TenantReplace")}}
PATCH_BODY = {"application/merge-patch+json": {"schema": _ref("TenantPatch")},
              "application/json": {"schema": _ref("TenantPatch")}}
TENANT_OK = _json(_ref("Tenant"), "the tenant")

PATHS: dict[str, Any] = {
    "/v1/health": {"get": _op(
        "Is the controller ready (event loop answering, database readable)?", "health",
        {"200": _json(_ref("Health"), "ready"), "503": _json(_ref("Health"), "not ready")}, (), public=True)},
    "/v1/openapi.json": {"get": _op(
        "This description", "openapi", {"200": _json({"type": "object"}, "OpenAPI 3 document")}, (), public=True)},
    "/metrics": {"get": _op(
        "Prometheus metrics", "metrics",
        {"200": {"description": "exposition format",
                 "content": {"text/plain": {"schema": {"type": "string"}}}}}, (401,))},
    "/v1/tenants": {
        "get": _op("List tenants, by name", "listTenants",
                   {"200": _json({"type": "array", "items": _ref("Tenant")}, "tenants")}, (401,)),
        "post": _op("Create a tenant (stored before it is acknowledged)", "createTenant",
                    {"201": TENANT_OK}, (400, 401, 409, 413, 415, 503), body=TENANT_BODY),
    },
    "/v1/tenants/{name}": {
        "get": _op("Show a tenant", "showTenant", {"200": TENANT_OK}, (401, 404), params=("name",)),
        "put": _op("Replace a tenant; a VNI or VLAN change re-programs every host", "replaceTenant",
                   {"200": TENANT_OK}, (400, 401, 404, 409, 413, 415, 503), body=REPLACE_BODY, params=("name",)),
        "patch": _op("Change some fields of a tenant (JSON Merge Patch)", "updateTenant",
                     {"200": TENANT_OK}, (400, 401, 404, 409, 413, 415, 503), body=PATCH_BODY, params=("name",)),
        "delete": _op("Delete a tenant", "deleteTenant", {"204": {"description": "deleted"}},
                      (401, 404, 503), params=("name",)),
    },
    "/v1/tenants/{name}/endpoints": {"get": _op(
        "A tenant's learned endpoints, by MAC", "tenantEndpoints",
        {"200": _json({"type": "array", "items": _ref("Endpoint")}, "endpoints")}, (401, 404), params=("name",))},
    "/v1/hosts": {"get": _op(
        "List hosts, by id", "listHosts",
        {"200": _json({"type": "array", "items": _ref("Host")}, "hosts")}, (401,))},
    "/v1/hosts/{host}": {
        "get": _op("Show a host", "showHost", {"200": _json(_ref("Host"), "the host")}, (401, 404),
                   params=("host",)),
        "delete": _op("Forget a host: its endpoints, and the tunnels toward it on every other host",
                      "deleteHost", {"204": {"description": "forgotten"}}, (401, 404, 409), params=("host",)),
    },
    "/v1/hosts/{host}/vlans": {"get": _op(
        "The host's br0 VLAN -> tenant mapping, by VLAN", "hostVlans",
        {"200": _json({"type": "array", "items": _ref("HostVlan")}, "mapping")}, (401, 404), params=("host",))},
    "/v1/counters": {"get": _op(
        "The core's event counters", "counters", {"200": _json(_ref("Counters"), "counters")}, (401,))},
}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "sdn-overlay controller",
        "version": "1",
        "description": "Tenants (VNI + per-host VLAN), hosts, learned endpoints and counters of the "
                       "overlay controller. Bad input gets a 4xx with {\"error\": ...} and changes nothing.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "required when [overlay] api_token_file is set (GETs too unless api_read_open)"}},
        "parameters": {
            "name": {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                     "example": "blue"},
            "host": {"name": "host", "in": "path", "required": True, "schema": {"type": "string"},
                     "example": "host1"},
        },
        "responses": {f"E{c}": _json(_ref("Error"), text) for c, text in ERRORS.items()},
    },
}
