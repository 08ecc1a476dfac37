"""Port security in br1, as Neutron's allowed-address pairs: a br0 port given a rule (its allowed
MACs and IPs) may send only from those; the switch drops other sources, and the learner ignores
ARP/ND claims for addresses the port may not use (controller/core/learning.py).

A port is named as its host's OVSDB names it (the br0 Port's name), and its VLAN is its tag there.
br1 sees a frame's VLAN, not the br0 port it came from: so the unit it enforces is (host, VLAN),
a "guarded VLAN", as soon as one port in it has a rule. What may leave br0 in a guarded VLAN:

- each ruled port's MACs, with the IPs it lists (no IP listed: any IP of those MACs);
- each other port's own MAC as its OVSDB says (external_ids:attached-mac), with any IP; a port
  without attached-mac in a guarded VLAN sends nothing (give it a rule);
- from a MAC with listed IPs also what finding an address needs: ARP probes (sender 0.0.0.0),
  DHCP (source 0.0.0.0), IPv6 DAD (source ::) and the MAC's own IPv6 link-local address.

Limit (docs/operator/security.md): ports of one VLAN on one host share their allowances, since br1
cannot tell them apart; a port cannot take a source that only another host's port may use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import HostView, PortRule

ANY: frozenset[str] = frozenset()  # an allowed MAC's IPs: no IP listed, any IP
ETH_TYPE_IPV4 = 0x0800
IPV4_UNSPECIFIED, IPV6_UNSPECIFIED = "0.0.0.0", "::"


@dataclass(frozen=True)
class Guard:
    """What may leave br0 in one guarded VLAN of one host: (MAC, the IPs it may use; ANY: any)."""

    vlan: int
    allowed: tuple[tuple[str, frozenset[str]], ...]

    def admits(self, mac: str, ip: str | None = None) -> bool:
        """May this MAC send (and claim ip, if given) here?"""
        ips = dict(self.allowed).get(mac)
        if ips is None:
            return False
        return ip is None or ips is ANY or ip in ips or ip in _implicit(mac)


def guard(rules: Mapping[str, PortRule], view: HostView, vlan: int) -> Guard | None:
    """The guard of a VLAN on a host (None: no port in it has a rule, nothing is enforced)."""
    ports = [name for name, tag in view.port_vlans if tag == vlan]
    ruled = [rules[p] for p in ports if p in rules]
    if not ruled:
        return None
    allowed: dict[str, set[str] | None] = {}  # None: any IP
    for rule in ruled:
        for mac in rule.macs:
            if not rule.ips or allowed.get(mac, set()) is None:
                allowed[mac] = None
            else:
                allowed.setdefault(mac, set()).update(rule.ips)  # type: ignore[union-attr]
    own = {port: mac for mac, port in view.attached}
    for port in ports:
        if port not in rules and port in own:
            allowed[own[port]] = None
    return Guard(vlan, tuple(sorted((mac, ANY if ips is None else frozenset(ips)) for mac, ips in allowed.items())))


def _implicit(mac: str) -> frozenset[str]:
    """Sources a host uses before it has an address: probes, DHCP, DAD, its IPv6 link-local."""
    return frozenset({IPV4_UNSPECIFIED, IPV6_UNSPECIFIED, link_local(mac)})


def link_local(mac: str) -> str:
    """The IPv6 link-local address a MAC's interface makes (modified EUI-64, RFC 4291)."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))


def guard_flows(from_br0: tuple[f.Action, ...], patch: int, vid: int, g: Guard, ck: int) -> set[f.Flow]:
    """A guarded VLAN's flows: into the port security table from classify, then per allowed MAC
    on (with its IPs) and, last, the drop of every other source (counted: ROLE_SPOOFED)."""
    ps = t.PORT_SECURITY
    out = {
        f.Flow(t.CLASSIFY, t.PRIO_GUARDED, f.match(in_port=patch, vlan_vid=vid), goto=ps, cookie=ck),
        f.Flow(ps, t.PRIO_SPOOFED, f.match(vlan_vid=vid), cookie=ck, role=f.ROLE_SPOOFED),
    }
    for mac, ips in g.allowed:
        out.add(f.Flow(ps, t.PRIO_GUARD_MAC_OK, f.match(vlan_vid=vid, eth_src=mac), from_br0, cookie=ck))
        if ips is ANY:
            continue
        v6 = {"eth_type": f.ETH_TYPE_IPV6}
        for kind, field in ((f.ETH_TYPE_ARP, "arp_spa"), (ETH_TYPE_IPV4, "ipv4_src"), (f.ETH_TYPE_IPV6, "ipv6_src")):
            out.add(f.Flow(ps, t.PRIO_GUARD_IP_DROP, f.match(vlan_vid=vid, eth_src=mac, eth_type=kind), cookie=ck,
                           role=f.ROLE_SPOOFED))
            for ip in sorted(ips | _implicit(mac)):
                if (":" in ip) == (kind == f.ETH_TYPE_IPV6):
                    out.add(f.Flow(ps, t.PRIO_GUARD_IP_OK, f.match(vlan_vid=vid, eth_src=mac, eth_type=kind,
                                                                   **{field: ip}), from_br0, cookie=ck))
        na = {**v6, "ip_proto": f.IPPROTO_ICMPV6, "icmpv6_type": f.ICMPV6_NA}
        out.add(f.Flow(ps, t.PRIO_GUARD_ND_DROP, f.match(vlan_vid=vid, eth_src=mac, **na), cookie=ck,
                       role=f.ROLE_SPOOFED))
        for ip in sorted(ip for ip in ips | {link_local(mac)} if ":" in ip):
            out.add(f.Flow(ps, t.PRIO_GUARD_ND_OK, f.match(vlan_vid=vid, eth_src=mac, **na, ipv6_nd_target=ip),
                           from_br0, cookie=ck))
    return out
