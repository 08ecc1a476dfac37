"""Port security (controller/pipeline/port_security.py): a br0 port with a rule sends only from
its allowed MACs and IPs; the switch drops the rest and the learner ignores their claims."""

from dataclasses import replace

import pytest

from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import HostView, PortRule
from controller.pipeline import port_security as ps
from controller.shell.config import defaults
from tests.unit.world import (
    BLUE,
    arp_frame,
    arp_request,
    flow_changes,
    installed_flows,
    local_packet,
    mac,
    tracer,
    view,
    world,
)

VM, OTHER, SPOOF = mac(1), mac(7), mac(9)
RULE = PortRule("h1", "vm1", frozenset({VM}), frozenset({"10.0.0.1"}))


def ports_view(i: int = 1) -> HostView:
    """h1 with two VM ports in blue's VLAN: vm1 (the ruled one) and vm2 (attached-mac OTHER)."""
    return replace(view(i, [2, 3], member_vlans=frozenset({BLUE.vlan})),
                   port_vlans=(("vm1", BLUE.vlan), ("vm2", BLUE.vlan)), attached=((VM, "vm1"), (OTHER, "vm2")))


def guarded_world(mac_learning: str = "controller"):
    core = world(3, settings=defaults(mac_learning=mac_learning))
    core.host_view(ports_view(), 1.0)
    core.put_port_rule(RULE)
    return core


def test_a_guarded_vlan_allows_the_rules_sources_and_the_other_ports_own_macs():
    g = ps.guard({"vm1": RULE}, ports_view(), BLUE.vlan)
    assert g.admits(VM, "10.0.0.1") and not g.admits(VM, "10.0.0.2")
    assert g.admits(VM, "0.0.0.0") and g.admits(VM, ps.link_local(VM))  # finding an address
    assert g.admits(OTHER, "10.0.0.99")  # an unruled port: its attached-mac, any IP
    assert not g.admits(SPOOF)
    assert ps.guard({"vm1": RULE}, ports_view(), 20) is None  # no rule in that VLAN: nothing enforced
    assert ps.guard({}, ports_view(), BLUE.vlan) is None


def test_link_local_is_the_modified_eui64_of_the_mac():
    assert ps.link_local("52:54:00:12:34:56") == "fe80::5054:ff:fe12:3456"


@pytest.mark.parametrize("mac_learning", ["controller", "learn"])
def test_the_switch_drops_a_spoofed_source_and_passes_the_allowed_ones(mac_learning):
    core = guarded_world(mac_learning)
    tr = tracer(core, 1)
    flood = "ff:ff:ff:ff:ff:ff"
    assert sorted(tr.trace(arp_request(BLUE.vlan, VM, "10.0.0.1", "10.0.0.5")).ports()) == [12, 13]
    allowed = tr.trace(local_packet(BLUE.vlan, VM, flood, ipv4_src="10.0.0.1"))
    assert sorted(allowed.ports()) == [12, 13]
    for spoofed in (local_packet(BLUE.vlan, SPOOF, flood),  # a MAC nobody may use
                    local_packet(BLUE.vlan, VM, flood, ipv4_src="10.0.0.2"),  # an IP the port may not use
                    arp_request(BLUE.vlan, VM, "10.0.0.2", "10.0.0.5")):  # an ARP claim for it
        trace = tr.trace(spoofed)
        assert (trace.ports(), trace.punts) == ([], []), spoofed  # neither sent on nor learned from
        assert (trace.path[-1].table, trace.path[-1].role) == (t.PORT_SECURITY, f.ROLE_SPOOFED)
    assert sorted(tr.trace(local_packet(BLUE.vlan, OTHER, flood, ipv4_src="10.0.0.99")).ports()) == [12, 13]


def test_drops_are_counted_by_their_own_role_and_the_rest_of_the_tenant_is_untouched():
    core = guarded_world()
    flows = list(installed_flows(core, 1))
    drops = [fl for fl in flows if fl.role == f.ROLE_SPOOFED]
    assert drops and all(fl.table == t.PORT_SECURITY and not fl.actions for fl in drops)
    assert not [fl for fl in installed_flows(core, 2) if fl.table == t.PORT_SECURITY]  # only where ruled
    # another tenant on the same host is not guarded: no classify entry for its VLAN
    guarded = [fl for fl in flows if fl.table == t.CLASSIFY and fl.priority == t.PRIO_GUARDED]
    assert [dict(fl.match)["vlan_vid"] for fl in guarded] == [BLUE.vlan | f.OFPVID_PRESENT]


def test_removing_the_rule_removes_the_guard():
    core = guarded_world()
    ops = core.drop_port_rule("h1", "vm1")
    assert [key for key, deleted in flow_changes(ops) if deleted and key[0] == t.PORT_SECURITY]
    assert not [fl for fl in installed_flows(core, 1) if fl.table == t.PORT_SECURITY]
    assert sorted(tracer(core, 1).trace(local_packet(BLUE.vlan, SPOOF, "ff:ff:ff:ff:ff:ff")).ports()) == [12, 13]


def test_a_new_port_in_a_guarded_vlan_gets_its_own_mac_through():
    core = guarded_world()
    late = mac(8)
    v = ports_view()
    core.host_view(replace(v, port_vlans=(*v.port_vlans, ("vm3", BLUE.vlan)), attached=(*v.attached, (late, "vm3"))),
                   2.0)
    trace = tracer(core, 1).trace(local_packet(BLUE.vlan, late, "ff:ff:ff:ff:ff:ff"))
    assert sorted(trace.ports()) == [12, 13]


def test_the_learner_ignores_claims_the_port_may_not_make():
    core = guarded_world()
    assert core.packet_in(1, arp_frame(VM, "10.0.0.2", "10.0.0.2", BLUE.vlan), now=2.0) == []
    assert core.packet_in(1, arp_frame(SPOOF, "10.0.0.1", "10.0.0.1", BLUE.vlan), now=2.0) == []
    assert core.counters["port_security_claims_ignored"] == 2 and core.tenant_endpoints(BLUE.vni) == []
    core.packet_in(1, arp_frame(VM, "10.0.0.1", "10.0.0.1", BLUE.vlan), now=3.0)
    ep, = core.tenant_endpoints(BLUE.vni)
    assert (ep.mac, ep.ips) == (VM, {"10.0.0.1"})
