"""Events in, operations out: the controller's decisions, in plain Python.

Each event updates the state, then the affected partitions of the affected hosts are
recomputed (pipeline.py) and diffed against what each switch holds; the diff is the list of
operations returned. Nothing here touches a socket or os-ken.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from controller import flows as f
from controller import ovsdb_model as om
from controller import packets
from controller import tables as t
from controller.ops import FlowMod, FlowPurge, GroupMod, MeterMod, Op, OvsdbTransact, Wipe
from controller.pipeline import (
    MODE_CONTROLLER,
    Settings,
    base_flows,
    endpoint_flows,
    flood_group,
    holddown_flow,
    meters,
    tenant_flows,
)
from controller.state import Endpoint, Host, HostView, Tenant

LOG = logging.getLogger(__name__)
# Partitions of a switch's flows, recomputed independently: BASE, a tenant (its VNI: flows
# and flood group), and a learned endpoint ((VNI, MAC): its entries on that switch).
BASE = "base"
Part = str | int | tuple[int, str]
TUNNEL_RETRY_S = 10.0  # a tunnel port asked for but not seen by then is asked for again

OFPRR_IDLE_TIMEOUT = 0


# Requests the article's pipeline would have flooded to every host, handled on the spot instead.
SUPPRESSED = ("arp_proxied", "arp_local", "nd_proxied", "nd_local")


def _counter_for(flow: f.Flow) -> str | None:
    """Which counter a flow's packets feed, by the flow's role."""
    if flow.table in (t.ARP_RESPONDER, t.ND_RESPONDER) and flow.priority == 10:
        proto = "arp" if flow.table == t.ARP_RESPONDER else "nd"
        return f"{proto}_proxied" if flow.actions else f"{proto}_local"
    if flow.table in (t.ARP_RESPONDER, t.ND_RESPONDER) and flow.priority == 1:
        return "floods_unknown_ip"
    if flow.table == t.FLOOD and flow.priority == 10:
        return "floods_sent"
    if flow.table == t.UNICAST and flow.priority == 10 and flow.actions:
        return "unicast_to_known"
    return None


@dataclass
class Installed:
    """What one switch holds, as far as we put it there."""

    flows: dict[object, dict[tuple, f.Flow]] = field(default_factory=dict)  # partition -> key -> flow
    groups: dict[int, f.GroupEntry] = field(default_factory=dict)
    meters: dict[int, f.Meter] = field(default_factory=dict)


class Core:
    def __init__(self, settings: Settings, tenants: list[Tenant] | tuple = ()) -> None:
        self.settings = settings
        self.tenants: dict[str, Tenant] = {tn.name: tn for tn in tenants}
        self.hosts: dict[str, Host] = {}
        self.datapaths: set[int] = set()  # connected over OpenFlow
        self.installed: dict[int, Installed] = {}
        self.endpoints: dict[tuple[int, str], Endpoint] = {}  # (vni, mac)
        self.bindings: dict[tuple[int, str], str] = {}  # (vni, ip) -> mac
        self.pending_tunnels: dict[tuple[str, str], float] = {}  # (host, port name) -> asked at
        self.forgotten_ips: set[str] = set()
        self.counters: Counter[str] = Counter()
        self.flow_packets: dict[int, dict[tuple, int]] = {}  # dpid -> flow key -> packets last seen

    # ---- queries -------------------------------------------------------------------------

    def host_of_dpid(self, dpid: int) -> Host | None:
        for host in self.hosts.values():
            if host.view.datapath_id == dpid:
                return host
        return None

    def tenant_by_vni(self, vni: int) -> Tenant | None:
        return next((tn for tn in self.tenants.values() if tn.vni == vni), None)

    def tenant_on(self, host_id: str, vlan: int) -> Tenant | None:
        for tn in self.tenants.values():
            if tn.present_on(host_id) and tn.vlan_on(host_id) == vlan:
                return tn
        return None

    def member_hosts(self, tenant: Tenant) -> set[str]:
        """Hosts with members of the tenant: learned endpoints, or br0 ports tagged with its VLAN."""
        out = {ep.host_id for ep in self.endpoints.values() if ep.vni == tenant.vni}
        out |= {h.id for h in self.hosts.values()
                if tenant.present_on(h.id) and tenant.vlan_on(h.id) in h.view.member_vlans}
        return out

    def endpoint_port(self, ep: Endpoint) -> str | None:
        """The br0 port an endpoint sits behind, when its host's OVSDB says (attached-mac)."""
        host = self.hosts.get(ep.host_id)
        return dict(host.view.attached).get(ep.mac) if host else None

    def tenant_endpoints(self, vni: int) -> list[Endpoint]:
        return sorted((ep for ep in self.endpoints.values() if ep.vni == vni), key=lambda e: e.mac)

    def is_programmable(self, host: Host) -> bool:
        return host.view.datapath_id in self.datapaths and host.view.patch_ofport is not None

    # ---- OpenFlow connection events ------------------------------------------------------

    def datapath_up(self, dpid: int) -> list[Op]:
        self.datapaths.add(dpid)
        self.installed[dpid] = Installed()
        ops: list[Op] = [Wipe(dpid)]
        host = self.host_of_dpid(dpid)
        if host is not None:
            ops += self._reconcile([host])
        return ops

    def datapath_down(self, dpid: int) -> list[Op]:
        self.datapaths.discard(dpid)
        self.installed.pop(dpid, None)
        return []

    # ---- OVSDB events --------------------------------------------------------------------

    def host_view(self, view: HostView, now: float) -> list[Op]:
        old = self.hosts.get(view.system_id)
        if old is not None and old.view == view and old.ovsdb_connected:
            return []
        if old is None:
            LOG.info("host %s joined (overlay ip %s)", view.system_id, view.overlay_ip)
        self.hosts[view.system_id] = Host(view)
        if view.overlay_ip:
            self.forgotten_ips.discard(view.overlay_ip)
        return self._tunnel_ops(now) + self._reconcile(list(self.hosts.values()))

    def ovsdb_down(self, system_id: str) -> list[Op]:
        host = self.hosts.get(system_id)
        if host is not None:
            host.ovsdb_connected = False
        return []

    def forget_host(self, system_id: str, now: float) -> list[Op]:
        """An operator removed a host: drop its endpoints and the tunnels toward it everywhere."""
        host = self.hosts.pop(system_id)
        if host.view.overlay_ip:
            self.forgotten_ips.add(host.view.overlay_ip)
        for key, ep in list(self.endpoints.items()):
            if ep.host_id == system_id:
                self._drop_endpoint(key)
        return self._tunnel_ops(now) + self._reconcile(list(self.hosts.values()))

    def retune_tunnels(self, settings: Settings, now: float) -> list[Op]:
        """A new tunnel kind or tunnel_ports mode on a running overlay, without a restart.

        New ports are asked for at once; traffic keeps the old ones until the new are up,
        and the old ones go only then (tunnel_ports.py).
        """
        self.settings = settings
        return self._tunnel_ops(now) + self._reconcile(list(self.hosts.values()))

    def _tunnel_ops(self, now: float) -> list[Op]:
        """Create the missing tunnel ports (and remove ours toward forgotten hosts) on every host.

        Which ports a host needs is the tunnel_ports mode's (mesh: one per peer; flow: one).
        """
        kind, ports = self.settings.tunnel_type, self.settings.tunnel_ports
        peers = {h.id: h.view.overlay_ip for h in self.hosts.values() if h.view.overlay_ip}
        ops: list[Op] = []
        for host in self.hosts.values():
            view = host.view
            seen = {p.name for p in view.tunnels}
            for key in [k for k in self.pending_tunnels if k[0] == host.id and k[1] in seen]:
                del self.pending_tunnels[key]
            if not (host.ovsdb_connected and view.bridge_uuid and view.overlay_ip):
                continue
            peer_ips = [ip for peer_id, ip in sorted(peers.items()) if peer_id != host.id and ip != view.overlay_ip]
            missing = []
            for ip in ports.missing(view, kind, peer_ips):
                name = om.tunnel_name(kind, ip)
                asked = self.pending_tunnels.get((host.id, name))
                if asked is not None and now - asked < TUNNEL_RETRY_S:
                    continue
                self.pending_tunnels[(host.id, name)] = now
                missing.append(ip)
            if missing:
                ops.append(OvsdbTransact(host.id, om.add_tunnels_txn(
                    view.bridge_uuid, kind, view.overlay_ip, missing), f"tunnels to {missing}"))
            stale = {p.port_uuid for p in view.tunnels if p.managed and p.remote_ip in self.forgotten_ips}
            stale |= {p.port_uuid for p in ports.replaced(view, kind, peer_ips)}
            stale.discard("")
            if stale:
                ops.append(OvsdbTransact(host.id, om.del_ports_txn(view.bridge_uuid, sorted(stale)),
                                         "remove tunnels to forgotten hosts or of another kind or mode"))
                if self.is_programmable(host):  # learn() entries may send out of a removed port
                    ops += self._purge_learned_on(host)
        return ops

    # ---- tenants (from REST) -------------------------------------------------------------

    def put_tenant(self, tenant: Tenant) -> list[Op]:
        """Create or replace a tenant; a changed VNI or VLAN re-programs only this tenant."""
        old = self.tenants.get(tenant.name)
        self.tenants[tenant.name] = tenant
        ops: list[Op] = []
        if old is not None and old != tenant:
            for key in [k for k in self.endpoints if k[0] == old.vni]:
                self._drop_endpoint(key)  # relearned under the new numbering
            ops += self._purge_learned(old)
        return ops + self._reconcile(list(self.hosts.values()))

    def delete_tenant(self, name: str) -> list[Op]:
        old = self.tenants.pop(name)
        for key in [k for k in self.endpoints if k[0] == old.vni]:
            self._drop_endpoint(key)
        return self._purge_learned(old) + self._reconcile(list(self.hosts.values()))

    def _purge_learned(self, tenant: Tenant) -> list[Op]:
        """learn() entries are the switch's own: remove those of a tenant that changed or left."""
        if self.settings.mode == MODE_CONTROLLER:
            return []
        ops: list[Op] = []
        for host in self.hosts.values():
            if self.is_programmable(host) and tenant.present_on(host.id):
                ops.append(FlowPurge(host.view.datapath_id, t.UNICAST,
                                     f.match(vlan_vid=(tenant.vlan_on(host.id), 0x0FFF))))
        return ops

    def _purge_learned_on(self, host: Host) -> list[Op]:
        if self.settings.mode == MODE_CONTROLLER:
            return []
        return [FlowPurge(host.view.datapath_id, t.UNICAST, f.match(vlan_vid=(tn.vlan_on(host.id), 0x0FFF)))  # type: ignore[arg-type]
                for tn in self.tenants.values() if tn.present_on(host.id)]

    # ---- learning ------------------------------------------------------------------------

    def packet_in(self, dpid: int, data: bytes, now: float, table: int | None = None) -> list[Op]:
        """Learn from a packet-in; one from a responder's miss also holds that unknown IP down."""
        ops = self._learn(dpid, data, now)
        if table not in (t.ARP_RESPONDER, t.ND_RESPONDER):
            return ops
        frame = packets.parse(data)
        host = self.host_of_dpid(dpid)
        tenant = frame and host and self.tenant_on(host.id, frame.vlan)
        if not (frame and host and tenant and frame.asks_for):
            return ops
        if (tenant.vni, frame.asks_for) in self.bindings:
            return ops  # learned meanwhile: its responder entry answers from now on
        self.counters["unknown_ip_holddowns"] += 1
        return ops + [FlowMod(dpid, holddown_flow(self.settings, tenant, host.id, frame.asks_for))]

    def _learn(self, dpid: int, data: bytes, now: float) -> list[Op]:
        self.counters["packet_in"] += 1
        frame = packets.parse(data)
        host = self.host_of_dpid(dpid)
        if frame is None:
            self.counters["packet_in_malformed"] += 1
            return []
        if host is None or self.settings.mode != MODE_CONTROLLER:
            self.counters["packet_in_ignored"] += 1
            return []
        tenant = self.tenant_on(host.id, frame.vlan)
        if tenant is None:
            self.counters["packet_in_unknown_vlan"] += 1
            return []
        key = (tenant.vni, frame.src)
        ep = self.endpoints.get(key)
        changed: set[tuple[int, str]] = set()
        if ep is None:
            ep = self.endpoints[key] = Endpoint(tenant.vni, frame.src, host.id, frame.vlan, now)
            self.counters["endpoints_learned"] += 1
            changed.add(key)
        elif ep.host_id != host.id:
            LOG.info("MAC %s of %s moved %s -> %s", frame.src, tenant.name, ep.host_id, host.id)
            ep.host_id, ep.vlan = host.id, frame.vlan
            self.counters["mac_moves"] += 1
            changed.add(key)
        ep.last_seen = now
        if frame.ip is not None and self.bindings.get((tenant.vni, frame.ip)) != frame.src:
            previous = self.endpoints.get((tenant.vni, self.bindings.get((tenant.vni, frame.ip), "")))
            if previous is not None:
                previous.ips.discard(frame.ip)
                changed.add((previous.vni, previous.mac))
            self.bindings[(tenant.vni, frame.ip)] = frame.src
            ep.ips.add(frame.ip)
            self.counters["bindings_learned"] += 1
            changed.add(key)
        if not changed:
            return []
        # Membership (the tenant's flood groups) may change too; the tenant part is small.
        return self._reconcile(list(self.hosts.values()), [tenant.vni, *sorted(changed)])

    def flow_removed(self, dpid: int, table: int, reason: int, match: dict, now: float) -> list[Op]:
        """A source entry idled out: the MAC went silent, so it is forgotten everywhere."""
        host = self.host_of_dpid(dpid)
        inst = self.installed.get(dpid)
        if host is None or table != t.SRC_MAC or reason != OFPRR_IDLE_TIMEOUT:
            return []
        vid, mac = match.get("vlan_vid"), match.get("eth_src")
        tenant = self.tenant_on(host.id, (vid or 0) & 0x0FFF)
        if tenant is None or not isinstance(mac, str):
            return []
        key = (tenant.vni, mac)
        ep = self.endpoints.get(key)
        if ep is None or ep.host_id != host.id:
            return []
        if inst is not None:  # the switch has already removed it
            inst.flows.get(key, {}).pop((t.SRC_MAC, 10, f.match(vlan_vid=vid, eth_src=mac)), None)
        self._drop_endpoint(key)
        self.counters["endpoints_aged"] += 1
        return self._reconcile(list(self.hosts.values()), [tenant.vni, key])

    def _drop_endpoint(self, key: tuple[int, str]) -> None:
        ep = self.endpoints.pop(key)
        for ip in ep.ips:
            if self.bindings.get((ep.vni, ip)) == ep.mac:
                del self.bindings[(ep.vni, ip)]

    # ---- what the switches counted ---------------------------------------------------------

    def flow_stats(self, dpid: int, entries: list[tuple[int, int, f.Match, int]], now: float) -> list[Op]:
        """Fold a flow-stats reply (table, priority, match, packets) into the counters.

        Counters are monotonic: each flow's increase since the last poll is added (a flow that
        was replaced restarts from zero). A source entry that counted packets refreshes its
        endpoint's last-seen time.
        """
        inst = self.installed.get(dpid)
        host = self.host_of_dpid(dpid)
        if inst is None or host is None:
            return []
        ours = {k: fl for part in inst.flows.values() for k, fl in part.items()}
        last = self.flow_packets.setdefault(dpid, {})
        for table, priority, match, count in entries:
            key = (table, priority, match)
            prev = last.get(key, 0)
            last[key] = count
            grown = count - prev if count >= prev else count
            flow = ours.get(key)
            if grown <= 0 or flow is None:
                continue
            name = _counter_for(flow)
            if name:
                self.counters[name] += grown
                if name in SUPPRESSED:
                    self.counters["floods_suppressed"] += grown
            if table == t.SRC_MAC and priority > 0:
                tenant = self.tenant_on(host.id, int(dict(match).get("vlan_vid", 0)) & 0x0FFF)
                ep = tenant and self.endpoints.get((tenant.vni, str(dict(match).get("eth_src"))))
                if ep:
                    ep.last_seen = now
        return []

    # ---- reconcile -----------------------------------------------------------------------

    def _desired(self, host: Host, part: Part) -> tuple[set[f.Flow], f.GroupEntry | None]:
        if part == BASE:
            return base_flows(self.settings, host), None
        if isinstance(part, tuple):
            ep = self.endpoints.get(part)
            tenant = self.tenant_by_vni(part[0])
            if ep is None or tenant is None:
                return set(), None
            return endpoint_flows(self.settings, host, tenant, ep, self.hosts), None
        tenant = self.tenant_by_vni(part)  # type: ignore[arg-type]
        if tenant is None or not tenant.present_on(host.id) or host.view.patch_ofport is None:
            return set(), None
        members = self.member_hosts(tenant)
        return tenant_flows(self.settings, host, tenant), flood_group(self.settings, host, tenant, self.hosts, members)

    def _reconcile(self, hosts: list[Host], only: list[Part] | None = None) -> list[Op]:
        """Diff desired against installed for the given hosts (only some partitions, if given).

        Order matters to the switch: meters and groups before the flows that use them,
        flow deletes before adds (a key may move between partitions), group deletes last.
        """
        first: list[Op] = []
        deletes: list[Op] = []
        adds: list[Op] = []
        last: list[Op] = []
        for host in hosts:
            if not self.is_programmable(host):
                continue
            dpid = host.view.datapath_id
            assert dpid is not None
            inst = self.installed[dpid]
            want_meters = {m.meter_id: m for m in meters(self.settings)}
            for mid, m in want_meters.items():
                if inst.meters.get(mid) != m:
                    first.append(MeterMod(dpid, m, "modify" if mid in inst.meters else "add"))
            inst.meters = want_meters
            if only is None:
                parts = {BASE} | set(inst.flows) | {tn.vni for tn in self.tenants.values()} | set(self.endpoints)
            else:
                parts = set(only)
            for part in sorted(parts, key=str):
                want_flows, want_group = self._desired(host, part)
                want = {fl.key: fl for fl in want_flows}
                have = inst.flows.get(part, {})
                deletes += [FlowMod(dpid, fl, delete=True) for k, fl in have.items() if k not in want]
                adds += [FlowMod(dpid, fl) for k, fl in want.items() if have.get(k) != fl]
                inst.flows[part] = want
                if not isinstance(part, int):
                    continue
                have_group = inst.groups.get(part)  # type: ignore[arg-type]
                if want_group is not None and want_group != have_group:
                    first.append(GroupMod(dpid, want_group, "modify" if have_group else "add"))
                    inst.groups[part] = want_group  # type: ignore[index]
                elif want_group is None and have_group is not None:
                    last.append(GroupMod(dpid, have_group, "delete"))
                    del inst.groups[part]  # type: ignore[arg-type]
        self.counters["flow_mods"] += len(deletes) + len(adds)
        return first + deletes + adds + last
