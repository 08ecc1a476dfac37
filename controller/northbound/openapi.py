"""The OpenAPI 3 description of the REST API, served at /v1/openapi.json.

tests/unit/northbound/test_rest_openapi.py keeps it true: every route in rest.ROUTES is here and nothing
else is, and a schemathesis fuzz drives the API from it. The schemas take their
patterns from the tenant rules (controller/model/tenant_rules.py), their limits from controller/model/state.py.
"""

from __future__ import annotations

from typing import Any

from controller.model import events as ev
from controller.model import tenant_rules as rules
from controller.model.revisions import REVISION_HEADER
from controller.northbound import declare, events, live
from controller.northbound.openapi_schemas import SCHEMAS, ref
from controller.northbound.web import SERVED


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    400: "invalid request (malformed JSON, missing or out-of-range field); nothing changed",
    401: "missing or wrong bearer token; nothing changed",
    404: "no such tenant or host",
    409: "conflicts with another tenant (name, VNI or VLAN), or other controllers kept changing the "
         "tenants under this request (store = etcd); nothing changed",
    412: "If-Match does not name the tenant's current ETag (someone changed it since); nothing changed",
    413: "body larger than 64 KiB (a document for /v1/apply: 4 MiB), or more changes than one etcd "
         "transaction takes; nothing changed",
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


TENANT_BODY = {"application/json": {"schema": ref("TenantCreate")}}
REPLACE_BODY = {"application/json": {"schema": ref("TenantReplace")}}
PATCH_BODY = {"application/merge-patch+json": {"schema": ref("TenantPatch")},
              "application/json": {"schema": ref("TenantPatch")}}
ETAG = {"ETag": {"description": "the tenant's entity tag, for If-Match", "schema": {"type": "string"}}}
REVISION = {REVISION_HEADER: {"description": "the store's revision that holds the result: GET "
                                                  "/v1/status?revision= says when every switch has it",
                                   "schema": {"type": "integer"}}}
TENANT_TAGGED = {**_json(ref("Tenant"), "the tenant"), "headers": ETAG}
TENANT_WRITTEN = {**_json(ref("Tenant"), "the tenant"), "headers": {**ETAG, **REVISION}}
TENANT_CREATED = {**_json(ref("Tenant"), "the tenant, created"), "headers": {
    **ETAG, **REVISION, "Location": {"description": "its URL", "schema": {"type": "string"}}}}

PATHS: dict[str, Any] = {
    "/v1/health": {"get": _op(
        "Is the controller ready (event loop answering, database readable)?", "health",
        {"200": _json(ref("Health"), "ready"), "503": _json(ref("Health"), "not ready")}, (), public=True)},
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
        "topology", {"200": _json(ref("Topology"), "the topology")}, (401,))},
    "/v1/topology/hosts/{host}": {"get": _op(
        "One host's tunnel toward each other host (the detail behind its counts in /v1/topology)",
        "topologyHost", {"200": _json(ref("HostTunnels"), "its tunnels")}, (401, 404), params=("host",))},
    "/v1/apply": {"post": _op(
        "Make the tenants, admissions and port rules those of a document (docs/user/gitops.md): creates, changes "
        "and, with prune, deletes in one write of the store and one revision, all or nothing; dry_run: only say "
        "what would change",
        "apply", {"200": {**_json(ref("ApplyResult"), "what changed (or would)"), "headers": REVISION}},
        (400, 401, 409, 413, 415, 503), body={"application/json": {"schema": ref("OverlayDocument")}},
        params=("prune", "dryRun"))},
    "/v1/export": {"get": _op(
        "Today's tenants, the operator's admissions and the port rules as a document (what POST /v1/apply "
        "takes; [overlay] admitted_hosts are the config's and left out)", "export",
        {"200": {**_json(ref("OverlayDocument"), "the document"), "headers": REVISION}}, (401,))},
    "/v1/status": {"get": _op(
        "Does every host's switch hold revision N of the tenants (barrier-confirmed)? With wait, answer "
        "as soon as they do, or after that many seconds with the hosts that lag and why", "status",
        {"200": {**_json(ref("Status"), "the revision's state on the switches"), "headers": REVISION}},
        (400, 401), params=("revision", "wait"))},
    "/v1/events": {"get": _op(
        "What changes, as Server-Sent Events (Accept: text/event-stream; resumable with Last-Event-ID), or "
        "the events held after since/Last-Event-ID as JSON (docs/reference/events.md)", "events",
        {"200": {"description": "the stream, or the events held",
                 "content": {"text/event-stream": {"schema": {"type": "string"}},
                             "application/json": {"schema": ref("Events")}}},
         "503": _json(ref("Error"), f"{events.MAX_CLIENTS} streams are open already")},
        (400, 401), params=("kinds", "since", "lastEventId"))},
    "/v1/tenants/{name}/flood": {"get": _op(
        "The tenant's member hosts and flood set: where a broadcast from each host is copied, as programmed",
        "tenantFlood", {"200": _json(ref("Flood"), "its flood set")}, (401, 404), params=("name",))},
    "/v1/tenants": {
        "get": _op("List tenants, by name", "listTenants",
                   {"200": {**_json({"type": "array", "items": ref("Tenant")}, "tenants"), "headers": REVISION}},
                   (401,)),
        "post": _op("Create a tenant (stored before it is acknowledged)", "createTenant",
                    {"201": TENANT_CREATED}, (400, 401, 409, 413, 415, 503), body=TENANT_BODY),
    },
    "/v1/tenants/{name}": {
        "get": _op("Show a tenant (with its ETag)", "showTenant", {"200": TENANT_TAGGED}, (401, 404),
                   params=("name",)),
        "put": _op("Replace a tenant; a VNI or VLAN change re-programs every host", "replaceTenant",
                   {"200": TENANT_WRITTEN}, (400, 401, 404, 409, 412, 413, 415, 503), body=REPLACE_BODY,
                   params=("name", "ifMatch")),
        "patch": _op("Change some fields of a tenant (JSON Merge Patch)", "updateTenant",
                     {"200": TENANT_WRITTEN}, (400, 401, 404, 409, 412, 413, 415, 503), body=PATCH_BODY,
                     params=("name", "ifMatch")),
        "delete": _op("Delete a tenant", "deleteTenant", {"204": {"description": "deleted", "headers": REVISION}},
                      (400, 401, 404, 409, 412, 503), params=("name", "ifMatch")),
    },
    "/v1/tenants/{name}/endpoints": {"get": _op(
        "A tenant's learned endpoints, by MAC (?host=: only those behind that host)", "tenantEndpoints",
        {"200": _json({"type": "array", "items": ref("Endpoint")}, "endpoints")}, (400, 401, 404),
        params=("name", "hostFilter"))},
    "/v1/hosts": {"get": _op(
        "List hosts, by id", "listHosts",
        {"200": _json({"type": "array", "items": ref("Host")}, "hosts")}, (401,))},
    "/v1/hosts/{host}": {
        "get": _op("Show a host", "showHost", {"200": _json(ref("Host"), "the host")}, (401, 404),
                   params=("host",)),
        "delete": _op("Forget a host: its endpoints, and the tunnels toward it on every other host",
                      "deleteHost", {"204": {"description": "forgotten"}}, (401, 404, 409), params=("host",)),
    },
    "/v1/hosts/{host}/admission": {
        "get": _op("Is the host admitted, by whom, or why not", "showAdmission",
                   {"200": _json(ref("Admission"), "its admission")}, (400, 401), params=("host",)),
        "put": _op("Admit (true) or revoke (false) a host, connected or not yet (stored before it is applied; "
                   "revoked: its endpoints withdrawn, its switch wiped, the tunnels toward it removed)",
                   "putAdmission", {"200": _json(ref("Admission"), "its admission now")},
                   (400, 401, 413, 415, 503), body={"application/json": {"schema": ref("AdmissionChange")}},
                   params=("host",)),
    },
    "/v1/hosts/{host}/ports": {"get": _op(
        "The host's port rules, by port", "listPortRules",
        {"200": _json({"type": "array", "items": ref("PortRule")}, "its port rules")}, (400, 401),
        params=("host",))},
    "/v1/hosts/{host}/ports/{port}": {
        "get": _op("Show a port's rule (with its ETag)", "showPortRule",
                   {"200": {**_json(ref("PortRule"), "the rule"), "headers": ETAG}}, (400, 401, 404),
                   params=("host", "port")),
        "put": _op("Set a br0 port's allowed MACs and IPs (port security), for a port or host not seen yet too",
                   "putPortRule", {"200": {**_json(ref("PortRule"), "the rule"), "headers": ETAG}},
                   (400, 401, 404, 412, 413, 415, 503), body={"application/json": {"schema": ref("PortRuleChange")}},
                   params=("host", "port", "ifMatch")),
        "delete": _op("Remove a port's rule: its VLAN is no longer guarded unless another port there has one",
                      "deletePortRule", {"204": {"description": "removed"}}, (400, 401, 404, 412, 503),
                      params=("host", "port", "ifMatch")),
    },
    "/v1/hosts/{host}/vlans": {"get": _op(
        "The host's br0 VLAN -> tenant mapping, by VLAN", "hostVlans",
        {"200": _json({"type": "array", "items": ref("HostVlan")}, "mapping")}, (401, 404), params=("host",))},
    "/v1/role": {"get": _op(
        "This instance's role: leader or follower, the generation, and what each switch accepted", "role",
        {"200": _json(ref("Role"), "the role")}, (401,))},
    "/v1/counters": {"get": _op(
        "The core's event counters", "counters", {"200": _json(ref("Counters"), "counters")}, (401,))},
    "/v1/trace": {"post": _op(
        "Trace a frame from a VM through the overlay (like ovn-trace), from the controller's state; "
        "changes nothing", "trace", {"200": _json(ref("Trace"), "the path, host by host")},
        (400, 401, 404, 413, 415), body={"application/json": {"schema": ref("TraceRequest")}})},
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
            "port": {"name": "port", "in": "path", "required": True, "schema": {"type": "string"},
                     "example": "tap0", "description": "a br0 port's name, as the host's OVSDB reports it"},
            "ifMatch": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                        "description": "only if the tenant's (port rule's) ETag is still this one (else 412); "
                                       "* = any"},
            "hostFilter": {"name": "host", "in": "query", "required": False, "schema": rules.HOST_ID.schema(),
                           "description": "only the endpoints behind this host"},
            "asset": {"name": "asset", "in": "path", "required": True,
                      "schema": {"type": "string", "enum": list(SERVED)}},
            "prune": {"name": "prune", "in": "query", "required": False,
                      "schema": {"type": "string", "enum": sorted(declare.FLAGS), "default": "false"},
                      "description": "also delete the tenants the document does not name"},
            "dryRun": {"name": "dry_run", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": sorted(declare.FLAGS), "default": "false"},
                       "description": "change nothing: only say what would change (overlayctl diff)"},
            "revision": {"name": "revision", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0},
                         "description": "the revision asked about (a write's X-Overlay-Revision); default: the "
                                        "current one"},
            "wait": {"name": "wait", "in": "query", "required": False,
                     "schema": {"type": "number", "minimum": 0, "maximum": live.MAX_WAIT_S, "default": 0},
                     "description": "seconds to wait for it to be live before answering"},
            "kinds": {"name": "kinds", "in": "query", "required": False, "schema": {"type": "string"},
                      "description": "only these kinds, comma-separated: " + ", ".join(ev.KINDS)},
            "since": {"name": "since", "in": "query", "required": False, "schema": {"type": "string"},
                      "description": "the events after this ID (as Last-Event-ID)"},
            "lastEventId": {"name": "Last-Event-ID", "in": "header", "required": False,
                            "schema": {"type": "string"},
                            "description": "resume after this event (an EventSource sends it when it reconnects)"},
        },
        "responses": {f"E{c}": _json(ref("Error"), text) for c, text in ERRORS.items()},
    },
}
