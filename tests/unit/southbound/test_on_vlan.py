"""An endpoint's entries on hosts where its tenant has other VLANs: made once and moved to each
host's VLAN (flows.on_vlan), their bytes patched from the first host's (encoder.flow_mod). Each
must be the flow, and the bytes, that making it from scratch gives."""

import dataclasses

import pytest

from controller.core.changes import Learned
from controller.model import flows as f
from controller.model.ops import FlowMod
from controller.model.state import Endpoint, Tenant
from controller.pipeline import desired
from controller.shell.config import defaults
from controller.southbound import encoder, ofmsg
from tests.unit.world import installed_flows, world

# Another VLAN on each host, as the scale benchmark's sparse tenants (and Neutron's local VLANs).
GREEN = Tenant("green", 5003, 30, vlans=(("h2", 31), ("h3", 32), ("h4", 33)))


def per_host_vlans_world(ports: str):
    n = 4
    members = {i: frozenset({GREEN.vlan_on(f"h{i}")}) for i in range(1, n + 1)}
    core = world(n, settings=defaults(tunnel_ports=ports), tenants=(GREEN,), members=members)
    ops = []
    for host in range(1, n + 1):
        for i in range(3):
            ep = Endpoint(GREEN.vni, f"02:00:00:00:{host:02x}:{i:02x}", f"h{host}", GREEN.vlan_on(f"h{host}"), 1.0,
                          {f"10.3.{host}.{i}", f"fd00::3:{host}:{i}"})
            ops += core.learn([Learned(ep)], now=1.0)
    return core, ops


@pytest.mark.parametrize("ports", ["mesh", "flow"])
def test_entries_moved_to_a_hosts_vlan_are_the_flows_and_bytes_made_from_scratch(ports):
    core, ops = per_host_vlans_world(ports)
    moved = [op.flow for op in ops if isinstance(op, FlowMod) and op.flow._base is not None]
    vids = {dict(fl.match)["vlan_vid"] & 0xFFF for fl in moved}
    assert len(moved) >= 50 and len(vids) >= 3, (len(moved), vids)
    kinds = {(fl.table, tuple(k for k, _ in fl.match)) for fl in moved}
    assert len(kinds) >= 5, kinds  # unicast, ARP and ND answers, passed-on GARPs, ND replies
    for fl in moved:
        base = fl._base
        assert base is not None and base._base is None and base.match != fl.match
        fresh = dataclasses.replace(fl)  # through __init__ and its checks, without the link or bytes
        assert fresh._base is None and fresh == fl and hash(fresh) == hash(fl) and fresh.digest == fl.digest
        assert encoder.flow_mod(fl) == encoder.flow_mod(fresh) == ofmsg.flow_mod_slow(fl), fl
        assert encoder.wire_cookie(fl) == encoder.wire_cookie(fresh)


def test_a_moved_entry_is_what_the_switch_is_read_back_with():
    """The read model makes a switch's flows again from scratch: they match what was sent."""
    core, ops = per_host_vlans_world("flow")
    for dpid in core.installed:
        sent = {op.flow.key: encoder.flow_mod(op.flow) for op in ops if isinstance(op, FlowMod) and op.dpid == dpid}
        held = {fl.key: encoder.flow_mod(dataclasses.replace(fl)) for fl in installed_flows(core, dpid)}
        assert sent and {k: v for k, v in held.items() if k in sent} == sent


def test_a_masked_vlan_is_encoded_whole():
    base = f.Flow(0, 10, f.match(vlan_vid=(0x1000, 0x1000), eth_dst="02:00:00:00:00:01"), (f.Output(2),))
    moved = f.on_vlan(base, 0x1005)
    assert encoder.flow_mod(moved) == ofmsg.flow_mod_slow(moved)
    with pytest.raises(ValueError, match="no VLAN"):
        f.on_vlan(f.Flow(0, 10, f.match(eth_dst="02:00:00:00:00:01"), (f.Output(2),)), 0x1005)


def test_hosts_on_the_first_hosts_vlan_share_its_entries_and_the_others_are_linked_to_them():
    core, _ = per_host_vlans_world("flow")
    h1, h2 = core.ix.hosts["h1"], core.ix.hosts["h2"]
    ep = next(e for e in core.ix.endpoints.values() if e.host_id == "h4")
    desired._REMOTE.clear()
    first = desired.endpoint_flows(core.settings, h1, GREEN, ep, core.ix.peers)
    assert desired.endpoint_flows(core.settings, h1, GREEN, ep, core.ix.peers) is first
    other = desired.endpoint_flows(core.settings, h2, GREEN, ep, core.ix.peers)
    assert len(other) == len(first) == 5 and {fl._base for fl in other} == set(first)
