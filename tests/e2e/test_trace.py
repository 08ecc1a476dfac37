"""The packet tracer (POST /v1/trace) agrees with ofproto/trace on the real switches, hop by hop.

For each hop of our trace (the source host, then each host a tunnel copy reaches), the same
packet goes through `ovs-appctl ofproto/trace br1` on that host's switch; the two must hit the
same tables at the same priorities, in the same order, output to the same ports, send the same
number of copies to the controller and flood through the same number of group buckets; and the
datapath actions must tunnel to exactly the hosts our trace says.
"""

import io
import re
from dataclasses import dataclass, field

import pytest

from controller.cli import main as cli
from lab.netlab import Host, wait_for
from lab.overlay import TENANTS, announce

BR1_HIT = re.compile(r"^\s*(\d+)\. (?:(No match)|(?:.*, )?priority (\d+)(?:, cookie \S+)?)$")
BRIDGE = re.compile(r'^(\s*)bridge\("([^"]+)"\)$')


@dataclass
class OfTrace:
    """What ofproto/trace says br1 did (nested bridges it hands the packet to are left out)."""

    hits: list[tuple[int, int | None]] = field(default_factory=list)  # (table, priority); None = miss
    outputs: list[str] = field(default_factory=list)  # port numbers, or IN_PORT
    controller: int = 0
    buckets: int = 0
    datapath: str = ""


def parse_ofproto_trace(text: str) -> OfTrace:
    out = OfTrace(datapath=text.split("Datapath actions:")[1].strip())
    nested_at: int | None = None  # indentation of a nested bridge("...") heading we are inside
    for line in text.split("Final flow:")[0].splitlines():
        indent = len(line) - len(line.lstrip())
        if nested_at is not None:
            if line.strip() and indent < nested_at:
                nested_at = None
            else:
                continue
        heading = BRIDGE.match(line)
        if heading and heading.group(2) != "br1":
            nested_at = indent
            continue
        body = line.strip()
        hit = BR1_HIT.match(line)
        if hit:
            out.hits.append((int(hit.group(1)), None if hit.group(2) else int(hit.group(3))))
        elif body.startswith("output:"):
            out.outputs.append(body.removeprefix("output:"))
        elif body == "IN_PORT":
            out.outputs.append("IN_PORT")
        elif body.startswith("CONTROLLER:"):
            out.controller += 1
        elif re.fullmatch(r"bucket \d+", body):
            out.buckets += 1
    return out


def ofproto_flow(pkt: dict) -> str:
    """Our trace's packet as an ofproto/trace flow."""
    parts = [f"in_port={pkt['in_port']}"]
    if pkt.get("tunnel_id"):
        parts.append(f"tun_id={pkt['tunnel_id']:#x}")
    if pkt.get("vlan_vid"):
        parts.append(f"dl_vlan={pkt['vlan_vid'] & 0xFFF}")
    parts += [f"dl_src={pkt['eth_src']}", f"dl_dst={pkt['eth_dst']}", f"dl_type={pkt['eth_type']:#x}"]
    for ours, theirs in (("arp_op", "arp_op"), ("arp_sha", "arp_sha"), ("arp_spa", "arp_spa"),
                         ("arp_tha", "arp_tha"), ("arp_tpa", "arp_tpa"), ("ipv4_src", "nw_src"),
                         ("ipv4_dst", "nw_dst")):
        if ours in pkt:
            parts.append(f"{theirs}={pkt[ours]}")
    return ",".join(parts)


def assert_hop_agrees(host: Host, hop: dict) -> OfTrace:
    text = host.appctl("ofproto/trace", "br1", ofproto_flow(hop["packet"]))
    real = parse_ofproto_trace(text)
    ours = hop["steps"]
    assert real.hits == [(s["table"], s.get("priority")) for s in ours if s["kind"] in ("flow", "miss")], text
    in_port = hop["packet"]["in_port"]
    assert [str(in_port) if o == "IN_PORT" else o for o in real.outputs] == \
        [str(s["port"]) for s in ours if s["kind"] == "output"], text
    assert real.controller == sum(s["kind"] == "controller" for s in ours), text
    assert real.buckets == sum(s["buckets"] for s in ours if s["kind"] == "group"), text
    return real


def tunnelled_to(datapath_actions: str) -> list[str]:
    """The underlay IPs the datapath actions encapsulate to (one per tnl_push)."""
    return re.findall(r"tnl_push\(.*?ipv4\(src=[\d.]+,dst=([\d.]+)", datapath_actions)


@pytest.fixture(params=["vxlan", "gre"])
def lab(make_overlay, request):
    ov = make_overlay(request.param, "controller")
    b1, b2 = ov.vms[("blue", 1)], ov.vms[("blue", 2)]
    announce([b1, b2, ov.vms[("blue", 3)]])
    wait_for(lambda: len(ov.ctl.api.get("/v1/tenants/blue/endpoints")) == 3, 3.0, 0.05, "blue's VMs learned")
    wait_for(lambda: b2.mac in ov.hosts[0].ofctl("dump-flows", "br1", "table=20"), 2.0, 0.05, "b2 on h1")
    return ov


def trace_both(ov, body: dict) -> tuple[dict, list[OfTrace]]:
    """Our trace, and every one of its hops checked against ofproto/trace on that hop's switch."""
    tr = ov.ctl.api.post("/v1/trace", body)
    hosts = {h.name: h for h in ov.hosts}
    assert all(hop["steps"] for hop in tr["hops"]), tr
    return tr, [assert_hop_agrees(hosts[hop["host"]], hop) for hop in tr["hops"]]


def test_unicast_to_a_known_mac_takes_the_same_tunnel_and_lands_on_the_same_vlan(lab):
    b1, b2 = lab.vms[("blue", 1)], lab.vms[("blue", 2)]
    tr, (src, dst) = trace_both(lab, {"tenant": "blue", "src": b1.mac, "dst": b2.ip})
    h2 = lab.hosts[1]
    assert [x["remote_ip"] for x in tr["summary"]["tunnels"]] == tunnelled_to(src.datapath) == [h2.underlay_ip]
    assert re.search(rf"\b(vni|key)={TENANTS['blue'][0]:#x}\)", src.datapath), src.datapath  # VXLAN | GRE
    assert tr["summary"]["delivered"] == [{"host": "h2", "vlan": TENANTS["blue"][1]}]
    # br0 knows b2's port: straight out of it, untagged (an access port), not back into a tunnel.
    assert dst.outputs == ["1"] and dst.datapath not in ("", "drop") and "tnl_push" not in dst.datapath


def test_overlayctl_trace_shows_the_same_path(lab):
    b1, b2 = lab.vms[("blue", 1)], lab.vms[("blue", 2)]
    out = io.StringIO()
    assert cli.main(["trace", "blue", b1.ip, b2.mac], out=out, env=lab.ctl.cli_env()) == 0
    text = out.getvalue()
    name, port = next((n, p) for n, p in lab.hosts[0].tunnel_ports().items()
                      if p["remote_ip"] == lab.hosts[1].underlay_ip)  # as OVSDB on h1 says
    assert f"-> output:{port['ofport']}: tunnel {name} ({port['type']}) to h2" in text, text
    assert "h2: br1, from tunnel" in text and "Result: sent over 1 tunnel(s) to h2; delivered to br0 on h2" in text


def test_an_arp_request_for_a_known_ip_is_answered_in_the_switch_as_traced(lab):
    b1, b2 = lab.vms[("blue", 1)], lab.vms[("blue", 2)]
    tr, (src,) = trace_both(lab, {"tenant": "blue", "src": b1.ip, "dst": b2.ip, "arp": True})
    assert tr["summary"]["answered_in_switch"] and tunnelled_to(src.datapath) == []
    reply = next(s for s in tr["hops"][0]["steps"] if s["kind"] == "output")["packet"]
    assert f"sip={b2.ip},tip={b1.ip},op=2,sha={b2.mac},tha={b1.mac}" in src.datapath
    assert reply["arp_sha"] == b2.mac and reply["arp_spa"] == b2.ip and reply["arp_op"] == 2


def test_an_arp_for_an_unknown_ip_floods_through_the_same_buckets(lab):
    b1 = lab.vms[("blue", 1)]
    tr, hops = trace_both(lab, {"tenant": "blue", "src": b1.mac, "dst": "192.168.1.77", "arp": True})
    src = hops[0]
    assert src.buckets == 2 and src.controller == 1
    assert sorted(x["remote_ip"] for x in tr["summary"]["tunnels"]) == sorted(tunnelled_to(src.datapath)) == \
        sorted(h.underlay_ip for h in lab.hosts[1:])
    assert [h["host"] for h in tr["hops"][1:]] == ["h2", "h3"]
    for real in hops[1:]:
        assert f"push_vlan(vid={TENANTS['blue'][1]}" in real.datapath


def test_a_broadcast_from_red_stays_in_red(lab):
    r1 = lab.vms[("red", 1)]
    announce([r1])
    wait_for(lambda: len(lab.ctl.api.get("/v1/tenants/red/endpoints")) == 1, 3.0, 0.05, "r1 learned")
    tr, hops = trace_both(lab, {"tenant": "red", "src": r1.mac, "dst": "ff:ff:ff:ff:ff:ff"})
    (red_vni, red_vlan), blue_vlan = TENANTS["red"], TENANTS["blue"][1]
    others = lab.hosts[1:]  # red has a VM on every host: h1 floods to both others
    assert [h["host"] for h in tr["hops"]] == ["h1"] + [h.name for h in others], tr["hops"]
    assert sorted((x["remote_ip"], x["tunnel_id"]) for x in tr["summary"]["tunnels"]) == \
        sorted((h.underlay_ip, red_vni) for h in others), tr["summary"]
    src = hops[0]
    assert src.buckets == 2 and sorted(tunnelled_to(src.datapath)) == sorted(h.underlay_ip for h in others)
    assert tunnel_ids(src.datapath) == [red_vni] * len(others), src.datapath  # VXLAN vni | GRE key
    assert tr["summary"]["delivered"] == [{"host": h.name, "vlan": red_vlan} for h in others], tr["summary"]
    for real in hops[1:]:
        assert f"push_vlan(vid={red_vlan}" in real.datapath and "tnl_push" not in real.datapath, real.datapath
    assert not [real.datapath for real in hops if f"push_vlan(vid={blue_vlan}," in real.datapath]


def tunnel_ids(datapath_actions: str) -> list[int]:
    """The tunnel IDs the datapath actions encapsulate with (VXLAN's vni, GRE's key), one per tnl_push."""
    return [int(v, 16) for v in re.findall(r"tnl_push\(.*?\b(?:vni|key)=(0x[0-9a-f]+)\)", datapath_actions)]
