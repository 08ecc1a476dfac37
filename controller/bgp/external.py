"""What BGP EVPN peers advertise, translated into the core's changes: endpoints behind external VTEPs.

An external VTEP (a top-of-rack switch, a Linux VXLAN host) is a tunnel peer without a switch
(VtepNamed: the core keeps it among the peers, not the hosts), so the hosts get a tunnel toward it
(a mesh port, or `tun_dst` on the flow port), the members of a VNI get unicast entries and in-switch
ARP/ND answers for its endpoints, and its type-3 route puts it in the VNI's flood set (FloodMember).
Its endpoints are ordinary endpoints whose host is the VTEP: they never age (their peer withdraws
them), and a MAC learned from a packet-in moves off it as any move does.

Only a translator: it reads the core through its read model and hands the changes to Core.learn,
the one method packet-ins use too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from controller.bgp.evpn import ImportEvent, RemoteFlood, RemoteMac, RemoteMacGone
from controller.core import changes as ch
from controller.core.core import Core
from controller.core.parts import EpKey
from controller.core.read_model import ReadModel
from controller.model.ops import Op
from controller.model.state import Endpoint

VTEP_PREFIX = "vtep-"


def vtep_id(ip: str) -> str:
    return VTEP_PREFIX + ip


def apply(core: Core, events: Iterable[ImportEvent], our_seq: dict[tuple[int, str], int], now: float) -> list[Op]:
    """Apply the Importer's events; our_seq: the MAC Mobility sequence numbers we advertise."""
    return core.learn(translate(core.read, events, our_seq, now), now)


def translate(read: ReadModel, events: Iterable[ImportEvent], our_seq: dict[tuple[int, str], int],
            now: float) -> Iterator[ch.Change]:
    """The changes the events call for. A generator: Core.learn applies each before the next one
    is made, so an event reads the state the ones before it left."""
    for ev in events:
        if isinstance(ev, RemoteMac):
            yield from _remote_mac(read, ev, our_seq.get((ev.vni, ev.mac), 0), now)
        elif isinstance(ev, RemoteMacGone):
            yield from _remote_mac_gone(read, ev)
        elif isinstance(ev, RemoteFlood):
            yield from _remote_flood(read, ev)


def _vtep(read: ReadModel, ip: str, peer: str) -> Iterator[ch.Change]:
    """The external VTEP at ip, named to the core the first time (nothing for one of our hosts)."""
    known = read.peer_at(ip)
    if known is None:
        yield ch.VtepNamed(vtep_id(ip), ip, peer)
    elif known.view.external is None:  # one of our own hosts: a peer reflecting our routes
        yield ch.Noted("evpn_own_vtep_ignored")


def _is_ours(read: ReadModel, ip: str) -> bool:
    known = read.peer_at(ip)
    return known is not None and known.view.external is None


def _remote_mac(read: ReadModel, ev: RemoteMac, our_seq: int, now: float) -> Iterator[ch.Change]:
    yield from _vtep(read, ev.vtep, ev.peer)
    if _is_ours(read, ev.vtep) or read.tenant_by_vni(ev.vni) is None:
        return
    here = vtep_id(ev.vtep)
    key = EpKey(ev.vni, ev.mac)
    ep = read.endpoint(key)
    if ep is None:
        yield ch.Learned(Endpoint(ev.vni, ev.mac, here, 0, now, set(ev.ips)), count="evpn_endpoints_imported")
        return
    if ep.host_id != here:
        owner = read.peer(ep.host_id)
        if owner is not None and owner.view.external is None and ev.seq <= our_seq:
            yield ch.Noted("evpn_stale_moves_ignored")  # ours is the newer: the peer will follow
            return
        yield ch.Moved(key, here, 0, count="evpn_moves_imported")
    yield ch.Seen(key, now)
    for ip in sorted(ev.ips - ep.ips):
        yield ch.Bound(key, ip)
    gone = ep.ips - ev.ips
    if gone:
        yield ch.Unbound(key, frozenset(gone))


def _remote_mac_gone(read: ReadModel, ev: RemoteMacGone) -> Iterator[ch.Change]:
    ep = read.endpoint(EpKey(ev.vni, ev.mac))
    owner = read.peer(ep.host_id) if ep is not None else None
    if owner is not None and owner.view.external is not None:  # not one that has moved to us since
        yield ch.Forgotten(EpKey(ev.vni, ev.mac), count="evpn_endpoints_withdrawn")


def _remote_flood(read: ReadModel, ev: RemoteFlood) -> Iterator[ch.Change]:
    yield from _vtep(read, ev.vtep, ev.peer)
    if not _is_ours(read, ev.vtep):
        yield ch.FloodMember(ev.vni, vtep_id(ev.vtep), ev.present)
