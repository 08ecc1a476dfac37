"""The BGP EVPN speaker: os-ken's BGPSpeaker, wired to the pure route logic (controller/bgp/evpn.py).

Optional (`[bgp] local_as` unset: off, nothing changes). It runs in the app's eventlet hub:
os-ken's BGP core is greenthreads. Outbound, `sync()` (called by the app after every event)
turns what the core marked as changed into route operations and hands them to the speaker.
Inbound, every best-path change and peer loss is decoded into a `Received` value and posted
to the app's event loop, where the Importer and controller/bgp/external.py turn it into core
changes. Only this module knows os-ken's BGP API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from controller.bgp import evpn, external
from controller.core.core import Core
from controller.model.ops import Op

LOG = logging.getLogger(__name__)

ATTR_EXTENDED_COMMUNITIES = 16
ATTR_MP_REACH_NLRI = 14
OSKEN_PEER_LOG = "bgpspeaker.peer"  # os-ken's BGP peer (os_ken/services/protocols/bgp/peer.py)
LOOPED = "AS_PATH on UPDATE message has loops"  # how it starts its message for a route with our AS
ATTR_PMSI_TUNNEL = 22
RT_SUBTYPE = 0x02


def parse_neighbors(items: list[str]) -> list[tuple[str, int]]:
    """`ip:remote_as` items of `[bgp] neighbors`; a malformed one is an error, not skipped."""
    out = []
    for item in items:
        ip, sep, asn = item.strip().rpartition(":")
        if not sep or not ip or not asn.isdigit():
            raise ValueError(f"[bgp] neighbors: {item!r} is not ip:remote_as")
        out.append((ip, int(asn)))
    return out


def decode(path: Any, is_withdraw: bool) -> evpn.Received | None:
    """An os-ken EvpnPath as a Received value (None: a route type we do not use)."""
    nlri = path.nlri
    kind = {"mac_ip_adv": 2, "multicast_etag": 3}.get(getattr(nlri, "ROUTE_TYPE_NAME", ""))
    if kind is None:
        return None
    rts: list[str] = []
    seq = 0
    ext = path.get_pattr(ATTR_EXTENDED_COMMUNITIES)
    for c in ext.communities if ext is not None else ():
        if getattr(c, "sequence_number", None) is not None:  # MAC Mobility
            seq = int(c.sequence_number)
        elif getattr(c, "subtype", None) == RT_SUBTYPE and hasattr(c, "local_administrator"):
            admin = getattr(c, "as_number", None)
            rts.append(f"{admin if admin is not None else c.ipv4_address}:{c.local_administrator}")
    peer = path.source.ip_address if path.source is not None else ""
    if kind == 2:
        return evpn.Received(peer, 2, nlri.route_dist, getattr(nlri, "vni", None), str(path.nexthop),
                             tuple(rts), mac=str(nlri.mac_addr).lower(), ip=nlri.ip_addr or None, seq=seq,
                             withdraw=is_withdraw)
    pmsi = path.get_pattr(ATTR_PMSI_TUNNEL)
    return evpn.Received(peer, 3, nlri.route_dist, getattr(pmsi, "vni", None) if pmsi is not None else None,
                         str(nlri.ip_addr), tuple(rts), withdraw=is_withdraw)


def from_conf(conf: Any, core: Core, post: Callable[[Callable[[], Any]], Any], apply: Callable[[list[Op]], None],
              now: Callable[[], float]) -> EvpnSpeaker | None:
    """The speaker `[bgp]` asks for, or None when local_as is unset (BGP off). Bad values raise."""
    b = conf.bgp
    if b.local_as is None:
        return None
    if conf.overlay.tunnel_type != "vxlan":  # the routes say VXLAN (RFC 8365 section 5.1.3)
        raise ValueError(f"[bgp] EVPN needs [overlay] tunnel_type = vxlan, not {conf.overlay.tunnel_type}")
    router_id = b.router_id or b.listen_host
    if router_id in ("0.0.0.0", "::"):
        raise ValueError("[bgp] router_id is needed when listen_host is a wildcard")
    policy = evpn.Policy(b.local_as, router_id, dict(b.route_targets or {}))
    return EvpnSpeaker(core, policy, parse_neighbors(b.neighbors or []), b.listen_host, b.listen_port, post, apply, now)


class LoopedRoutes(logging.Filter):
    """Under eBGP a peer sends our own routes back (RFC 4271 section 9.1.2: our AS is in their
    AS_PATH, so they are dropped, as os-ken does), and os-ken logs each one at ERROR with the
    whole UPDATE. They are expected: counted (`evpn_own_routes_looped`, per route), said once."""

    def __init__(self, count: Callable[[int], None]) -> None:
        super().__init__()
        self.count = count
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(LOOPED):
            return True
        update = record.args[0] if isinstance(record.args, tuple) and record.args else None
        reach = getattr(update, "pathattr_map", {}).get(ATTR_MP_REACH_NLRI)
        self.count(len(getattr(reach, "nlri", None) or ()) or 1)
        if not self.said:
            self.said = True
            LOG.info("BGP EVPN: a peer sends our own routes back (our AS in their AS_PATH: eBGP); they are "
                     "dropped and counted in evpn_own_routes_looped, not logged one by one")
        return False


class EvpnSpeaker:
    def __init__(self, core: Core, policy: evpn.Policy, neighbors: list[tuple[str, int]], listen_host: str,
                 listen_port: int, post: Callable[[Callable[[], Any]], Any], apply: Callable[[list[Op]], None],
                 now: Callable[[], float]) -> None:
        self.core = core
        self.policy = policy
        self.neighbors = neighbors
        self.listen = (listen_host, listen_port)
        self.post, self.apply_ops, self.now = post, apply, now
        self.exporter = evpn.Exporter(policy)
        self.importer = evpn.Importer(policy, self.exporter)
        self.speaker: Any = None
        self.looped = LoopedRoutes(self._count_looped)
        core.changed = set()

    def start(self) -> None:
        from os_ken.services.protocols.bgp.bgpspeaker import BGPSpeaker

        logging.getLogger("bgpspeaker.api.base").setLevel(logging.WARNING)  # it logs every route at INFO
        logging.getLogger(OSKEN_PEER_LOG).addFilter(self.looped)
        host, port = self.listen
        self.speaker = BGPSpeaker(
            as_number=self.policy.local_as, router_id=self.policy.router_id, bgp_server_hosts=[host],
            bgp_server_port=port, best_path_change_handler=self._best_path,
            peer_down_handler=self._peer_down, peer_up_handler=self._peer_up)
        for ip, asn in self.neighbors:
            self.speaker.neighbor_add(ip, asn, enable_evpn=True, enable_ipv4=False)
        LOG.info("BGP EVPN: AS %d, router id %s, listening on %s:%d, neighbors %s", self.policy.local_as,
                 self.policy.router_id, host, port, ", ".join(f"{ip} (AS {asn})" for ip, asn in self.neighbors))
        self._send(self.exporter.everything(self.core.ix))

    def rebind(self, core: Core) -> None:
        """A takeover (controller/ha/roles.py) replaces the core: the routes follow the new one."""
        self.core = core
        core.changed = set()
        if self.speaker is not None:
            self._send(self.exporter.everything(core.ix))

    # ---- out: what changed in the core becomes routes ------------------------------------------

    def sync(self) -> list[Op]:
        """Advertise and withdraw what changed; the operations of the peers' routes that count now
        (a tenant created while the session is up takes the routes waiting for its VNI)."""
        changed = self.core.changed
        if not changed:
            return []
        self.core.changed = set()
        eps = [p for p in changed if isinstance(p, tuple)]
        vnis = [p for p in changed if isinstance(p, int)]
        if self.speaker is not None:
            self._send(self.exporter.sync(self.core.ix, eps, vnis))
        events = self.importer.tenants_changed(vnis, self.core.ix)
        if not events:
            return []
        self.core.counters["evpn_import_events"] += len(events)
        return external.apply(self.core, events, self.exporter.seq, self.now())

    def _send(self, ops: list[evpn.RouteOp]) -> None:
        from os_ken.services.protocols.bgp import bgpspeaker as b

        for op in ops:
            try:
                if isinstance(op, evpn.Vrf):
                    if op.present:
                        self.speaker.vrf_add(op.rd, [op.rt], [op.rt], route_family=b.RF_L2_EVPN)
                    else:
                        self.speaker.vrf_del(op.rd)
                    continue
                r = op.route
                if isinstance(r, evpn.MacRoute):
                    if isinstance(op, evpn.Advertise):
                        self.speaker.evpn_prefix_add(
                            b.EVPN_MAC_IP_ADV_ROUTE, r.rd, ethernet_tag_id=0, mac_addr=r.mac, ip_addr=r.ip,
                            vni=r.vni, next_hop=r.next_hop, tunnel_type=b.TUNNEL_TYPE_VXLAN,
                            mac_mobility=r.seq or None)
                    else:
                        self.speaker.evpn_prefix_del(b.EVPN_MAC_IP_ADV_ROUTE, r.rd, ethernet_tag_id=0,
                                                     mac_addr=r.mac, ip_addr=r.ip)
                elif isinstance(op, evpn.Advertise):
                    self.speaker.evpn_prefix_add(
                        b.EVPN_MULTICAST_ETAG_ROUTE, r.rd, ethernet_tag_id=0, ip_addr=r.vtep, vni=r.vni,
                        next_hop=r.vtep, tunnel_type=b.TUNNEL_TYPE_VXLAN, pmsi_tunnel_type=b.PMSI_TYPE_INGRESS_REP,
                        tunnel_endpoint_ip=r.vtep)
                else:
                    self.speaker.evpn_prefix_del(b.EVPN_MULTICAST_ETAG_ROUTE, r.rd, ethernet_tag_id=0,
                                                 ip_addr=r.vtep)
                self.core.counters["evpn_routes_advertised" if isinstance(op, evpn.Advertise)
                                   else "evpn_routes_withdrawn"] += 1
            except Exception as e:  # noqa: BLE001 - one bad route must not stop the others
                self.core.counters["evpn_route_errors"] += 1
                LOG.warning("BGP EVPN: %s failed: %s", op, e)

    # ---- in: os-ken's greenthreads post to the app's event loop --------------------------------

    def _count_looped(self, routes: int) -> None:
        self.core.counters["evpn_own_routes_looped"] += routes

    def _best_path(self, ev: Any) -> None:
        try:
            r = decode(ev.path, ev.is_withdraw)
        except Exception as e:  # noqa: BLE001 - a path we cannot read is counted and dropped
            self.core.counters["evpn_paths_malformed"] += 1
            LOG.warning("BGP EVPN: unreadable path %s: %s", ev.path, e)
            return
        if r is not None:
            self.post(lambda: self._receive(r))

    def _peer_down(self, ip: str, asn: int) -> None:
        LOG.warning("BGP EVPN: peer %s (AS %d) down: its routes are withdrawn", ip, asn)
        self.post(lambda: self._received(self.importer.peer_down(ip)))

    def _peer_up(self, router_id: str, asn: int) -> None:
        LOG.info("BGP EVPN: peer %s (AS %d) up", router_id, asn)

    def _receive(self, r: evpn.Received) -> None:
        events = self.importer.receive(r, self.core.ix)
        if r.key in self.importer.aside:  # of no tenant (yet): it counts once its tenant exists
            self.core.counters["evpn_paths_set_aside"] += 1
        self._received(events)

    def _received(self, events: list[evpn.ImportEvent]) -> None:
        self.core.counters["evpn_import_events"] += len(events)
        self.apply_ops(external.apply(self.core, events, self.exporter.seq, self.now()))
