"""The packet tracer over the core's installed flows: source host, tunnels, receiving hosts."""

import copy

import pytest

from controller.core.core import Core
from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import Tenant
from controller.northbound.pathtrace import Request, TraceError, request_from_json, trace
from controller.northbound.rest import Api
from tests.unit.api_backend import Backend, call
from tests.unit.world import BLUE, RED, arp_frame, mac, tunnel_port, view, world


def learned(n: int = 3, vms: tuple[int, ...] = (1, 2), tenants=(BLUE, RED)) -> Core:
    """n hosts; VM i of blue (MAC mac(i), IP 10.0.0.i) announced itself on host i, and no other member."""
    core = world(n, tenants=tenants, members={i: frozenset() for i in range(1, n + 1)})
    for i in vms:
        core.packet_in(i, arp_frame(mac(i), f"10.0.0.{i}", "10.0.0.250", BLUE.vlan), now=1.0)
    return core


def tables_hit(hop: dict) -> list[tuple[int, int]]:
    return [(s["table"], s["priority"]) for s in hop["steps"] if s["kind"] == "flow"]


def outputs(hop: dict) -> list[dict]:
    return [s for s in hop["steps"] if s["kind"] == "output"]


def test_unicast_to_a_known_mac_takes_one_tunnel_and_is_delivered_on_its_host():
    core = learned()
    tr = trace(core.read, Request("blue", mac(1), mac(2)))
    src, dst = tr["hops"]
    assert src["host"] == "h1" and src["from"] == {"kind": "br0", "vlan": BLUE.vlan}
    assert tables_hit(src) == [(t.CLASSIFY, 100), (t.LOCAL_SPLIT, 10), (t.UNICAST, 10), (t.SRC_BINDING, 0),
                               (t.SRC_MAC, 10)]
    [out] = outputs(src)
    assert out["port"] == tunnel_port(2) and out["to"]["kind"] == "tunnel" and out["to"]["peer"] == "h2"
    assert out["packet"]["tunnel_id"] == BLUE.vni and out["packet"]["vlan_vid"] == 0
    unicast = next(s for s in src["steps"] if s.get("table") == t.UNICAST)
    assert unicast["actions"] == f"pop_vlan,set_field:{BLUE.vni:#x}->tunnel_id,output:{tunnel_port(2)}"
    assert unicast["match"] == f"eth_dst={mac(2)},vlan_vid={BLUE.vlan | f.OFPVID_PRESENT:#x}"
    assert dst["host"] == "h2" and dst["from"]["host"] == "h1" and dst["packet"]["in_port"] == tunnel_port(1)
    assert tables_hit(dst) == [(t.CLASSIFY, 100), (t.TUNNEL_IN, 10), (t.TO_LOCAL, 0)]
    assert tr["summary"]["tunnels"] == [{"from": "h1", "to": "h2", "port": "t2", "ofport": tunnel_port(2),
                                         "type": "vxlan", "remote_ip": "10.99.0.2", "tunnel_id": BLUE.vni}]
    assert tr["summary"]["delivered"] == [{"host": "h2", "vlan": BLUE.vlan}]
    assert tr["kind"] == "unicast" and tr["dst"]["host"] == "h2"
    assert "h2" in tr["summary"]["verdict"] and tr["summary"]["to_controller"] == 0


def test_a_destination_ip_resolves_to_its_mac_and_the_receiving_host_uses_its_own_vlan():
    tenant = Tenant("blue", 5001, 10, vlans=(("h2", 300),))
    core = learned(tenants=(tenant,))
    core.packet_in(2, arp_frame(mac(2), "10.0.0.2", "10.0.0.250", 300), now=1.0)
    tr = trace(core.read, Request("blue", "10.0.0.1", "10.0.0.2"))
    assert tr["packet"]["eth_dst"] == mac(2) and tr["packet"]["ipv4_dst"] == "10.0.0.2"
    assert tr["summary"]["delivered"] == [{"host": "h2", "vlan": 300}]


def test_an_arp_request_for_a_known_ip_is_answered_in_the_switch_and_crosses_no_tunnel():
    tr = trace(learned().read, Request("blue", mac(1), "10.0.0.2", arp=True))
    [src] = tr["hops"]
    assert (t.ARP_RESPONDER, 10) in tables_hit(src)
    [out] = outputs(src)
    reply = out["packet"]
    assert out["port"] == 1 and out["to"]["kind"] == "br0"  # back where it came from: IN_PORT
    assert reply["arp_op"] == 2 and reply["eth_src"] == mac(2) and reply["eth_dst"] == mac(1)
    assert reply["arp_spa"] == "10.0.0.2" and reply["arp_tpa"] == "10.0.0.1" and reply["arp_sha"] == mac(2)
    assert tr["summary"]["answered_in_switch"] and tr["summary"]["tunnels"] == []
    assert tr["kind"] == "arp" and tr["summary"]["verdict"].startswith("answered in the switch")


def test_an_arp_request_for_an_unknown_ip_floods_to_member_hosts_and_tells_the_controller():
    core = learned(n=3, vms=(1, 2))  # h3 has no blue member: pruned from the flood
    tr = trace(core.read, Request("blue", mac(1), "10.0.0.77", arp=True))
    src = tr["hops"][0]
    group = next(s for s in src["steps"] if s["kind"] == "group")
    assert group["group"] == BLUE.vni and group["buckets"] == 1
    assert [x["to"] for x in tr["summary"]["tunnels"]] == ["h2"]
    punt = next(s for s in src["steps"] if s["kind"] == "controller")
    assert punt["meter"] == t.METER_FLOOD and tr["summary"]["to_controller"] == 1
    assert tr["summary"]["delivered"] == [{"host": "h2", "vlan": BLUE.vlan}]


def test_a_broadcast_floods_one_copy_per_member_host():
    core = learned(n=4, vms=(1, 2, 3))
    tr = trace(core.read, Request("blue", mac(1), "ff:ff:ff:ff:ff:ff"))
    assert tr["kind"] == "broadcast" and tr["dst"] is None
    assert sorted(x["to"] for x in tr["summary"]["tunnels"]) == ["h2", "h3"]
    assert [h["host"] for h in tr["hops"]] == ["h1", "h2", "h3"]
    assert sorted(d["host"] for d in tr["summary"]["delivered"]) == ["h2", "h3"]
    assert "flooded over 2 tunnel(s)" in tr["summary"]["verdict"]


def test_an_unknown_mac_misses_unicast_and_floods():
    tr = trace(learned().read, Request("blue", mac(1), "02:00:00:00:00:99"))
    src = tr["hops"][0]
    assert (t.UNICAST, 0) in tables_hit(src) and (t.FLOOD, 10) in tables_hit(src)
    assert tr["dst"] is None and [x["to"] for x in tr["summary"]["tunnels"]] == ["h2"]


def test_a_destination_on_the_same_host_is_left_to_br0():
    core = learned(vms=(1,))
    core.packet_in(1, arp_frame(mac(5), "10.0.0.5", "10.0.0.250", BLUE.vlan), now=1.0)
    tr = trace(core.read, Request("blue", mac(1), mac(5)))
    assert outputs(tr["hops"][0]) == [] and tr["summary"]["tunnels"] == []
    assert "same host (h1)" in tr["summary"]["verdict"]


def test_a_host_without_openflow_says_so_instead_of_tracing_nothing():
    core = learned()
    core.datapath_down(1)
    tr = trace(core.read, Request("blue", mac(1), mac(2)))
    assert tr["hops"][0]["steps"] == [] and "no OpenFlow connection" in tr["hops"][0]["note"]
    assert tr["summary"]["verdict"].startswith("dropped")


def test_a_peer_without_a_tunnel_back_is_reported_as_a_drop():
    core = learned()
    core.host_view(view(2, [3]), now=2.0)  # h2 lost its tunnel to h1; h1 still has one to h2
    tr = trace(core.read, Request("blue", mac(1), mac(2)))
    assert tr["hops"][1]["host"] == "h2" and "no tunnel port back" in tr["hops"][1]["note"]


def test_tracing_changes_nothing_in_the_core():
    core = learned()
    def seen() -> tuple:
        return ({dpid: (dict(inst.digests), dict(inst.owner), dict(inst.groups))
                 for dpid, inst in core.installed.items()},
                dict(core.counters), [copy.deepcopy(core.tenant_endpoints(tn.vni)) for tn in (BLUE, RED)])
    before = seen()
    for req in (Request("blue", mac(1), mac(2)), Request("blue", mac(1), "10.0.0.9", arp=True),
                Request("blue", mac(1), "ff:ff:ff:ff:ff:ff")):
        trace(core.read, req)
    assert seen() == before


@pytest.mark.parametrize("req, status, words", [
    (Request("green", mac(1), mac(2)), 404, "no tenant named 'green'"),
    (Request("blue", mac(7), mac(2)), 404, "no endpoint 02:00:00:00:00:07"),
    (Request("red", mac(1), mac(2)), 404, "in tenant 'red'"),
    (Request("blue", mac(1), "10.0.0.99"), 404, "trace the ARP request"),
])
def test_unknown_things_are_404s_that_say_what(req, status, words):
    with pytest.raises(TraceError) as e:
        trace(learned().read, req)
    assert e.value.status == status and words in str(e.value)


@pytest.mark.parametrize("doc, words", [
    ([], "JSON object"), ({"tenant": "blue", "src": mac(1)}, "'dst' is required"),
    ({"tenant": "blue", "src": "nope", "dst": mac(2)}, "'src' must be a MAC"),
    ({"tenant": "blue", "src": mac(1), "dst": mac(2), "arp": "yes"}, "'arp' must be true or false"),
    ({"tenant": "blue", "src": mac(1), "dst": mac(2), "arp": True}, "IPv4"),
    ({"tenant": "blue", "src": mac(1), "dst": mac(2), "via": 1}, "unknown field(s): via"),
    # given but empty: say what it must be, not that it is missing (#22.11)
    ({"tenant": "", "src": mac(1), "dst": mac(2)}, "'tenant' must be a tenant name"),
    ({"tenant": 5, "src": mac(1), "dst": mac(2)}, "'tenant' must be a tenant name"),
    ({"tenant": "blue", "src": "", "dst": mac(2)}, "'src' must be a MAC"),
])
def test_malformed_requests_are_400s(doc, words):
    with pytest.raises(TraceError) as e:
        request_from_json(doc)
    assert e.value.status == 400 and words in str(e.value)
    assert "required" not in str(e.value) or any(k not in doc for k in ("tenant", "src", "dst"))


def test_post_v1_trace(tmp_path):
    api = Api(Backend(str(tmp_path / "t.db")))
    api.b.core = learned()
    status, tr = call(api, "POST", "/v1/trace", {"tenant": "blue", "src": mac(1), "dst": mac(2)})
    assert status == 200 and tr == trace(api.b.core.read, Request("blue", mac(1), mac(2)))
    status, reply = call(api, "POST", "/v1/trace", {"tenant": "blue", "src": mac(1), "dst": "10.0.0.99"})
    assert status == 404 and "trace the ARP request" in reply["error"]
    assert call(api, "POST", "/v1/trace", {"tenant": "blue"})[0] == 400


def test_with_flow_based_tunnel_ports_the_peer_is_read_from_tun_dst():
    from controller.northbound import pathtrace
    from tests.unit.pipeline.test_tunnel_ports import flow_world
    from tests.unit.world import BLUE, arp_frame, mac
    core = flow_world(3)
    core.packet_in(1, arp_frame(mac(1), "192.168.1.1", "192.168.1.9", BLUE.vlan), now=1)
    core.packet_in(3, arp_frame(mac(3), "192.168.1.3", "192.168.1.1", BLUE.vlan), now=1)
    unicast = pathtrace.trace(core.read, pathtrace.request_from_json({"tenant": "blue", "src": mac(1), "dst": mac(3)}))
    assert [(x["to"], x["port"]) for x in unicast["summary"]["tunnels"]] == [("h3", "vx-flow")]
    assert unicast["summary"]["delivered"] == [{"host": "h3", "vlan": BLUE.vlan}]
    flood = pathtrace.trace(core.read, pathtrace.request_from_json({"tenant": "blue", "src": mac(1),
                                                               "dst": "ff:ff:ff:ff:ff:ff"}))
    assert sorted(x["to"] for x in flood["summary"]["tunnels"]) == ["h2", "h3"]
