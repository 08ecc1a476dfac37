"""What BGP EVPN peers advertise, applied to the core: endpoints behind external VTEPs.

An external VTEP (a top-of-rack switch, a Linux VXLAN host) is a tunnel peer without a switch:
`Index.put_vtep` keeps it among the peers (not the hosts), so the hosts get a tunnel toward it
(a mesh port, or `tun_dst` on the flow port), the members of a VNI get unicast entries and
in-switch ARP/ND answers for its endpoints, and its type-3 route puts it in the VNI's flood set
(`Index.set_flood_member`). Its endpoints are ordinary endpoints whose host is the VTEP: they
never age (their peer withdraws them), and a MAC learned from a packet-in moves off it as any
move does. Each function returns the core's operations, as core methods do.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.bgp.evpn import ImportEvent, RemoteFlood, RemoteMac, RemoteMacGone
from controller.core.core import Core
from controller.model.ops import Op
from controller.model.state import Endpoint, Host, HostView

VTEP_PREFIX = "vtep-"


def vtep_id(ip: str) -> str:
    return VTEP_PREFIX + ip


def apply(core: Core, events: Iterable[ImportEvent], our_seq: dict[tuple[int, str], int], now: float) -> list[Op]:
    """Apply the Importer's events; our_seq: the MAC Mobility sequence numbers we advertise."""
    ops: list[Op] = []
    for ev in events:
        if isinstance(ev, RemoteMac):
            ops += _remote_mac(core, ev, our_seq.get((ev.vni, ev.mac), 0), now)
        elif isinstance(ev, RemoteMacGone):
            ops += _remote_mac_gone(core, ev)
        elif isinstance(ev, RemoteFlood):
            ops += _remote_flood(core, ev, now)
    return ops + core._flush()


def _vtep(core: Core, ip: str, peer: str, now: float) -> tuple[Host | None, list[Op]]:
    """The external VTEP at ip, made a tunnel peer of every host the first time it is named."""
    known = core.ix.peers.get(core.ix.host_by_ip.get(ip, ""))
    if known is not None:
        if known.view.external is None:  # one of our own hosts: a peer reflecting our routes
            core.counters["evpn_own_vtep_ignored"] += 1
            return None, []
        return known, []
    vtep = core.ix.put_vtep(HostView(system_id=vtep_id(ip), overlay_ip=ip, external=peer))
    core.tunnels.forgotten_ips.discard(ip)
    core.counters["evpn_vteps"] += 1
    return vtep, core._tunnel_ops(core.tunnels.ops(core.settings, now, list(core.ix.hosts.values()), toward=[vtep]))


def _remote_mac(core: Core, ev: RemoteMac, our_seq: int, now: float) -> list[Op]:
    vtep, ops = _vtep(core, ev.vtep, ev.peer, now)
    if vtep is None or core.ix.tenant_by_vni(ev.vni) is None:
        return ops
    key = (ev.vni, ev.mac)
    ep = core.ix.endpoints.get(key)
    if ep is None:
        core.counters["evpn_endpoints_imported"] += 1
        core._learned(Endpoint(ev.vni, ev.mac, vtep.id, 0, now, set(ev.ips)))
        return ops
    if ep.host_id != vtep.id:
        owner = core.ix.peers.get(ep.host_id)
        if owner is not None and owner.view.external is None and ev.seq <= our_seq:
            core.counters["evpn_stale_moves_ignored"] += 1  # ours is the newer: the peer will follow
            return ops
        core.counters["evpn_moves_imported"] += 1
        core._apply_change(("move", key, vtep.id, 0))
    ep.last_seen = now
    for ip in sorted(ev.ips - ep.ips):
        core._apply_change(("bind", key, ip))
    gone = ep.ips - ev.ips
    if gone:
        for ip in gone:
            if core.ix.bindings.get((ev.vni, ip)) == ev.mac:
                del core.ix.bindings[(ev.vni, ip)]
        ep.ips -= gone
        core._mark_endpoint(key, set())
    return ops


def _remote_mac_gone(core: Core, ev: RemoteMacGone) -> list[Op]:
    key = (ev.vni, ev.mac)
    ep = core.ix.endpoints.get(key)
    owner = core.ix.peers.get(ep.host_id) if ep is not None else None
    if owner is not None and owner.view.external is not None:  # not one that has moved to us since
        core.counters["evpn_endpoints_withdrawn"] += 1
        core._drop(key)
    return []


def _remote_flood(core: Core, ev: RemoteFlood, now: float) -> list[Op]:
    vtep, ops = _vtep(core, ev.vtep, ev.peer, now)
    if vtep is None:
        return ops
    core._mark_flips(core.ix.set_flood_member(ev.vni, vtep.id, ev.present))
    return ops
