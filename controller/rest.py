"""The REST API (JSON): validation here, every state change run on the app's event loop.

A request is routed, authenticated and parsed and validated first; only a valid one reaches the
core, so a rejected request changes nothing. Writes are committed to SQLite before they are
applied and acknowledged. The OpenAPI description of these routes is controller/openapi.py.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

from webob import Request, Response

from controller import metrics, openapi
from controller.auth import TokenAuth
from controller.core import Core
from controller.ops import Op
from controller.state import HOST_ID_RE, VLAN_MAX, VNI_MAX, Tenant, vlan_clash
from controller.store import Store, StoreError

LOG = logging.getLogger(__name__)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
HOST_RE = HOST_ID_RE
MAX_BODY = 64 * 1024
JSON_TYPES = frozenset({"application/json"})
PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
TENANT_FIELDS = ("name", "vni", "vlan", "hosts", "vlans")
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
    store: Store

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run fn on the app's event loop and return its result (TimeoutError after timeout)."""

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB (called on the event loop)."""

    def now(self) -> float:
        """Wall-clock seconds."""


# ---- validation (pure) -------------------------------------------------------------------

def _int_in(doc: dict, key: str, lo: int, hi: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ApiError(400, f"'{key}' must be an integer from {lo} to {hi}")
    return value


def _host_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not HOST_RE.fullmatch(value):
        raise ApiError(400, f"{what} must be a host id: 1-255 printable characters, no '/'")
    return value


def tenant_from_json(doc: Any, name: str | None = None) -> Tenant:
    """A Tenant from a request body; `name` comes from the URL for PUT and PATCH."""
    if not isinstance(doc, dict):
        raise ApiError(400, "body must be a JSON object")
    unknown = set(doc) - set(TENANT_FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    if name is not None and "name" in doc and doc["name"] != name:
        raise ApiError(400, "'name' cannot be changed; create a new tenant instead")
    name = doc.get("name", name)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ApiError(400, "'name' must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric")
    vni = _int_in(doc, "vni", 1, VNI_MAX)
    vlan = _int_in(doc, "vlan", 1, VLAN_MAX)
    hosts = doc.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list):
            raise ApiError(400, "'hosts' must be null (every host) or a list of host ids")
        hosts = frozenset(_host_id(h, "each of 'hosts'") for h in hosts)
    vlans = doc.get("vlans", {})
    if not isinstance(vlans, dict):
        raise ApiError(400, "'vlans' must be an object mapping host id to VLAN")
    for host, v in vlans.items():
        _host_id(host, "each key of 'vlans'")
        _int_in({f"vlans.{host}": v}, f"vlans.{host}", 1, VLAN_MAX)
        if hosts is not None and host not in hosts:
            raise ApiError(400, f"'vlans' names host '{host}', which is not in 'hosts'")
    return Tenant(name, vni, vlan, hosts, tuple(sorted(vlans.items())))


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
            raise ApiError(409, f"VNI {tenant.vni} is already used by tenant '{other.name}'")
        where = vlan_clash(tenant, other)
        if where is not None:
            place = "every host" if where == "*" else f"host '{where}'"
            raise ApiError(409, f"VLAN {tenant.vlan_on(where)} on {place} is already used by "
                                f"tenant '{other.name}'")


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
                          parse_constant=_reject_constant)
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


# ---- views -------------------------------------------------------------------------------

def host_json(core: Core, host_id: str) -> dict:
    host = core.hosts[host_id]
    v = host.view
    by_ip = {h.view.overlay_ip: h.id for h in core.hosts.values()}
    tenants = []
    for tn in sorted(core.tenants.values(), key=lambda x: x.name):
        if tn.present_on(host_id):
            tenants.append({"name": tn.name, "vni": tn.vni, "vlan": tn.vlan_on(host_id),
                            "members": host_id in core.member_hosts(tn)})
    return {
        "id": host_id,
        "overlay_ip": v.overlay_ip,
        "datapath_id": f"{v.datapath_id:016x}" if v.datapath_id is not None else None,
        "connected": {"ovsdb": host.ovsdb_connected, "openflow": v.datapath_id in core.datapaths},
        "tunnels": [{"name": p.name, "type": p.type, "remote_ip": p.remote_ip, "ofport": p.ofport,
                     "managed": p.managed, "peer": by_ip.get(p.remote_ip)}
                    for p in sorted(v.tunnels, key=lambda p: p.name)],
        "tenants": tenants,
    }


def host_vlans_json(core: Core, host_id: str) -> list[dict]:
    """The host's br0 VLAN -> tenant mapping, by VLAN."""
    out = []
    for tn in core.tenants.values():
        if tn.present_on(host_id):
            out.append({"vlan": tn.vlan_on(host_id), "tenant": tn.name, "vni": tn.vni,
                        "members": host_id in core.member_hosts(tn)})
    return sorted(out, key=lambda x: (x["vlan"], x["tenant"]))


def endpoint_json(ep: Any, now: float, port: str | None = None) -> dict:
    doc = ep.to_json()
    doc["port"] = port
    doc["idle_s"] = round(max(0.0, now - ep.last_seen), 3)
    return doc


# ---- the WSGI app ------------------------------------------------------------------------

ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(p), h) for m, p, h in [
        ("GET", r"^/v1/health$", "health"),
        ("GET", r"^/v1/openapi\.json$", "openapi"),
        ("GET", r"^/metrics$", "metrics"),
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
    ]
]
PUBLIC = frozenset({"health", "openapi"})  # probes and the description: no token needed


class Api:
    def __init__(self, backend: Backend, auth: TokenAuth | None = None) -> None:
        self.b = backend
        self.auth = auth or TokenAuth()
        self.prom = metrics.Metrics()
        lag = getattr(backend, "loop_lag", None)  # the app's event-loop health (controller/looplag.py)
        if lag is not None:
            self.prom.register(lag)

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
        except StoreError as e:  # nothing was committed, so nothing was applied either
            LOG.error("REST %s %s: database error: %s", req.method, route, e)
            result = (503, {"error": f"database unavailable: {e}"})
        except Exception:  # a bug: say so in JSON, keep the server up, log it for us
            LOG.exception("REST %s %s failed", req.method, route)
            result = (500, {"error": "internal error; see the controller log"})
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
        for method, pattern, handler in ROUTES:
            m = pattern.match(path)
            if m is None:
                continue
            allowed.append(method)
            if method == req.method:
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
            core = self.b.core
            return {"ready": True, "tenants": len(core.tenants), "hosts": len(core.hosts),
                    "openflow_connections": len(core.datapaths)}
        try:
            return 200, self.b.call(run, timeout=HEALTH_TIMEOUT_S)
        except TimeoutError:
            return 503, {"ready": False, "reason": f"event loop did not answer in {HEALTH_TIMEOUT_S:g} s"}
        except Exception as e:  # the database: say what is wrong, a probe wants 503 not 500
            return 503, {"ready": False, "reason": f"{type(e).__name__}: {e}"}

    def openapi(self, req: Request) -> tuple[int, Any]:
        return 200, openapi.SPEC

    def metrics(self, req: Request) -> Response:
        try:
            snap = self.b.call(lambda: metrics.snapshot(self.b.core), timeout=HEALTH_TIMEOUT_S)
        except TimeoutError:  # a stuck event loop: still show its lag, with the last snapshot
            snap = None
        resp = Response(status=200, body=self.prom.render(snap))
        resp.headers["Content-Type"] = metrics.CONTENT_TYPE
        return resp

    def list_tenants(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: [t.to_json() for t in sorted(
            self.b.core.tenants.values(), key=lambda x: x.name)])

    def _tenant(self, name: str) -> Tenant:
        tenant = self.b.core.tenants.get(name)
        if tenant is None:
            raise ApiError(404, f"no tenant named '{name}'")
        return tenant

    def show_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: self._tenant(name).to_json())

    def _put(self, tenant: Tenant, must_exist: bool) -> dict:
        """Runs on the event loop: check against current state, commit, then program switches."""
        core = self.b.core
        exists = tenant.name in core.tenants
        if must_exist and not exists:
            raise ApiError(404, f"no tenant named '{tenant.name}'")
        if not must_exist and exists:
            raise ApiError(409, f"tenant '{tenant.name}' already exists")
        check_conflicts(tenant, list(core.tenants.values()))
        if core.tenants.get(tenant.name) != tenant:  # an unchanged PUT touches nothing
            self.b.store.put_tenant(tenant)
            self.b.apply(core.put_tenant(tenant))
        return tenant.to_json()

    def create_tenant(self, req: Request) -> tuple[int, Any]:
        tenant = tenant_from_json(self._body(req))
        doc = self.b.call(lambda: self._put(tenant, must_exist=False))
        return 201, doc

    def replace_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        tenant = tenant_from_json(self._body(req), name=name)
        return 200, self.b.call(lambda: self._put(tenant, must_exist=True))

    def update_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        patch = self._body(req, PATCH_TYPES)
        if not isinstance(patch, dict):
            raise ApiError(400, "body must be a JSON object")
        if "name" in patch and patch["name"] != name:  # also null: a merge patch would remove it
            raise ApiError(400, "'name' cannot be changed; create a new tenant instead")

        def run() -> dict:
            # Read, merge and write in one step on the loop: no other write can come between.
            merged = merge_patch(self._tenant(name).to_json(), patch)
            return self._put(tenant_from_json(merged, name=name), must_exist=True)
        return 200, self.b.call(run)

    def delete_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        def run() -> None:
            self._tenant(name)
            self.b.store.delete_tenant(name)
            self.b.apply(self.b.core.delete_tenant(name))
        self.b.call(run)
        return 204, None

    def tenant_endpoints(self, req: Request, name: str) -> tuple[int, Any]:
        def run() -> list:
            tenant = self._tenant(name)
            now = self.b.now()
            core = self.b.core
            return [endpoint_json(ep, now, core.endpoint_port(ep)) for ep in core.tenant_endpoints(tenant.vni)]
        return 200, self.b.call(run)

    def list_hosts(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: [host_json(self.b.core, h) for h in sorted(self.b.core.hosts)])

    def _host(self, host: str) -> str:
        if host not in self.b.core.hosts:
            raise ApiError(404, f"no host '{host}'")
        return host

    def show_host(self, req: Request, host: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: host_json(self.b.core, self._host(host)))

    def host_vlans(self, req: Request, host: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: host_vlans_json(self.b.core, self._host(host)))

    def delete_host(self, req: Request, host: str) -> tuple[int, Any]:
        def run() -> None:
            self._host(host)
            if self.b.core.hosts[host].ovsdb_connected:
                # It would come straight back with its next OVSDB update.
                raise ApiError(409, f"host '{host}' is still connected; disconnect it first "
                                    "(ovs-vsctl del-manager on it, or shut it down)")
            self.b.apply(self.b.core.forget_host(host, self.b.now()))
        self.b.call(run)
        return 204, None

    def counters(self, req: Request) -> tuple[int, Any]:
        def run() -> dict:
            values = dict.fromkeys(BASE_COUNTERS, 0)
            values.update(self.b.core.counters)
            return dict(sorted(values.items()))
        return 200, self.b.call(run)
