"""The REST API (JSON): validation here, every state change run on the app's event loop.

A request is parsed and validated first; only a valid one reaches the core, so a rejected
request changes nothing. Writes are stored (SQLite) before they are applied and acknowledged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol

from webob import Request, Response

from controller.core import Core
from controller.ops import Op
from controller.state import VLAN_MAX, VNI_MAX, Tenant, vlan_clash
from controller.store import Store

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    core: Core
    store: Store

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the app's event loop and return its result."""

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB (called on the event loop)."""


# ---- validation (pure) -------------------------------------------------------------------

def _int_in(doc: dict, key: str, lo: int, hi: int) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ApiError(400, f"'{key}' must be an integer from {lo} to {hi}")
    return value


def tenant_from_json(doc: Any, name: str | None = None) -> Tenant:
    """A Tenant from a request body; `name` comes from the URL for PUT."""
    if not isinstance(doc, dict):
        raise ApiError(400, "body must be a JSON object")
    unknown = set(doc) - {"name", "vni", "vlan", "hosts", "vlans"}
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
    if name is not None and doc.get("name", name) != name:
        raise ApiError(400, "'name' cannot be changed; create a new tenant instead")
    name = doc.get("name", name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ApiError(400, "'name' must be 1-63 letters, digits, '.', '_' or '-', starting alphanumeric")
    vni = _int_in(doc, "vni", 1, VNI_MAX)
    vlan = _int_in(doc, "vlan", 1, VLAN_MAX)
    hosts = doc.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise ApiError(400, "'hosts' must be null (every host) or a list of host ids")
        hosts = frozenset(hosts)
    vlans = doc.get("vlans") or {}
    if not isinstance(vlans, dict):
        raise ApiError(400, "'vlans' must be an object mapping host id to VLAN")
    for host, v in vlans.items():
        _int_in({f"vlans.{host}": v}, f"vlans.{host}", 1, VLAN_MAX)
    return Tenant(name, vni, vlan, hosts, tuple(sorted(vlans.items())))


def check_conflicts(tenant: Tenant, others: list[Tenant]) -> None:
    for other in others:
        if other.name == tenant.name:
            continue
        if other.vni == tenant.vni:
            raise ApiError(409, f"VNI {tenant.vni} is already used by tenant '{other.name}'")
        where = vlan_clash(tenant, other)
        if where is not None:
            place = "every host" if where == "*" else f"host '{where}'"
            raise ApiError(409, f"VLAN {tenant.vlan_on(where)} on {place} is already used by "
                                f"tenant '{other.name}'")


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
                     "managed": p.managed, "peer": by_ip.get(p.remote_ip)} for p in v.tunnels],
        "tenants": tenants,
    }


# ---- the WSGI app ------------------------------------------------------------------------

ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(p), h) for m, p, h in [
        ("GET", r"^/v1/health$", "health"),
        ("GET", r"^/v1/tenants$", "list_tenants"),
        ("POST", r"^/v1/tenants$", "create_tenant"),
        ("GET", r"^/v1/tenants/(?P<name>[^/]+)$", "show_tenant"),
        ("PUT", r"^/v1/tenants/(?P<name>[^/]+)$", "replace_tenant"),
        ("DELETE", r"^/v1/tenants/(?P<name>[^/]+)$", "delete_tenant"),
        ("GET", r"^/v1/tenants/(?P<name>[^/]+)/endpoints$", "tenant_endpoints"),
        ("GET", r"^/v1/hosts$", "list_hosts"),
        ("GET", r"^/v1/hosts/(?P<host>[^/]+)$", "show_host"),
        ("DELETE", r"^/v1/hosts/(?P<host>[^/]+)$", "delete_host"),
        ("GET", r"^/v1/counters$", "counters"),
    ]
]


class Api:
    def __init__(self, backend: Backend) -> None:
        self.b = backend

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        req = Request(environ)
        try:
            status, body = self._dispatch(req)
        except ApiError as e:
            status, body = e.status, {"error": e.message}
        resp = Response(status=status)
        if body is not None:
            resp.content_type = "application/json"
            resp.text = json.dumps(body, indent=1) + "\n"
        return resp(environ, start_response)

    def _dispatch(self, req: Request) -> tuple[int, Any]:
        allowed = []
        for method, pattern, handler in ROUTES:
            m = pattern.match(req.path_info)
            if m is None:
                continue
            allowed.append(method)
            if method == req.method:
                return getattr(self, handler)(req, **m.groupdict())
        if allowed:
            raise ApiError(405, f"method {req.method} not allowed; use {', '.join(sorted(set(allowed)))}")
        raise ApiError(404, f"no such resource: {req.path_info}")

    @staticmethod
    def _body(req: Request) -> Any:
        if req.content_length and req.content_length > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        if req.content_type != "application/json":
            raise ApiError(415, "body must be application/json")
        raw = req.body_file.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"body larger than {MAX_BODY} bytes")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"malformed JSON: {e}") from None

    # -- handlers: reads and writes run on the event loop through self.b.call --

    def health(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: {"ready": True, "hosts": len(self.b.core.hosts),
                                         "openflow_connections": len(self.b.core.datapaths)})

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
        core = self.b.core
        exists = tenant.name in core.tenants
        if must_exist and not exists:
            raise ApiError(404, f"no tenant named '{tenant.name}'")
        if not must_exist and exists:
            raise ApiError(409, f"tenant '{tenant.name}' already exists")
        check_conflicts(tenant, list(core.tenants.values()))
        self.b.store.put_tenant(tenant)
        self.b.apply(core.put_tenant(tenant))
        return tenant.to_json()

    def create_tenant(self, req: Request) -> tuple[int, Any]:
        tenant = tenant_from_json(self._body(req))
        return 201, self.b.call(lambda: self._put(tenant, must_exist=False))

    def replace_tenant(self, req: Request, name: str) -> tuple[int, Any]:
        tenant = tenant_from_json(self._body(req), name=name)
        return 200, self.b.call(lambda: self._put(tenant, must_exist=True))

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
            return [ep.to_json() for ep in self.b.core.tenant_endpoints(tenant.vni)]
        return 200, self.b.call(run)

    def list_hosts(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: [host_json(self.b.core, h) for h in sorted(self.b.core.hosts)])

    def _host(self, host: str) -> str:
        if host not in self.b.core.hosts:
            raise ApiError(404, f"no host '{host}'")
        return host

    def show_host(self, req: Request, host: str) -> tuple[int, Any]:
        return 200, self.b.call(lambda: host_json(self.b.core, self._host(host)))

    def delete_host(self, req: Request, host: str) -> tuple[int, Any]:
        def run() -> None:
            self._host(host)
            self.b.apply(self.b.core.forget_host(host, self.b.now()))
        self.b.call(run)
        return 204, None

    def counters(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: dict(sorted(self.b.core.counters.items())))
