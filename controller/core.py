"""Events in, operations out: the controller's decisions, in plain Python.

Each event updates the indexed state (index.py) and marks what it changed as dirty: a partition
(BASE, a tenant, a learned endpoint) on the hosts where it lives. `drain` recomputes the dirty
partitions (pipeline.py) and diffs them against what each switch holds; the diff is the list of
operations returned. With `eager` (the default, for tests) every event drains at once; the app
turns it off and drains in slices of at most a few tens of milliseconds, so one big change never
stalls the event loop. Nothing here touches a socket or os-ken.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from controller import flows as f
from controller import tables as t
from controller.flood_cap import FloodCaps
from controller.index import EpKey, Flip, Index
from controller.learning import Learner
from controller.ops import FlowDelete, FlowMod, FlowPurge, GroupMod, MeterMod, Op, ReadSwitch
from controller.pipeline import (
    Settings,
    base_flows,
    endpoint_flows,
    flood_group,
    holddown_flow,
    meters,
    tenant_flows,
    tunnel_classify,
)
from controller.state import Endpoint, Host, HostView, Tenant
from controller.switch_state import Installed, SwitchDump, recovered_endpoints
from controller.tunnel_ops import TunnelBook, retry_overdue, tunnel_ops, tunnels_for_joined, view_tunnel_ops
from controller.tunnels import FLOW

LOG = logging.getLogger(__name__)
RECOVERY_OVER = "recovery window over"  # logged when it ends (the e2e tests wait for it)
# Partitions of a switch's flows, recomputed independently: BASE, a tenant (its VNI: flows
# and flood group), and a learned endpoint ((VNI, MAC): its entries on that switch).
BASE = "base"
LEFTOVERS = "leftovers"  # after a full pass: what a read-back switch holds that nobody wants
TUNNEL_PART = "tunnel:"  # + port name: that tunnel port's classify flow


def tunnel_part(name: str) -> str:
    return TUNNEL_PART + name

Part = str | int | tuple[int, str]

OFPRR_IDLE_TIMEOUT = 0

# What a role's packets count as (switch-side counters, read as cookie-masked aggregates).
ROLE_COUNTERS = {
    f.ROLE_ARP_PROXY: "arp_proxied", f.ROLE_ARP_LOCAL: "arp_local",
    f.ROLE_ND_PROXY: "nd_proxied", f.ROLE_ND_LOCAL: "nd_local",
    f.ROLE_FLOOD_UNKNOWN: "floods_unknown_ip", f.ROLE_FLOOD: "floods_sent",
    f.ROLE_UNICAST_KNOWN: "unicast_to_known",
}
# Requests the article's pipeline would have flooded to every host, handled on the spot instead.
SUPPRESSED = ("arp_proxied", "arp_local", "nd_proxied", "nd_local")


@dataclass
class _Dirty:
    parts: set = field(default_factory=set)
    full: bool = False


class Core:
    def __init__(self, settings: Settings, tenants: Iterable[Tenant] = (),
                 canon: Callable[[f.Match], f.Match] | None = None) -> None:
        self.settings = settings
        self.ix = Index(tenants)
        self.datapaths: set[int] = set()  # connected over OpenFlow
        self.installed: dict[int, Installed] = {}  # only for switches whose content we know
        self.dumps: dict[int, SwitchDump] = {}  # read back before the host's OVSDB view said whose it is
        self.tunnels = TunnelBook()  # tunnel ports asked for, peers still to ask for, forgotten IPs
        self.counters: Counter[str] = Counter()
        self.role_packets: dict[tuple[int, int], int] = {}  # (dpid, role) -> packets last read
        self.dirty: dict[str, _Dirty] = {}
        self.eager = True
        self.canon = canon or (lambda m: m)  # how the switch writes a match back (ofmsg.canonical_match)
        self.learner = Learner(settings, self.ix, self.counters)
        # After a restart, endpoints come back from each host's own switch; until every switch had
        # its turn (recover_until), another host's entries for them are kept, not deleted.
        self.recover_until = 0.0
        self.recovering = False
        # Partitions marked since an observer last looked (the EVPN speaker: controller/bgp.py);
        # None: nobody looks.
        self.changed: set[Part] | None = None
        self.passive = False  # a follower (controller/ha.py): it tracks state but programs nothing
        self.caps = FloodCaps()  # (host, tenant)s at their learning cap flood only learned sources

    # ---- queries -------------------------------------------------------------------------

    @property
    def tenants(self) -> dict[str, Tenant]:
        return self.ix.tenants

    @property
    def hosts(self) -> dict[str, Host]:
        return self.ix.hosts

    @property
    def endpoints(self) -> dict[EpKey, Endpoint]:
        return self.ix.endpoints

    @property
    def bindings(self) -> dict[tuple[int, str], str]:
        return self.ix.bindings

    def host_of_dpid(self, dpid: int) -> Host | None:
        return self.ix.host_of_dpid(dpid)

    def tenant_by_vni(self, vni: int) -> Tenant | None:
        return self.ix.tenant_by_vni(vni)

    def tenant_on(self, host_id: str, vlan: int) -> Tenant | None:
        return self.ix.tenant_on(host_id, vlan)

    def member_hosts(self, tenant: Tenant) -> set[str]:
        """Hosts with members of the tenant: learned endpoints, or br0 ports tagged with its VLAN."""
        return set(self.ix.members.get(tenant.vni, ()))

    def placed_on(self, host: Host) -> set[int]:
        """The tenants whose flows a host holds: where it has members (learn mode: everywhere)."""
        return self.settings.learning.placed(self.ix, host.id)

    def tenants_at(self, host_id: str) -> list[Tenant]:
        """Tenants with members on a host or assigned to it by name (not every tenant of the cloud)."""
        names = {self.ix.by_vni[v].name for v in self.ix.placed.get(host_id, ()) if v in self.ix.by_vni}
        names |= set(self.ix.named_on(host_id))
        return [self.ix.tenants[n] for n in sorted(names)]

    def endpoint_port(self, ep: Endpoint) -> str | None:
        """The br0 port an endpoint sits behind, when its host's OVSDB says (attached-mac)."""
        host = self.ix.hosts.get(ep.host_id)
        return dict(host.view.attached).get(ep.mac) if host else None

    def tenant_endpoints(self, vni: int) -> list[Endpoint]:
        return self.ix.tenant_endpoints(vni)

    def is_programmable(self, host: Host) -> bool:
        dpid = host.view.datapath_id
        return dpid in self.datapaths and dpid in self.installed and host.view.patch_ofport is not None

    # ---- OpenFlow connection events ------------------------------------------------------

    def datapath_up(self, dpid: int) -> list[Op]:
        """A switch connected: read what it holds before changing anything (no wipe)."""
        self.datapaths.add(dpid)
        self.installed.pop(dpid, None)
        self.dumps.pop(dpid, None)
        host = self.ix.host_of_dpid(dpid)
        if host is not None:
            host.lost_since = None
        return [ReadSwitch(dpid)]

    def switch_read(self, dpid: int, dump: SwitchDump, now: float) -> list[Op]:
        """What a switch holds arrived: recover what it learned, then send only the difference."""
        if dpid not in self.datapaths:
            return []
        self.dumps[dpid] = dump
        host = self.ix.host_of_dpid(dpid)
        return self._adopt_dump(host, now) if host is not None else []

    def _adopt_dump(self, host: Host, now: float) -> list[Op]:
        dpid = host.view.datapath_id
        dump = self.dumps.pop(dpid, None) if dpid is not None else None
        if dump is None:
            return []
        self.installed[dpid] = Installed.from_dump(dump)
        for ep in recovered_endpoints(dump, host.id, self.ix, now):
            self.counters["endpoints_recovered"] += 1
            self._learned(ep)
        self._mark_full(host.id)
        return self._flush()

    def datapath_down(self, dpid: int, now: float = 0.0) -> list[Op]:
        self.datapaths.discard(dpid)
        self.installed.pop(dpid, None)
        self.dumps.pop(dpid, None)
        host = self.ix.host_of_dpid(dpid)
        if host is not None and not host.ovsdb_connected and host.lost_since is None:
            host.lost_since = now
        return []

    # ---- OVSDB events --------------------------------------------------------------------

    def host_view(self, view: HostView, now: float) -> list[Op]:
        old = self.ix.hosts.get(view.system_id)
        if old is not None and old.view == view and old.ovsdb_connected:
            return []
        if old is None:
            LOG.info("host %s joined (overlay ip %s)", view.system_id, view.overlay_ip)
        flips = self.ix.put_host(view)
        host = self.ix.hosts[view.system_id]
        host.lost_since = None
        if view.overlay_ip:
            self.tunnels.forgotten_ips.discard(view.overlay_ip)
        new_peer = old is None or old.view.overlay_ip != view.overlay_ip
        if old is None or (old.view.datapath_id, old.view.patch_ofport, old.view.overlay_ip) != (
                view.datapath_id, view.patch_ofport, view.overlay_ip):
            self._mark_full(host.id)
        elif old.view.tunnels != view.tunnels:
            self._tunnels_changed(host, old)
        self._mark_flips(flips)
        if new_peer and self.settings.learning.floods_to_every_host:  # one more bucket everywhere
            for other in self.ix.hosts.values():
                self._mark(other.id, self.placed_on(other))
        # the switch was read back before OVSDB said whose it is: programmable from now on
        adopted = self._adopt_dump(host, now) if view.datapath_id in self.dumps else []
        ops = view_tunnel_ops(self, old, host, new_peer, now)
        return adopted + ops + self._flush()

    def _tunnels_changed(self, host: Host, old: Host) -> None:
        """Tunnel ports came or went: their classify flows, and whatever leads to those peers."""
        was, now = old.tunnels_by_name, host.tunnels_by_name
        diff = [p for name, p in now.items() if was.get(name) != p]
        diff += [p for name, p in was.items() if name not in now or now[name] != p]
        changed = {p.remote_ip for p in diff}
        if FLOW in changed:  # the flow-based port came, went or got its ofport: everything uses it
            self._mark_full(host.id)
            return
        peers = [self.ix.host_by_ip[ip] for ip in changed if ip in self.ix.host_by_ip]
        placed = self.placed_on(host)
        parts: set[Part] = {tunnel_part(p.name) for p in diff}
        for peer in peers:
            parts |= placed & self.placed_on(self.ix.peers[peer])  # flood buckets toward it
            parts |= {k for k in self.ix.eps_by_host.get(peer, ()) if k[0] in placed}
        self._mark(host.id, parts)

    def ovsdb_down(self, system_id: str, now: float = 0.0) -> list[Op]:
        host = self.ix.hosts.get(system_id)
        if host is not None:
            host.ovsdb_connected = False
            if host.view.datapath_id not in self.datapaths and host.lost_since is None:
                host.lost_since = now
        return []

    def tick(self, now: float) -> list[Op]:
        """Time passes: tunnel ports asked for but never seen are asked for again; hosts gone
        longer than the grace period have their endpoints withdrawn."""
        if self.recovering and now >= self.recover_until:
            self.recovering = False
            checked = 0
            for dpid, inst in self.installed.items():
                host = self.ix.host_of_dpid(dpid)
                if inst.read_back() and host is not None:
                    self._mark(host.id, (LEFTOVERS,))
                    checked += 1
            LOG.info("%s: what nobody claimed on %d read-back switches goes now", RECOVERY_OVER, checked)
        ops = retry_overdue(self, now)
        for host in list(self.ix.hosts.values()):
            if host.lost_since is None or host.withdrawn or now - host.lost_since < self.settings.host_grace:
                continue
            LOG.warning("host %s unreachable for %.0f s: withdrawing its endpoints (its tunnels stay)",
                        host.id, now - host.lost_since)
            self.counters["hosts_withdrawn"] += 1
            for key in list(self.ix.eps_by_host.get(host.id, ())):
                self._drop(key)
            flips = self.ix.put_host(replace(host.view, member_vlans=frozenset()), ovsdb_connected=False)
            self.ix.hosts[host.id].withdrawn = True
            self._mark_flips(flips)
        return ops + self._flush()

    def forget_host(self, system_id: str, now: float) -> list[Op]:
        """An operator removed a host: drop its endpoints and the tunnels toward it everywhere."""
        host = self.ix.hosts[system_id]
        if host.view.overlay_ip:
            self.tunnels.forgotten_ips.add(host.view.overlay_ip)
        for key in list(self.ix.eps_by_host.get(system_id, ())):
            self._drop(key)
        self._mark_flips(self.ix.drop_host(system_id))
        self.dirty.pop(system_id, None)
        self.tunnels.toward.pop(system_id, None)
        ops = tunnel_ops(self, now, list(self.ix.hosts.values()))
        return ops + self._flush()

    def retune_tunnels(self, settings: Settings, now: float) -> list[Op]:
        """A new tunnel kind or tunnel_ports mode on a running overlay, without a restart.

        New ports are asked for at once; traffic keeps the old ones until the new are up, and
        the old ones go only then (tunnel_ports.py). Every host's flows are recomputed: unicast
        entries and flood buckets name the ports.
        """
        self.settings = settings
        self.learner.settings = settings
        self.ix.recounted.update(self.ix.ep_count)  # the cap may have changed
        for host in self.ix.hosts.values():
            self._mark_full(host.id)
        return tunnel_ops(self, now, list(self.ix.hosts.values())) + self._flush()

    def purge_learned_on(self, host: Host) -> list[Op]:
        """learn() entries of every tenant on a host: they may send out of a port that is going."""
        if not self.settings.learning.keeps_switch_entries or host.view.datapath_id is None \
                or not self.is_programmable(host):
            return []
        return [FlowPurge(host.view.datapath_id, t.UNICAST, f.match(vlan_vid=(tn.vlan_on(host.id), 0x0FFF)))
                for tn in self.ix.tenants.values() if tn.present_on(host.id)]

    # ---- tenants (from REST) -------------------------------------------------------------

    def put_tenant(self, tenant: Tenant) -> list[Op]:
        """Create or replace a tenant; a changed VNI or VLAN re-programs only this tenant."""
        old = self.ix.tenants.get(tenant.name)
        if old == tenant:
            return []
        ops: list[Op] = []
        if old is not None:
            ops += self._retire_tenant(old)  # its endpoints are relearned under the new numbering
        self._mark_flips(self.ix.put_tenant(tenant))
        if self.settings.learning.floods_to_every_host:
            for host in self.ix.hosts.values():
                if tenant.present_on(host.id):
                    self._mark(host.id, {tenant.vni})
        return ops + self._flush()

    def delete_tenant(self, name: str) -> list[Op]:
        ops = self._retire_tenant(self.ix.tenants[name])
        return ops + self._flush()

    def _retire_tenant(self, old: Tenant) -> list[Op]:
        holders = set(self.ix.members.get(old.vni, ()))
        eps = set(self.ix.eps_by_vni.get(old.vni, ()))
        if self.settings.learning.floods_to_every_host:
            holders |= {h for h in self.ix.hosts if old.present_on(h)}
        self.ix.delete_tenant(old.name)
        for host_id in holders:
            self._mark(host_id, {old.vni} | eps)
        return self._purge_learned(old)

    def _purge_learned(self, tenant: Tenant) -> list[Op]:
        """learn() entries are the switch's own: remove those of a tenant that changed or left."""
        if not self.settings.learning.keeps_switch_entries:
            return []
        return [FlowPurge(host.view.datapath_id, t.UNICAST, f.match(vlan_vid=(tenant.vlan_on(host.id), 0x0FFF)))
                for host in self.ix.hosts.values()
                if self.is_programmable(host) and tenant.present_on(host.id) and host.view.datapath_id is not None]

    # ---- learning ------------------------------------------------------------------------

    def packet_in(self, dpid: int, data: bytes, now: float, table: int | None = None) -> list[Op]:
        """Learn from a packet-in; one from a responder's miss also holds that unknown IP down."""
        seen = self.learner.parse(dpid, data)
        if seen is None:
            return []
        host, tenant, frame = seen
        for change in self.learner.learn(host, tenant, frame, now):
            self._apply_change(change)
        ops = self._flush()
        if table in (t.ARP_RESPONDER, t.ND_RESPONDER) and frame.asks_for \
                and (tenant.vni, frame.asks_for) not in self.ix.bindings:
            self.counters["unknown_ip_holddowns"] += 1
            ops.append(FlowMod(dpid, holddown_flow(self.settings, tenant, host.id, frame.asks_for)))
        return ops

    def _apply_change(self, change: tuple) -> None:
        kind, key, *rest = change
        before = set(self.ix.members.get(key[0], ()))
        if kind == "new":
            self._learned(rest[0])
            return
        if kind == "move":
            old_host = self.ix.endpoints[key].host_id
            self._mark_flips(self.ix.move_endpoint(key, *rest))
            before.add(old_host)
        elif kind == "bind":
            previous = self.ix.bind(key, rest[0])
            if previous is not None:
                self._mark_endpoint(previous, before)
        self._mark_endpoint(key, before)

    def _learned(self, ep: Endpoint) -> None:
        key = (ep.vni, ep.mac)
        ips = set(ep.ips)
        ep.ips = set()
        self._mark_flips(self.ix.add_endpoint(ep))
        for ip in sorted(ips):
            previous = self.ix.bind(key, ip)
            if previous is not None:
                self._mark_endpoint(previous, set())
        self._mark_endpoint(key, set())

    def _drop(self, key: EpKey) -> None:
        ep = self.ix.endpoints[key]
        before = set(self.ix.members.get(key[0], ())) | {ep.host_id}
        self._mark_flips(self.ix.drop_endpoint(key))
        self.learner.forget(key)
        self._mark_endpoint(key, before)

    def flow_removed(self, dpid: int, table: int, reason: int, match: dict, now: float,
                     cookie: int | None = None) -> list[Op]:
        """A source entry idled out: the MAC went silent, so it is forgotten everywhere."""
        host = self.ix.host_of_dpid(dpid)
        if host is None or table != t.SRC_MAC or reason != OFPRR_IDLE_TIMEOUT:
            return []
        vid, mac = match.get("vlan_vid"), match.get("eth_src")
        tenant = self.ix.tenant_on(host.id, (vid or 0) & 0x0FFF)
        if tenant is None or not isinstance(mac, str):
            return []
        key = (tenant.vni, mac)
        ep = self.ix.endpoints.get(key)
        if ep is None or ep.host_id != host.id:
            return []
        inst = self.installed.get(dpid)
        if inst is not None:  # the switch has already removed it
            inst.forget((t.SRC_MAC, t.PRIO_ENTRY, f.match(vlan_vid=vid, eth_src=mac)))
        self._drop(key)
        self.counters["endpoints_aged"] += 1
        return self._flush()

    # ---- what the switches counted ---------------------------------------------------------

    def role_stats(self, dpid: int, role: int, packets: int) -> None:
        """Fold one switch's packet count for one role (an aggregate over its flows) into the counters.

        Counters are monotonic: only growth is added. When flows of the role go away their
        packets leave the aggregate; that drop is not counted as traffic.
        """
        name = ROLE_COUNTERS.get(role)
        if name is None or dpid not in self.datapaths:
            return
        prev = self.role_packets.get((dpid, role))
        self.role_packets[(dpid, role)] = packets
        grown = packets - prev if prev is not None and packets > prev else 0
        if grown:
            self.counters[name] += grown
            if name in SUPPRESSED:
                self.counters["floods_suppressed"] += grown

    # ---- marking what changed ----------------------------------------------------------------

    def _mark(self, host_id: str, parts: Iterable[Part]) -> None:
        self.dirty.setdefault(host_id, _Dirty()).parts.update(parts)
        if self.changed is not None:
            self.changed.update(parts)

    def _mark_full(self, host_id: str) -> None:
        self.dirty.setdefault(host_id, _Dirty()).full = True

    def _mark_endpoint(self, key: EpKey, also: set[str]) -> None:
        """An endpoint's entries live on every member host of its tenant (and leave the others)."""
        for host_id in set(self.ix.members.get(key[0], ())) | also:
            self._mark(host_id, (key,))

    def _mark_flips(self, flips: list[Flip]) -> None:
        """A host joined or left a tenant: its copy of the tenant, and the others' flood buckets."""
        if self.settings.learning.floods_to_every_host:
            return  # placement and floods do not follow members
        for vni, host_id in flips:
            self._mark(host_id, {vni} | set(self.ix.eps_by_vni.get(vni, ())))
            for other in self.ix.members.get(vni, ()):
                if other != host_id:
                    self._mark(other, (vni,))

    # ---- recompute and diff ------------------------------------------------------------------

    def _flush(self) -> list[Op]:
        return self.drain() if self.eager else []

    def pending(self) -> bool:
        return bool(self.dirty or self.tunnels.toward or self.caps.pending(self.ix))

    def _mark_caps(self) -> bool:
        marks = self.caps.step(self.ix, self.settings.max_endpoints, busy=self.dirty)
        for host_id, parts in marks:
            self._mark(host_id, parts)
        return bool(marks)

    def drain(self, budget_s: float | None = None, max_parts: int = 20) -> list[Op]:
        """Recompute dirty partitions and return the difference; stop after budget_s seconds.

        Order per switch (what the switch needs): meters and groups before the flows that use
        them, adds before the deletes they replace, group deletes last.
        """
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        first: list[Op] = tunnels_for_joined(self, deadline)
        adds: list[Op] = []
        deletes: list[Op] = []
        last: list[Op] = []
        while self.dirty or self._mark_caps():  # a cap's next step once its host's changes are out
            host_id = next(iter(self.dirty))
            host = self.ix.hosts.get(host_id)
            if host is None or self.passive or not self.is_programmable(host):
                del self.dirty[host_id]  # programmed in full when it becomes programmable (or leads)
                continue
            d = self.dirty[host_id]
            if d.full:
                first += self._expand_full(host, d)
            batch = self._take(d, max_parts)
            if not d.parts and not d.full:
                del self.dirty[host_id]
            for part in batch:
                self._diff(host, part, first, adds, deletes, last)
            if deadline is not None and time.perf_counter() > deadline:
                break
        if adds and deletes:
            # A key one partition released and another claimed in this batch (an IP rebound to
            # another MAC): the add replaces the flow, a delete sent after it would remove it.
            added = {(op.dpid, op.flow.key) for op in adds if isinstance(op, FlowMod)}
            deletes = [op for op in deletes if _deleted_key(op) not in added]
        return first + adds + deletes + last

    def _expand_full(self, host: Host, d: _Dirty) -> list[Op]:
        """Everything a host should hold, and everything it holds: the meters now, the rest as parts."""
        d.full = False
        dpid = host.view.datapath_id
        inst = self.installed[dpid]  # type: ignore[index]
        ops: list[Op] = []
        want = {m.meter_id: m for m in meters(self.settings)}
        for mid, m in want.items():
            if inst.meters.get(mid) != m:
                ops.append(MeterMod(dpid, m, "modify" if mid in inst.meters else "add"))  # type: ignore[arg-type]
        inst.meters = dict(want)
        placed = self.placed_on(host)
        parts: set[Part] = {BASE} | placed | set(inst.flows) | set(inst.groups)
        parts |= {tunnel_part(p.name) for p in host.view.tunnels}
        for vni in placed:
            parts |= self.ix.eps_by_vni.get(vni, set())
        parts.discard(Installed.READ_BACK)
        d.parts |= parts
        if inst.read_back():
            d.parts.add(LEFTOVERS)
        return ops

    @staticmethod
    def _take(d: _Dirty, n: int) -> list[Part]:
        """Up to n parts, LEFTOVERS only once everything else is done (without copying the set)."""
        batch: list[Part] = []
        leftovers = False
        while d.parts and len(batch) < n:
            part = d.parts.pop()
            if part == LEFTOVERS:
                leftovers = True
            else:
                batch.append(part)
        if leftovers:
            if batch or d.parts:
                d.parts.add(LEFTOVERS)
            else:
                batch.append(LEFTOVERS)
        return batch

    def _desired(self, host: Host, part: Part) -> tuple[set[f.Flow], f.GroupEntry | None]:
        if part == BASE:
            return base_flows(self.settings, host), None
        if isinstance(part, str):
            return tunnel_classify(host, part[len(TUNNEL_PART):]), None
        vni = part[0] if isinstance(part, tuple) else part
        tenant = self.ix.tenant_by_vni(vni)  # type: ignore[arg-type]
        if tenant is None or vni not in self.placed_on(host):
            return set(), None
        if isinstance(part, tuple):
            ep = self.ix.endpoints.get(part)
            if ep is None:
                return set(), None
            return endpoint_flows(self.settings, host, tenant, ep, self.ix.peers,
                                  capped=(vni, host.id) in self.caps.sources), None
        members = self.ix.members.get(tenant.vni, set())
        return (tenant_flows(self.settings, host, tenant, capped=(vni, host.id) in self.caps.narrowed),
                flood_group(self.settings, host, tenant, self.ix.peers, members))

    def _diff(self, host: Host, part: Part, first: list[Op], adds: list[Op], deletes: list[Op],
              last: list[Op]) -> None:
        dpid: int = host.view.datapath_id  # type: ignore[assignment]
        inst = self.installed[dpid]
        if part == LEFTOVERS:
            deletes += self._leftovers(host, inst)
            return
        want_flows, want_group = self._desired(host, part)
        held = part in inst.flows  # a part new here (an endpoint just learned) has nothing to release
        for fl in want_flows:
            if not inst.claim(part, fl, self.canon):
                adds.append(FlowMod(dpid, fl))
        if held:
            for key, have in inst.release(part, {fl.key for fl in want_flows}):
                deletes.append(FlowMod(dpid, have, delete=True) if isinstance(have, f.Flow)
                               else FlowDelete(dpid, *key))
        if not isinstance(part, int):
            return
        have_group = inst.groups.get(part, Installed.ABSENT)
        if want_group is not None and want_group != have_group:
            first.append(GroupMod(dpid, want_group, "add" if have_group is Installed.ABSENT else "modify"))
            inst.groups[part] = want_group
        elif want_group is None and have_group is not Installed.ABSENT:
            last.append(GroupMod(dpid, f.GroupEntry(part), "delete"))
            del inst.groups[part]

    def _leftovers(self, host: Host, inst: Installed) -> list[Op]:
        """Flows a read-back switch holds that nothing wants: ours go, strangers go with a word."""
        dpid: int = host.view.datapath_id  # type: ignore[assignment]
        gone, strangers = inst.unwanted(self.recovering, keep_learned=self.settings.learning.keeps_switch_entries)
        if strangers:
            LOG.warning("switch %016x held %d flows not made by this controller: removed", dpid, strangers)
        return [FlowDelete(dpid, *key) for key in gone]


def _deleted_key(op: Op) -> tuple[int, object]:
    """(switch, flow key) of a delete: a FlowMod's flow's, or a FlowDelete's."""
    if isinstance(op, FlowMod):
        return op.dpid, op.flow.key
    return op.dpid, (op.table, op.priority, op.match)  # type: ignore[union-attr]
