"""Cost follows change: what an event recomputes, and what the core keeps of what it installed."""

from dataclasses import replace

from controller.core import reconcile
from controller.model import tables as t
from controller.model.ops import FlowMod, GroupMod
from tests.unit.world import BLUE, arp_frame, flow_changes, group_ops, installed_flows, mac, view, world


def counting(monkeypatch, name: str) -> list:
    calls: list = []
    real = getattr(reconcile, name)
    monkeypatch.setattr(reconcile, name, lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def test_a_host_joining_a_tenant_changes_the_other_members_groups_not_their_tenant_flows(monkeypatch):
    core = world(3, members={1: frozenset({BLUE.vlan}), 2: frozenset({BLUE.vlan})})
    calls = counting(monkeypatch, "tenant_flows")
    ops = core.host_view(view(3, [1, 2], member_vlans=frozenset({BLUE.vlan})), now=1.0)
    assert {op.dpid for op in group_ops(ops)} == {1, 2, 3}  # one bucket more on each
    assert [a[1].id for a in calls] == ["h3"]  # the tenant's flows made for the new member only
    assert {op.dpid for op in ops if isinstance(op, FlowMod)} == {3}


def test_a_tenants_flows_are_made_again_when_what_they_are_made_of_changes(monkeypatch):
    core = world(2)
    calls = counting(monkeypatch, "tenant_flows")
    ops = core.put_tenant(replace(BLUE, vlan=30))
    ops += core.host_view(view(1, [2], member_vlans=frozenset({30})), now=1.0)
    assert "h1" in {a[1].id for a in calls}
    assert any(key[0] == t.TUNNEL_IN for key, deleted in flow_changes(ops, 1) if not deleted)


def test_the_core_keeps_a_digest_per_installed_flow_not_the_flow():
    core = world(3)
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    inst = core.installed[1]
    flows = installed_flows(core, 1)
    assert len(flows) == inst.flow_count() > 20
    assert all(isinstance(d, int) for d in inst.digests.values())
    assert {fl.key: fl.digest for fl in flows} == inst.digests


def test_a_group_change_alone_sends_no_flow(monkeypatch):
    core = world(3, members={1: frozenset({BLUE.vlan}), 2: frozenset({BLUE.vlan})})
    ops = core.packet_in(3, arp_frame(mac(3), "10.0.0.3", "10.0.0.1", BLUE.vlan), now=1.0)  # h3 a member now
    assert [op for op in ops if isinstance(op, GroupMod) and op.dpid == 1]
    assert not [key for key, _ in flow_changes(ops, 1) if key[0] in (t.TUNNEL_IN, t.FLOOD)]
