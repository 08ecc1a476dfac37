"""The operator's web view: a live page at `/`, its script and style, and the JSON it adds.

The page (controller/northbound/static/) is hand-written HTML, JS and CSS shipped as package data: no
external network at run time. The page and its code hold no data, so they are public like
/v1/health; everything they show comes from the JSON API with the same auth rules as any GET.
When a token is required for reads, the page asks for it once and keeps it in the tab's
sessionStorage (docs/user/webview.md). The page follows GET /v1/events and reads again when
something changed, instead of polling. `/v1/topology` is the read-only document the drawing
needs in one call: hosts with their channels and their tunnels counted by state (per host, not
per pair: controller/northbound/topology.py) and where each tenant is placed;
`/v1/topology/hosts/{host}` is one host's tunnels toward each peer (the picked host's lines);
`/v1/tenants/{name}/flood` adds the picked tenant's member hosts and flood set as programmed on
the switches.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from os_ken.lib import hub
from webob import Request, Response

from controller.core.read_model import ReadModel
from controller.model import flows as f
from controller.northbound.topology import TopologyCache, host_tunnels_json
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
    ("GET", r"^/v1/topology/hosts/(?P<host>[^/]+)$", "topology_host"),
    ("GET", r"^/v1/tenants/(?P<name>[^/]+)/flood$", "tenant_flood"),
]
PUBLIC = frozenset({"web_page", "web_asset"})  # code only; its data comes through the API's auth
SERVED = tuple(name for name in ASSETS if name != PAGE)  # what /ui/{asset} serves
SLICE_S = 0.01  # a topology recount that has much to redo gives the event loop back this often


def _read(name: str) -> bytes:
    return resources.files("controller.northbound").joinpath("static", name).read_bytes()


def _static(name: str) -> Response:
    resp = Response(status=200, body=_read(name))
    resp.headers["Content-Type"] = f"{ASSETS[name]}; charset=utf-8"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-cache"  # revalidate: a new version shows on reload
    return resp


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


def topology_json(r: ReadModel, cache: TopologyCache) -> dict:
    """Hosts with their channels and tunnel counts, and where each tenant is placed (after
    cache.refresh(r) returned True)."""
    tenants = [{"name": tn.name, "vni": tn.vni, "hosts": sorted(tn.hosts) if tn.hosts is not None else None}
               for tn in sorted(r.tenants.values(), key=lambda x: x.name)]
    return {"tunnel_type": r.tunnel_type(), "hosts": cache.hosts_json(r), "tenants": tenants}


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
    _topology: TopologyCache | None = None

    def web_page(self, req: Request) -> Response:
        return _static(PAGE)

    def web_asset(self, req: Request, asset: str) -> Response | tuple[int, Any]:
        if asset not in SERVED:
            return 404, {"error": f"no such asset: {asset}"}
        return _static(asset)

    def topology(self, req: Request) -> Response:
        if self._topology is None:
            self._topology = TopologyCache()
        cache = self._topology

        def counted() -> dict | None:  # in slices: hosts to recount may be many (a reload, a start)
            return topology_json(self.b.core.read, cache) if cache.refresh(self.b.core.read, SLICE_S) else None
        while (doc := self.b.call(counted)) is None:
            hub.sleep(0)
        # Compact: json's C encoder (indent= takes the pure-Python one, 3x the loop's time at 1,000 hosts).
        resp = Response(status=200, content_type="application/json", charset=None)
        resp.body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        return resp

    def topology_host(self, req: Request, host: str) -> tuple[int, Any]:
        def run() -> dict | None:
            r = self.b.core.read
            return host_tunnels_json(r, host) if host in r.hosts else None
        doc = self.b.call(run)
        return (404, {"error": f"no host '{host}'"}) if doc is None else (200, doc)

    def tenant_flood(self, req: Request, name: str) -> tuple[int, Any]:
        doc = self.b.call(lambda: tenant_flood_json(self.b.core.read, name))
        return (404, {"error": f"no tenant named '{name}'"}) if doc is None else (200, doc)
