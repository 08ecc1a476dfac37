"""The OpenAPI 3 description of the REST API, served at /v1/openapi.json.

tests/unit/northbound/test_rest_openapi.py keeps it true: every route in rest.ROUTES is here and nothing
else is, and a schemathesis fuzz drives the API from it. The schemas take their
patterns from the tenant rules (controller/model/tenant_rules.py), their limits from controller/model/state.py.
"""

from __future__ import annotations

from typing import Any

from controller.model import tenant_rules as rules
from controller.model.fields import Record
from controller.northbound.pathtrace import TRACE_REQUEST
from controller.northbound.web import SERVED
from controller.pipeline import tunnel_kinds as tunnels


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    400: "invalid request (malformed JSON, missing or out-of-range field); nothing changed",
    401: "missing or wrong bearer token; nothing changed",
    404: "no such tenant or host",
    409: "conflicts with another tenant (name, VNI or VLAN), or other controllers kept changing the "
         "tenants under this request (store = etcd); nothing changed",
    412: "If-Match does not name the tenant's current ETag (someone changed it since); nothing changed",
    413: "body larger than 64 KiB",
    415: "wrong Content-Type",
    503: "the database (SQLite, or etcd: no member answered) could not be written; nothing changed",
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


def _worded(record: Record, words: dict[str, dict], **more: Any) -> dict:
    """A record's schema (the declaration requests are checked with) with words added to its fields."""
    schema = record.schema()
    for key, extra in words.items():
        schema["properties"][key] = {**schema["properties"][key], **extra}
    return {**schema, **more}


VLAN = rules.VLAN.schema()
TENANT_WORDS = {
    "name": {"example": "blue"},
    "vni": {"example": 5001,
            "description": "the tenant's tunnel key on the wire (the VNI or GRE key of every tunnel kind)"},
    "vlan": {"example": 10, "description": "its br0 VLAN on every host, unless overridden in 'vlans'"},
    "hosts": {"description": "the hosts it exists on; null = every host"},
    "vlans": {"description": "per-host VLAN overrides: host id -> VLAN (hosts must be in 'hosts' if given)"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Tenant": _worded(rules.TENANT.requiring(*rules.FIELDS), TENANT_WORDS),
    "TenantCreate": _worded(rules.TENANT, TENANT_WORDS),
    "TenantReplace": _worded(rules.TENANT_REPLACE, TENANT_WORDS,
                             description="the whole tenant; 'name', if given, must be the one in the URL"),
    "TenantPatch": _worded(
        rules.TENANT_PATCH, TENANT_WORDS,
        description="JSON Merge Patch (RFC 7386): given fields replace, null removes ('hosts': null = "
                    "every host, 'vlans': {'h1': null} drops one override)"),
    "Endpoint": {
        "type": "object", "required": ["mac", "ips", "host", "port", "vlan", "last_seen", "idle_s"],
        "properties": {
            "mac": {"type": "string", "example": "02:00:00:00:01:01"},
            "ips": {"type": "array", "items": {"type": "string"}},
            "host": {"type": "string", "description": "the host it sits behind"},
            "port": {"type": "string", "nullable": True,
                     "description": "its br0 port, when the host records attached-mac on the interface"},
            "vlan": {**VLAN, "minimum": 0, "description": "its br0 VLAN on that host (0: behind an external VTEP)"},
            "last_seen": {"type": "number", "description": "Unix time of its last packet seen by the controller"},
            "idle_s": {"type": "number", "minimum": 0, "description": "seconds since last_seen"},
            "external": {"type": "object", "required": ["vtep", "peer"],
                         "description": "only for an endpoint a BGP EVPN peer advertised (docs/operator/evpn.md)",
                         "properties": {"vtep": {"type": "string", "description": "the VTEP's underlay IP"},
                                        "peer": {"type": "string", "description": "the BGP peer it came from"}}},
        },
    },
    "HostTenant": {
        "type": "object", "required": ["name", "vni", "vlan", "members", "endpoints", "learning_capped"],
        "properties": {"name": {"type": "string"}, "vni": {"type": "integer"}, "vlan": VLAN,
                       "members": {"type": "boolean",
                                   "description": "the host has endpoints of it or br0 ports in its VLAN: "
                                                  "it holds the tenant's flows"},
                       "endpoints": {"type": "integer", "minimum": 0,
                                     "description": "endpoints of the tenant learned behind this host"},
                       "learning_capped": {"type": "boolean",
                                           "description": "max_endpoints reached here: nothing more is learned"}},
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
        "type": "object",
        "required": ["id", "overlay_ip", "datapath_id", "connected", "tunnels", "tenants", "joined", "reason"],
        "properties": {
            "id": {"type": "string", "nullable": True,
                   "description": "its OVSDB system-id (null: it has none, see peer and reason)"},
            "peer": {"type": "string", "description": "only without a system-id: its OVSDB connection's address"},
            "joined": {"type": "boolean", "description": "false: it cannot join the overlay, see reason"},
            "reason": {"type": "string", "nullable": True, "description": "what keeps it from joining"},
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
        "properties": {"ready": {"type": "boolean"}, "reason": {"type": "string"}, "version": {"type": "string"},
                       "tenants": {"type": "integer"}, "hosts": {"type": "integer"},
                       "openflow_connections": {"type": "integer"}},
    },
    "Role": {
        "type": "object", "required": ["ha", "instance", "role", "leader", "generation", "switches"],
        "description": "this instance's part among several (issue 13): the leader is OpenFlow MASTER on every "
                       "switch and the only one that programs; the others are SLAVE",
        "properties": {
            "ha": {"type": "boolean", "description": "false: one instance alone ([overlay] store = sqlite)"},
            "instance": {"type": "string"},
            "role": {"type": "string", "enum": ["leader", "follower"]},
            "leader": {"type": "string", "nullable": True, "description": "the leader's instance name, when known"},
            "generation": {"type": "integer", "minimum": 0,
                           "description": "the newest leader generation ID seen (the election key's etcd revision)"},
            "leader_since": {"type": "number", "nullable": True,
                             "description": "when this instance last became leader"},
            "election": {"type": "object"},
            "switches": {"type": "object", "description": "datapath ID -> the role asked and the role accepted",
                         "additionalProperties": {"type": "object"}}}},
    "Counters": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                 "description": "the core's event counters by name (packet_in, flow_mods, arp_proxied, ...)"},
    "TraceRequest": _worded(TRACE_REQUEST, {
        "tenant": {"example": "blue"},
        "src": {"example": "02:00:00:00:01:01",
                "description": "the source VM: its MAC or one of its IPs (a learned endpoint)"},
        "dst": {"example": "02:00:00:00:01:02",
                "description": "a MAC (ff:ff:ff:ff:ff:ff: a broadcast) or an IP; with arp, the IPv4 asked for"},
        "arp": {"default": False, "description": "trace the broadcast ARP request for dst instead of a unicast frame"},
    }),
    "TraceStep": {
        "type": "object", "required": ["depth", "kind"],
        "description": "a flow hit (table, priority, match, actions), a table miss, an output (port, where "
                       "it leads, the packet as sent), a copy to the controller (meter) or a group",
        "properties": {"depth": {"type": "integer"},
                       "kind": {"type": "string", "enum": ["flow", "miss", "output", "controller", "group"]}},
    },
    "TraceHop": {
        "type": "object", "required": ["host", "from", "packet", "steps"],
        "properties": {"host": {"type": "string", "nullable": True}, "from": {"type": "object"},
                       "packet": {"type": "object"}, "steps": {"type": "array", "items": _ref("TraceStep")},
                       "note": {"type": "string"}},
    },
    "Trace": {
        "type": "object", "required": ["tenant", "src", "dst", "kind", "packet", "hops", "summary"],
        "properties": {
            "tenant": {"type": "object"}, "src": {"type": "object"},
            "dst": {"type": "object", "nullable": True, "description": "the destination endpoint, if learned"},
            "kind": {"type": "string", "enum": ["unicast", "broadcast", "arp"]},
            "packet": {"type": "object", "description": "the frame as br1 receives it from br0"},
            "hops": {"type": "array", "items": _ref("TraceHop"),
                     "description": "the source host, then each host a tunnel copy reaches"},
            "summary": {"type": "object", "required": ["tunnels", "delivered", "answered_in_switch",
                                                       "to_controller", "verdict"],
                        "properties": {"verdict": {"type": "string"}}},
        },
    },
}

SCHEMAS["Topology"] = {  # the web view's one read (controller/northbound/web.py)
    "type": "object", "required": ["tunnel_type", "hosts", "tunnels", "tenants"],
    "description": "what the web view draws, in one read",
    "properties": {
        "tunnel_type": {"type": "string"},
        "hosts": {"type": "array", "items": {
            "type": "object", "required": ["id", "overlay_ip", "datapath_id", "connected"],
            "properties": {k: v for k, v in SCHEMAS["Host"]["properties"].items()
                           if k not in ("tunnels", "tenants")}}},
        "tunnels": {"type": "array", "description": "one per ordered pair of hosts with overlay IPs",
                    "items": {"type": "object", "required": ["host", "peer", "port", "state"], "properties": {
                        "host": {"type": "string"}, "peer": {"type": "string"},
                        "port": {"type": "string", "nullable": True, "description": "the port on 'host'"},
                        "state": {"type": "string", "enum": ["created", "adopted", "missing"],
                                  "description": "made by the controller, made by hand, or none usable"}}}},
        "tenants": {"type": "array", "items": {
            "type": "object", "required": ["name", "vni", "hosts"], "properties": {
                "name": {"type": "string"}, "vni": {"type": "integer"},
                "hosts": {"type": "array", "items": {"type": "string"}, "nullable": True,
                          "description": "where it is placed; null = every host"},
            }}},
    },
}
SCHEMAS["Flood"] = {
    "type": "object", "required": ["name", "vni", "members", "flood"], "properties": {
        "name": {"type": "string"}, "vni": {"type": "integer"},
        "members": {"type": "array", "items": {"type": "string"}, "description": "hosts with endpoints of it"},
        "flood": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                  "description": "host it is placed on -> the peers its flood group there copies to"}},
}

TENANT_BODY = {"application/json": {"schema": _ref("TenantCreate")}}
REPLACE_BODY = {"application/json": {"schema": _ref("TenantReplace")}}
PATCH_BODY = {"application/merge-patch+json": {"schema": _ref("TenantPatch")},
              "application/json": {"schema": _ref("TenantPatch")}}
ETAG = {"ETag": {"description": "the tenant's entity tag, for If-Match", "schema": {"type": "string"}}}
TENANT_TAGGED = {**_json(_ref("Tenant"), "the tenant"), "headers": ETAG}
TENANT_CREATED = {**_json(_ref("Tenant"), "the tenant, created"), "headers": {
    **ETAG, "Location": {"description": "its URL", "schema": {"type": "string"}}}}

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
    "/": {"get": _op(
        "The web view: a live page of hosts, tunnels, tenants and counters (its data comes from this API)",
        "web_page", {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
        (), public=True)},
    "/ui/{asset}": {"get": _op(
        "The web view's script or style", "web_asset",
        {"200": {"description": "the file", "content": {"text/javascript": {"schema": {"type": "string"}},
                                                        "text/css": {"schema": {"type": "string"}}}}},
        (404,), public=True, params=("asset",))},
    "/v1/topology": {"get": _op(
        "Hosts with their channels, the tunnel of each ordered pair of hosts, where tenants are placed",
        "topology", {"200": _json(_ref("Topology"), "the topology")}, (401,))},
    "/v1/tenants/{name}/flood": {"get": _op(
        "The tenant's member hosts and flood set: where a broadcast from each host is copied, as programmed",
        "tenantFlood", {"200": _json(_ref("Flood"), "its flood set")}, (401, 404), params=("name",))},
    "/v1/tenants": {
        "get": _op("List tenants, by name", "listTenants",
                   {"200": _json({"type": "array", "items": _ref("Tenant")}, "tenants")}, (401,)),
        "post": _op("Create a tenant (stored before it is acknowledged)", "createTenant",
                    {"201": TENANT_CREATED}, (400, 401, 409, 413, 415, 503), body=TENANT_BODY),
    },
    "/v1/tenants/{name}": {
        "get": _op("Show a tenant (with its ETag)", "showTenant", {"200": TENANT_TAGGED}, (401, 404),
                   params=("name",)),
        "put": _op("Replace a tenant; a VNI or VLAN change re-programs every host", "replaceTenant",
                   {"200": TENANT_TAGGED}, (400, 401, 404, 409, 412, 413, 415, 503), body=REPLACE_BODY,
                   params=("name", "ifMatch")),
        "patch": _op("Change some fields of a tenant (JSON Merge Patch)", "updateTenant",
                     {"200": TENANT_TAGGED}, (400, 401, 404, 409, 412, 413, 415, 503), body=PATCH_BODY,
                     params=("name", "ifMatch")),
        "delete": _op("Delete a tenant", "deleteTenant", {"204": {"description": "deleted"}},
                      (400, 401, 404, 409, 412, 503), params=("name", "ifMatch")),
    },
    "/v1/tenants/{name}/endpoints": {"get": _op(
        "A tenant's learned endpoints, by MAC (?host=: only those behind that host)", "tenantEndpoints",
        {"200": _json({"type": "array", "items": _ref("Endpoint")}, "endpoints")}, (400, 401, 404),
        params=("name", "hostFilter"))},
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
    "/v1/role": {"get": _op(
        "This instance's role: leader or follower, the generation, and what each switch accepted", "role",
        {"200": _json(_ref("Role"), "the role")}, (401,))},
    "/v1/counters": {"get": _op(
        "The core's event counters", "counters", {"200": _json(_ref("Counters"), "counters")}, (401,))},
    "/v1/trace": {"post": _op(
        "Trace a frame from a VM through the overlay (like ovn-trace), from the controller's state; "
        "changes nothing", "trace", {"200": _json(_ref("Trace"), "the path, host by host")},
        (400, 401, 404, 413, 415), body={"application/json": {"schema": _ref("TraceRequest")}})},
}


def _head(get: dict) -> dict:
    """HEAD wherever GET works: the same statuses and headers, no body."""
    responses = {code: {"description": "as GET, without the body",
                        **({"headers": r["headers"]} if "headers" in r else {})}
                 for code, r in get["responses"].items()}
    return {**get, "summary": get["summary"] + " (headers only)", "operationId": get["operationId"] + "Head",
            "responses": responses}


for _item in PATHS.values():
    if "get" in _item:
        _item["head"] = _head(_item["get"])

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
            "ifMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                        "description": "only if the tenant's ETag is still this one (else 412); * = any"},
            "hostFilter": {"name": "host", "in": "query", "required": False, "schema": rules.HOST_ID.schema(),
                           "description": "only the endpoints behind this host"},
            "asset": {"name": "asset", "in": "path", "required": True,
                      "schema": {"type": "string", "enum": list(SERVED)}},
        },
        "responses": {f"E{c}": _json(_ref("Error"), text) for c, text in ERRORS.items()},
    },
}
