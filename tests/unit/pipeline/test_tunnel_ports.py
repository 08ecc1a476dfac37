"""tunnel_ports = flow: one port per kind on every host, the flows set each packet's peer."""

import struct

import pytest

from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import FlowPurge, OvsdbOp
from controller.model.state import HostView, TunnelPort
from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline.desired import endpoint_flows
from controller.pipeline.learning_modes import MODE_LEARN
from controller.pipeline.tunnel_ports import FLOW, FLOW_BASED, MESH, MODES, get
from controller.shell import config
from controller.shell.config import defaults
from controller.southbound import ofmsg
from controller.southbound import ovsdb_model as om
from tests.unit.confs import conf_from
from tests.unit.world import BLUE, PATCH, RED, arp_frame, installed_flows, ip_of, local_packet, mac, tracer, view

FLOW_OFPORT = 9
NXM_TUN_IPV4_SRC = struct.pack("!I", 0x00013E04)  # NXM_HEADER(class 1, field 31, 4 bytes)


def flow_view(i: int, kind: str = "vxlan", ofport: int | None = FLOW_OFPORT, extra=(),
              member_vlans: frozenset = frozenset({BLUE.vlan, RED.vlan})) -> HostView:
    """Host i with its one flow-based port; by default VMs of both tenants on its br0."""
    port = TunnelPort(tunnels.get(kind).flow_port_name, kind, FLOW, ofport, True, f"flow-uuid-{kind}-{i}")
    return HostView(f"h{i}", ip_of(i), datapath_id=i, bridge_uuid=f"br-uuid-{i}", patch_ofport=PATCH,
                    tunnels=(port, *extra), member_vlans=member_vlans)


def flow_world(n: int = 3, members: dict[int, frozenset] | None = None, **settings) -> Core:
    """n hosts with a flow-based port each; VMs of both tenants on every host unless members= says."""
    core = Core(defaults(tunnel_ports="flow", **settings), [BLUE, RED])
    for i in range(1, n + 1):
        core.datapath_up(i)
        core.switch_read(i, SwitchDump(), now=0.0)
    for i in range(1, n + 1):
        vlans = frozenset({BLUE.vlan, RED.vlan}) if members is None else members.get(i, frozenset())
        core.host_view(flow_view(i, member_vlans=vlans), now=0.0)
    return core


def inserted(ops, host: str) -> list[dict]:
    return [o["row"] for op in ops if isinstance(op, OvsdbOp) and op.system_id == host
            for o in om.transaction(op) if o["op"] == "insert" and o["table"] == "Interface"]


def deleted(ops, host: str) -> list[str]:
    return [u for op in ops if isinstance(op, OvsdbOp) and op.system_id == host
            for o in om.transaction(op) if o["op"] == "mutate" and o["mutations"][0][1] == "delete"
            for _, u in o["mutations"][0][2][1]]


def test_modes_are_chosen_by_name_and_an_unknown_one_is_an_error():
    assert get("mesh") is MESH and get("flow") is FLOW_BASED and defaults().tunnel_ports is MESH
    opt = next(o for o in config.OVERLAY_OPTS if o.name == "tunnel-ports")
    assert list(opt.type.choices) == list(MODES) and opt.default == "mesh"
    with pytest.raises(ValueError, match="ring"):
        get("ring")


@pytest.mark.parametrize("kind", tunnels.NAMES)
def test_a_host_asks_for_exactly_one_flow_port_of_its_kind_whatever_the_cloud_size(kind):
    core = Core(defaults(tunnel_type=kind, tunnel_ports="flow"))
    first = core.host_view(HostView("h1", ip_of(1), 1, "br-1", 1), now=0)
    options = ["map", [["key", "flow"], ["local_ip", ip_of(1)], ["remote_ip", "flow"]]]
    assert inserted(first, "h1") == [{"name": tunnels.get(kind).flow_port_name,
                                      "type": tunnels.get(kind).ovsdb_type, "options": options}]
    core.host_view(flow_view(1, kind), now=0)
    for i in range(2, 30):  # more hosts join: nothing more for h1
        ops = core.host_view(HostView(f"h{i}", ip_of(i), i, f"br-{i}", 1), now=0)
        assert inserted(ops, "h1") == [] and len(inserted(ops, f"h{i}")) == 1


def test_a_host_joining_queues_no_tunnel_work_on_the_others():
    """Cost follows change: with one port reaching every peer, a join asks nothing of the others
    (going through every other host for each join made 1,000 hosts connecting O(hosts^2))."""
    core = flow_world(3)
    core.eager = False
    core.host_view(flow_view(4), now=0)
    assert core.tunnels.toward == {}


def test_classify_has_one_flow_for_the_flow_port_at_any_size():
    core = flow_world(12)
    classify = [fl for fl in installed_flows(core, 1) if fl.table == t.CLASSIFY and fl.goto == t.TUNNEL_IN]
    assert [fl.match for fl in classify] == [f.match(in_port=FLOW_OFPORT)]


def test_a_flood_sets_the_tunnel_destination_per_member_host():
    core = flow_world(3, mac_learning=MODE_LEARN)  # learn mode floods to every host of the tenant
    out = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), "ff:ff:ff:ff:ff:ff"))
    assert sorted((port, pkt["tun_ipv4_dst"], pkt["tunnel_id"]) for port, pkt in out.outputs) == [
        (FLOW_OFPORT, ip_of(2), BLUE.vni), (FLOW_OFPORT, ip_of(3), BLUE.vni)]


def test_controller_mode_floods_only_to_member_hosts_by_tun_dst():
    core = flow_world(3, members={1: frozenset({BLUE.vlan})})  # h2 becomes a member by learning; h3 never
    core.packet_in(2, arp_frame(mac(2), "192.168.1.2", "192.168.1.9", BLUE.vlan), now=1)
    (bucket,) = core.installed[1].groups[BLUE.vni].buckets
    assert bucket.actions == (f.SetField("tun_ipv4_dst", ip_of(2)), f.Output(FLOW_OFPORT))


def test_a_learned_endpoint_is_reached_through_the_flow_port_with_its_hosts_address():
    core = flow_world(3)
    core.packet_in(3, arp_frame(mac(3), "192.168.1.3", "192.168.1.1", BLUE.vlan), now=1)
    out = tracer(core, 1).trace(local_packet(BLUE.vlan, mac(1), mac(3)))
    assert [(port, pkt["tun_ipv4_dst"], pkt["tunnel_id"]) for port, pkt in out.outputs] == [
        (FLOW_OFPORT, ip_of(3), BLUE.vni)]


def test_arriving_traffic_is_classified_by_tunnel_id_from_the_flow_port():
    core = flow_world(3)
    out = tracer(core, 1).trace({"in_port": FLOW_OFPORT, "tunnel_id": RED.vni, "tun_ipv4_src": ip_of(2),
                                 "eth_src": mac(2), "eth_dst": "ff:ff:ff:ff:ff:ff", "vlan_vid": 0})
    assert [(port, pkt["vlan_vid"]) for port, pkt in out.outputs] == [(PATCH, RED.vlan | f.OFPVID_PRESENT)]
    assert tracer(core, 1).trace({"in_port": FLOW_OFPORT, "tunnel_id": 0x999, "vlan_vid": 0,
                                  "eth_dst": "ff:ff:ff:ff:ff:ff"}).outputs == []


def test_learn_mode_learns_the_senders_address_as_the_replys_tunnel_destination():
    core = flow_world(2, mac_learning=MODE_LEARN)
    (to_local,) = [fl for fl in installed_flows(core, 1) if fl.table == t.TO_LOCAL]
    learn = to_local.actions[0]
    assert isinstance(learn, f.Learn) and learn.tun_dst_from_src
    assert NXM_TUN_IPV4_SRC in ofmsg.flow_mod(to_local)
    mesh = f.Flow(t.TO_LOCAL, 0, f.match(), (f.Learn(t.UNICAST, 1, 300), f.Output(PATCH)))
    assert NXM_TUN_IPV4_SRC not in ofmsg.flow_mod(mesh)


def test_every_flow_mode_flow_encodes():
    for mode in ("controller", MODE_LEARN):
        core = flow_world(3, mac_learning=mode)
        core.packet_in(2, arp_frame(mac(2), "192.168.1.2", "192.168.1.1", BLUE.vlan), now=1)
        for fl in installed_flows(core, 1):
            assert struct.unpack_from("!BB", ofmsg.flow_mod(fl)) == (4, 14)


def connected(core: Core, dpid: int) -> Core:
    """The host's switch is connected and read back: a port goes only once its flows left it."""
    core.datapath_up(dpid)
    core.switch_read(dpid, SwitchDump(), now=0)
    return core


def test_switching_mesh_to_flow_keeps_the_mesh_until_the_flow_port_is_up():
    core = connected(Core(defaults(tunnel_ports="flow"), [BLUE]), 1)
    meshed = view(1, [2, 3])
    ops = core.host_view(meshed, now=0)
    assert [r["options"][1][2][1] for r in inserted(ops, "h1")] == ["flow"]
    assert deleted(ops, "h1") == []  # the flow port has no ofport yet
    ops = core.host_view(flow_view(1, ofport=None, extra=meshed.tunnels), now=1)
    assert deleted(ops, "h1") == []
    ops = core.host_view(flow_view(1, extra=meshed.tunnels), now=2)
    assert sorted(deleted(ops, "h1")) == ["port-uuid-1-2", "port-uuid-1-3"]


def test_switching_flow_to_mesh_keeps_the_flow_port_until_every_peer_port_is_up():
    core = connected(Core(defaults(tunnel_ports="mesh"), [BLUE]), 1)
    for i in (2, 3):
        core.host_view(HostView(f"h{i}", ip_of(i), i, f"br-{i}", 1), now=0)
    ops = core.host_view(flow_view(1), now=0)
    assert sorted(r["name"] for r in inserted(ops, "h1")) == ["vx-0a630002", "vx-0a630003"]
    assert deleted(ops, "h1") == []
    half = view(1, [2])
    assert deleted(core.host_view(flow_view(1, extra=half.tunnels), now=1), "h1") == []
    full = view(1, [2, 3])
    assert deleted(core.host_view(flow_view(1, extra=full.tunnels), now=2), "h1") == ["flow-uuid-vxlan-1"]


def test_a_port_of_another_kind_goes_once_the_new_kinds_flow_port_is_up():
    core = connected(Core(defaults(tunnel_type="gre", tunnel_ports="flow"), [BLUE]), 1)
    old = flow_view(1, "vxlan").tunnels
    assert deleted(core.host_view(flow_view(1, "gre", ofport=None, extra=old), now=0), "h1") == []
    assert deleted(core.host_view(flow_view(1, "gre", ofport=8, extra=old), now=1), "h1") == ["flow-uuid-vxlan-1"]


def test_while_the_flow_port_comes_up_traffic_keeps_the_mesh_ports():
    core = Core(defaults(), [BLUE])
    for i in (1, 2):
        core.datapath_up(i)
        core.switch_read(i, SwitchDump(), now=0)
        core.host_view(view(i, [3 - i], member_vlans=frozenset({BLUE.vlan})), now=0)
    core.packet_in(2, arp_frame(mac(2), "192.168.1.2", "192.168.1.1", BLUE.vlan), now=1)
    core.retune_tunnels(defaults(tunnel_ports="flow"), now=2)
    unicast = local_packet(BLUE.vlan, mac(1), mac(2))
    assert tracer(core, 1).trace(unicast).ports() == [12]  # h1's mesh port to h2
    core.host_view(flow_view(1, extra=view(1, [2]).tunnels, member_vlans=frozenset({BLUE.vlan})), now=3)
    (out,) = tracer(core, 1).trace(unicast).outputs
    assert (out[0], out[1]["tun_ipv4_dst"]) == (FLOW_OFPORT, ip_of(2))


def test_learn_mode_forgets_learned_entries_when_old_ports_go():
    core = Core(defaults(mac_learning=MODE_LEARN, tunnel_ports="flow"), [BLUE, RED])
    core.datapath_up(1)
    core.switch_read(1, SwitchDump(), now=0)
    core.host_view(view(2, [1]), now=0)
    ops = core.host_view(flow_view(1, extra=view(1, [2]).tunnels), now=0)
    purges = [op for op in ops if isinstance(op, FlowPurge)]
    assert deleted(ops, "h1") == ["port-uuid-1-2"]
    assert sorted(p.match for p in purges) == [f.match(vlan_vid=(BLUE.vlan, 0x0FFF)),
                                              f.match(vlan_vid=(RED.vlan, 0x0FFF))]


def test_a_reload_changes_the_tunnel_settings_and_names_what_needs_a_restart(tmp_path):
    path = tmp_path / "overlay.conf"
    conf = conf_from(path, "[overlay]\ntunnel_ports = mesh\n")
    current = config.settings(conf)
    path.write_text("[overlay]\ntunnel_ports = flow\ntunnel_type = gre\nlearn_rate = 7\n")
    new, later = config.reloaded(conf, current)
    assert (new.tunnel_ports, new.tunnel_type, new.learn_rate) == (FLOW_BASED, "gre", current.learn_rate)
    assert later == ["learn_rate"]
    path.write_text("[overlay]\ntunnel_ports = ring\n")
    with pytest.raises(ValueError, match="ring"):
        config.reloaded(conf, new)


def test_the_picture_shows_every_pair_reached_through_the_flow_port():
    """The web view's topology: with flow ports no pair has a port of its own, and every pair
    is usable through the one flow port (it once said "missing" for all of them)."""
    from controller.northbound.topology import TopologyCache, host_tunnels_json
    r = flow_world(3).read
    cache = TopologyCache()
    assert cache.refresh(r)
    assert [h["tunnels"] for h in cache.hosts_json(r)] == [{"peers": 2, "created": 2, "adopted": 0, "missing": 0}] * 3
    pairs = [t for h in sorted(r.hosts) for t in host_tunnels_json(r, h)["tunnels"]]
    assert len(pairs) == 6
    assert {(tn["state"], tn["port"]) for tn in pairs} == {("created", tunnels.get("vxlan").flow_port_name)}


def test_an_endpoints_entries_are_one_set_of_flows_on_hosts_that_reach_it_alike():
    """Made once for every host with the tenant's VLAN (their hashes, digests and bytes with them);
    a host with its own VLAN of the tenant gets its own, and the owner moving makes new ones."""
    core = flow_world(4)
    core.packet_in(3, arp_frame(mac(3), "192.168.1.3", "192.168.1.1", BLUE.vlan), now=1)
    ix, s = core.ix, core.settings
    (ep,) = [e for e in ix.endpoints.values() if e.mac == mac(3)]
    on = {i: endpoint_flows(s, core.hosts[f"h{i}"], BLUE, ep, ix.peers) for i in (1, 2, 4)}
    assert on[1] is on[2] is on[4] and {fl.table for fl in on[1]} >= {t.UNICAST, t.ARP_RESPONDER}
    other = BLUE.__class__(BLUE.name, BLUE.vni, BLUE.vlan, None, (("h2", BLUE.vlan + 7),))
    moved = endpoint_flows(s, core.hosts["h2"], other, ep, ix.peers)
    assert moved != on[1] and {dict(fl.match).get("vlan_vid") for fl in moved} == {(BLUE.vlan + 7) | f.OFPVID_PRESENT}
    ep.host_id = "h4"
    assert endpoint_flows(s, core.hosts["h1"], BLUE, ep, ix.peers) != on[1]
