"""BGP EVPN without BGP: core changes -> routes (Exporter), received routes -> core (Importer, external),
through controller/bgp/speaker.py's EvpnSpeaker as the app runs it, with a stand-in for os-ken's BGPSpeaker."""

from typing import Any

from controller.bgp import external
from controller.bgp import speaker as bgp
from controller.bgp.evpn import (
    Advertise,
    FloodRoute,
    Importer,
    MacRoute,
    Policy,
    Received,
    RemoteMac,
    Vrf,
    Withdraw,
)
from controller.core.core import Core
from controller.core.endpoints import OFPRR_IDLE_TIMEOUT
from controller.model import tables as t
from controller.model.ops import GroupMod, OvsdbOp
from controller.model.state import TunnelPort
from tests.unit.world import BLUE, RED, arp_frame, installed_flows, ip_of, mac, view, world

POLICY = Policy(65000, "10.98.0.1")
PEER = "10.98.0.9"
VTEP = "10.99.0.50"
FAR_MAC = "02:00:00:00:05:50"


class FakeBgp:
    """os-ken's BGPSpeaker as far as EvpnSpeaker calls it: every call recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in ("vrf_add", "vrf_del", "evpn_prefix_add", "evpn_prefix_del"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


class Recorded(bgp.EvpnSpeaker):
    """The speaker, keeping the route operations it hands to BGP."""

    def _send(self, ops: list) -> None:
        self.sent.extend(ops)
        super()._send(ops)


class Evpn:
    """controller/bgp/speaker.py's speaker around a core, as the app runs it: posted work runs at
    once, the ops it applies are kept. sync() / receive() return what one step sent to BGP / to the
    switches."""

    def __init__(self, core: Core, policy: Policy = POLICY) -> None:
        self.core, self.clock, self.applied = core, 10.0, []
        self.speaker = Recorded(core, policy, [], "127.0.0.1", 0, post=lambda fn: fn(), apply=self.applied.extend,
                                now=lambda: self.clock)
        self.speaker.sent = []
        self.bgp = FakeBgp()
        self.speaker.start(self.bgp)
        self.started = self._taken()

    @property
    def importer(self) -> Importer:
        return self.speaker.importer

    def _taken(self) -> list:
        """The route ops sent since last asked; each became one call of os-ken's, without an error."""
        ops, self.speaker.sent = self.speaker.sent, []
        assert self.core.counters.get("evpn_route_errors", 0) == 0
        return ops

    def sync(self) -> list:
        self.speaker.sync()  # what the app does after every event
        return self._taken()

    def receive(self, r: Received, now: float = 10.0) -> list:
        self.clock = now
        before = len(self.applied)
        self.speaker.received(r)
        return self.applied[before:]

    def peer_down(self, peer: str, now: float = 20.0) -> list:
        self.clock = now
        before = len(self.applied)
        self.speaker._peer_down(peer, 65000)  # os-ken's handler
        return self.applied[before:]


def learn(core: Core, host: int, m: str, ip: str, tenant=BLUE, now: float = 5.0) -> list:
    return core.packet_in(host, arp_frame(m, ip, "10.0.0.254", tenant.vlan), now=now)


def mac_routes(ops: list, kind=Advertise) -> list[MacRoute]:
    return [op.route for op in ops if isinstance(op, kind) and isinstance(op.route, MacRoute)]


def type2(mac_: str = FAR_MAC, ip: str | None = "10.0.0.50", vni: int = BLUE.vni, seq: int = 0,
          withdraw: bool = False, rts: tuple = ("65000:5001",), vtep: str = VTEP) -> Received:
    return Received(PEER, 2, "10.99.0.50:2", vni, vtep, rts, mac=mac_, ip=ip, seq=seq, withdraw=withdraw)


def type3(vni: int = BLUE.vni, withdraw: bool = False, rts: tuple = ("65000:5001",)) -> Received:
    return Received(PEER, 3, "10.99.0.50:2", vni, VTEP, rts, withdraw=withdraw)


# ---- export --------------------------------------------------------------------------------

def test_a_learned_endpoint_is_advertised_as_its_mac_and_its_mac_with_ip_behind_its_host():
    ev = Evpn(world(3, members={}))  # no VM port anywhere: nothing advertised yet
    learn(ev.core, 2, mac(2), "10.0.0.2")
    ops = ev.sync()
    assert ops[0] == Vrf("65000:5001", "65000:5001", True)  # the VRF before its first route
    assert sorted(mac_routes(ops), key=lambda r: str(r.ip)) == [
        MacRoute("65000:5001", "65000:5001", BLUE.vni, mac(2), "10.0.0.2", ip_of(2)),
        MacRoute("65000:5001", "65000:5001", BLUE.vni, mac(2), None, ip_of(2)),
    ]
    assert ev.sync() == []  # nothing changed, nothing sent


def test_every_host_with_members_is_in_the_flood_list_of_the_vni():
    core = world(3, members={1: frozenset({BLUE.vlan}), 2: frozenset({BLUE.vlan, RED.vlan})})
    ev = Evpn(core)
    ops = ev.started  # what the speaker sent at start
    assert len(ev.bgp.calls) == len(ops)
    floods = {op.route for op in ops if isinstance(op, Advertise) and isinstance(op.route, FloodRoute)}
    assert floods == {FloodRoute("65000:5001", "65000:5001", BLUE.vni, ip_of(1)),
                      FloodRoute("65000:5001", "65000:5001", BLUE.vni, ip_of(2)),
                      FloodRoute("65000:5002", "65000:5002", RED.vni, ip_of(2))}


def test_a_host_that_loses_its_last_member_leaves_the_flood_list():
    core = world(2, members={1: frozenset({BLUE.vlan}), 2: frozenset({BLUE.vlan})})
    ev = Evpn(core)
    core.host_view(view(2, [1]), now=1.0)  # its blue VM port went
    ops = ev.sync()
    assert [op.route for op in ops if isinstance(op, Withdraw)] == [
        FloodRoute("65000:5001", "65000:5001", BLUE.vni, ip_of(2))]


def test_a_move_is_re_advertised_with_a_higher_mobility_sequence_number_each_time():
    ev = Evpn(world(3))
    learn(ev.core, 1, mac(1), "10.0.0.1")
    assert {r.seq for r in mac_routes(ev.sync())} == {0}  # never moved: no MAC Mobility community
    learn(ev.core, 2, mac(1), "10.0.0.1", now=6.0)
    first = mac_routes(ev.sync())
    assert {(r.next_hop, r.seq) for r in first} == {(ip_of(2), 1)} and len(first) == 2
    learn(ev.core, 3, mac(1), "10.0.0.1", now=30.0)
    assert {(r.next_hop, r.seq) for r in mac_routes(ev.sync())} == {(ip_of(3), 2)}


def test_an_aged_out_endpoint_is_withdrawn():
    ev = Evpn(world(2))
    learn(ev.core, 1, mac(1), "10.0.0.1")
    ev.sync()
    ev.core.flow_removed(1, t.SRC_MAC, OFPRR_IDLE_TIMEOUT, {"vlan_vid": BLUE.vlan | 0x1000, "eth_src": mac(1)}, 400.0)
    gone = mac_routes(ev.sync(), Withdraw)
    assert {(r.mac, r.ip) for r in gone} == {(mac(1), None), (mac(1), "10.0.0.1")}


def test_deleting_a_tenant_withdraws_its_routes_and_its_vrf():
    ev = Evpn(world(2))
    learn(ev.core, 1, mac(1), "10.0.0.1")
    ev.sync()
    ev.core.delete_tenant("blue")
    ops = ev.sync()
    withdrawn = [op.route for op in ops if isinstance(op, Withdraw)]
    assert {type(r).__name__ for r in withdrawn} == {"MacRoute", "FloodRoute"} and len(withdrawn) == 4
    assert ops[-1] == Vrf("65000:5001", "65000:5001", False)
    assert not [op for op in ops if isinstance(op, Advertise)]


def test_a_tenant_route_target_can_be_configured_and_rds_follow_the_as():
    p = Policy(65000, "10.98.0.1", {"blue": "65000:100"})
    assert (p.rd(5001), p.rt("blue", 5001), p.rt("red", 5002)) == ("65000:5001", "65000:100", "65000:5002")
    assert Policy(4200000001, "10.98.0.1").rd(70000) == "10.98.0.1:4464"  # 4-byte AS: type 1 RD
    assert Policy(4200000001, "10.98.0.1").rt("red", 5002) == f"{4200000001 & 0xFFFF}:5002"
    ev = Evpn(world(2), p)
    learn(ev.core, 1, mac(1), "10.0.0.1")
    assert {r.rt for r in mac_routes(ev.sync())} == {"65000:100"}
    assert p.imports("blue", 5001, ["65000:100"]) and not p.imports("blue", 5001, ["65000:5001"])
    assert p.imports("red", 5002, ["65001:5002"])  # automatic: any AS, the VNI


# ---- import --------------------------------------------------------------------------------

def test_a_peers_type2_becomes_an_endpoint_behind_an_external_vtep_with_a_tunnel_toward_it():
    ev = Evpn(world(3))
    ops = ev.receive(type2())
    txns = [op for op in ops if isinstance(op, OvsdbOp)]
    assert sorted(op.system_id for op in txns) == ["h1", "h2", "h3"]  # a port toward the VTEP on each host
    ep = ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)]
    assert (ep.host_id, ep.ips) == (external.vtep_id(VTEP), {"10.0.0.50"})
    assert ev.core.read.external_of(ep) == {"vtep": VTEP, "peer": PEER}
    assert external.vtep_id(VTEP) not in ev.core.hosts  # a peer, not a host: REST and the web view list hosts
    assert mac_routes(ev.sync()) == []  # never advertised back


def with_vtep_port(core: Core, n: int = 3) -> None:
    """Every host's br1 now has its port toward the VTEP (ofport 60), as OVSDB would report."""
    for i in range(1, n + 1):
        v = view(i, [j for j in range(1, n + 1) if j != i], member_vlans=frozenset({BLUE.vlan, RED.vlan}))
        core.host_view(v.__class__(**{**v.__dict__, "tunnels": v.tunnels + (
            TunnelPort("vx-vtep", "vxlan", VTEP, 60, True, f"port-uuid-{i}-vtep"),)}), now=11.0)


def test_members_of_the_vni_answer_arp_for_it_in_the_switch_and_unicast_to_its_vtep():
    ev = Evpn(world(3))
    ev.receive(type2())
    with_vtep_port(ev.core)
    for dpid in (1, 2, 3):
        held = installed_flows(ev.core, dpid)
        answer = [fl for fl in held if fl.table == t.ARP_RESPONDER and ("arp_tpa", "10.0.0.50") in fl.match
                  and fl.actions]
        unicast = [fl for fl in held if fl.table == t.UNICAST and ("eth_dst", FAR_MAC) in fl.match]
        assert answer and unicast, dpid
        assert unicast[0].actions[-1].port == 60  # out of the port toward the VTEP


def test_a_type3_puts_the_vtep_in_the_flood_group_and_its_withdrawal_takes_it_out():
    ev = Evpn(world(3))
    ev.receive(type3())
    with_vtep_port(ev.core)
    assert 60 in bucket_ports(ev.core, 1, BLUE.vni) and 60 not in bucket_ports(ev.core, 1, RED.vni)
    ops = ev.receive(type3(withdraw=True))
    assert [op for op in ops if isinstance(op, GroupMod)]
    assert 60 not in bucket_ports(ev.core, 1, BLUE.vni)


def bucket_ports(core: Core, dpid: int, vni: int) -> set[int]:
    group = core.installed[dpid].groups[vni]
    return {a.port for b in group.buckets for a in b.actions if hasattr(a, "port")}


def test_a_withdrawal_or_the_peer_going_down_removes_what_it_advertised():
    ev = Evpn(world(2))
    ev.receive(type2())
    ev.receive(type2(ip=None))
    ev.receive(type2(ip=None, withdraw=True))
    assert ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)].ips == {"10.0.0.50"}  # the MAC/IP route still holds
    ev.receive(type3())
    imported = ev.core.counters["evpn_import_events"]
    ev.peer_down(PEER)  # its MAC gone, its VTEP out of the flood list: two events
    assert ev.core.counters["evpn_import_events"] == imported + 2
    assert (BLUE.vni, FAR_MAC) not in ev.core.ix.endpoints
    assert external.vtep_id(VTEP) not in ev.core.ix.members.get(BLUE.vni, ())


def test_routes_of_no_tenant_or_of_a_foreign_route_target_are_ignored():
    ev = Evpn(world(2), Policy(65000, "10.98.0.1", {"blue": "65000:100"}))
    assert ev.importer.receive(type2(), ev.core.ix) == []  # blue imports 65000:100 only
    assert ev.importer.receive(type2(vni=7777, rts=("65000:7777",)), ev.core.ix) == []
    assert ev.importer.receive(type2(rts=("65000:100",)), ev.core.ix) == [
        RemoteMac(BLUE.vni, FAR_MAC, VTEP, PEER, frozenset({"10.0.0.50"}), 0)]
    assert ev.importer.ignored == 2


def test_a_route_whose_vtep_is_one_of_our_hosts_is_ignored():
    ev = Evpn(world(2))
    assert ev.importer.receive(type2(vtep=ip_of(2)), ev.core.ix) == []


def test_a_local_endpoint_moves_to_the_vtep_only_for_a_higher_sequence_number():
    ev = Evpn(world(2))
    learn(ev.core, 1, mac(1), "10.0.0.1")
    ev.sync()
    learn(ev.core, 2, mac(1), "10.0.0.1", now=6.0)
    assert {r.seq for r in mac_routes(ev.sync())} == {1}
    ev.receive(type2(mac_=mac(1), ip="10.0.0.1", seq=1))
    assert ev.core.ix.endpoints[(BLUE.vni, mac(1))].host_id == "h2"  # ours is as new: kept
    ev.receive(type2(mac_=mac(1), ip="10.0.0.1", seq=2))
    assert ev.core.ix.endpoints[(BLUE.vni, mac(1))].host_id == external.vtep_id(VTEP)
    assert {(r.mac, r.ip) for r in mac_routes(ev.sync(), Withdraw)} == {(mac(1), None), (mac(1), "10.0.0.1")}


def test_an_endpoint_that_comes_to_us_from_the_vtep_outbids_the_peers_sequence_number():
    ev = Evpn(world(2))
    ev.receive(type2(seq=4))
    ev.sync()
    learn(ev.core, 1, FAR_MAC, "10.0.0.50", now=12.0)  # the VM migrated onto h1 and announced itself
    assert ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)].host_id == "h1"
    assert {(r.next_hop, r.seq) for r in mac_routes(ev.sync())} == {(ip_of(1), 5)}
    ev.receive(type2(withdraw=True))  # the leaf follows and withdraws its own
    assert ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)].host_id == "h1"  # not dropped: it is ours now


def test_a_vm_the_peer_withdrew_before_it_came_to_us_is_a_new_mac_sequence_0():
    """docs/operator/evpn.md: with no route left for the MAC anywhere, RFC 7432 section 15 needs no
    MAC Mobility community; the peer's old number went with its withdrawal."""
    ev = Evpn(world(2))
    ev.receive(type2(seq=4))
    ev.sync()
    ev.receive(type2(withdraw=True))
    ev.receive(type2(ip=None, withdraw=True))
    learn(ev.core, 1, FAR_MAC, "10.0.0.50", now=12.0)
    assert {(r.next_hop, r.seq) for r in mac_routes(ev.sync())} == {(ip_of(1), 0)}


def test_an_ip_the_peer_stops_advertising_is_unbound():
    ev = Evpn(world(2))
    ev.receive(type2())
    ev.receive(type2(ip="10.0.0.51"))
    assert ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)].ips == {"10.0.0.50", "10.0.0.51"}
    ev.receive(type2(withdraw=True))
    assert ev.core.ix.endpoints[(BLUE.vni, FAR_MAC)].ips == {"10.0.0.51"}
    assert (BLUE.vni, "10.0.0.50") not in ev.core.ix.bindings
