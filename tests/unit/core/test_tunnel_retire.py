"""A tunnel port goes only once nothing on its host's switch sends out of it (issue 22.13).

Driven as the app drives the core (events, then drains; an OVSDB operation carried out in its
place in the list), against fake switches and OVSDBs (tests/unit/fake_overlay.py), which record a
port removed while a flow or group still named it.
"""

from __future__ import annotations

import pytest

from controller.model import tables as t
from controller.model.ops import DeletePorts, FlowMod, FlowPurge
from controller.model.state import Tenant
from controller.shell.config import defaults
from tests.unit.fake_overlay import Overlay, three_hosts

BLUE, RED = Tenant("blue", 5001, 10), Tenant("red", 5002, 20)


def overlay(**options) -> tuple[Overlay, dict]:
    """Three hosts with a VM in each tenant, every VM learned (controller mode)."""
    options = {"max_endpoints": 100, **options}
    return three_hosts(defaults(**options), [BLUE, RED]), options


def retune(ov: Overlay, options: dict, **changed) -> None:
    options.update(changed)
    ov.run(ov.core.retune_tunnels(defaults(**options), ov.now))


@pytest.mark.parametrize("learning", ["controller", "learn"])
@pytest.mark.parametrize(("source", "target"), [("mesh", "flow"), ("flow", "mesh")])
def test_switching_port_modes_removes_the_old_ports_only_after_every_flow_left_them(learning, source, target):
    ov, options = overlay(mac_learning=learning, tunnel_ports=source)
    retune(ov, options, tunnel_ports=target)
    ov.settle_ovsdb()
    assert ov.violations == []  # the old code removed them first, then moved the flows (eager off)
    assert ov.problems() == []
    for i in (1, 2, 3):
        kinds = {p.remote_ip == "flow" for p in ov.ovsdbs[f"h{i}"].view.tunnels}
        assert kinds == {target == "flow"}  # and they did go


def test_entries_kept_for_endpoints_not_recovered_yet_go_before_the_ports_they_use():
    # After a restart, h1 keeps its unicast entry for h2's VMs while h2 is away (their own host
    # tells where they are); a mesh -> flow switch then removed the port that entry sent out of,
    # and h2's VMs were dark from h1 until the recovery window ended (issue 22.13: 8 s).
    ov, options = overlay(mac_learning="controller", tunnel_ports="mesh")
    ov.openflow_disconnect(2)
    ov.restart(recovery_s=10.0)
    for dpid in sorted(ov.reads):
        ov.answer_read(dpid)
    assert ov.core.recovering and len(ov.core.endpoints) == 4  # h2's two VMs are not known yet
    h1 = ov.switches[1]
    kept = [k for k in h1.flows if k[0] == t.UNICAST and ("eth_dst", "02:00:00:00:00:02") in k[2]]
    assert len(kept) == 1  # kept for traffic: it still works on the old port
    retune(ov, options, tunnel_ports="flow")
    ov.settle_ovsdb()
    assert ov.violations == []
    assert kept[0] not in h1.flows  # gone with the port: h2's VMs are reached by the flood now
    assert ov.problems() == []


def test_a_port_still_in_use_is_kept_when_a_hosts_view_comes_before_its_peers():
    # Restarted during a flow -> mesh switch whose mesh ports are not up yet: h1's view arrives
    # before h2's and h3's, so every port of the new mode seems up (no peer is known yet).
    ov, options = overlay(mac_learning="controller", tunnel_ports="flow")
    retune(ov, options, tunnel_ports="mesh")  # the mesh ports are asked for, not numbered yet
    ov.restart(recovery_s=10.0)
    ov.answer_read(1)
    assert ov.violations == []  # the flow port was removed under h1's flood groups before
    assert any(p.remote_ip == "flow" for p in ov.ovsdbs["h1"].view.tunnels)
    for dpid in sorted(ov.reads):
        ov.answer_read(dpid)
    ov.settle_ovsdb()  # the mesh ports come up: now the flow port goes
    assert ov.violations == [] and ov.problems() == []
    assert all(p.remote_ip != "flow" for p in ov.ovsdbs["h1"].view.tunnels)


def test_a_forgotten_host_leaves_every_flood_in_learn_mode_with_flow_ports():
    # No port goes (the flow port stays): nothing else told the others' flood groups.
    ov, _ = overlay(mac_learning="learn", tunnel_ports="flow")
    ov.openflow_disconnect(1)
    ov.ovsdb_disconnect("h1")
    ov.run(ov.core.forget_host("h1", ov.now))
    for dpid in (2, 3):
        buckets = [b for g in ov.switches[dpid].groups.values() for b in g.buckets]
        assert not any("10.99.0.1" in repr(b) for b in buckets), dpid
    assert ov.problems() == []


def test_the_removal_waits_for_a_switch_that_is_not_programmed():
    ov, options = overlay(mac_learning="controller", tunnel_ports="mesh")
    ov.openflow_disconnect(1)  # h1's switch keeps its flows on the mesh ports
    retune(ov, options, tunnel_ports="flow")
    ov.settle_ovsdb()
    assert len(ov.ovsdbs["h1"].view.tunnels) == 3  # h1 waits; the others switched
    assert not ov.core.pending()  # and nobody spins on it
    ov.openflow_connect(1)
    ov.answer_read(1)
    ov.settle_ovsdb()
    assert [p.remote_ip for p in ov.ovsdbs["h1"].view.tunnels] == ["flow"]
    assert ov.violations == [] and ov.problems() == []


def test_the_removal_comes_after_the_flows_that_left_the_ports_in_one_batch():
    ov, options = overlay(mac_learning="controller", tunnel_ports="mesh")
    ov.core.eager = True  # every event drains at once: one list of operations, in order
    retune(ov, options, tunnel_ports="flow")
    db = ov.ovsdbs["h1"]
    db.ports_up()
    ops = ov.core.host_view(db.view, ov.now)  # h1's flow port is up: its mesh ports may go
    at = [n for n, op in enumerate(ops) if isinstance(op, DeletePorts)]
    moved = [n for n, op in enumerate(ops) if isinstance(op, FlowMod) and op.dpid == 1 and not op.delete]
    assert len(at) == 1 and moved and max(moved) < at[0]


@pytest.mark.parametrize(("source", "target"), [("mesh", "flow"), ("flow", "mesh")])
def test_learn_mode_purges_again_once_the_host_confirms_its_old_ports_gone(source, target):
    # Between the purge that follows a removal and the removal taking effect, a reply arriving
    # through the old port teaches a learn() entry that sends into nothing once it is gone; nothing
    # teaches it again while the request it answers is dropped (the lab lost 21 echoes in a row).
    ov, options = overlay(mac_learning="learn", tunnel_ports=source)
    ov.sent.clear()
    retune(ov, options, tunnel_ports=target)
    ov.settle_ovsdb()
    for i in (1, 2, 3):
        removed = [n for n, op in enumerate(ov.sent) if isinstance(op, DeletePorts) and op.system_id == f"h{i}"]
        purges = [n for n, op in enumerate(ov.sent)  # of blue's learn() entries, on its host
                  if isinstance(op, FlowPurge) and op.dpid == i and dict(op.match)["vlan_vid"][0] == BLUE.vlan]
        assert removed and len([n for n in purges if n > removed[-1]]) == 2, (i, removed, purges)
    assert ov.problems() == []
