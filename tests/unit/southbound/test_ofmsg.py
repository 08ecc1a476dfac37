"""Every computed flow encodes, and the hand-made encodings have the right shape."""

import struct
import zlib
from dataclasses import replace

from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowMod, Wipe
from controller.pipeline.learning_modes import MODE_LEARN
from controller.shell.config import defaults
from controller.southbound import encoder, ofmsg
from tests.unit.world import BLUE, arp_frame, installed_flows, mac, world


def all_flows(core):
    return [fl for dpid in core.installed for fl in installed_flows(core, dpid)]


def test_every_flow_of_both_modes_encodes_for_install_and_delete():
    for settings in (defaults(), defaults(mac_learning=MODE_LEARN, tunnel_type="gre")):
        core = world(3, settings=settings)
        core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1)
        flows = all_flows(core)
        assert len({fl.table for fl in flows}) >= 5, flows  # the whole pipeline, not an empty loop
        for fl in flows:
            for delete in (False, True):
                msg = ofmsg.flow_mod(fl, delete)
                version, kind, length = struct.unpack_from("!BBH", msg)
                assert (version, kind, length) == (4, 14, len(msg))


def test_clone_wraps_its_actions_in_a_nicira_clone():
    raw = ofmsg.action(f.Clone((f.Resubmit(t.SRC_BINDING),)))
    kind, length, vendor, subtype = struct.unpack_from("!HHIH", raw.data)
    assert (kind, vendor, subtype) == (0xFFFF, 0x2320, 42) and length == len(raw.data) == 32


def test_nd_fields_use_the_ericsson_oxm_class_padded_to_8_bytes():
    raw = ofmsg.action(f.SetField("nd_reserved", 0x60000000))
    assert raw.data == struct.pack("!HHHBBI", 25, 16, 0x1000, 2, 4, 0x60000000) + bytes(4)


def test_batches_join_messages_per_datapath_into_one_write():
    core = world(2)
    flows = all_flows(core)
    ops = [Wipe(1)] + [FlowMod(1, fl) for fl in flows] * (300 // len(flows) + 1) + [FlowMod(2, flows[0])]
    writes = ofmsg.batches(ops)
    assert writes[1] == b"".join(m for op in ops[:-1] for m in ofmsg.encode(op))
    assert writes[2] == ofmsg.flow_mod(flows[0])


def test_the_fast_flow_mod_is_byte_for_byte_what_os_ken_encodes():
    from controller.pipeline.learning_modes import MODE_LEARN
    from tests.unit.world import BLUE, arp_frame, world
    seen: set[str] = set()
    for settings in (defaults(), defaults(mac_learning=MODE_LEARN, tunnel_type="gre"),
                     defaults(tunnel_ports="flow"),
                     defaults(tunnel_type="geneve", tunnel_ports="flow", max_endpoints=2)):
        core = world(3, settings=settings)
        for i in range(5):
            core.packet_in(2, arp_frame(f"02:00:00:00:09:{i:02x}", f"10.0.9.{i}", "10.0.0.1", BLUE.vlan), now=1.0)
        flows = all_flows(core)
        assert len(flows) > 30
        seen |= {k for fl in flows for k, _ in fl.match}
        assert [fl for fl in flows if ofmsg.flow_mod(fl) != ofmsg.flow_mod_slow(fl)] == []
    # every kind of field the pipeline matches on was in there (the fast match encoding takes each apart)
    assert {"in_port", "eth_dst", "eth_src", "eth_type", "vlan_vid", "tunnel_id", "arp_tpa", "ipv6_src"} <= seen, seen


# Flows as the pipeline makes them, written out, with the two cookies switches may hold for each
# (owner, role and a digest of the content): every action kind, a masked match, goto, meter,
# timeouts. The first is what older controllers wrote (the digest of the flow's repr,
# flows.legacy_cookie), the second what the encoder writes since (a CRC of the flow-mod's bytes).
# A digest that changes makes every switch's flows look changed after an upgrade: all of them
# rewritten. Both stay: a switch last written by an older version is read back as it is.
GOLDEN_COOKIES = [
    (f.Flow(0, 100, f.match(in_port=12), goto=3, cookie=f.COOKIE_TUNNEL), 0x20000000087acc8, 0x200000000b9698a),
    (f.Flow(0, 100, f.match(in_port=1), (f.Clone((f.Resubmit(1),)), f.Resubmit(4)), cookie=f.COOKIE_BASE),
     0x1000000006c3dbd, 0x1000000003ff90e),
    (f.Flow(1, 10, f.match(eth_dst=f.MULTICAST_MAC), goto=21, cookie=f.COOKIE_BASE),
     0x100000000b91759, 0x100000000341603),
    (f.Flow(3, 10, f.match(tunnel_id=5001), (f.PushVlan(), f.SetField("vlan_vid", 0x100A)), goto=10,
            cookie=f.cookie(f.COOKIE_TENANT, 5001)), 0x30013890096036c, 0x300138900bea580),
    (f.Flow(5, 0, (), (f.Output(f.OFPP_CONTROLLER),), meter=1, cookie=f.COOKIE_BASE),
     0x100000000d109fe, 0x100000000188829),
    (f.Flow(5, 10, f.match(eth_src="02:00:00:00:00:02", vlan_vid=0x100A), cookie=f.cookie(f.COOKIE_ENDPOINT, 5001),
            idle_timeout=300, notify_removed=True, role=f.ROLE_SOURCE), 0x400138908d75fb3, 0x4001389081f91ea),
    (f.Flow(10, 0, (), (f.Learn(20, 1, 300), f.Output(1)), cookie=f.COOKIE_BASE), 0x1000000000d91a0, 0x100000000a5b631),
    (f.Flow(18, 10, f.match(arp_op=1, arp_tpa="10.0.0.2", eth_type=0x0806, vlan_vid=0x100A),
            (f.Move("eth_src", "eth_dst", 48), f.SetField("eth_src", "02:00:00:00:00:02"), f.SetField("arp_op", 2),
             f.Move("arp_sha", "arp_tha", 48), f.Move("arp_spa", "arp_tpa", 32),
             f.SetField("arp_sha", "02:00:00:00:00:02"), f.SetField("arp_spa", "10.0.0.2"), f.Output(f.OFPP_IN_PORT)),
            cookie=f.cookie(f.COOKIE_ENDPOINT, 5001), role=f.ROLE_ARP_PROXY), 0x4001389012a7c52, 0x400138901153b7b),
    # a responder's miss floods, metered; only a known sender's request is punted (one punt per GARP)
    (f.Flow(19, 1, f.match(vlan_vid=0x100A), (), goto=21, meter=2,
            cookie=f.cookie(f.COOKIE_TENANT, 5001), role=f.ROLE_FLOOD_UNKNOWN), 0x300138905a0a307, 0x300138905a7a4b0),
    (f.Flow(21, 10, f.match(vlan_vid=0x100A), (f.PopVlan(), f.SetField("tunnel_id", 5001), f.Group(5001)),
            cookie=f.cookie(f.COOKIE_TENANT, 5001), role=f.ROLE_FLOOD), 0x300138906f7f16b, 0x3001389061a6683),
]


def test_the_cookie_digests_are_what_switches_have_held_since_each_was_introduced():
    got = [(fl.table, fl.priority, hex(f.legacy_cookie(fl)), hex(encoder.wire_cookie(fl))) for fl, *_ in GOLDEN_COOKIES]
    assert got == [(fl.table, fl.priority, hex(legacy), hex(now)) for fl, legacy, now in GOLDEN_COOKIES], got
    # the legacy digest's input, written out once: repr of the content fields
    assert f.digest_content(GOLDEN_COOKIES[0][0]) == b"(0, 100, (('in_port', 12),), (), 3, None, 0, 0, False)"


def test_the_cookie_a_flow_mod_carries_is_wire_cookie_and_its_digest_covers_all_but_the_cookie():
    for fl, *_ in GOLDEN_COOKIES:
        msg = encoder.flow_mod(fl)
        assert struct.unpack_from("!Q", msg, 8)[0] == encoder.wire_cookie(fl)
        assert encoder.wire_cookie(fl) & f.DIGEST_MASK == zlib.crc32(msg[16:]) & f.DIGEST_MASK
    # what differs only past the cookie (here a timeout) has another digest
    fl = GOLDEN_COOKIES[5][0]
    assert encoder.wire_cookie(fl) != encoder.wire_cookie(replace(fl, idle_timeout=fl.idle_timeout + 1))


def test_the_golden_flows_are_the_pipelines_own():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1)
    learn = world(3, settings=defaults(mac_learning=MODE_LEARN, tunnel_type="gre"))
    made = set(all_flows(core)) | set(all_flows(learn))
    assert [fl for fl, *_ in GOLDEN_COOKIES if fl not in made] == []


def test_a_barrier_is_numbered_by_its_switch_and_byte_for_byte_what_os_ken_encodes():
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from tests.unit.fake_switch import FakeDatapath
    dp = FakeDatapath(1)
    (xid1, buf1), (xid2, buf2) = ofmsg.barrier(dp), ofmsg.barrier(dp)
    assert xid2 != xid1
    for xid, buf in ((xid1, buf1), (xid2, buf2)):
        reference = parser.OFPBarrierRequest(ofmsg._DP)
        reference.set_xid(xid)
        reference.serialize()
        assert buf == bytes(reference.buf)
