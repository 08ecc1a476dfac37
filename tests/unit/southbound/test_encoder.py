"""The byte encoder writes exactly what os-ken's classes write, for every flow and group the pipeline makes."""

import dataclasses
import struct

import pytest

from controller.core.changes import Learned
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowMod, GroupMod
from controller.model.state import Endpoint
from controller.shell.config import defaults
from controller.southbound import encoder, ofmsg
from tests.unit.world import BLUE, RED, arp_frame, installed_flows, world

MODES = [(learning, ports) for learning in ("controller", "learn") for ports in ("mesh", "flow")]


def small_world(learning: str, ports: str):
    """3 hosts; IPv4 and IPv6 endpoints on each; one (host, tenant) past its learning cap; the ops
    of a move and of a hold-down too. Returns the core and every operation it made."""
    core = world(3, settings=defaults(mac_learning=learning, tunnel_ports=ports, max_endpoints=3))
    ops = []
    for host in (1, 2, 3):
        for i in range(4):  # the fourth on a host is over the cap of 3
            mac = f"02:00:00:00:{host:02x}:{i:02x}"
            if learning == "controller":
                ops += core.packet_in(host, arp_frame(mac, f"10.0.{host}.{i}", "10.0.9.9", BLUE.vlan), now=1.0,
                                      table=t.ARP_RESPONDER)  # an unknown IP asked for: held down
            ep = Endpoint(RED.vni, mac, f"h{host}", RED.vlan, 1.0, {f"fd00::{host}:{i}", f"10.1.{host}.{i}"})
            ops += core.learn([Learned(ep)], now=1.0)
    moved = arp_frame("02:00:00:00:01:00", "10.0.1.0", "10.0.1.0", BLUE.vlan)
    ops += core.packet_in(2, moved, now=50.0)  # a GARP from elsewhere: the MAC moved (deletes, modifies)
    return core, ops


@pytest.mark.parametrize(("learning", "ports"), MODES)
def test_every_flow_the_pipeline_makes_encodes_as_os_ken_encodes_it(learning, ports):
    core, ops = small_world(learning, ports)
    flows = [op.flow for op in ops if isinstance(op, FlowMod)]
    flows += [fl for dpid in core.installed for fl in installed_flows(core, dpid)]
    kinds = {(fl.table, fl.priority, tuple(k for k, _ in fl.match), fl.goto, fl.meter,
              tuple(type(a).__name__ for a in fl.actions)) for fl in flows}
    assert len(kinds) >= (20 if learning == "controller" else 6), kinds  # every kind, not an empty loop
    for fl in flows:
        assert encoder.flow_mod(fl) == ofmsg.flow_mod_slow(fl), fl
        assert encoder.delete_strict(*fl.key) == ofmsg.delete_strict_slow(*fl.key), fl


@pytest.mark.parametrize(("learning", "ports"), MODES)
def test_every_group_mod_encodes_as_os_ken_encodes_it(learning, ports):
    core, ops = small_world(learning, ports)
    groups = [g for inst in core.installed.values() for g in inst.groups.values() if g is not None]
    assert groups and any(len(g.buckets) == 2 for g in groups), groups
    mods = [op for op in ops if isinstance(op, GroupMod)]
    mods += [GroupMod(1, g, command) for g in groups for command in ("add", "modify", "delete")]
    for op in mods:
        assert encoder.group_mod(op.group, op.command) == ofmsg.group_mod_slow(op), op


def test_the_encodings_do_not_depend_on_what_was_encoded_before():
    core, _ = small_world("controller", "flow")
    flows = [fl for dpid in core.installed for fl in installed_flows(core, dpid)]
    first = [encoder.flow_mod(fl) for fl in flows]
    encoder.clear_caches()
    again = [dataclasses.replace(fl) for fl in reversed(flows)]  # equal flows, without the bytes kept on them
    assert [encoder.flow_mod(fl) for fl in again][::-1] == first


def test_a_flows_bytes_are_made_once_for_every_host_it_goes_to():
    core, _ = small_world("controller", "flow")
    fl = installed_flows(core, 1)[0]
    made = encoder.flow_mod(fl)
    assert encoder.flow_mod(fl) is made and encoder.wire_cookie(fl) == struct.unpack_from("!Q", made, 8)[0]
    assert encoder.flow_mod(dataclasses.replace(fl)) == made == ofmsg.flow_mod_slow(fl)


def test_values_the_fast_path_does_not_take_go_through_os_ken():
    odd = [
        f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(vlan_vid=(0x1005, 0x1FFF), eth_dst="02:00:00:00:00:01")),  # masked
        f.Flow(t.LOCAL_SPLIT, t.PRIO_ENTRY, f.match(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")),
               goto=t.UNICAST),
        f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(eth_dst="02-00-00-00-00-0A"), (f.Output(3),)),  # netaddr's spelling
        f.Flow(t.ND_REPLY, t.PRIO_ENTRY, f.match(ipv6_nd_target="fd00:0:0::1"),
               (f.SetField("nd_options_type", 2), f.SetField("ipv6_nd_tll", "02:00:00:00:00:01"))),
    ]
    for fl in odd:
        assert encoder.flow_mod(fl) == ofmsg.flow_mod_slow(fl), fl


def test_a_flow_mod_is_one_message_of_its_stated_length():
    core, _ = small_world("controller", "mesh")
    for fl in installed_flows(core, 1):
        msg = encoder.flow_mod(fl)
        version, kind, length = struct.unpack_from("!BBH", msg)
        assert (version, kind, length) == (4, 14, len(msg))
