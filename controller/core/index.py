"""What the controller knows, indexed the ways events ask for it, kept up to date incrementally.

Every lookup an event makes (tenant by VNI, tenant by (host, VLAN), host by datapath id,
endpoints by tenant and by host, member hosts of a tenant) is a dict access, so an event's cost
follows what it changes, not the size of the overlay.

Membership is what placement follows: a host is a member of a tenant while it has a learned
endpoint of the tenant or a br0 port tagged with the tenant's VLAN there. Methods that can change
membership return the (vni, host) pairs whose membership flipped, for the core to reprogram.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from controller.core.parts import EpKey
from controller.model.state import Endpoint, Host, HostView, Tenant

Flip = tuple[int, str]  # (vni, host id)
Kept = tuple[list[Endpoint], set[str]]  # what a changed tenant keeps: endpoints, external flood members


class Index:
    def __init__(self, tenants: Iterable[Tenant] = (), recounted: Callable[[Flip], None] = lambda spot: None) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.by_vni: dict[int, Tenant] = {}
        self._global_vlan: dict[int, set[str]] = defaultdict(set)  # default VLAN -> tenants on every host
        self._host_vlan: dict[str, dict[int, str]] = defaultdict(dict)  # host -> VLAN -> tenant named there
        self.hosts: dict[str, Host] = {}
        self.peers: dict[str, Host] = {}  # what tunnels lead to: the hosts, and external VTEPs (EVPN)
        self.by_dpid: dict[int, str] = {}
        self.host_by_ip: dict[str, str] = {}  # overlay ip -> host id
        self.endpoints: dict[EpKey, Endpoint] = {}
        self.eps_by_vni: dict[int, set[EpKey]] = defaultdict(set)
        self.eps_by_host: dict[str, set[EpKey]] = defaultdict(set)
        self.ep_count: Counter[Flip] = Counter()
        self.recounted = recounted  # told of every (vni, host) whose ep_count changed (the learning cap)
        self.bindings: dict[tuple[int, str], str] = {}  # (vni, ip) -> mac
        self.tagged: dict[int, set[str]] = defaultdict(set)  # vni -> hosts with a br0 port in its VLAN
        self.members: dict[int, set[str]] = defaultdict(set)  # vni -> member hosts
        self.placed: dict[str, set[int]] = defaultdict(set)  # host -> vnis it is a member of
        for tn in tenants:
            self._index_tenant(tn)

    # ---- tenants -----------------------------------------------------------------------------

    def tenant_by_vni(self, vni: int) -> Tenant | None:
        return self.by_vni.get(vni)

    def tenant_on(self, host_id: str, vlan: int) -> Tenant | None:
        name = self._host_vlan.get(host_id, {}).get(vlan)
        if name is not None:
            return self.tenants[name]
        for name in self._global_vlan.get(vlan, ()):
            tn = self.tenants[name]
            if tn.vlan_on(host_id) == vlan:  # not overridden on this host
                return tn
        return None

    def named_on(self, host_id: str) -> list[str]:
        """Tenants that name this host (in hosts or a VLAN override)."""
        return list(self._host_vlan.get(host_id, {}).values())

    def clash_candidates(self, tn: Tenant) -> list[Tenant]:
        """The tenants that could share tn's VNI or a local VLAN: all of them when tn is on every
        host; else those named on tn's hosts, those on every host and the VNI's (the rest are
        nowhere tn is). A create costs O(its hosts), not O(tenants)."""
        if tn.hosts is None:
            return list(self.tenants.values())
        names = {n for h in tn.hosts for n in self._host_vlan.get(h, {}).values()}
        names |= {n for every in self._global_vlan.values() for n in every}
        if tn.vni in self.by_vni:
            names.add(self.by_vni[tn.vni].name)
        return [self.tenants[n] for n in names]

    def _index_tenant(self, tn: Tenant) -> None:
        self.tenants[tn.name] = tn
        self.by_vni[tn.vni] = tn
        if tn.hosts is None:
            self._global_vlan[tn.vlan].add(tn.name)
        named = set(tn.hosts or ()) | set(dict(tn.vlans))
        for host in named:
            if tn.present_on(host):
                self._host_vlan[host][tn.vlan_on(host)] = tn.name

    def _unindex_tenant(self, tn: Tenant) -> None:
        del self.tenants[tn.name]
        if self.by_vni.get(tn.vni) == tn:
            del self.by_vni[tn.vni]
        self._global_vlan[tn.vlan].discard(tn.name)
        for host in set(tn.hosts or ()) | set(dict(tn.vlans)):
            vlans = self._host_vlan.get(host, {})
            if vlans.get(tn.vlan_on(host)) == tn.name:
                del vlans[tn.vlan_on(host)]

    def put_tenant(self, tn: Tenant) -> list[Flip]:
        old = self.tenants.get(tn.name)
        flips: list[Flip] = []
        if old is not None:
            flips += self.delete_tenant(old.name)
        self._index_tenant(tn)
        for host in self.hosts.values():
            if tn.present_on(host.id) and tn.vlan_on(host.id) in host.view.member_vlans:
                self.tagged[tn.vni].add(host.id)
                flips += self._refresh_member(tn.vni, host.id)
        return flips

    def delete_tenant(self, name: str) -> list[Flip]:
        """Forget a tenant and its endpoints; returns the memberships that ended."""
        tn = self.tenants[name]
        for key in list(self.eps_by_vni.get(tn.vni, ())):
            self.drop_endpoint(key)
        self.tagged.pop(tn.vni, None)
        flips = [(tn.vni, h) for h in sorted(self.members.pop(tn.vni, set()))]
        for _, h in flips:
            self.placed[h].discard(tn.vni)
        self._unindex_tenant(tn)
        return flips

    def kept_by(self, old: Tenant, new: Tenant) -> Kept:
        """What a changed tenant keeps: its endpoints on hosts where it still is (re-keyed to the
        new VNI, on the host's new VLAN, with their IPs); under the same VNI also those behind
        external VTEPs and those VTEPs' places in its flood (an EVPN peer's routes name the VNI:
        a new VNI is not theirs)."""
        eps: list[Endpoint] = []
        for key in sorted(self.eps_by_vni.get(old.vni, ())):
            ep = self.endpoints[key]
            if ep.host_id in self.hosts:
                if not new.present_on(ep.host_id):
                    continue
                vlan = new.vlan_on(ep.host_id)
            elif new.vni != old.vni:
                continue
            else:
                vlan = ep.vlan
            eps.append(Endpoint(new.vni, ep.mac, ep.host_id, vlan, ep.last_seen, set(ep.ips)))
        external: set[str] = set()
        if new.vni == old.vni:
            external = {p for p in self.tagged.get(old.vni, ()) if p not in self.hosts}
        return eps, external

    # ---- hosts -------------------------------------------------------------------------------

    def host_of_dpid(self, dpid: int) -> Host | None:
        host_id = self.by_dpid.get(dpid)
        return self.hosts.get(host_id) if host_id is not None else None

    def put_host(self, view: HostView, ovsdb_connected: bool = True) -> list[Flip]:
        old = self.hosts.get(view.system_id)
        if old is not None and old.view.datapath_id is not None:
            if self.by_dpid.get(old.view.datapath_id) == old.id:
                del self.by_dpid[old.view.datapath_id]
        if old is not None and self.host_by_ip.get(old.view.overlay_ip or "") == old.id:
            del self.host_by_ip[old.view.overlay_ip]  # type: ignore[arg-type]
        host = Host(view, ovsdb_connected)
        if old is not None:
            host.lost_since, host.peer = old.lost_since, old.peer
        self.hosts[view.system_id] = host
        self.peers[view.system_id] = host
        if view.datapath_id is not None:
            self.by_dpid[view.datapath_id] = view.system_id
        if view.overlay_ip:
            self.host_by_ip[view.overlay_ip] = view.system_id
        before = old.view.member_vlans if old is not None else frozenset()
        flips: list[Flip] = []
        for vlan in before ^ view.member_vlans:
            tn = self.tenant_on(view.system_id, vlan)
            if tn is None:
                continue
            if vlan in view.member_vlans:
                self.tagged[tn.vni].add(view.system_id)
            else:
                self.tagged[tn.vni].discard(view.system_id)
            flips += self._refresh_member(tn.vni, view.system_id)
        return flips

    def drop_host(self, host_id: str) -> list[Flip]:
        host = self.hosts.pop(host_id)
        self.peers.pop(host_id, None)
        if host.view.datapath_id is not None and self.by_dpid.get(host.view.datapath_id) == host_id:
            del self.by_dpid[host.view.datapath_id]
        if self.host_by_ip.get(host.view.overlay_ip or "") == host_id:
            del self.host_by_ip[host.view.overlay_ip]  # type: ignore[arg-type]
        flips: list[Flip] = []
        for key in list(self.eps_by_host.get(host_id, ())):
            flips += self.drop_endpoint(key)
        for vni in list(self.placed.get(host_id, ())):
            self.tagged[vni].discard(host_id)
            flips += self._refresh_member(vni, host_id)
        return flips

    def put_vtep(self, view: HostView) -> Host:
        """An external VTEP (controller/bgp/external.py): a tunnel peer without a switch, never a host."""
        vtep = Host(view, ovsdb_connected=False)
        self.peers[view.system_id] = vtep
        if view.overlay_ip:
            self.host_by_ip[view.overlay_ip] = view.system_id
        return vtep

    def set_flood_member(self, vni: int, peer_id: str, member: bool) -> list[Flip]:
        """An external VTEP in (or out of) a VNI's flood list, as a br0 port tags an OVS host."""
        if member:
            self.tagged[vni].add(peer_id)
        else:
            self.tagged[vni].discard(peer_id)
        return self._refresh_member(vni, peer_id)

    # ---- endpoints ---------------------------------------------------------------------------

    def tenant_endpoints(self, vni: int) -> list[Endpoint]:
        return sorted((self.endpoints[k] for k in self.eps_by_vni.get(vni, ())), key=lambda e: e.mac)

    def add_endpoint(self, ep: Endpoint) -> list[Flip]:
        key = EpKey(ep.vni, ep.mac)
        self.endpoints[key] = ep
        self.eps_by_vni[ep.vni].add(key)
        return self._place(key, ep.host_id, +1)

    def move_endpoint(self, key: EpKey, host_id: str, vlan: int) -> list[Flip]:
        ep = self.endpoints[key]
        flips = self._place(key, ep.host_id, -1)
        ep.host_id, ep.vlan = host_id, vlan
        return flips + self._place(key, host_id, +1)

    def drop_endpoint(self, key: EpKey) -> list[Flip]:
        ep = self.endpoints.pop(key)
        self.eps_by_vni[ep.vni].discard(key)
        for ip in ep.ips:
            if self.bindings.get((ep.vni, ip)) == ep.mac:
                del self.bindings[(ep.vni, ip)]
        return self._place(key, ep.host_id, -1)

    def bind(self, key: EpKey, ip: str) -> EpKey | None:
        """Bind ip to the endpoint; returns the endpoint that held it before, if another."""
        vni, mac = key
        previous = self.bindings.get((vni, ip))
        self.bindings[(vni, ip)] = mac
        self.endpoints[key].ips.add(ip)
        if previous is None or previous == mac:
            return None
        prev_ep = self.endpoints.get((vni, previous))
        if prev_ep is not None:
            prev_ep.ips.discard(ip)
            return EpKey(vni, previous)
        return None

    def unbind(self, key: EpKey, ips: Iterable[str]) -> None:
        """These IPs are no longer the endpoint's (bindings another endpoint took since stay its)."""
        ep = self.endpoints[key]
        for ip in ips:
            if self.bindings.get((key.vni, ip)) == key.mac:
                del self.bindings[(key.vni, ip)]
            ep.ips.discard(ip)

    def _place(self, key: EpKey, host_id: str, delta: int) -> list[Flip]:
        vni = key[0]
        if delta > 0:
            self.eps_by_host[host_id].add(key)
        else:
            self.eps_by_host[host_id].discard(key)
        self.ep_count[(vni, host_id)] += delta
        self.recounted((vni, host_id))
        if self.ep_count[(vni, host_id)] <= 0:
            del self.ep_count[(vni, host_id)]
        return self._refresh_member(vni, host_id)

    def _refresh_member(self, vni: int, host_id: str) -> list[Flip]:
        member = self.ep_count.get((vni, host_id), 0) > 0 or host_id in self.tagged.get(vni, ())
        was = host_id in self.members.get(vni, ())
        if member == was:
            return []
        if member:
            self.members[vni].add(host_id)
            self.placed[host_id].add(vni)
        else:
            self.members[vni].discard(host_id)
            self.placed[host_id].discard(vni)
        return [(vni, host_id)]
