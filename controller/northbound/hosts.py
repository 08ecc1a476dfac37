"""Hosts in the REST API: what GET /v1/hosts shows of each (admitted, waiting for admission, or an
OVSDB connection without a name), admissions (PUT /v1/hosts/{id}/admission) and the port rules of
a host's br0 ports (/v1/hosts/{id}/ports/{port}); the handlers are the Api's (controller/northbound/rest.py).

Writes go to the store first, then into the core (controller/core/host_sync.py), then out to the
switches, as tenant writes do: a write the store refused changed nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from webob import Request

from controller.core import host_sync
from controller.core.core import Core
from controller.core.read_model import ReadModel
from controller.core.store import TenantStore
from controller.model import host_rules
from controller.model.ops import Op
from controller.model.state import Host
from controller.model.tenant_rules import NotFound, check_if_match, etag, host_id


class Backend(Protocol):
    core: Core
    store: TenantStore

    def call(self, fn: Any, timeout: float | None = None) -> Any: ...

    def apply(self, ops: list[Op]) -> None: ...

    def now(self) -> float: ...

    def unidentified_hosts(self) -> dict[str, str]: ...


# ---- views ---------------------------------------------------------------------------------

def admission_json(r: ReadModel, host: str) -> dict:
    """Is the host admitted, by whom (operator, config, certificate, open), or why not."""
    admitted, why = r.admission(host)
    return {"id": host, "admitted": admitted, "by": why if admitted else None,
            "reason": None if admitted else why, "mode": r.admission_mode()}


def _trust(r: ReadModel, host: str, peer: Any) -> dict:
    admitted, why = r.admission(host)
    return {"admitted": admitted, "admission": why, "peer": peer.address if peer else None,
            "refused_claims": r.refused_claims(host)}


def host_json(r: ReadModel, host_id: str) -> dict:
    """An admitted host: its channels, tunnels, tenants, and who tried to take its place."""
    host: Host = r.hosts[host_id]
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
        **_trust(r, host_id, host.peer),
    }


def waiting_json(r: ReadModel, host_id: str) -> dict:
    """A host connected but not admitted: listed with why, given nothing."""
    waiting = r.waiting[host_id]
    v = waiting.view
    doc = _trust(r, host_id, waiting.peer)
    return {"id": host_id, "overlay_ip": v.overlay_ip,
            "datapath_id": f"{v.datapath_id:016x}" if v.datapath_id is not None else None,
            "connected": {"ovsdb": True, "openflow": v.datapath_id is not None and r.switch_connected(v.datapath_id)},
            "tunnels": [], "tenants": [], "joined": False, "reason": f"not admitted: {doc['admission']}",
            "waiting_since": waiting.since, **doc}


def unidentified_json(peer: str, reason: str) -> dict:
    """An OVSDB connection without a system-id: listed so that it is not refused in silence."""
    return {"id": None, "peer": peer, "overlay_ip": None, "datapath_id": None,
            "connected": {"ovsdb": True, "openflow": False}, "tunnels": [], "tenants": [],
            "joined": False, "reason": reason, "admitted": False, "admission": None, "refused_claims": []}


def known_json(r: ReadModel, host: str) -> dict | None:
    if host in r.hosts:
        return host_json(r, host)
    if host in r.waiting:
        return waiting_json(r, host)
    return None


def listing(b: Backend) -> list[dict]:
    r = b.core.read
    docs = [known_json(r, h) for h in sorted(set(r.hosts) | set(r.waiting))]
    return docs + [unidentified_json(p, why) for p, why in sorted(b.unidentified_hosts().items())]


def port_rule_json(rule: Any) -> dict:
    doc = rule.to_json()
    return {"port": doc["port"], "macs": doc["macs"], "ips": doc["ips"]}


# ---- the handlers (mixed into controller/northbound/rest.py's Api) --------------------------

ROUTES = [
    ("GET", r"^/v1/hosts/(?P<host>[^/]+)/admission$", "show_admission"),
    ("PUT", r"^/v1/hosts/(?P<host>[^/]+)/admission$", "put_admission"),
    ("GET", r"^/v1/hosts/(?P<host>[^/]+)/ports$", "list_port_rules"),
    ("GET", r"^/v1/hosts/(?P<host>[^/]+)/ports/(?P<port>[^/]+)$", "show_port_rule"),
    ("PUT", r"^/v1/hosts/(?P<host>[^/]+)/ports/(?P<port>[^/]+)$", "put_port_rule"),
    ("DELETE", r"^/v1/hosts/(?P<host>[^/]+)/ports/(?P<port>[^/]+)$", "delete_port_rule"),
]


class HostsApi:
    b: Backend

    @staticmethod
    def _body(req: Request) -> Any:
        raise NotImplementedError  # the Api's

    def show_admission(self, req: Request, host: str) -> tuple[int, Any]:
        host_id(host, "the host")
        return 200, self.b.call(lambda: admission_json(self.b.core.read, host))

    def put_admission(self, req: Request, host: str) -> tuple[int, Any]:
        """Admit or revoke a host, known or not yet: stored, then applied."""
        host_id(host, "the host")
        admitted = host_rules.admission_from_json(self._body(req))

        def run() -> dict:
            self.b.store.put_admission(host, admitted)
            host_sync.apply_admission(self.b, host, admitted)
            return admission_json(self.b.core.read, host)
        return 200, self.b.call(run)

    def list_port_rules(self, req: Request, host: str) -> tuple[int, Any]:
        host_id(host, "the host")
        return 200, self.b.call(lambda: [port_rule_json(r) for _, r in sorted(
            self.b.core.read.port_rules(host).items())])

    def _rule(self, host: str, port: str) -> dict:
        rule = self.b.core.read.port_rules(host).get(port)
        if rule is None:
            raise NotFound(f"no rule for port '{port}' of host '{host}'")
        return port_rule_json(rule)

    def show_port_rule(self, req: Request, host: str, port: str) -> tuple[int, Any, dict]:
        host_id(host, "the host")
        host_rules.port_name(port)
        doc = self.b.call(lambda: self._rule(host, port))
        return 200, doc, {"ETag": etag(doc)}

    def put_port_rule(self, req: Request, host: str, port: str) -> tuple[int, Any, dict]:
        """Set a port's allowed MACs and IPs (a host or port not seen yet too: it applies when it comes)."""
        rule = host_rules.port_rule_from_json(self._body(req), host, port)
        if_match = req.headers.get("If-Match")

        def run() -> dict:
            if if_match is not None:
                check_if_match(if_match, f"{host}/{port}", self._rule(host, port), what="port rule")
            self.b.store.put_port_rule(rule)
            host_sync.apply_port_rule(self.b, host, port, rule)
            return self._rule(host, port)
        doc = self.b.call(run)
        return 200, doc, {"ETag": etag(doc)}

    def delete_port_rule(self, req: Request, host: str, port: str) -> tuple[int, Any]:
        host_id(host, "the host")
        host_rules.port_name(port)
        if_match = req.headers.get("If-Match")

        def run() -> None:
            check_if_match(if_match, f"{host}/{port}", self._rule(host, port), what="port rule")
            self.b.store.delete_port_rule(host, port)
            host_sync.apply_port_rule(self.b, host, port, None)
        self.b.call(run)
        return 204, None
