"""The REST API (JSON), HTTP only: routing, authentication, bodies, status codes and headers.

A request is routed, authenticated and its body parsed first; the tenant rules (validation,
conflicts, merge patch, ETags: controller/model/tenant_rules.py) and the write sequence
(controller/northbound/tenants.py) raise errors that map to
400/404/409/412 here. Every state change runs on the app's event loop; a rejected request changes
nothing, and writes are committed to the store (SQLite or etcd) before they are applied and
acknowledged. The OpenAPI description of these routes is controller/northbound/openapi.py.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from webob import Request, Response

from controller.core.core import Core
from controller.core.read_model import ReadModel
from controller.core.store import StoreError, TenantStore
from controller.model import tenant_rules as rules
from controller.model.ops import Op
from controller.northbound import metrics, openapi, pathtrace, tenants, web
from controller.northbound.auth import TokenAuth
from controller.version import __version__

LOG = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
MAX_INT_DIGITS = 40  # longer JSON integers are taken as floats: every integer field refuses them
JSON_TYPES = frozenset({"application/json"})
PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
TENANT_STATUS: dict[type[rules.TenantError], int] = {
    rules.Invalid: 400, rules.NotFound: 404, rules.Conflict: 409, rules.PreconditionFailed: 412}
HEALTH_TIMEOUT_S = 5.0
# Counters an operator looks for even before the first event: shown as 0 until they move.
BASE_COUNTERS = ("packet_in", "endpoints_learned", "flow_mods", "mac_moves",
                 "arp_proxied", "nd_proxied", "floods_suppressed", "floods_sent")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Backend(Protocol):
    core: Core
    store: TenantStore
    metrics: metrics.Metrics  # the app's: the API counts requests into it and serves it

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run fn on the app's event loop and return its result (TimeoutError after timeout)."""

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB (called on the event loop)."""

    def unidentified_hosts(self) -> dict[str, str]:
        """OVSDB connections that cannot be hosts (no system-id): peer -> why (called on the event loop)."""

    def now(self) -> float:
        """Wall-clock seconds."""

    def role_status(self) -> dict:
        """This instance's role among several (controller/ha/roles.py), for GET /v1/role."""


# ---- bodies ------------------------------------------------------------------------------

def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key '{key}'")
        seen[key] = value
    return seen


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicate_keys,
                          parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise ApiError(400, "malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"malformed JSON: {e}") from None


def _read_up_to(stream: Any, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = stream.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int | float:
    """No field takes more than a few digits: a longer number is kept as a float (inf past 308 digits),
    so the field's own check refuses it by name, instead of Python's int-digits limit speaking."""
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


# ---- views -------------------------------------------------------------------------------

def host_json(r: ReadModel, host_id: str) -> dict:
    host = r.hosts[host_id]
    v = host.view
    by_ip = {h.view.overlay_ip: h.id for h in r.hosts.values()}
    tenants = []
    for tn in r.tenants_at(host_id):
        tenants.append({"name": tn.name, "vni": tn.vni, "vlan": tn.vlan_on(host_id),
                        "members": r.is_member(host_id, tn.vni),
                        "endpoints": r.endpoints_at(tn.vni, host_id),
                        "learning_capped": r.learning_capped(tn.vni, host_id)})
    return {
        "id": host_id,
        "overlay_ip": v.overlay_ip,
        "datapath_id": f"{v.datapath_id:016x}" if v.datapath_id is not None else None,
        "connected": {"ovsdb": host.ovsdb_connected, "openflow": r.openflow_connected(host)},
        "tunnels": [{"name": p.name, "type": p.type, "remote_ip": p.remote_ip, "ofport": p.ofport,
                     "managed": p.managed, "peer": by_ip.get(p.remote_ip)}
                    for p in sorted(v.tunnels, key=lambda p: p.name)],
        "tenants": tenants,
        "joined": not v.problems,
        "reason": "; ".join(v.problems) or None,
    }


def unidentified_json(peer: str, reason: str) -> dict:
    """An OVSDB connection without a system-id: listed so that it is not refused in silence."""
    return {"id": None, "peer": peer, "overlay_ip": None, "datapath_id": None,
            "connected": {"ovsdb": True, "openflow": False}, "tunnels": [], "tenants": [],
            "joined": False, "reason": reason}


def host_vlans_json(r: ReadModel, host_id: str) -> list[dict]:
    """The host's br0 VLAN -> tenant mapping, by VLAN."""
    out = []
    for tn in r.tenants.values():
        if tn.present_on(host_id):
            out.append({"vlan": tn.vlan_on(host_id), "tenant": tn.name, "vni": tn.vni,
                        "members": r.is_member(host_id, tn.vni)})
    return sorted(out, key=lambda x: (x["vlan"], x["tenant"]))


def endpoint_json(ep: Any, now: float, port: str | None = None, external: dict | None = None) -> dict:
    doc = ep.to_json()
    doc["port"] = port
    doc["idle_s"] = round(max(0.0, now - ep.last_seen), 3)
    if external is not None:  # behind a VTEP a BGP EVPN peer advertised (controller/bgp/external.py)
        doc["external"] = external
    return doc


# ---- the WSGI app ------------------------------------------------------------------------

ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(p), h) for m, p, h in [
        ("GET", r"^/v1/health$", "health"),
        ("GET", r"^/v1/openapi\.json$", "openapi"),
        ("GET", r"^/metrics$", "metrics"),
        *web.ROUTES,  # the web view: controller/northbound/web.py
        ("GET", r"^/v1/tenants$", "list_tenants"),
        ("POST", r"^/v1/tenants$", "create_tenant"),
        ("GET", r"^/v1/tenants/(?P<name>[^/]+)$", "show_tenant"),
        ("PUT", r"^/v1/tenants/(?P<name>[^/]+)$", "replace_tenant"),
        ("PATCH", r"^/v1/tenants/(?P<name>[^/]+)$", "update_tenant"),
        ("DELETE", r"^/v1/tenants/(?P<name>[^/]+)$", "delete_tenant"),
        ("GET", r"^/v1/tenants/(?P<name>[^/]+)/endpoints$", "tenant_endpoints"),
        ("GET", r"^/v1/hosts$", "list_hosts"),
        ("GET", r"^/v1/hosts/(?P<host>[^/]+)$", "show_host"),
        ("DELETE", r"^/v1/hosts/(?P<host>[^/]+)$", "delete_host"),
        ("GET", r"^/v1/hosts/(?P<host>[^/]+)/vlans$", "host_vlans"),
        ("GET", r"^/v1/counters$", "counters"),
        ("GET", r"^/v1/role$", "role"),
        ("POST", r"^/v1/trace$", "trace"),
    ]
]
PUBLIC = frozenset({"health", "openapi"}) | web.PUBLIC  # probes, the description, page code: no token


class Api(web.WebView):
    def __init__(self, backend: Backend, auth: TokenAuth | None = None) -> None:
        self.b = backend
        self.auth = auth or TokenAuth()
        self.prom = backend.metrics
        self.tenants = tenants.Tenants(backend)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        req = Request(environ)
        route = "unmatched"
        headers: dict[str, str] = {}
        try:
            route, handler, args = self._route(req)
            self._authenticate(req, route)
            result = handler(req, **args)
        except ApiError as e:
            result, headers = (e.status, {"error": e.message}), e.headers
        except rules.TenantError as e:  # the tenant rules said no: nothing changed
            result = (TENANT_STATUS[type(e)], {"error": str(e)})
        except StoreError as e:  # nothing was committed, so nothing was applied either
            LOG.error("REST %s %s: database error: %s", req.method, route, e)
            result = (503, {"error": f"database unavailable: {e}"})
        except Exception:  # a bug: say so in JSON, keep the server up, log it for us
            LOG.exception("REST %s %s failed", req.method, route)
            result = (500, {"error": "internal error; see the controller log"})
        if isinstance(result, tuple) and len(result) == 3:  # (status, body, headers)
            result, headers = result[:2], {**result[2], **headers}
        resp = result if isinstance(result, Response) else self._json(*result)
        resp.headers.update(headers)
        self.prom.rest.count(req.method, route, resp.status_int)
        return resp(environ, start_response)

    @staticmethod
    def _json(status: int, body: Any) -> Response:
        resp = Response(status=status)
        if body is not None:
            resp.content_type = "application/json"
            resp.text = json.dumps(body, indent=1) + "\n"
        return resp

    def _route(self, req: Request) -> tuple[str, Callable, dict[str, str]]:
        try:
            path = req.path_info
        except UnicodeDecodeError:
            raise ApiError(400, "the path is not valid UTF-8") from None
        allowed = []
        wanted = "GET" if req.method == "HEAD" else req.method  # HEAD: the GET without its body (webob)
        for method, pattern, handler in ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            allowed += [method, "HEAD"] if method == "GET" else [method]
            if method == wanted:
                return handler, getattr(self, handler), m.groupdict()
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise ApiError(405, f"method {req.method} not allowed; use {allow}", {"Allow": allow})
        raise ApiError(404, f"no such resource: {path}")

    def _authenticate(self, req: Request, route: str) -> None:
        if route in PUBLIC or not self.auth.required(req.method):
            return
        if not self.auth.check(req.headers.get("Authorization")):
            raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="overlay"'})

    @staticmethod
    def _body(req: Request, types: frozenset[str] = JSON_TYPES) -> Any:
        if req.content_length and req.content_length > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        if req.content_type not in types:
            raise ApiError(415, f"body must be {' or '.join(sorted(types))}")
        if req.content_length is not None:
            raw = req.body_file.read(MAX_BODY + 1)
        elif "chunked" in req.headers.get("Transfer-Encoding", "").lower():
            # No length up front: the server decodes the chunks; read one byte past the limit to tell.
            raw = _read_up_to(req.environ["wsgi.input"], MAX_BODY + 1)
        else:
            raw = b""
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        return parse_json(raw)

    # -- handlers: reads and writes run on the event loop through self.b.call --

    def health(self, req: Request) -> tuple[int, Any]:
        def run() -> dict:
            self.b.store.ping()
            r = self.b.core.read
            return {"ready": True, "version": __version__, "tenants": len(r.tenants), "hosts": len(r.hosts),
                    "openflow_connections": r.switches()}
        try:
            return 200, self.b.call(run, timeout=HEALTH_TIMEOUT_S)
        except TimeoutError:
            return 503, {"ready": False, "reason": f"event loop did not answer in {HEALTH_TIMEOUT_S:g} s"}
        except Exception as e:  # the database: say what is wrong, a probe wants 503 not 500
            return 503, {"ready": False, "reason": f"{type(e).__name__}: {e}"}

    def openapi(self, req: Request) -> tuple[int, Any]:
        return 200, openapi.SPEC

    def metrics(self, req: Request) -> Response:
        return self.prom.response(self.b)

    def list_tenants(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(self.tenants.listing)

    def show_tenant(self, req: Request, name: str) -> tuple[int, Any, dict]:
        doc = self.b.call(lambda: self.tenants.get(name).to_json())
        return 200, doc, {"ETag": rules.etag(doc)}

    def create_tenant(self, req: Request) -> tuple[int, Any, dict]:
        tenant = rules.tenant_from_json(self._body(req))
        doc = self.b.call(lambda: self.tenants.create(tenant))
        location = f"{req.script_name}/v1/tenants/{urllib.parse.quote(tenant.name, safe='')}"
        return 201, doc, {"Location": location, "ETag": rules.etag(doc)}

    def replace_tenant(self, req: Request, name: str) -> tuple[int, Any, dict]:
        tenant = rules.tenant_from_json(self._body(req), name=name)
        doc = self.b.call(lambda: self.tenants.replace(tenant, req.headers.get("If-Match")))
        return 200, doc, {"ETag": rules.etag(doc)}

    def update_tenant(self, req: Request, name: str) -> tuple[int, Any, dict]:
        patch = rules.patch_from_json(self._body(req, PATCH_TYPES), name)
        doc = self.b.call(lambda: self.tenants.update(name, patch, req.headers.get("If-Match")))
        return 200, doc, {"ETag": rules.etag(doc)}

    def delete_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        self.b.call(lambda: self.tenants.delete(name, req.headers.get("If-Match")))
        return 204, None

    def tenant_endpoints(self, req: Request, name: str) -> tuple[int, Any]:
        try:
            host = req.GET.get("host")
        except UnicodeDecodeError:
            raise ApiError(400, "the query string is not valid UTF-8") from None
        if host is not None:
            rules.host_id(host, "host")

        def run() -> list:
            tenant = self.tenants.get(name)
            now = self.b.now()
            r = self.b.core.read
            return [endpoint_json(ep, now, r.endpoint_port(ep), r.external_of(ep))
                    for ep in r.endpoints_of(tenant.vni) if host is None or ep.host_id == host]
        return 200, self.b.call(run)

    def list_hosts(self, req: Request) -> tuple[int, Any]:
        def run() -> list:
            r = self.b.core.read
            return ([host_json(r, h) for h in sorted(r.hosts)]
                    + [unidentified_json(p, r) for p, r in sorted(self.b.unidentified_hosts().items())])
        return 200, self.b.call(run)

    def _host(self, host: str) -> str:
        if host not in self.b.core.read.hosts:
            raise ApiError(404, f"no host '{host}'")
        return host

    def show_host(self, req: Request, host: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: host_json(self.b.core.read, self._host(host)))

    def host_vlans(self, req: Request, host: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: host_vlans_json(self.b.core.read, self._host(host)))

    def delete_host(self, req: Request, host: str) -> tuple[int, Any]:
        def run() -> None:
            self._host(host)
            if self.b.core.read.hosts[host].ovsdb_connected:
                # It would come straight back with its next OVSDB update.
                raise ApiError(409, f"host '{host}' is still connected; disconnect it first "
                                    "(ovs-vsctl del-manager on it, or shut it down)")
            self.b.apply(self.b.core.forget_host(host, self.b.now()))
        self.b.call(run)
        return 204, None

    def counters(self, req: Request) -> tuple[int, Any]:
        def run() -> dict:
            values = dict.fromkeys(BASE_COUNTERS, 0)
            values.update(self.b.core.read.counters())
            return dict(sorted(values.items()))
        return 200, self.b.call(run)

    def role(self, req: Request) -> tuple[int, Any]:
        """Leader or follower (controller/ha/roles.py); a single instance is always the leader."""
        return 200, self.b.call(self.b.role_status)

    def trace(self, req: Request) -> tuple[int, Any]:
        """The packet tracer (controller/northbound/pathtrace.py): read-only, from the core's own state."""
        try:
            query = pathtrace.request_from_json(self._body(req))
            return 200, self.b.call(lambda: pathtrace.trace(self.b.core.read, query))
        except pathtrace.TraceError as e:
            raise ApiError(e.status, str(e)) from None
