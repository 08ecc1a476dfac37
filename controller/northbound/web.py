"""The operator's web view: a live page at `/`, its script and style, and the JSON it adds.

The page (controller/northbound/static/) is hand-written HTML, JS and CSS shipped as package data: no
external network at run time. The page and its code hold no data, so they are public like
/v1/health; everything they show comes from the JSON API with the same auth rules as any GET.
When a token is required for reads, the page asks for it once and keeps it in the tab's
sessionStorage (docs/user/webview.md). `/v1/topology` is the read-only document the drawing
needs in one call: hosts with their channels, the tunnel each host uses toward each peer and
where each tenant is placed; `/v1/tenants/{name}/flood` adds the picked tenant's member hosts
and flood set as programmed on the switches.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from webob import Request, Response

from controller.core.read_model import ReadModel
from controller.model import flows as f
from controller.pipeline import tunnel_ports

ASSETS = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
PAGE = "index.html"
# Only our own files, no inline code: a stolen page cannot be made to load or send anything else.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ROUTES = [
    ("GET", r"^/$", "web_page"),
    ("GET", r"^/ui/(?P<asset>[^/]+)$", "web_asset"),
    ("GET", r"^/v1/topology$", "topology"),
    ("GET", r"^/v1/tenants/(?P<name>[^/]+)/flood$", "tenant_flood"),
]
PUBLIC = frozenset({"web_page", "web_asset"})  # code only; its data comes through the API's auth
SERVED = tuple(name for name in ASSETS if name != PAGE)  # what /ui/{asset} serves


def _read(name: str) -> bytes:
    return resources.files("controller.northbound").joinpath("static", name).read_bytes()


def _static(name: str) -> Response:
    resp = Response(status=200, body=_read(name))
    resp.headers["Content-Type"] = f"{ASSETS[name]}; charset=utf-8"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-cache"  # revalidate: a new version shows on reload
    return resp


def tunnel_state(r: ReadModel, host_id: str, peer_ip: str) -> tuple[str, str | None]:
    """(state, port name) of the tunnel host_id uses toward peer_ip: created, adopted or missing
    (with tunnel_ports = flow, the one flow port, which its flows point at the peer)."""
    port = r.port_toward(r.hosts[host_id], peer_ip)
    if port is None:
        return "missing", None
    return ("created" if port.managed else "adopted"), port.name


def flood_set(r: ReadModel, host_id: str, vni: int, by_ip: dict[str, str]) -> list[str]:
    """The peers the host's flood group for the VNI copies to, as last sent to its switch."""
    host = r.hosts[host_id]
    group = r.flood_group(host, vni)
    if group is None:
        return []
    by_port = {p.ofport: by_ip.get(p.remote_ip, p.remote_ip) for p in host.view.tunnels if p.ofport}
    peers = set()
    for bucket in group.buckets:
        dst = tunnel_ports.peer_set_by(bucket.actions)  # a flow-based port: the bucket names its peer
        if dst is not None:
            peers.add(by_ip.get(dst, dst))
            continue
        peers |= {by_port[a.port] for a in bucket.actions if isinstance(a, f.Output) and a.port in by_port}
    return sorted(peers)


def topology_json(r: ReadModel) -> dict:
    """Hosts, the tunnel of every ordered pair of hosts, and where each tenant is placed."""
    ids = sorted(r.hosts)
    peers = [(h, r.hosts[h].view.overlay_ip) for h in ids if r.hosts[h].view.overlay_ip]
    hosts, tunnels = [], []
    for host_id in ids:
        host = r.hosts[host_id]
        v = host.view
        hosts.append({"id": host_id, "overlay_ip": v.overlay_ip,
                      "datapath_id": f"{v.datapath_id:016x}" if v.datapath_id is not None else None,
                      "connected": {"ovsdb": host.ovsdb_connected, "openflow": r.openflow_connected(host)}})
        if not v.overlay_ip:
            continue
        for peer_id, ip in peers:
            if peer_id != host_id and ip != v.overlay_ip:
                state, port = tunnel_state(r, host_id, ip)
                tunnels.append({"host": host_id, "peer": peer_id, "port": port, "state": state})
    tenants = [{"name": tn.name, "vni": tn.vni, "hosts": sorted(tn.hosts) if tn.hosts is not None else None}
               for tn in sorted(r.tenants.values(), key=lambda x: x.name)]
    return {"tunnel_type": r.tunnel_type(), "hosts": hosts, "tunnels": tunnels, "tenants": tenants}


def tenant_flood_json(r: ReadModel, name: str) -> dict | None:
    """One tenant's member hosts and, per host it is placed on, its flood set (None: no such tenant).

    Per tenant, not in the topology: members cost a pass over the endpoints, which for every
    tenant at once would hold the event loop far too long.
    """
    tn = r.tenants.get(name)
    if tn is None:
        return None
    by_ip = {h.view.overlay_ip: h.id for h in r.hosts.values() if h.view.overlay_ip}
    return {"name": tn.name, "vni": tn.vni, "members": sorted(r.member_hosts(tn)),
            "flood": {h: flood_set(r, h, tn.vni, by_ip) for h in sorted(r.hosts) if tn.present_on(h)}}


class WebView:
    """Handlers mixed into rest.Api (which routes, authenticates and counts them)."""

    b: Any  # rest.Backend

    def web_page(self, req: Request) -> Response:
        return _static(PAGE)

    def web_asset(self, req: Request, asset: str) -> Response | tuple[int, Any]:
        if asset not in SERVED:
            return 404, {"error": f"no such asset: {asset}"}
        return _static(asset)

    def topology(self, req: Request) -> tuple[int, Any]:
        return 200, self.b.call(lambda: topology_json(self.b.core.read))

    def tenant_flood(self, req: Request, name: str) -> tuple[int, Any]:
        doc = self.b.call(lambda: tenant_flood_json(self.b.core.read, name))
        return (404, {"error": f"no tenant named '{name}'"}) if doc is None else (200, doc)
