"""Reconcile instead of wipe, recovery from the switches, placement, bounds: the core's side."""

import json
import struct
from pathlib import Path

from os_ken.controller.handler import MAIN_DISPATCHER
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controller.core import admission
from controller.core.admission import HostPolicy
from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowDelete, FlowMod, GroupMod, MeterMod, ReadSwitch
from controller.model.state import HostView, Tenant, TunnelPort
from controller.shell import readback, startup
from controller.shell.config import defaults
from controller.southbound.encoder import wire_cookie
from controller.southbound.ofguard import strict_msg
from tests.unit.world import (
    BLUE,
    RED,
    arp_frame,
    flow_changes,
    flow_ops,
    held,
    installed_flows,
    ip_of,
    local_packet,
    mac,
    replayed,
    tracer,
    view,
    world,
)


def dump_of(core: Core, dpid: int, cookie=wire_cookie) -> SwitchDump:
    """What the switch holds after the core programmed it: keys and cookies (as `cookie` wrote
    them: this version's encoder, or an older controller's, f.legacy_cookie), groups, meters."""
    inst = core.installed[dpid]
    return SwitchDump({fl.key: cookie(fl) for fl in installed_flows(core, dpid)}, set(inst.groups),
                      set(inst.meters))


def restarted(core: Core, order: list[int], tenants=(BLUE, RED), cookie=wire_cookie) -> tuple[Core, list]:
    """A new controller process meeting the same switches, each read back in `order`."""
    dumps = {dpid: dump_of(core, dpid, cookie) for dpid in core.installed}
    new = Core(core.settings, list(tenants), cookie_of=wire_cookie)
    new.recovering, new.recover_until = True, 10.0
    ops: list = []
    for dpid in order:
        host = core.host_of_dpid(dpid)
        assert host is not None
        ops += new.host_view(host.view, now=1.0)
        ops += new.datapath_up(dpid)
        ops += new.switch_read(dpid, dumps[dpid], now=1.0)
    return new, ops


READBACK = Path(__file__).parent / "fixtures" / "readback.json"  # recorded by lab/readback.py


class Datapath:  # what the parser needs of the connection: read-back replies come in MAIN_DISPATCHER
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
    id, state = 0, MAIN_DISPATCHER


def parsed(raw: str):
    """One recorded reply through the app's guarded parser (controller/ofguard.py)."""
    buf = bytes.fromhex(raw)
    version, kind, length, xid = struct.unpack_from("!BBHI", buf)
    return strict_msg(Datapath(), version, kind, length, xid, bytearray(buf))


def lab_dump(replies: list[str]) -> SwitchDump:
    """A real br1's answers to the read-back, as the app turns them into a SwitchDump."""
    dump = SwitchDump()
    add = {"OFPFlowStatsReply": readback.add_flows, "OFPGroupDescStatsReply": readback.add_groups,
           "OFPMeterConfigStatsReply": readback.add_meters}
    for msg in map(parsed, replies):
        add[type(msg).__name__](dump, msg.body)
    return dump


def lab_view(h: dict, tenants: dict[str, Tenant]) -> HostView:
    """A host of the recorded lab as its OVSDB showed it (lab hosts: br0's patch port is br1's port 1)."""
    tunnels = tuple(TunnelPort(p["name"], p["type"], p["remote_ip"], p["ofport"], p["managed"]) for p in h["tunnels"])
    members = frozenset(tenants[t["name"]].vlan for t in h["tenants"] if t["members"])
    return HostView(h["id"], h["overlay_ip"], int(h["datapath_id"], 16), f"br1-{h['id']}", 1, tunnels, members)


def test_a_real_switchs_read_back_is_recognised_as_ours_and_its_endpoints_recovered():
    """Three real br1 (the 3-host lab, every VM learned) read back through the app's path: the
    guarded parser, controller/shell/readback.py, and the core as the app makes it (ofmsg's
    canonical matches, drained by the pump). A restarted controller sends no flow-mod and
    recovers every VM with its IP from the switches alone."""
    doc = json.loads(READBACK.read_text())
    assert doc["overlay"] == {"mac_learning": "controller", "tunnel_ports": "mesh", "tunnel_type": "vxlan"}
    tenants = {t["name"]: Tenant(t["name"], t["vni"], t["vlan"]) for t in doc["tenants"]}
    core = startup.app_core(defaults(), list(tenants.values()), now=0.0,
                            policy=HostPolicy(admission.APPROVE, listed=[h["id"] for h in doc["hosts"]]))
    dumps = {h["id"]: lab_dump(doc["replies"][h["datapath_id"]]) for h in doc["hosts"]}
    assert [len(d.flows) for d in dumps.values()] == [50] * 3 and all(d.groups and d.meters for d in dumps.values())
    ops: list = []
    for h in doc["hosts"]:
        view_ = lab_view(h, tenants)
        ops += core.host_view(view_, now=1.0) + core.datapath_up(view_.datapath_id)
        ops += core.switch_read(view_.datapath_id, dumps[h["id"]], now=1.0) + core.drain()
    assert [op for op in ops if isinstance(op, (FlowMod, FlowDelete))] == []
    # groups and meters read back by id only (content unknown): rewritten in place, none added or deleted
    assert {(type(op).__name__, op.command) for op in ops if isinstance(op, (GroupMod, MeterMod))} == {
        ("GroupMod", "modify"), ("MeterMod", "modify")}
    late = core.tick(now=startup.RECOVERY_WINDOW_S + 1) + core.drain()
    assert late == []  # the recovery window's end: nothing left over either
    for name, tenant in tenants.items():
        got = sorted([ep.mac, ep.host_id, sorted(ep.ips)] for ep in core.tenant_endpoints(tenant.vni))
        assert got == doc["endpoints"][name]
    assert core.counters["endpoints_recovered"] == 6


def learned(core: Core) -> None:
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    core.packet_in(3, arp_frame(mac(3), "10.0.0.3", "10.0.0.1", RED.vlan), now=1.0)


def test_a_restarted_controller_changes_no_flow_the_switches_already_hold():
    old = world(3)
    learned(old)
    for order in ([1, 2, 3], [3, 2, 1]):
        new, ops = restarted(old, order)
        assert [op for op in ops if isinstance(op, (FlowMod, FlowDelete))] == []
        assert not [op for op in ops if isinstance(op, GroupMod) and op.command == "delete"]
        assert {op.dpid for op in ops if isinstance(op, ReadSwitch)} == {1, 2, 3}
        assert new.tick(now=20.0) == []  # after the recovery window: still nothing to change


def test_an_upgrade_from_an_older_controller_changes_no_flow_and_still_replaces_a_changed_one():
    """Switches last written by an older controller hold the repr digest in their cookies
    (f.legacy_cookie): the same flows, read back by this version, are left alone."""
    old = world(3)
    learned(old)
    new, ops = restarted(old, [1, 2, 3], cookie=f.legacy_cookie)
    assert [op for op in ops if isinstance(op, (FlowMod, FlowDelete))] == []
    assert new.tick(now=20.0) == []
    assert sorted(ep.mac for ep in new.tenant_endpoints(BLUE.vni)) == [mac(2)]  # recovered as before
    # a legacy cookie that does not say this flow's content (same key, other flow): rewritten
    dump = dump_of(old, 1, f.legacy_cookie)
    stale = next(k for k in dump.flows if k[0] == t.FLOOD)
    dump.flows[stale] ^= 1
    again = Core(old.settings, [BLUE, RED], cookie_of=wire_cookie)
    again.host_view(old.host_of_dpid(1).view, now=0)
    again.datapath_up(1)
    sent = [op.flow.key for op in again.switch_read(1, dump, now=0) if isinstance(op, FlowMod)]
    assert sent == [stale]


def test_endpoints_and_their_ips_come_back_from_their_own_hosts_switch():
    old = world(3)
    learned(old)
    new, _ = restarted(old, [1, 2, 3])
    blue = new.tenant_endpoints(BLUE.vni)
    assert [(ep.mac, ep.host_id, ep.ips) for ep in blue] == [(mac(2), "h2", {"10.0.0.2"})]
    assert new.bindings[(RED.vni, "10.0.0.3")] == mac(3)
    assert new.counters["endpoints_recovered"] == 2


def test_a_changed_flow_is_replaced_and_a_strangers_flow_removed_after_recovery():
    old = world(2)
    dump = dump_of(old, 1)
    stale = next(k for k in dump.flows if k[0] == t.FLOOD)
    dump.flows[stale] ^= 1  # same key, other content
    dump.flows[(t.UNICAST, 7, f.match(eth_dst="02:00:00:00:00:99"))] = 0  # not ours
    new = Core(old.settings, [BLUE, RED], cookie_of=wire_cookie)
    for i in (1, 2):
        new.host_view(old.host_of_dpid(i).view, now=0)
    new.datapath_up(1)
    ops = new.switch_read(1, dump, now=0)
    changed = [op for op in ops if isinstance(op, (FlowMod, FlowDelete))]
    assert [(op.flow.key, op.delete) for op in changed if isinstance(op, FlowMod)] == [(stale, False)]
    assert [(op.table, op.priority) for op in changed if isinstance(op, FlowDelete)] == [(t.UNICAST, 7)]


def test_a_restarted_switch_gets_everything_back_and_keeps_what_was_learned():
    core = world(3)
    learned(core)
    core.datapath_down(2)
    core.datapath_up(2)
    ops = core.switch_read(2, SwitchDump(), now=5.0)  # vswitchd restarted: empty
    keys = {op.flow.key for op in flow_ops(ops, 2)}
    assert (t.SRC_MAC, 10, f.match(vlan_vid=BLUE.vlan | f.OFPVID_PRESENT, eth_src=mac(2))) in keys
    assert [ep.host_id for ep in core.tenant_endpoints(BLUE.vni)] == ["h2"]
    assert not flow_ops(ops, 1) and not flow_ops(ops, 3)  # other hosts see nothing change


def test_a_host_holds_a_tenant_only_while_it_has_members_there():
    core = world(3, members={1: frozenset({10}), 2: frozenset({10})})
    def blue_flows(dpid):
        return [fl for fl in installed_flows(core, dpid) if f.cookie_vni(fl.cookie) == BLUE.vni]
    assert blue_flows(1) and blue_flows(2) and not blue_flows(3)
    assert BLUE.vni not in core.installed[3].groups
    ops = core.host_view(view(3, [1, 2], member_vlans=frozenset({10})), now=1.0)  # a VM port on h3
    assert blue_flows(3) and {op.dpid for op in flow_ops(ops)} == {3}
    assert {op.dpid for op in ops if isinstance(op, GroupMod)} == {1, 2, 3}  # one bucket more each
    core.host_view(view(3, [1, 2]), now=2.0)  # and gone again
    assert not blue_flows(3) and BLUE.vni not in core.installed[3].groups


def test_a_learned_endpoint_touches_only_the_hosts_of_its_tenant():
    core = world(4, members={1: frozenset({10}), 2: frozenset({10}), 3: frozenset({20}), 4: frozenset({20})})
    ops = core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.1", BLUE.vlan), now=1.0)
    assert {op.dpid for op in ops} == {1, 2}


def test_learning_stops_at_the_cap_per_host_and_tenant_and_existing_endpoints_keep_working():
    core = world(2, settings=defaults(max_endpoints=3))
    for i in range(10):
        core.packet_in(1, arp_frame(f"02:00:00:00:01:{i:02x}", f"10.0.1.{i}", "10.0.0.9", BLUE.vlan), now=i)
    assert len(core.tenant_endpoints(BLUE.vni)) == 3
    assert core.counters["learning_capped"] == 7 and core.cap.refused == {(BLUE.vni, "h1"): 7}
    core.packet_in(1, arp_frame(mac(9), "10.0.2.9", "10.0.0.9", RED.vlan), now=20)  # another tenant: fine
    assert len(core.tenant_endpoints(RED.vni)) == 1
    core.flow_removed(1, t.SRC_MAC, 0, {"vlan_vid": BLUE.vlan | f.OFPVID_PRESENT,
                                         "eth_src": "02:00:00:00:01:00"}, now=30)
    core.packet_in(1, arp_frame(mac(8), "10.0.0.8", "10.0.0.9", BLUE.vlan), now=31)  # room again
    assert mac(8) in {ep.mac for ep in core.tenant_endpoints(BLUE.vni)}


def test_at_the_cap_only_learned_sources_flood_so_a_mac_spray_stays_on_its_host():
    core = world(3, settings=defaults(max_endpoints=2))
    known = local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff")
    sprayed = local_packet(BLUE.vlan, "02:77:00:00:00:01", "ff:ff:ff:ff:ff:ff")
    core.packet_in(1, arp_frame(mac(1), "10.0.0.1", "10.0.0.9", BLUE.vlan), now=1)
    assert sorted(tracer(core, 1).trace(sprayed).ports()) == [12, 13]  # under the cap: floods go on
    ops = core.packet_in(1, arp_frame(mac(2), "10.0.0.2", "10.0.0.9", BLUE.vlan), now=2)  # the cap
    floods = [op for op in flow_ops(ops) if op.flow.table == t.FLOOD]
    assert {op.dpid for op in floods} == {1}  # only the capped host changes
    # each learned source gets its own flood entry before the tenant's stops flooding the rest
    assert [(op.flow.priority, op.flow.actions == ()) for op in floods] == \
        [(t.PRIO_LEARNED_SOURCE, False)] * 2 + [(t.PRIO_ENTRY, True)]
    assert tracer(core, 1).trace(sprayed).ports() == []
    assert sorted(tracer(core, 1).trace(known).ports()) == [12, 13]
    red = local_packet(RED.vlan, "02:77:00:00:00:02", "ff:ff:ff:ff:ff:ff")
    assert sorted(tracer(core, 1).trace(red).ports()) == [12, 13]  # another tenant: untouched
    unicast = local_packet(BLUE.vlan, "02:77:00:00:00:01", mac(2))  # to a known MAC: still delivered
    core.packet_in(2, arp_frame(mac(3), "10.0.0.3", "10.0.0.9", BLUE.vlan), now=3)
    assert tracer(core, 1).trace(local_packet(BLUE.vlan, "02:77:00:00:00:01", mac(3))).ports() == [12]
    assert tracer(core, 1).trace(unicast).ports() == []  # (local: br0 delivered it)
    # one learned endpoint ages out: below the cap again, every source floods
    ops = core.flow_removed(1, t.SRC_MAC, 0, {"vlan_vid": BLUE.vlan | f.OFPVID_PRESENT, "eth_src": mac(2)}, now=30)
    # the tenant's flood entry is back before the sources' own go
    assert [(key[1], deleted) for key, deleted in flow_changes(ops, 1) if key[0] == t.FLOOD] == \
        [(t.PRIO_ENTRY, False)] + [(t.PRIO_LEARNED_SOURCE, True)] * 2
    assert sorted(tracer(core, 1).trace(sprayed).ports()) == [12, 13]
    assert not [fl for fl in installed_flows(core, 1) if fl.priority == t.PRIO_LEARNED_SOURCE]


def test_a_tenant_flood_is_narrowed_only_after_its_sources_own_entries_went_out_in_earlier_slices():
    core = world(2, settings=defaults(max_endpoints=4))
    core.eager = False
    for i in range(4):
        core.packet_in(1, arp_frame(mac(i), f"10.0.0.{i}", "10.0.0.9", BLUE.vlan), now=i)
    slices = []
    while core.pending():
        slices.append([op.flow for op in flow_ops(core.drain(budget_s=0, max_parts=1), 1)
                       if op.flow.table == t.FLOOD])
    sources = [n for n, flows in enumerate(slices) for fl in flows if fl.priority == t.PRIO_LEARNED_SOURCE]
    narrowed = [n for n, flows in enumerate(slices) for fl in flows if fl.priority == t.PRIO_ENTRY and not fl.actions]
    assert len(sources) == 4 and len(narrowed) == 1 and max(sources) < narrowed[0]


def test_a_virtual_ip_taken_over_by_another_mac_is_rebound_everywhere_at_once():
    # The two endpoints' entries for the VIP share keys (its answer, its GARP entry) and are
    # recomputed in a set's order, which differs from MAC pair to MAC pair: eight pairs.
    for n in range(8):
        core = world(3)
        vip, old, new = f"192.168.1.{200 + n}", mac(0x10 + n), mac(0x40 + n)
        core.packet_in(1, arp_frame(old, "10.0.0.1", "10.0.0.1", BLUE.vlan), now=1.0)
        core.packet_in(1, arp_frame(old, vip, vip, BLUE.vlan), now=2.0)
        core.packet_in(3, arp_frame(new, "10.0.0.3", "10.0.0.3", BLUE.vlan), now=3.0)
        before = {dpid: held(core, dpid) for dpid in (1, 2, 3)}
        ops = core.packet_in(3, arp_frame(new, vip, vip, BLUE.vlan, op=2), now=4.0)
        assert core.bindings[(BLUE.vni, vip)] == new
        assert core.counters["ip_rebinds"] == 1
        for dpid in (1, 2, 3):  # every switch holds what the core believes it holds
            assert replayed(before[dpid], ops, dpid) == held(core, dpid), (n, dpid)
        answers = [fl for fl in held(core, 2).values() if fl.table == t.ARP_RESPONDER
                   and dict(fl.match).get("arp_tpa") == vip and fl.priority == t.PRIO_ENTRY]
        assert [a.role for a in answers] == [f.ROLE_ARP_PROXY] and f.SetField("eth_src", new) in answers[0].actions


def test_a_flapping_mac_is_held_with_a_growing_back_off():
    core = world(3)
    frame = arp_frame(mac(5), "10.0.0.5", "10.0.0.5", BLUE.vlan)
    for i, dpid in enumerate([1, 2, 1, 2]):  # three moves in three seconds: the third starts a hold
        core.packet_in(dpid, frame, now=float(i))
    assert core.endpoints[(BLUE.vni, mac(5))].host_id == "h2" and core.counters["mac_flaps"] == 1
    core.packet_in(1, frame, now=4.0)  # held (2 s)
    assert core.endpoints[(BLUE.vni, mac(5))].host_id == "h2" and core.counters["mac_flaps_damped"] == 1
    core.packet_in(1, frame, now=10.0)  # the hold is over: it moves, and the next hold is longer (4 s)
    assert core.endpoints[(BLUE.vni, mac(5))].host_id == "h1" and core.counters["mac_flaps"] == 2
    core.packet_in(2, frame, now=13.0)
    assert core.endpoints[(BLUE.vni, mac(5))].host_id == "h1" and core.counters["mac_flaps_damped"] == 2
    core.packet_in(2, frame, now=40.0)  # quiet for long: an ordinary move again
    assert core.endpoints[(BLUE.vni, mac(5))].host_id == "h2" and core.counters["mac_flaps"] == 2


def test_a_lost_host_has_its_endpoints_withdrawn_after_the_grace_period_and_comes_back():
    core = world(3, settings=defaults(host_grace=30))
    learned(core)
    core.ovsdb_down("h2", now=100.0)
    core.datapath_down(2, now=100.0)
    assert core.tick(now=120.0) == []
    ops = core.tick(now=131.0)
    assert core.tenant_endpoints(BLUE.vni) == []
    assert any(deleted for _, deleted in flow_changes(ops, 1))
    assert all("h2" not in core.read.member_hosts(tn) for tn in (BLUE, RED))
    assert core.hosts["h2"].view.tunnels  # its tunnels stay
    back = view(2, [1, 3], member_vlans=frozenset({10, 20}))
    core.host_view(back, now=140.0)
    assert "h2" in core.read.member_hosts(BLUE)


def test_hosts_by_datapath_follow_view_changes():
    core = Core(defaults(), cookie_of=wire_cookie)
    core.host_view(HostView("h1", ip_of(1), 7, "br-1", 1), now=0)
    assert core.host_of_dpid(7).id == "h1"
    core.host_view(HostView("h1", ip_of(1), 8, "br-1", 1), now=0)
    assert core.host_of_dpid(7) is None and core.host_of_dpid(8).id == "h1"


def test_learn_mode_floods_reach_a_host_whose_tunnel_arrives_after_it_joined():
    from controller.model.state import TunnelPort
    from controller.pipeline.learning_modes import MODE_LEARN
    from tests.unit.world import local_packet, tracer

    core = Core(defaults(mac_learning=MODE_LEARN), [BLUE, RED], cookie_of=wire_cookie)

    def joined(i: int, peers: list[int], vlans: frozenset = frozenset({10})) -> HostView:
        return HostView(f"h{i}", ip_of(i), i, f"br{i}", 1, tuple(
            TunnelPort(f"t{j}", "vxlan", ip_of(j), 10 + j, True, f"u{i}{j}") for j in peers), vlans)
    for i, peers in ((1, []), (2, [1]), (1, [2])):
        core.datapath_up(i)
        core.switch_read(i, SwitchDump(), now=0)
        core.host_view(joined(i, peers), now=0)
    core.datapath_up(3)
    core.switch_read(3, SwitchDump(), now=0)
    core.host_view(joined(3, [1, 2], vlans=frozenset()), now=0)  # its VMs are not plugged in yet
    assert tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff")).ports() == [12]
    core.host_view(joined(1, [2, 3]), now=1)  # h1's port toward h3 comes up: its floods reach h3
    core.host_view(joined(3, [1, 2]), now=2)
    assert sorted(tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff")).ports()) == [12, 13]
