"""Events in, operations out: the core's decisions checked as values."""

import pytest

from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowDelete, FlowPurge, OvsdbOp, ReadSwitch
from controller.model.state import HostView, TunnelPort
from controller.pipeline.learning_modes import MODE_LEARN
from controller.shell.config import defaults
from controller.southbound import ovsdb_model as om
from controller.southbound.encoder import wire_cookie
from tests.unit.world import (
    BLUE,
    RED,
    arp_frame,
    flow_changes,
    flow_ops,
    group_ops,
    installed_flows,
    ip_of,
    mac,
    tracer,
    view,
    world,
)


def test_a_switch_that_connects_is_read_back_then_given_the_whole_pipeline():
    core = world(2)
    assert core.datapath_up(1) == [ReadSwitch(1)]  # nothing is wiped
    ops = core.switch_read(1, SwitchDump(), now=1.0)
    tables = {op.flow.table for op in flow_ops(ops)}
    assert {t.CLASSIFY, t.LOCAL_SPLIT, t.TUNNEL_IN, t.TO_LOCAL, t.UNICAST, t.FLOOD} <= tables
    assert {g.group.group_id for g in group_ops(ops)} == {BLUE.vni, RED.vni}


def test_hosts_get_one_tunnel_transaction_toward_every_peer():
    core = Core(defaults())
    core.host_view(HostView("h1", ip_of(1), 1, "br-1", 1), now=0)
    ops = core.host_view(HostView("h2", ip_of(2), 2, "br-2", 1), now=0)
    txns = {op.system_id: op for op in ops if isinstance(op, OvsdbOp)}
    assert set(txns) == {"h1", "h2"}
    inserted = [o["row"] for o in om.transaction(txns["h1"]) if o["op"] == "insert" and o["table"] == "Interface"]
    options = ["map", [["key", "flow"], ["local_ip", ip_of(1)], ["remote_ip", ip_of(2)]]]
    assert inserted == [{"name": "vx-0a630002", "type": "vxlan", "options": options}]


def test_peers_joining_in_a_burst_cost_each_host_one_tunnel_transaction():
    core = Core(defaults())
    core.eager = False  # as in the app: the peers' transactions wait for drain
    for i in (1, 2, 3):
        own = core.host_view(HostView(f"h{i}", ip_of(i), i, f"br-{i}", 1), now=0)
        assert [op.system_id for op in own if isinstance(op, OvsdbOp)] == ([f"h{i}"] if i > 1 else [])
    drained = [op for op in core.drain() if isinstance(op, OvsdbOp)]
    assert sorted(op.system_id for op in drained) == ["h1", "h2"]
    remotes = {op.system_id: [dict(o["row"]["options"][1])["remote_ip"] for o in om.transaction(op)
                              if o["op"] == "insert" and o["table"] == "Interface"] for op in drained}
    assert remotes == {"h1": [ip_of(2), ip_of(3)], "h2": [ip_of(3)]}
    assert not core.pending()


def test_tunnels_made_by_hand_are_adopted_not_duplicated():
    core = Core(defaults(tunnel_type="gre"))
    hand = TunnelPort("tun2", "gre", ip_of(2), 2, managed=False)
    core.host_view(HostView("h1", ip_of(1), 1, "br-1", 1, (hand,)), now=0)
    ops = core.host_view(HostView("h2", ip_of(2), 2, "br-2", 1), now=0)
    txn_hosts = [op.system_id for op in ops if isinstance(op, OvsdbOp)]
    assert txn_hosts == ["h2"]


def test_a_tunnel_asked_for_is_not_asked_again_until_the_retry_time():
    core = Core(defaults())
    core.host_view(HostView("h1", ip_of(1), 1, "br-1", 1), now=0)
    core.host_view(HostView("h2", ip_of(2), 2, "br-2", 1), now=0)
    again = core.host_view(HostView("h1", ip_of(1), 1, "br-1", 1, member_vlans=frozenset({10})), now=1)
    assert not [op for op in again if isinstance(op, OvsdbOp)]
    assert not [op for op in core.tick(now=5) if isinstance(op, OvsdbOp)]
    later = core.tick(now=60)
    assert [op.system_id for op in later if isinstance(op, OvsdbOp)] == ["h1", "h2"]


def test_forgetting_a_host_removes_the_tunnels_toward_it():
    core = world(3, members={i: frozenset({BLUE.vlan}) for i in (1, 2, 3)})
    flood = {"in_port": 1, "vlan_vid": BLUE.vlan | 0x1000, "eth_src": mac(1), "eth_dst": "ff:ff:ff:ff:ff:ff"}
    assert sorted(tracer(core, 1).trace(flood).ports()) == [12, 13]  # h3 has members: floods reach it
    ops = core.forget_host("h3", now=1)
    dels = [op for op in ops if isinstance(op, OvsdbOp)]
    assert {op.system_id for op in dels} == {"h1", "h2"}
    assert all(o["mutations"][0][1] == "delete" for op in dels for o in om.transaction(op))
    assert tracer(core, 1).trace(flood).ports() == [12]


def test_a_learned_mac_is_installed_on_every_other_host_before_it_is_needed():
    core = world(3)
    ops = core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=5.0)
    unicast = [op for op in flow_ops(ops) if op.flow.table == t.UNICAST and not op.delete]
    assert sorted(op.dpid for op in unicast) == [1, 2, 3]  # remote entries on 1 and 3, local drop on 2
    ep, = core.tenant_endpoints(BLUE.vni)
    assert (ep.host_id, ep.ips, ep.last_seen) == ("h2", {"10.0.0.2"}, 5.0)


def test_repeating_what_is_known_sends_nothing():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=5.0)
    assert core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=6.0) == []


def test_a_mac_that_moves_is_followed_by_every_host():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.2", BLUE.vlan), now=1.0)
    core.packet_in(3, arp_frame(mac(2), "10.0.0.2", "10.0.0.2", BLUE.vlan), now=2.0)
    assert core.counters["mac_moves"] == 1
    pkt = {"in_port": 1, "vlan_vid": BLUE.vlan | 0x1000, "eth_src": mac(1), "eth_dst": mac(2)}
    assert tracer(core, 1).trace(pkt).ports() == [13]
    # the old host no longer treats it as local, and sends to the new place
    assert tracer(core, 2).trace(pkt).ports() == [13]


def test_an_ip_that_moves_to_another_mac_is_answered_with_the_new_one():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.9", "10.0.0.9", BLUE.vlan), now=1.0)
    core.packet_in(3, arp_frame(mac(3), "10.0.0.9", "10.0.0.9", BLUE.vlan), now=2.0)
    eps = {ep.mac: ep.ips for ep in core.tenant_endpoints(BLUE.vni)}
    assert eps == {mac(2): set(), mac(3): {"10.0.0.9"}}


def test_a_silent_mac_ages_out_everywhere():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    match = {"vlan_vid": BLUE.vlan | f.OFPVID_PRESENT, "eth_src": mac(2)}
    ops = core.flow_removed(2, t.SRC_MAC, 0, match, now=400.0)
    assert core.tenant_endpoints(BLUE.vni) == []
    deleted = {(op.dpid, op.table) for op in ops if isinstance(op, FlowDelete)}
    assert (1, t.UNICAST) in deleted and (3, t.ARP_RESPONDER) in deleted
    assert (2, t.SRC_MAC) not in deleted  # the switch removed that one itself


def test_a_flow_removed_by_our_own_delete_is_not_ageing():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    match = {"vlan_vid": BLUE.vlan | f.OFPVID_PRESENT, "eth_src": mac(2)}
    assert core.flow_removed(2, t.SRC_MAC, 2, match, now=2.0) == []
    assert len(core.tenant_endpoints(BLUE.vni)) == 1


def test_membership_changes_update_the_flood_groups():
    core = world(3, members={1: frozenset({10})})
    assert not core.installed[1].groups[BLUE.vni].buckets
    ops = core.packet_in(3, arp_frame(mac(3), "10.0.0.3", "10.0.0.1", BLUE.vlan), now=1.0)
    modified = {op.dpid: op.group for op in group_ops(ops)}
    assert [b.actions for b in modified[1].buckets] == [(f.Output(13),)]
    assert [b.actions for b in modified[3].buckets] == [(f.Output(11),)]  # never to itself
    assert 2 not in modified  # no members on h2: it holds nothing of blue
    # h2 joins the tenant: h3's group changes too, toward h2 and never toward itself
    ops = core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=2.0)
    modified = {op.dpid: op.group for op in group_ops(ops)}
    assert [b.actions for b in modified[3].buckets] == [(f.Output(11),), (f.Output(12),)]


def test_deleting_a_tenant_removes_its_flows_and_group_everywhere():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    ops = core.delete_tenant("blue")
    for dpid in (1, 2, 3):
        inst = core.installed[dpid]
        left = [part for part in inst.parts if part == BLUE.vni or (isinstance(part, tuple) and part[0] == BLUE.vni)]
        assert left == [] and not [fl for fl in installed_flows(core, dpid) if f.cookie_vni(fl.cookie) == BLUE.vni]
        assert BLUE.vni not in core.installed[dpid].groups
    assert {op.dpid for op in group_ops(ops) if op.command == "delete"} == {1, 2, 3}
    assert core.tenant_endpoints(BLUE.vni) == []
    assert flow_ops(ops) == []  # nothing else was touched: deletes only


def test_changing_a_tenants_vlan_reprograms_only_that_tenant():
    core = world(3)
    from dataclasses import replace
    keys = {dpid: {fl.key: f.cookie_vni(fl.cookie) for fl in installed_flows(core, dpid)} for dpid in (1, 2, 3)}
    ops = core.put_tenant(replace(BLUE, vlan=30))
    touched = [(op.dpid, key) for op in ops for key, _ in flow_changes([op])]
    assert touched and all(keys[dpid].get(key, BLUE.vni) == BLUE.vni for dpid, key in touched)
    assert {f.cookie_vni(op.flow.cookie) for op in flow_ops(ops)} <= {BLUE.vni}


def test_learn_mode_purges_switch_learned_entries_of_a_deleted_tenant():
    core = world(2, settings=defaults(mac_learning=MODE_LEARN))
    ops = core.delete_tenant("blue")
    purges = [op for op in ops if isinstance(op, FlowPurge)]
    assert {(p.dpid, p.table) for p in purges} == {(1, t.UNICAST), (2, t.UNICAST)}


def test_packet_ins_that_make_no_sense_are_counted_and_dropped():
    core = world(2)
    assert core.packet_in(1, b"\x00" * 5, now=1) == []
    assert core.packet_in(1, arp_frame(mac(1), "10.0.0.1", "10.0.0.2", vlan=999), now=1) == []
    assert core.packet_in(99, arp_frame(mac(1), "10.0.0.1", "10.0.0.2", BLUE.vlan), now=1) == []
    assert core.counters["packet_in_malformed"] == 1
    assert core.counters["packet_in_unknown_vlan"] == 1
    assert core.counters["packet_in_ignored"] == 1


def test_a_removed_source_entry_with_a_masked_vlan_is_an_error_not_a_quiet_no():
    """A masked field where none can be: the handler raises, and its guard closes that switch's
    connection (tests/e2e/test_garbage.py); a match without a MAC is no source entry of ours."""
    core = world(2)
    with pytest.raises(TypeError):
        core.flow_removed(2, t.SRC_MAC, 0, {"vlan_vid": (0x1000 | BLUE.vlan, 0x1000), "eth_src": mac(1)}, now=1.0)
    assert core.flow_removed(2, t.SRC_MAC, 0, {"vlan_vid": 0x1000 | BLUE.vlan}, now=1.0) == []


def test_per_host_vlans_let_one_vni_use_different_vlans():
    from controller.model.state import Tenant
    green = Tenant("green", 7000, 100, vlans=(("h2", 200),))
    core = world(2, tenants=(green,))
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", 200), now=1)
    pkt = {"in_port": 1, "vlan_vid": 100 | 0x1000, "eth_src": mac(1), "eth_dst": mac(2)}
    tr = tracer(core, 1).trace(pkt)
    assert tr.ports() == [12] and tr.outputs[0][1]["tunnel_id"] == 7000
    arriving = {"in_port": 11, "tunnel_id": 7000, "vlan_vid": 0, "eth_src": mac(1), "eth_dst": mac(2)}
    assert tracer(core, 2).trace(arriving).outputs[0][1]["vlan_vid"] == 200 | 0x1000


def test_a_tenant_limited_to_some_hosts_is_not_programmed_elsewhere():
    from controller.model.state import Tenant
    core = world(3, tenants=(Tenant("few", 8000, 10, hosts=frozenset({"h1", "h2"})),))
    assert all(fl.cookie >> 32 & 0xFFFFFF != 8000
               for fl in installed_flows(core, 3))
    assert 8000 in core.installed[1].groups


def test_view_helper_is_consistent():
    assert view(1, [2]).tunnels[0].remote_ip == ip_of(2)


def test_switch_counters_grow_monotonically_from_role_aggregates():
    core = world(3)
    core.role_stats(1, f.ROLE_ARP_PROXY, 5)  # the first reading is a baseline, not traffic
    core.role_stats(1, f.ROLE_ARP_PROXY, 12)
    core.role_stats(1, f.ROLE_FLOOD, 0)
    core.role_stats(1, f.ROLE_FLOOD, 2)
    core.role_stats(1, f.ROLE_ARP_PROXY, 3)  # flows went away with their packets: not traffic
    core.role_stats(1, f.ROLE_ARP_PROXY, 4)
    assert core.counters["arp_proxied"] == 8 and core.counters["floods_suppressed"] == 8
    assert core.counters["floods_sent"] == 2
    core.role_stats(99, f.ROLE_FLOOD, 50)  # not a switch we know
    assert core.counters["floods_sent"] == 2


def test_counted_flows_carry_their_role_in_the_cookie():
    core = world(2)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    roles = {f.cookie_role(wire_cookie(fl)) for fl in installed_flows(core, 1)}
    assert {f.ROLE_ARP_PROXY, f.ROLE_FLOOD, f.ROLE_FLOOD_UNKNOWN, f.ROLE_UNICAST_KNOWN} <= roles
    home = {f.cookie_role(wire_cookie(fl)) for fl in installed_flows(core, 2)}
    assert {f.ROLE_SOURCE, f.ROLE_BINDING, f.ROLE_ARP_LOCAL} <= home


def holddowns(ops) -> list:
    return [op for op in flow_ops(ops) if op.flow.cookie & f.COOKIE_KIND_MASK == f.COOKIE_HOLDDOWN]


def test_a_request_from_a_sender_the_switch_does_not_know_is_held_down_from_the_learning_tables_punt():
    # the responders tell the controller only of known senders' requests (one punt per frame): a new
    # sender's comes from the learning tables, and holds its unknown IP down all the same
    core = world(3)
    ops = core.packet_in(1, arp_frame(mac(1), "10.0.0.1", "10.0.0.99", BLUE.vlan), now=1.0, table=t.SRC_BINDING)
    (held,) = holddowns(ops)
    assert held.dpid == 1 and dict(held.flow.match)["arp_tpa"] == "10.0.0.99"
    assert core.bindings[(BLUE.vni, "10.0.0.1")] == mac(1)  # and the sender learned
    # not a probe (sender 0.0.0.0: the responder floods it without a word), not a GARP (its own IP)
    probe = arp_frame(mac(2), "0.0.0.0", "10.0.0.98", BLUE.vlan)
    assert not holddowns(core.packet_in(2, probe, now=1.0, table=t.SRC_BINDING))
    assert not holddowns(core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.2", BLUE.vlan), now=1.0,
                                        table=t.SRC_BINDING))


def test_a_request_for_an_unknown_ip_is_held_down_on_the_asking_host():
    core = world(3)
    request = arp_frame(mac(1), "10.0.0.1", "10.0.0.99", BLUE.vlan)
    ops = core.packet_in(1, request, now=1.0, table=t.ARP_RESPONDER)
    holddown, = [op for op in flow_ops(ops) if op.flow.cookie & f.COOKIE_KIND_MASK == f.COOKIE_HOLDDOWN]
    assert holddown.dpid == 1 and holddown.flow.hard_timeout == 3 and holddown.flow.actions == ()
    assert dict(holddown.flow.match)["arp_tpa"] == "10.0.0.99"
    assert holddown.flow.priority < 10  # a learned answer still wins
    # Unicast, the request never went to the responder: the learning tables' punt holds nothing down.
    unicast = arp_frame(mac(2), "10.0.0.2", "10.0.0.98", BLUE.vlan, dst_mac=mac(3))
    assert not holddowns(core.packet_in(2, unicast, now=1.0, table=t.SRC_BINDING))
