"""Admission (controller/core/admission.py): a host nobody admitted is no part of the overlay, one
admitted joins as any new host, one revoked is taken out; as values, without a switch."""

import pytest

from controller.core import admission
from controller.core.admission import HostPolicy
from controller.core.switch_state import SwitchDump
from controller.model.ops import AddTunnelPorts, DeletePorts, FlowMod, GroupMod, Wipe
from controller.model.state import Peer
from controller.shell.config import defaults
from tests.unit.world import BLUE, arp_frame, flow_ops, ip_of, mac, tracer, view, world

FLOOD = {"in_port": 1, "vlan_vid": BLUE.vlan | 0x1000, "eth_src": mac(1), "eth_dst": "ff:ff:ff:ff:ff:ff"}


def approve_world():
    """h1-h3 admitted (listed), every other host waits for an operator."""
    return world(3, policy=HostPolicy(admission.APPROVE, listed=("h1", "h2", "h3")))


def connect(core, i: int, peers=(), now: float = 1.0) -> list:
    """Host i connects: its switch (read back empty), then its OVSDB view."""
    ops = core.datapath_up(i, Peer(f"10.98.0.{i}:40000"))
    ops += core.switch_read(i, SwitchDump(), now)
    return ops + core.host_view(view(i, list(peers), member_vlans=frozenset({BLUE.vlan})), now,
                                Peer(f"10.98.0.{i}:50000"))


def tunnels_toward(ops, ip: str) -> list[str]:
    return [op.system_id for op in ops if isinstance(op, AddTunnelPorts) and ip in op.remote_ips]


def test_a_host_nobody_admitted_waits_and_gets_no_tunnel_flow_or_flood_copy():
    core = approve_world()
    ops = connect(core, 4)
    ops += core.drain()
    assert tunnels_toward(ops, ip_of(4)) == [] and not core.tunnels.toward  # nobody builds a tunnel to it
    assert [op for op in ops if isinstance(op, (FlowMod, GroupMod)) and op.dpid == 4] == []  # nothing on it
    assert "h4" not in core.read.hosts and core.read.peer("h4") is None  # never a peer
    assert core.read.waiting["h4"].view.system_id == "h4"
    assert core.read.admission("h4") == (False, admission.WAITING.format(id="h4"))
    assert sorted(tracer(core, 1).trace(FLOOD).ports()) == [12, 13]  # floods reach h2 and h3 only
    # what its VMs say teaches nothing: its switch is no host's
    assert core.packet_in(4, arp_frame(mac(4), "10.0.0.2", "10.0.0.2", BLUE.vlan), now=2.0) == []
    assert core.tenant_endpoints(BLUE.vni) == [] and core.counters["packet_in_ignored"] == 1


def test_an_admitted_host_joins_as_a_new_one_and_its_read_back_switch_is_programmed():
    core = approve_world()
    connect(core, 4)
    core.policy.decisions["h4"] = True
    ops = core.reconsider("h4", now=2.0)
    assert sorted(tunnels_toward(ops, ip_of(4))) == ["h1", "h2", "h3"]
    assert flow_ops(ops, 4), "its switch, read back while it waited, is programmed"
    assert "h4" in core.read.hosts and "h4" not in core.read.waiting
    assert core.read.admission("h4") == (True, "operator")
    assert core.reconsider("h4", now=3.0) == []  # nothing changed: nothing to do


def admitted_and_meshed():
    """h4 admitted and meshed with h1-h3 (tunnel ports everywhere), with a learned VM."""
    core = approve_world()
    connect(core, 4)
    core.policy.decisions["h4"] = True
    core.reconsider("h4", now=2.0)
    for i in (1, 2, 3):
        core.host_view(view(i, [j for j in (1, 2, 3, 4) if j != i], member_vlans=frozenset({BLUE.vlan, 20})), 3.0)
    core.host_view(view(4, [1, 2, 3], member_vlans=frozenset({BLUE.vlan})), 3.0, Peer("10.98.0.4:50000"))
    core.packet_in(4, arp_frame(mac(4), "10.0.0.4", "10.0.0.4", BLUE.vlan), now=4.0)
    assert sorted(tracer(core, 1).trace(FLOOD).ports()) == [12, 13, 14]
    return core


def test_revoking_a_host_takes_it_out_everywhere_and_wipes_its_switch():
    core = admitted_and_meshed()
    assert [ep.host_id for ep in core.tenant_endpoints(BLUE.vni)] == ["h4"]
    core.policy.decisions["h4"] = False
    ops = core.reconsider("h4", now=5.0)
    assert core.tenant_endpoints(BLUE.vni) == []  # its endpoints withdrawn everywhere
    assert Wipe(4) in ops and not flow_ops(ops, 4)  # its switch holds nothing of ours
    removed = {op.system_id for op in ops if isinstance(op, DeletePorts)}
    assert removed == {"h1", "h2", "h3", "h4"}  # the tunnels toward it, and its own
    assert sorted(tracer(core, 1).trace(FLOOD).ports()) == [12, 13]
    unicast = {**FLOOD, "eth_dst": mac(4)}
    assert 14 not in tracer(core, 1).trace(unicast).ports()
    assert "h4" in core.read.waiting and "h4" not in core.read.hosts
    assert core.read.admission("h4")[0] is False
    # still connected, it stays out: its next views and packet-ins change nothing
    assert core.host_view(view(4, [1, 2, 3], member_vlans=frozenset({BLUE.vlan, 20})), 6.0) == []
    assert core.packet_in(4, arp_frame(mac(4), "10.0.0.4", "10.0.0.4", BLUE.vlan), now=6.0) == []


def test_a_revoked_host_admitted_again_is_programmed_in_full_without_a_read_back():
    core = admitted_and_meshed()
    core.policy.decisions["h4"] = False
    core.reconsider("h4", now=5.0)
    core.policy.decisions["h4"] = True
    ops = core.reconsider("h4", now=6.0)
    assert flow_ops(ops, 4) and not [op for op in ops if isinstance(op, Wipe)]


def test_revoking_in_learn_mode_removes_the_flood_buckets_toward_it():
    core = world(3, settings=defaults(mac_learning="learn"), policy=HostPolicy(admission.APPROVE,
                                                                               listed=("h1", "h2", "h3", "h4")))
    connect(core, 4)
    for i in (1, 2, 3):
        core.host_view(view(i, [j for j in (1, 2, 3, 4) if j != i], member_vlans=frozenset({BLUE.vlan})), 3.0)
    assert sorted(tracer(core, 1).trace(FLOOD).ports()) == [12, 13, 14]
    core.policy.decisions["h4"] = False
    core.reconsider("h4", now=5.0)
    assert sorted(tracer(core, 1).trace(FLOOD).ports()) == [12, 13]


@pytest.mark.parametrize("mode, listed, decided, admitted, by", [
    (admission.APPROVE, (), None, False, admission.WAITING.format(id="h9")),
    (admission.APPROVE, ("h9",), None, True, "config"),
    (admission.APPROVE, ("h9",), False, False, admission.REVOKED.format(id="h9")),  # a revoke wins over the list
    (admission.APPROVE, (), True, True, "operator"),
    (admission.OPEN, (), None, True, "open"),
    (admission.OPEN, (), False, False, admission.REVOKED.format(id="h9")),
    (admission.CERTIFICATE, (), None, True, "certificate"),  # identity.py refuses a wrong certificate
])
def test_who_is_admitted_and_why(mode, listed, decided, admitted, by):
    policy = HostPolicy(mode, listed, {} if decided is None else {"h9": decided})
    assert (policy.admitted("h9"), policy.status("h9")) == (admitted, (admitted, by))


def test_the_default_needs_an_operator_or_a_certificate():
    assert admission.default(tls_configured=False) is admission.APPROVE
    assert admission.default(tls_configured=True) is admission.CERTIFICATE


def test_a_waiting_host_that_disconnects_is_no_longer_listed():
    core = approve_world()
    connect(core, 4)
    core.ovsdb_down("h4", now=2.0)
    assert "h4" not in core.read.waiting
    core.policy.decisions["h4"] = True
    assert core.reconsider("h4", now=3.0) == []  # admitted for when it comes back


def test_a_host_admitted_before_it_ever_connected_joins_at_once():
    core = approve_world()
    core.policy.decisions["h4"] = True
    assert core.reconsider("h4", now=1.0) == []
    connect(core, 4)
    assert "h4" in core.read.hosts
