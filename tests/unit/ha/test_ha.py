"""Several instances (controller/ha/roles.py): what a follower may send, the roles asked of switches,
and a takeover that changes nothing the switches already hold."""

from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.ha.roles import MASTER, SLAVE, Roles, promoted, read_only
from controller.model.ops import AddTunnelPorts, FlowDelete, FlowMod, ReadSwitch
from controller.southbound.encoder import wire_cookie
from tests.unit.core.test_core_hitless import dump_of
from tests.unit.world import BLUE, RED, arp_frame, mac, world


def test_one_instance_alone_leads_and_asks_no_role():
    r = Roles(False, "c1")
    assert r.leading and r.ask(1, 0.0) is None and r.switches == {}


def test_a_follower_asks_for_slave_and_may_only_read():
    r = Roles(True, "c2")
    r.follow("c1", 42)
    assert r.ask(1, 0.0) == (SLAVE, 42)
    assert read_only(ReadSwitch(1))
    assert not read_only(AddTunnelPorts("h1", "br-1", "vxlan", "10.99.0.1", ("10.99.0.2",), "tunnels"))


def test_the_leader_asks_for_master_with_its_generation_and_records_what_switches_accepted():
    r = Roles(True, "c1")
    r.lead(57, 100.0)
    assert r.ask(1, 100.0) == (MASTER, 57)
    r.replied(1, MASTER, 57, 100.2)
    doc = r.status(101.0)
    assert doc["role"] == "leader" and doc["switches"]["0000000000000001"]["accepted"] == MASTER
    assert r.refused(1)  # the leader refused by a switch: it must step down
    assert doc["generation"] == 57


def test_a_takeover_reads_every_switch_and_then_changes_nothing_they_hold():
    old = world(3)
    old.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    old.counters["packet_in"] += 5
    dumps = {dpid: dump_of(old, dpid) for dpid in old.installed}
    views = [(h.view, None) for h in old.hosts.values()]
    # what a follower tracked: tenants, hosts, switches
    follower = Core(old.settings, [BLUE, RED], cookie_of=wire_cookie)
    follower.passive = True
    for v, _ in views:
        follower.host_view(v, now=1.0)
    for dpid in dumps:
        follower.datapath_up(dpid)
        assert follower.switch_read(dpid, SwitchDump(), now=1.0) == []  # passive: it programs nothing
    follower.counters.update(old.counters)
    new, ops = promoted(follower, [BLUE, RED], views, now=2.0, recovery_s=10.0)
    assert sorted(op.dpid for op in ops if isinstance(op, ReadSwitch)) == sorted(dumps)
    assert not new.passive and new.recovering and new.counters["packet_in"] == old.counters["packet_in"]
    after: list = []
    for dpid, dump in dumps.items():
        after += new.switch_read(dpid, dump, now=2.1)
    after += new.drain()
    # no flow added or removed (groups and meters are re-asserted with the same content, as after any
    # restart: a read-back has their ids only)
    assert [op for op in after if isinstance(op, FlowMod | FlowDelete)] == []
    assert (BLUE.vni, mac(2)) in new.endpoints  # recovered from its host's switch
