"""The computed pipeline, traced packet by packet without a switch."""

import pytest

from controller.model import flows as f
from controller.model import tables as t
from controller.pipeline.learning_modes import MODE_LEARN
from controller.shell.config import defaults
from tests.unit.world import (
    BLUE,
    PATCH,
    RED,
    arp_frame,
    arp_request,
    local_packet,
    mac,
    tracer,
    tunnel_port,
    world,
)


def learn_everywhere(core, entries):
    """entries: (host index, tenant, mac, ip) seen by the controller as packet-ins."""
    for i, tenant, m, ip in entries:
        core.packet_in(i, arp_frame(m, ip, "10.0.0.254", tenant.vlan), now=1.0)


def test_every_table_is_declared_once_with_a_role():
    ids = [tb.id for tb in t.PIPELINE]
    assert len(ids) == len(set(ids))
    assert all(tb.role and tb.name for tb in t.PIPELINE)
    for tb in t.PIPELINE:
        assert all(n in t.BY_ID for n in tb.next)


def test_flow_refuses_an_undeclared_or_backward_goto():
    with pytest.raises(ValueError):
        f.Flow(t.FLOOD, 1, f.match(), goto=t.UNICAST)
    with pytest.raises(ValueError):
        f.Flow(t.TUNNEL_IN, 1, f.match(), goto=t.FLOOD)


def test_tunnel_arrival_is_tagged_with_the_local_vlan_and_sent_to_br0():
    core = world()
    pkt = {"in_port": tunnel_port(2), "tunnel_id": BLUE.vni, "vlan_vid": 0,
           "eth_src": mac(2), "eth_dst": mac(1), "eth_type": 0x0800}
    tr = tracer(core, 1).trace(pkt)
    assert tr.ports() == [PATCH]
    assert tr.outputs[0][1]["vlan_vid"] == BLUE.vlan | f.OFPVID_PRESENT


def test_unknown_tunnel_id_and_unknown_port_are_dropped():
    core = world()
    assert tracer(core, 1).trace({"in_port": tunnel_port(2), "tunnel_id": 999, "vlan_vid": 0,
                                  "eth_src": mac(2), "eth_dst": mac(1)}).outputs == []
    assert tracer(core, 1).trace({"in_port": 77, "vlan_vid": 0, "eth_src": mac(2),
                                  "eth_dst": mac(1)}).outputs == []


def test_broadcast_reaches_only_hosts_with_members_of_the_tenant():
    # blue has members on h1 and h3 (br0 ports tagged 10), none on h2.
    core = world(members={1: frozenset({10}), 3: frozenset({10})})
    tr = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff"))
    assert sorted(tr.ports()) == [tunnel_port(3)]
    (port, sent), = tr.outputs
    assert sent["tunnel_id"] == BLUE.vni and sent["vlan_vid"] == 0


def test_learn_mode_floods_to_every_host_like_the_article():
    core = world(settings=defaults(mac_learning=MODE_LEARN), members={1: frozenset({10})})
    tr = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff"))
    assert sorted(tr.ports()) == [tunnel_port(2), tunnel_port(3)]
    learn = tracer(core, 1).tables[t.TO_LOCAL][0]
    assert isinstance(learn.actions[0], f.Learn) and learn.actions[1] == f.Output(PATCH)


def test_known_remote_mac_is_unicast_to_its_host_from_the_first_frame():
    core = world()
    learn_everywhere(core, [(2, BLUE, mac(2), "10.0.0.2")])
    tr = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), mac(2)))
    assert tr.ports() == [tunnel_port(2)]
    assert tr.outputs[0][1]["tunnel_id"] == BLUE.vni


def test_arp_for_a_known_ip_is_answered_in_the_switch_and_never_leaves_the_host():
    core = world()
    learn_everywhere(core, [(2, BLUE, mac(2), "10.0.0.2")])
    tr = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(1), "10.0.0.1", "10.0.0.2"))
    (port, reply), = tr.outputs
    assert port == PATCH
    assert reply["arp_op"] == 2 and reply["arp_sha"] == mac(2) and reply["arp_spa"] == "10.0.0.2"
    assert reply["eth_dst"] == mac(1) and reply["arp_tha"] == mac(1) and reply["arp_tpa"] == "10.0.0.1"
    assert reply["vlan_vid"] == BLUE.vlan | f.OFPVID_PRESENT


def test_overlapping_ips_get_their_own_tenants_answer():
    core = world()
    learn_everywhere(core, [(2, BLUE, mac(2), "10.0.0.2"), (3, RED, mac(3), "10.0.0.2")])
    for tenant, owner in ((BLUE, mac(2)), (RED, mac(3))):
        tr = tracer(core, 1).trace(arp_request(tenant.vlan, mac(1), "10.0.0.1", "10.0.0.2"))
        assert [p["arp_sha"] for _, p in tr.outputs] == [owner]


def test_arp_for_a_local_ip_is_left_to_br0():
    core = world()
    learn_everywhere(core, [(1, BLUE, mac(5), "10.0.0.5")])
    tr = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(1), "10.0.0.1", "10.0.0.5"))
    assert tr.outputs == []


def test_arp_for_an_unknown_ip_is_flooded_through_the_flood_meter():
    core = world(members={1: frozenset({10}), 2: frozenset({10})})
    tr = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(1), "10.0.0.1", "10.0.0.99"))
    assert tr.ports() == [tunnel_port(2)]
    responder_miss = [fl for fl in tr.path if fl.table == t.ARP_RESPONDER]
    assert responder_miss and responder_miss[0].meter == t.METER_FLOOD


def test_unknown_source_is_punted_through_the_learning_meter_while_the_frame_goes_on():
    core = world(members={1: frozenset({10}), 2: frozenset({10})})
    tr = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(9), "ff:ff:ff:ff:ff:ff"))
    assert [meter for _, meter in tr.punts] == [t.METER_LEARN]
    assert tr.ports() == [tunnel_port(2)]


def test_known_source_is_not_punted_again():
    core = world()
    learn_everywhere(core, [(1, BLUE, mac(1), "10.0.0.1")])
    tr = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff"))
    assert tr.punts == []
    tr = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(1), "10.0.0.1", "10.0.0.2"))
    assert [meter for _, meter in tr.punts] == [t.METER_FLOOD]  # only the unknown-IP notice


def test_a_new_vms_gratuitous_arp_is_punted_once_by_the_learning_tables():
    core = world(members={1: frozenset({10}), 2: frozenset({10})})
    garp = arp_request(BLUE.vlan, mac(9), "10.0.0.9", "10.0.0.9")
    tr = tracer(core, 1).trace(garp)
    assert [meter for _, meter in tr.punts] == [t.METER_LEARN]  # not from the responder's miss as well
    assert tr.ports() == [tunnel_port(2)]  # and flooded to the tenant's other member
    core.packet_in(1, arp_frame(mac(9), "10.0.0.9", "10.0.0.9", BLUE.vlan), now=1.0, table=t.SRC_BINDING)
    assert tracer(core, 1).trace(garp).punts == []  # known now: announced again, nothing to learn


def test_a_request_for_an_unknown_ip_is_punted_once_whoever_sends_it():
    core = world(members={1: frozenset({10}), 2: frozenset({10})})
    learn_everywhere(core, [(1, BLUE, mac(1), "10.0.0.1")])
    known = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(1), "10.0.0.1", "10.0.0.99"))
    unknown = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(8), "10.0.0.8", "10.0.0.99"))
    assert [meter for _, meter in known.punts] == [t.METER_FLOOD]  # the responder's, for a known sender
    assert [meter for _, meter in unknown.punts] == [t.METER_LEARN]  # the learning tables', for a new one
    assert known.ports() == unknown.ports() == [tunnel_port(2)]


def test_same_mac_in_two_tenants_stays_apart():
    core = world()
    learn_everywhere(core, [(2, BLUE, mac(7), "10.0.0.7"), (3, RED, mac(7), "10.0.0.7")])
    assert tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), mac(7))).ports() == [tunnel_port(2)]
    assert tracer(core, 1).trace(local_packet(RED.vlan, mac(1), mac(7))).ports() == [tunnel_port(3)]
    sent = tracer(core, 1).trace(local_packet(RED.vlan, mac(1), mac(7))).outputs[0][1]
    assert sent["tunnel_id"] == RED.vni


def test_neighbour_solicitation_for_a_known_ipv6_is_answered_locally():
    core = world()
    ns = bytes.fromhex("333300000001") + bytes.fromhex(mac(2).replace(":", ""))
    # learn fd00::2 from an unsolicited NA sent by mac(2) on h2
    import struct
    target = bytes.fromhex("fd000000000000000000000000000002")
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + target
    all_nodes = bytes.fromhex("ff02" + "0" * 27 + "1")
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + target + all_nodes
    core.packet_in(2, ns + struct.pack("!HHH", 0x8100, BLUE.vlan, 0x86DD) + ip6 + icmp, now=1.0)
    pkt = local_packet(BLUE.vlan, mac(1), "33:33:ff:00:00:02", eth_type=0x86DD, ip_proto=58,
                       icmpv6_type=135, ipv6_src="fd00::1", ipv6_dst="ff02::1:ff00:2",
                       ipv6_nd_target="fd00::2")
    tr = tracer(core, 1).trace(pkt)
    (port, na), = tr.outputs
    assert port == PATCH and na["icmpv6_type"] == 136
    assert na["ipv6_src"] == "fd00::2" and na["ipv6_dst"] == "fd00::1" and na["ipv6_nd_tll"] == mac(2)
    assert na["eth_src"] == mac(2) and na["eth_dst"] == mac(1)


def test_the_learning_copy_sees_the_frame_as_sent_not_as_the_responder_rewrote_it():
    core = world()
    learn_everywhere(core, [(2, BLUE, mac(2), "10.0.0.2")])
    tr = tracer(core, 1).trace(arp_request(BLUE.vlan, mac(8), "10.0.0.8", "10.0.0.2"))
    assert tr.ports() == [PATCH]  # answered in the switch
    (punted, meter), = tr.punts
    assert punted["eth_src"] == mac(8) and punted["arp_op"] == 1 and meter == t.METER_LEARN


def test_gratuitous_arp_and_probes_are_passed_on_never_answered():
    core = world(members={1: frozenset({10}), 3: frozenset({10})})
    learn_everywhere(core, [(3, BLUE, mac(3), "10.0.0.3")])
    garp = arp_request(BLUE.vlan, mac(3), "10.0.0.3", "10.0.0.3")  # the VM, moved to h1, announces
    assert tracer(core, 1).trace(garp).ports() == [tunnel_port(3)]
    probe = arp_request(BLUE.vlan, mac(4), "0.0.0.0", "10.0.0.3")
    assert tracer(core, 1).trace(probe).ports() == [tunnel_port(3)]
