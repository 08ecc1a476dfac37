"""Every computed flow encodes, and the hand-made encodings have the right shape."""

import struct

from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowMod, Wipe
from controller.pipeline.learning_modes import MODE_LEARN
from controller.shell.config import defaults
from controller.southbound import ofmsg
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


def test_the_cookie_digest_input_is_what_switches_have_held_since_it_was_introduced():
    # a changed digest would make every switch's flows look foreign after an upgrade: all rewritten
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1)
    flows = all_flows(core)
    assert len({fl.actions for fl in flows}) > 5
    for fl in flows:
        assert f.digest_content(fl) == repr((fl.table, fl.priority, fl.match, fl.actions, fl.goto, fl.meter,
                                             fl.idle_timeout, fl.hard_timeout, fl.notify_removed)).encode()
