"""What the controller knows: tenants (configured), hosts (seen over OVSDB/OpenFlow), endpoints (learned)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

HOST_ID_RE = re.compile(r"[^\x00-\x1f\x7f/]{1,255}")  # OVSDB system-ids we name: anything printable, URL-safe

VNI_MAX = 0xFFFFFF
VLAN_MAX = 4094


@dataclass(frozen=True)
class Tenant:
    """A tenant is a VNI on the wire and a local VLAN on each host's br0.

    The VLAN is per host: `vlan` is the default, `vlans` overrides it on named hosts, and
    `hosts` (None = every host) limits where the tenant exists at all. Only tenants placed on
    the same host must differ in VLAN there, so the overlay holds far more than 4,094 tenants.
    """

    name: str
    vni: int
    vlan: int
    hosts: frozenset[str] | None = None
    vlans: tuple[tuple[str, int], ...] = ()

    def present_on(self, host_id: str) -> bool:
        return self.hosts is None or host_id in self.hosts

    def vlan_on(self, host_id: str) -> int:
        return self._vlan_of.get(host_id, self.vlan)

    @cached_property
    def _vlan_of(self) -> dict[str, int]:
        """vlans as a dict, made once (vlan_on runs for every entry of the tenant's on a host)."""
        return dict(self.vlans)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "vni": self.vni,
            "vlan": self.vlan,
            "hosts": sorted(self.hosts) if self.hosts is not None else None,
            "vlans": dict(sorted(self.vlans)),
        }


def vlan_clash(a: Tenant, b: Tenant) -> str | None:
    """The host id ('*' = any host) where a and b would share a local VLAN, or None."""
    named = set(dict(a.vlans)) | set(dict(b.vlans)) | set(a.hosts or ()) | set(b.hosts or ())
    for host in sorted(named):
        if a.present_on(host) and b.present_on(host) and a.vlan_on(host) == b.vlan_on(host):
            return host
    # Any host named by neither: both present only if unrestricted, with their default VLANs.
    if a.hosts is None and b.hosts is None and a.vlan == b.vlan:
        return "*"
    return None


@dataclass(frozen=True)
class TunnelPort:
    name: str
    type: str
    remote_ip: str
    ofport: int | None
    managed: bool  # created by this controller (else adopted: made by hand)
    port_uuid: str = ""


@dataclass(frozen=True)
class HostView:
    """One host as its OVSDB shows it: what the controller needs, nothing more."""

    system_id: str
    overlay_ip: str | None = None
    datapath_id: int | None = None  # br1's
    bridge_uuid: str | None = None  # br1's row, for adding ports
    patch_ofport: int | None = None  # br1's port to br0 (the article's port 1)
    tunnels: tuple[TunnelPort, ...] = ()
    member_vlans: frozenset[int] = frozenset()  # VLAN tags of br0 access ports
    attached: tuple[tuple[str, str], ...] = ()  # (MAC, br0 port) from external_ids:attached-mac
    port_vlans: tuple[tuple[str, int], ...] = ()  # (br0 access port, its tag), by name: where port rules apply
    problems: tuple[str, ...] = ()  # why it cannot join the overlay (empty: it can)
    external: str | None = None  # an external VTEP (no switch, no OVSDB): the BGP peer it came from


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a control connection: its address ("ip:port") and, over TLS with
    a verified client certificate, the certificate's CN (controller/core/identity.py decides with it)."""

    address: str
    cn: str | None = None

    @property
    def ip(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")


@dataclass
class Host:
    view: HostView
    ovsdb_connected: bool = True
    lost_since: float | None = None  # both channels down since then
    withdrawn: bool = False  # lost past the grace period: its endpoints were withdrawn
    peer: Peer | None = None  # where its OVSDB connection came from (its address, its certificate)

    @property
    def id(self) -> str:
        return self.view.system_id

    def tunnel_to(self, ip: str, tunnel_type: str) -> TunnelPort | None:
        """The tunnel port used toward a peer: ours or an adopted one of the right type."""
        return self.tunnel_index.get((ip, tunnel_type))

    @cached_property
    def tunnel_index(self) -> dict[tuple[str, str], TunnelPort]:
        """(remote ip, type) -> the port used: ours before adopted ones, then by name (a Host is
        rebuilt on every view change, so this is computed once per view)."""
        out: dict[tuple[str, str], TunnelPort] = {}
        for p in sorted(self.view.tunnels, key=lambda p: (not p.managed, p.name)):
            if p.ofport:
                out.setdefault((p.remote_ip, p.type), p)
        return out

    def has_tunnel_to(self, ip: str, tunnel_type: str) -> bool:
        """Any port of that type toward ip, up or still coming up (no ofport yet)."""
        return (ip, tunnel_type) in self.tunnel_remotes

    @cached_property
    def tunnel_remotes(self) -> set[tuple[str, str]]:
        return {(p.remote_ip, p.type) for p in self.view.tunnels}

    @cached_property
    def tunnels_by_name(self) -> dict[str, TunnelPort]:
        return {p.name: p for p in self.view.tunnels}


@dataclass(frozen=True)
class PortRule:
    """Port security on one br0 access port, as Neutron's allowed address pairs: the source MACs
    its frames may carry and the IPs they may claim (none listed: any IP of those MACs)."""

    host: str
    port: str  # the br0 port's name as its OVSDB reports it (Port.name)
    macs: frozenset[str]
    ips: frozenset[str] = frozenset()

    def to_json(self) -> dict:
        return {"host": self.host, "port": self.port, "macs": sorted(self.macs), "ips": sorted(self.ips)}


@dataclass
class Endpoint:
    vni: int
    mac: str
    host_id: str
    vlan: int  # its VLAN on its host
    last_seen: float
    ips: set[str] = field(default_factory=set)

    def to_json(self) -> dict:
        return {"mac": self.mac, "ips": sorted(self.ips), "host": self.host_id,
                "vlan": self.vlan, "last_seen": self.last_seen}
