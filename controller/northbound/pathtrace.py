"""The packet tracer: one VM's frame through the overlay, from the controller's own state.

In the style of ovn-trace: the frame enters br1 on the source VM's host from br0, tagged with
the tenant's VLAN there; every table it hits is listed; each copy sent into a tunnel is followed
into the receiving host's br1 and traced there too. The flows and groups are the ones the core
has installed on each switch (the core's read model), so this shows what the switches were told,
not a recomputation. Pure: reads the core, changes nothing; raises TraceError on bad input.

It runs on the event loop (it reads the core) and costs a pass over the hosts' flows it visits:
about 10-15 ms with 3,000 endpoints on 3 hosts (flows grouped by table, only the visited tables
sorted, exact matches compared as the core writes them), so it stays well inside the loop's budget
at the sizes the lab and the scale benchmark use.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from controller.core.read_model import ReadModel
from controller.model import fields
from controller.model import flows as f
from controller.model import tables as t
from controller.model.fields import Bool, Record, Text
from controller.model.state import Endpoint, Host, Tenant
from controller.model.tenant_rules import NAME
from controller.pipeline import tunnel_ports
from controller.pipeline.trace import Packet, Step, Trace, Tracer, actions_text, match_text

BROADCAST = "ff:ff:ff:ff:ff:ff"
ETH_TYPE_IPV4 = 0x0800
# Fields shown for a packet, in ovs-ofctl's order (the rest of the dict is the tracer's own).
SHOWN = ("in_port", "tunnel_id", "vlan_vid", "eth_src", "eth_dst", "eth_type", "arp_op", "arp_sha", "arp_spa",
         "arp_tha", "arp_tpa", "ipv4_src", "ipv4_dst")


ENDPOINT = Text("a MAC (aa:bb:cc:dd:ee:ff) or an IP address")  # of a learned endpoint; checked below
TRACE_REQUEST = Record({"tenant": NAME, "src": ENDPOINT, "dst": ENDPOINT, "arp": Bool()},
                       required=("tenant", "src", "dst"))  # the body's declaration (controller/model/fields.py)


class TraceError(ValueError):
    """Bad trace input; status is the HTTP status that says why (400 malformed, 404 unknown)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    tenant: str
    src: str  # the source VM: its MAC or one of its IPs
    dst: str  # a MAC (ff:ff:ff:ff:ff:ff for a broadcast) or an IP
    arp: bool = False  # True: a broadcast ARP request for dst (an IPv4 address)


def _mac(text: str) -> str | None:
    parts = text.split(":")
    if len(parts) == 6 and all(len(p) == 2 for p in parts):
        try:
            bytes.fromhex("".join(parts))
        except ValueError:
            return None
        return text.lower()
    return None


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def request_from_json(doc: Any) -> Request:
    try:
        TRACE_REQUEST.check(doc)
    except fields.Invalid as e:
        raise TraceError(400, str(e)) from None
    arp = doc.get("arp", False)
    for key in ("src", "dst"):  # the rule the declaration only says in words
        if _mac(doc[key]) is None and _ip(doc[key]) is None:
            raise TraceError(400, f"'{key}' must be {ENDPOINT.says}")
    if arp and not isinstance(ipaddress.ip_address(doc["dst"]) if _ip(doc["dst"]) else None,
                              ipaddress.IPv4Address):
        raise TraceError(400, "an ARP trace needs 'dst' to be an IPv4 address (the address asked for)")
    return Request(doc["tenant"], doc["src"], doc["dst"], arp)


# ---- finding things in the core's state ------------------------------------------------------

def _endpoint(r: ReadModel, tenant: Tenant, key: str) -> Endpoint | None:
    mac, ip = _mac(key), _ip(key)
    for ep in r.endpoints_of(tenant.vni):
        if ep.mac.lower() == mac or (ip is not None and ip in ep.ips):
            return ep
    return None


def _tracer(r: ReadModel, host: Host) -> Tracer | None:
    flows = r.installed_flows(host)
    return None if flows is None else Tracer(flows, r.installed_groups(host))


def _packet(r: ReadModel, req: Request, tenant: Tenant, src: Endpoint, dst: Endpoint | None) -> Packet:
    host = r.hosts[src.host_id]
    pkt: Packet = {"in_port": host.view.patch_ofport or 0,
                   "vlan_vid": tenant.vlan_on(src.host_id) | f.OFPVID_PRESENT, "eth_src": src.mac}
    v4 = sorted(ip for ip in src.ips if ":" not in ip)
    src_ip = req.src if _ip(req.src) and ":" not in req.src else (v4[0] if v4 else None)
    if req.arp:
        if src_ip is None:
            raise TraceError(400, f"no IPv4 address known for {src.mac}: give its IP as 'src'")
        pkt.update(eth_dst=BROADCAST, eth_type=f.ETH_TYPE_ARP, arp_op=1, arp_sha=src.mac, arp_spa=src_ip,
                   arp_tha="00:00:00:00:00:00", arp_tpa=str(ipaddress.ip_address(req.dst)))
        return pkt
    dst_mac = _mac(req.dst) or (dst.mac if dst else None)
    if dst_mac is None:
        raise TraceError(404, f"no endpoint with IP {req.dst} in tenant '{tenant.name}': "
                              "trace the ARP request for it instead (arp: true)")
    pkt.update(eth_dst=dst_mac, eth_type=ETH_TYPE_IPV4)
    dst_v4 = sorted(ip for ip in (dst.ips if dst else ()) if ":" not in ip)
    dst_ip = req.dst if _ip(req.dst) and ":" not in req.dst else (dst_v4[0] if dst_v4 else None)
    if src_ip and dst_ip:
        pkt.update(ipv4_src=src_ip, ipv4_dst=dst_ip)
    return pkt


# ---- the trace as JSON -------------------------------------------------------------------------

def packet_json(pkt: Packet) -> dict:
    return {k: pkt[k] for k in SHOWN if k in pkt}


def _port_json(host: Host, port: int, by_ip: dict[str, str]) -> dict:
    """Where an output port leads: br0, a tunnel (to which host), or some other port."""
    v = host.view
    if port == v.patch_ofport:
        return {"kind": "br0", "name": "patch to br0"}
    tunnel = next((p for p in v.tunnels if p.ofport == port), None)
    if tunnel is None:
        return {"kind": "port", "name": f"port {port}"}
    return {"kind": "tunnel", "name": tunnel.name, "type": tunnel.type, "remote_ip": tunnel.remote_ip,
            "peer": by_ip.get(tunnel.remote_ip)}


def _step_json(step: Step, host: Host, by_ip: dict[str, str]) -> dict:
    doc: dict[str, Any] = {"depth": step.depth, "kind": step.kind}
    if step.kind in ("flow", "miss"):
        doc.update(table=step.table, table_name=t.BY_ID[step.table].name if step.table in t.BY_ID else "?")
    if step.flow is not None:
        doc.update(priority=step.flow.priority, match=match_text(step.flow.match),
                   actions=actions_text(step.flow), cookie=f"{step.flow.cookie:#x}")
    if step.kind == "output":
        assert step.port is not None and step.packet is not None
        doc.update(port=step.port, to=_port_json(host, step.port, by_ip), packet=packet_json(step.packet))
    if step.kind == "controller":
        doc.update(meter=step.meter)
    if step.kind == "group":
        doc.update(group=step.group, buckets=step.buckets)
    return doc


def _hop(r: ReadModel, host: Host, pkt: Packet, came_from: dict, by_ip: dict[str, str]) -> tuple[dict, Trace | None]:
    doc: dict[str, Any] = {"host": host.id, "from": came_from, "packet": packet_json(pkt)}
    tracer = _tracer(r, host)
    if tracer is None:
        doc.update(steps=[], note="no OpenFlow connection: nothing installed on this switch")
        return doc, None
    tr = tracer.trace(pkt)
    doc["steps"] = [_step_json(s, host, by_ip) for s in tr.steps]
    return doc, tr


def trace(r: ReadModel, req: Request) -> dict:
    """The path of req's frame: the hops (source host, then each receiving host) and a summary."""
    tenant = r.tenants.get(req.tenant)
    if tenant is None:
        raise TraceError(404, f"no tenant named '{req.tenant}'")
    src = _endpoint(r, tenant, req.src)
    if src is None:
        raise TraceError(404, f"no endpoint {req.src} learned in tenant '{tenant.name}' "
                              "(see GET /v1/tenants/{name}/endpoints)")
    dst = _endpoint(r, tenant, req.dst)
    src_host = r.hosts.get(src.host_id)
    if src_host is None:
        raise TraceError(404, f"the host of {src.mac}, '{src.host_id}', is not known")
    pkt = _packet(r, req, tenant, src, dst)
    by_ip = {h.view.overlay_ip: h.id for h in r.hosts.values() if h.view.overlay_ip}
    first, tr = _hop(r, src_host, pkt, {"kind": "br0", "vlan": tenant.vlan_on(src_host.id)}, by_ip)
    hops, tunnels, delivered, answered = [first], [], [], False
    punts = len(tr.punts) if tr else 0
    for port, sent in tr.outputs if tr else []:
        where = _port_json(src_host, port, by_ip)
        if where["kind"] == "tunnel":  # through the flow-based port (tunnel_ports = flow): tun_dst says
            dst_ip = tunnel_ports.peer_of(where["remote_ip"], sent)
            where = {**where, "remote_ip": dst_ip, "peer": by_ip.get(dst_ip)}
        if where["kind"] == "br0":  # only a responder sends back where the frame came from
            answered = True
        if where["kind"] != "tunnel":
            continue
        tunnels.append({"from": src_host.id, "to": where["peer"], "port": where["name"], "ofport": port,
                        "type": where["type"], "remote_ip": where["remote_ip"], "tunnel_id": sent.get("tunnel_id")})
        hop, rtr = _receive(r, src_host, where, sent, by_ip)
        hops.append(hop)
        if rtr is None:
            continue
        punts += len(rtr.punts)
        patch = r.hosts[hop["host"]].view.patch_ofport
        delivered += [{"host": hop["host"], "vlan": int(str(out.get("vlan_vid", 0))) & 0xFFF}
                      for rport, out in rtr.outputs if rport == patch]
    summary = {"tunnels": tunnels, "delivered": delivered, "answered_in_switch": answered,
               "to_controller": punts}
    summary["verdict"] = _verdict(summary, src, dst if pkt["eth_dst"] != BROADCAST else None)
    return {"tenant": {"name": tenant.name, "vni": tenant.vni},
            "src": {"mac": src.mac, "ips": sorted(src.ips), "host": src.host_id},
            "dst": {"mac": dst.mac, "ips": sorted(dst.ips), "host": dst.host_id} if dst else None,
            "kind": "arp" if req.arp else ("broadcast" if pkt["eth_dst"] == BROADCAST else "unicast"),
            "packet": packet_json(pkt), "hops": hops, "summary": summary}


def _receive(r: ReadModel, sender: Host, where: dict, sent: Packet, by_ip: dict[str, str]) -> tuple[dict, Trace | None]:
    """The hop on the host at the far end of a tunnel: in on its tunnel port from the sender."""
    peer = r.hosts.get(where["peer"]) if where["peer"] else None
    in_port = peer and sender.view.overlay_ip and _ingress_port(peer, sender.view.overlay_ip, where["type"])
    came = {"kind": "tunnel", "host": sender.id, "tunnel_id": sent.get("tunnel_id")}
    if not (peer and in_port):
        return {"host": where["peer"], "from": came, "packet": packet_json(sent), "steps": [],
                "note": "no tunnel port back to the sender on this host: the frame is dropped"}, None
    came["port"] = _port_name(peer, in_port)
    return _hop(r, peer, {**sent, "in_port": in_port, "vlan_vid": 0}, came, by_ip)


def _ingress_port(peer: Host, sender_ip: str, kind: str) -> int | None:
    port = tunnel_ports.ingress(peer, sender_ip, kind)
    if port is None:  # another kind toward the sender: still where its frames arrive
        port = next((p for p in peer.view.tunnels if p.remote_ip == sender_ip and p.ofport), None)
    return port.ofport if port else None


def _port_name(host: Host, ofport: int) -> str:
    return next((p.name for p in host.view.tunnels if p.ofport == ofport), f"port {ofport}")


def _verdict(summary: dict, src: Endpoint, dst: Endpoint | None) -> str:
    if dst is not None and dst.host_id == src.host_id and not summary["answered_in_switch"]:
        return f"{dst.mac} is on the same host ({src.host_id}): br0 delivers it, br1 sends nothing on"
    parts = []
    if summary["answered_in_switch"]:
        parts.append("answered in the switch (sent back to the VM)")
    tunnels = summary["tunnels"]
    if tunnels:
        parts.append(f"{'flooded' if len(tunnels) > 1 else 'sent'} over {len(tunnels)} tunnel(s) to "
                     + ", ".join(str(x["to"]) for x in tunnels))
    if summary["delivered"]:
        parts.append("delivered to br0 on " + ", ".join(f"{d['host']} (VLAN {d['vlan']})"
                                                        for d in summary["delivered"]))
    if summary["to_controller"]:
        parts.append(f"{summary['to_controller']} copy(ies) to the controller")
    if not parts:
        parts.append("dropped")
    if dst is not None and not any(d["host"] == dst.host_id for d in summary["delivered"]) \
            and not summary["answered_in_switch"]:
        parts.append(f"never reaches {dst.mac}'s host {dst.host_id}")
    return "; ".join(parts)
