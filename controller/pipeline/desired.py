"""The flows, groups and meters one host's br1 should hold, computed from state alone.

Per partition of a host's flows (controller/core/parts.py), so an event recomputes only what it
can change: the fixed pipeline, a tunnel port's classify flow, a tenant (tunnel-in, flood,
responder misses and its flood group), a learned endpoint's entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from functools import lru_cache

from controller.model import flows as f
from controller.model import tables as t
from controller.model.memo import Recent
from controller.model.state import Endpoint, Host, Tenant
from controller.pipeline.learning_modes import punt  # noqa: F401 (re-exported)
from controller.pipeline.port_security import Guard, guard_flows
from controller.pipeline.settings import Settings


def meters(s: Settings) -> tuple[f.Meter, ...]:
    return s.learning.meters(s.learn_rate, s.flood_rate)


def base_flows(s: Settings, host: Host) -> set[f.Flow]:
    patch = host.view.patch_ofport
    if patch is None:
        return set()
    ck = f.COOKIE_BASE
    return s.learning.local_path(patch, ck, s.tunnel_ports.learn_tun_dst) | {
        f.Flow(t.LOCAL_SPLIT, t.PRIO_ENTRY, f.match(eth_dst=f.UNICAST_MAC), goto=t.UNICAST, cookie=ck),
        f.Flow(t.LOCAL_SPLIT, t.PRIO_ENTRY, f.match(eth_dst=f.MULTICAST_MAC), goto=t.FLOOD, cookie=ck),
        f.Flow(t.UNICAST, t.PRIO_MISS, f.match(), goto=t.FLOOD, cookie=ck),
    }


def source_match(vid: int, mac: str) -> f.Match:
    """What a learned endpoint's source entry matches on its own host (and, capped, its flood entry)."""
    return f.match(vlan_vid=vid, eth_src=mac)


def source_key(vid: int, mac: str) -> tuple[int, int, f.Match]:
    """The source entry's key (table, priority, match): the switch removes it when the MAC idles out."""
    return t.SRC_MAC, t.PRIO_ENTRY, source_match(vid, mac)


def source_of(match: Mapping[str, object]) -> tuple[object, object]:
    """(VLAN tag, MAC) of a source or binding entry, from its match as the switch reports it: as
    reported (absent: None; masked: a tuple), for the caller to check."""
    return match.get("vlan_vid"), match.get("eth_src")


def tunnel_classify(host: Host, port_name: str) -> set[f.Flow]:
    """Arriving over one tunnel port: on to the tunnel path (its own partition: ports come and go)."""
    port = host.tunnels_by_name.get(port_name)
    if port is None or not port.ofport or host.view.patch_ofport is None:
        return set()
    return {f.Flow(t.CLASSIFY, t.PRIO_CLASSIFY, f.match(in_port=port.ofport), goto=t.TUNNEL_IN, cookie=f.COOKIE_TUNNEL)}


def flood_group(s: Settings, host: Host, tenant: Tenant, hosts: Mapping[str, Host],
                member_hosts: set[str]) -> f.GroupEntry:
    """One copy per remote host of the tenant (learn mode: every remote host)."""
    buckets = []
    for peer_id in sorted(s.learning.flood_peers(member_hosts, hosts.keys())):
        peer = hosts.get(peer_id)
        if peer is None or peer.id == host.id or not peer.view.overlay_ip \
                or not (tenant.present_on(peer.id) or peer.view.external):
            continue
        out = s.tunnel_ports.output(host, peer.view.overlay_ip, s.tunnel_type)
        if out is not None:
            buckets.append(f.Bucket(out))
    return f.GroupEntry(tenant.vni, tuple(buckets))


# Actions every endpoint's answers share: one object each (and one encoding, one repr).
_SRC_TO_DST = f.Move("eth_src", "eth_dst", 48)
_ARP_OP_REPLY = f.SetField("arp_op", 2)
_SHA_TO_THA = f.Move("arp_sha", "arp_tha", 48)
_SPA_TO_TPA = f.Move("arp_spa", "arp_tpa", 32)
_BACK = f.Output(f.OFPP_IN_PORT)
_IP6_SRC_TO_DST = f.Move("ipv6_src", "ipv6_dst", 128)
_NA = f.SetField("icmpv6_type", f.ICMPV6_NA)
_NA_FLAGS = f.SetField("nd_reserved", 0x60000000)
_TO_ND_REPLY = f.Resubmit(t.ND_REPLY)
_TLL_OPTION = f.SetField("nd_options_type", 2)
_POP_VLAN = f.PopVlan()
_TO_SRC_MAC = (f.Resubmit(t.SRC_MAC),)


@lru_cache(maxsize=1 << 13)  # the same actions on every member host of the endpoint, made within moments
def _arp_reply(mac: str, ip: str) -> tuple[f.Action, ...]:
    """Turn the ARP request into the reply the owner of ip would send (as Neutron's responder)."""
    return (_SRC_TO_DST, f.SetField("eth_src", mac), _ARP_OP_REPLY, _SHA_TO_THA, _SPA_TO_TPA,
            f.SetField("arp_sha", mac), f.SetField("arp_spa", ip), _BACK)


@lru_cache(maxsize=1 << 13)
def _na_reply(mac: str, ip: str) -> tuple[f.Action, ...]:
    """Turn a neighbour solicitation into the advertisement the owner of ip would send.

    Flags Solicited + Override; the option becomes a target link-layer address in ND_REPLY,
    because OVS checks nd_tll's prerequisite (an NA) against the flow's match.
    """
    return (_SRC_TO_DST, f.SetField("eth_src", mac), _IP6_SRC_TO_DST, f.SetField("ipv6_src", ip), _NA, _NA_FLAGS,
            _TO_ND_REPLY)


@lru_cache(maxsize=1 << 13)
def _na_option(mac: str) -> tuple[f.Action, ...]:
    return (_TLL_OPTION, f.SetField("ipv6_nd_tll", mac), _BACK)


@lru_cache(maxsize=1 << 16)
def _flood(vni: int) -> tuple[f.Action, ...]:
    return (_POP_VLAN, f.SetField("tunnel_id", vni), f.Group(vni))


@lru_cache(maxsize=1 << 16)
def _unicast(vni: int, to_owner: tuple[f.Action, ...]) -> tuple[f.Action, ...]:
    return (_POP_VLAN, f.SetField("tunnel_id", vni), *to_owner)


def tenant_flows(s: Settings, host: Host, tenant: Tenant, capped: bool = False,
                 guard: Guard | None = None) -> set[f.Flow]:
    """A tenant's own flows on a host: tunnel ID <-> VLAN, flood, responder misses, and where a
    br0 port of it has a rule, port security (port_security.py).

    ``capped``: the tenant's learning on this host is at max_endpoints (controller/core/flood_cap.py):
    its floods go out only for the sources it learned (endpoint_flows); others stay on the host.
    """
    if not tenant.present_on(host.id) or host.view.patch_ofport is None:
        return set()
    vni, vid = tenant.vni, tenant.vlan_on(host.id) | f.OFPVID_PRESENT
    ck = f.cookie(f.COOKIE_TENANT, vni)
    out = {
        f.Flow(t.TUNNEL_IN, t.PRIO_ENTRY, f.match(tunnel_id=vni),
               (f.PushVlan(), f.SetField("vlan_vid", vid)), goto=t.TO_LOCAL, cookie=ck),
        f.Flow(t.FLOOD, t.PRIO_ENTRY, f.match(vlan_vid=vid), () if capped else _flood(vni), cookie=ck,
               role=f.ROLE_NONE if capped else f.ROLE_FLOOD),
    }
    if guard is not None:
        out |= guard_flows(s.learning.from_br0(), host.view.patch_ofport, vid, guard, ck)
    return out | s.learning.tenant_extras(vid, ck)


def tenant_inputs(s: Settings, host: Host, tenant: Tenant, capped: bool = False, guard: Guard | None = None) -> tuple:
    """Everything tenant_flows reads: equal inputs, equal flows. A tenant's partition is recomputed on
    every membership change for its flood group; its flows change far less often."""
    return (s.learning, tenant.present_on(host.id), host.view.patch_ofport, tenant.vni, tenant.vlan_on(host.id),
            capped, guard)


def endpoint_flows(s: Settings, host: Host, tenant: Tenant, ep: Endpoint, hosts: Mapping[str, Host],
                   capped: bool = False) -> AbstractSet[f.Flow]:
    """One learned endpoint's entries on a host: unicast, responders, and at home its source entry
    (and, while the tenant's learning there is ``capped``, its own way into the flood)."""
    if not tenant.present_on(host.id) or host.view.patch_ofport is None:
        return set()
    vni, vid = tenant.vni, tenant.vlan_on(host.id) | f.OFPVID_PRESENT
    eck = f.cookie(f.COOKIE_ENDPOINT, vni)
    if ep.host_id != host.id:
        owner = hosts.get(ep.host_id)
        to_owner = owner and owner.view.overlay_ip and s.tunnel_ports.output(host, owner.view.overlay_ip,
                                                                             s.tunnel_type)
        if not to_owner:
            return set()
        return _remote_entries(vid, ep.mac, ep.ips, vni, eck, to_owner)
    # Seen here: no more packet-ins for it; the idle timeout tells when it went silent.
    table, priority, match = source_key(vid, ep.mac)
    out = {f.Flow(table, priority, match, cookie=eck,
                  idle_timeout=s.mac_idle_timeout, notify_removed=True, role=f.ROLE_SOURCE),
           f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(vlan_vid=vid, eth_dst=ep.mac), (), cookie=eck)}  # br0 delivers it
    if capped:
        out.add(f.Flow(t.FLOOD, t.PRIO_LEARNED_SOURCE, match, _flood(vni), cookie=eck, role=f.ROLE_FLOOD))
    for ip in ep.ips:
        out.add(_binding(vid, ep.mac, ip, eck))
        _add(out, s.learning.known_sender(vid, ep.mac, ip, eck))
        out.update(_answers(vid, ep.mac, ip, eck, True))
    return out


# An endpoint's entries are made for all its member hosts within moments, but moments of a backlog:
# learning at 1,000 hosts, thousands of endpoints wait their turn between two of their hosts.
_REMOTE: Recent[tuple, tuple[tuple[f.Action, ...], int, frozenset[f.Flow]]] = Recent(1 << 12)


def _remote_entries(vid: int, mac: str, ips: set[str], vni: int, eck: int, to_owner: tuple[f.Action, ...]
                    ) -> frozenset[f.Flow]:
    """An endpoint's entries on a host other than its own. Made once per endpoint and way to its
    owner (to_owner: one tuple per port and peer, tunnel_ports.py; keyed by identity, as hashing
    the actions costs as much as the flows): every host where the tenant has that VLAN shares
    these flows, and what is made of a flow (its hash, digest and bytes) is made once for them all;
    on a host with another VLAN they are the same flows on that VLAN (flows.on_vlan), whose bytes
    the encoder patches from these."""
    key = (mac, tuple(ips), eck, id(to_owner))
    hit = _REMOTE.get(key)
    if hit is not None and hit[0] is to_owner:  # kept with its flows: its id is not reused meanwhile
        if hit[1] == vid:
            return hit[2]
        return frozenset([f.on_vlan(fl, vid) for fl in hit[2]])
    out = {f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(vlan_vid=vid, eth_dst=mac), _unicast(vni, to_owner), cookie=eck,
                  role=f.ROLE_UNICAST_KNOWN)}
    for ip in ips:
        out.update(_answers(vid, mac, ip, eck, False))
    flows = frozenset(out)
    _REMOTE.put(key, (to_owner, vid, flows))
    return flows


def _binding(vid: int, mac: str, ip: str, eck: int) -> f.Flow:
    """A local endpoint's known (MAC, IP): nothing for the learning tables to learn."""
    if ":" in ip:
        m = f.match(vlan_vid=vid, eth_src=mac, eth_type=f.ETH_TYPE_IPV6, ip_proto=f.IPPROTO_ICMPV6, ipv6_src=ip)
    else:
        m = f.match(vlan_vid=vid, eth_src=mac, eth_type=f.ETH_TYPE_ARP, arp_spa=ip)
    return f.Flow(t.SRC_BINDING, t.PRIO_BINDING, m, _TO_SRC_MAC, cookie=eck, role=f.ROLE_BINDING)


@lru_cache(maxsize=1 << 13)  # the same on every host where the tenant has that VLAN: made once for them all
def _answers(vid: int, mac: str, ip: str, eck: int, local: bool) -> tuple[f.Flow, ...]:
    """The ARP or ND entries of an endpoint's IP on a host: answered in the switch, or (at home)
    left to br0; a gratuitous ARP passed on."""
    if ":" in ip:
        out = [f.Flow(t.ND_RESPONDER, t.PRIO_ENTRY, f.match(
            vlan_vid=vid, eth_type=f.ETH_TYPE_IPV6, ip_proto=f.IPPROTO_ICMPV6, icmpv6_type=f.ICMPV6_NS,
            ipv6_nd_target=ip), () if local else _na_reply(mac, ip), cookie=eck,
            role=f.ROLE_ND_LOCAL if local else f.ROLE_ND_PROXY)]
        if not local:
            out.append(f.Flow(t.ND_REPLY, t.PRIO_ENTRY, f.match(
                vlan_vid=vid, eth_type=f.ETH_TYPE_IPV6, ip_proto=f.IPPROTO_ICMPV6, icmpv6_type=f.ICMPV6_NA,
                ipv6_nd_target=ip), _na_option(mac), cookie=eck))
        return tuple(out)
    # A gratuitous ARP announces ip (a VM that moved or took it over): pass it on,
    # never answer it, or the answer would teach br0 the MAC is behind br1.
    return (f.Flow(t.ARP_RESPONDER, t.PRIO_EXCEPTION, f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_ARP, arp_spa=ip,
                                                              arp_tpa=ip), goto=t.FLOOD, meter=t.METER_FLOOD,
                   cookie=eck),
            f.Flow(t.ARP_RESPONDER, t.PRIO_ENTRY, f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_ARP, arp_op=1, arp_tpa=ip),
                   () if local else _arp_reply(mac, ip), cookie=eck,
                   role=f.ROLE_ARP_LOCAL if local else f.ROLE_ARP_PROXY))


def _add(out: set[f.Flow], fl: f.Flow | None) -> None:
    if fl is not None:
        out.add(fl)


def holddown_flow(s: Settings, tenant: Tenant, host_id: str, ip: str) -> f.Flow:
    """Drop requests for an IP that was just flooded unanswered; a learned answer (PRIO_ENTRY) wins."""
    vid = tenant.vlan_on(host_id) | f.OFPVID_PRESENT
    if ":" in ip:
        m = f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_IPV6, ip_proto=f.IPPROTO_ICMPV6,
                    icmpv6_type=f.ICMPV6_NS, ipv6_nd_target=ip)
        table = t.ND_RESPONDER
    else:
        m = f.match(vlan_vid=vid, eth_type=f.ETH_TYPE_ARP, arp_op=1, arp_tpa=ip)
        table = t.ARP_RESPONDER
    return f.Flow(table, t.PRIO_HOLDDOWN, m, cookie=f.cookie(f.COOKIE_HOLDDOWN, tenant.vni),
                  hard_timeout=s.unknown_ip_holddown)
