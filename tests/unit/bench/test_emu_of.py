"""The scale benchmark's emulated br1 (bench/emu_of.py), fed with the controller's own encodings."""

from __future__ import annotations

import struct

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from bench.emu_of import Switch
from bench.emu_ovsdb import updates
from bench.emu_wire import HDR, decode_match
from bench.emuhost import EmuHost, garp, mac_int
from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import GroupMod, Wipe
from controller.model.state import Host, HostView
from controller.pipeline.desired import base_flows
from controller.shell.config import defaults
from controller.southbound import ofmsg
from controller.southbound.encoder import wire_cookie
from controller.southbound.ovsdb_model import add_tunnels_txn

MAC = "02:00:00:00:00:01"


class Wire:
    """A transport that keeps what the switch wrote, as messages (type, xid, bytes)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def messages(self) -> list[tuple[int, int, bytes]]:
        out, i = [], 0
        while i < len(self.data):
            _, kind, length, xid = HDR.unpack_from(self.data, i)
            out.append((kind, xid, self.data[i:i + length]))
            i += length
        self.data = b""
        return out


def switch() -> tuple[Switch, Wire]:
    sw, wire = Switch(7), Wire()
    sw.connection_made(wire)  # type: ignore[arg-type]
    wire.messages()  # the hello
    return sw, wire


def send(sw: Switch, data: bytes) -> None:
    """In three reads: split messages are reassembled (a header cut off, and a read that ends one
    message and starts the next when data holds several)."""
    middle = max(6, len(data) // 2 + 3)
    for part in (data[:5], data[5:middle], data[middle:]):
        sw.data_received(part)


def src_entry(vid: int = 10, mac: str = MAC, cookie: int = f.cookie(f.COOKIE_ENDPOINT, 5001)) -> f.Flow:
    return f.Flow(t.SRC_MAC, 10, f.match(vlan_vid=vid | f.OFPVID_PRESENT, eth_src=mac), cookie=cookie,
                  idle_timeout=300, notify_removed=True)


def test_add_replaces_same_key_and_strict_delete_removes_it_with_flow_removed():
    sw, wire = switch()
    fl = src_entry()
    send(sw, ofmsg.flow_mod(fl) + ofmsg.flow_mod(fl))
    assert len(sw.table.flows) == 1
    assert sw.marks.keys() == {("src", mac_int(MAC))}
    send(sw, ofmsg.flow_mod(fl, delete=True))
    assert sw.table.flows == {} and sw.marks == {}
    [(kind, _, msg)] = wire.messages()
    assert kind == ofp.OFPT_FLOW_REMOVED and msg[18] == ofp.OFPRR_DELETE


def test_non_strict_delete_honours_table_match_and_cookie_mask():
    sw, _ = switch()
    a, b = src_entry(10, MAC), src_entry(20, "02:00:00:00:00:02", cookie=f.cookie(f.COOKIE_ENDPOINT, 5002))
    send(sw, ofmsg.flow_mod(a) + ofmsg.flow_mod(b))
    by_cookie = parser.OFPFlowMod(ofmsg._DP, cookie=b.cookie, cookie_mask=0xFFFFFFFF << 32,
                                  table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                  out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
    by_cookie.serialize()
    send(sw, bytes(by_cookie.buf))
    assert [fl.fields["vlan_vid"][0] for fl in sw.table.flows.values()] == [10 | f.OFPVID_PRESENT]
    send(sw, b"".join(ofmsg.encode(Wipe(7))))
    assert sw.table.flows == {}


def test_flow_stats_reply_round_trips_through_os_ken_and_filters_by_table():
    sw, wire = switch()
    view = HostView("h1", "10.0.0.1", 7, "u", 1)
    flows = base_flows(defaults(), Host(view))
    send(sw, b"".join(ofmsg.flow_mod(fl) for fl in flows))
    req = parser.OFPFlowStatsRequest(ofmsg._DP, table_id=t.SRC_BINDING)
    req.xid = 99
    req.serialize()
    send(sw, bytes(req.buf))
    [(kind, xid, msg)] = wire.messages()
    reply = parser.OFPMultipartReply.parser(ofmsg._DP, *HDR.unpack_from(msg)[:3], xid, msg)
    assert kind == ofp.OFPT_MULTIPART_REPLY and xid == 99
    got = {(s.table_id, s.priority, tuple(sorted(s.match.items())), s.cookie) for s in reply.body}
    want = {(fl.table, fl.priority, fl.match, wire_cookie(fl)) for fl in flows if fl.table == t.SRC_BINDING}
    assert got == want and len(want) == 4
    everything = parser.OFPFlowStatsRequest(ofmsg._DP)  # the controller's poll (a cached reply)
    everything.serialize()
    for _ in range(2):
        send(sw, bytes(everything.buf))
        [(_, _, msg)] = wire.messages()
        reply = parser.OFPMultipartReply.parser(ofmsg._DP, *HDR.unpack_from(msg)[:3], 0, msg)
        assert len(reply.body) == len(flows)


def test_group_add_twice_is_an_error_and_modify_changes_the_bucket_mark():
    sw, wire = switch()
    g1 = GroupMod(7, f.GroupEntry(5001, (f.Bucket((f.Output(2),)),)), "add")
    g2 = GroupMod(7, f.GroupEntry(5001, (f.Bucket((f.Output(2),)), f.Bucket((f.Output(3),)))), "modify")
    send(sw, ofmsg.encode(g1)[0] + ofmsg.encode(g1)[0])
    [(kind, _, msg)] = wire.messages()
    assert kind == ofp.OFPT_ERROR and struct.unpack_from("!HH", msg, 8) == (ofp.OFPET_GROUP_MOD_FAILED,
                                                                          ofp.OFPGMFC_GROUP_EXISTS)
    send(sw, ofmsg.encode(g2)[0])
    assert ("grp", 5001, 2) in sw.marks and ("grp", 5001, 1) not in sw.marks


def test_garp_is_punted_from_the_tables_a_real_br1_punts_from_until_learned():
    sw, wire = switch()
    view = HostView("h1", "10.0.0.1", 7, "u", 1)
    base = base_flows(defaults(), Host(view))
    send(sw, b"".join(ofmsg.flow_mod(fl) for fl in base))
    arp_punt = next(fl for fl in base if fl.table == t.SRC_BINDING and dict(fl.match).get("eth_type") == 0x0806)
    miss = f.Flow(t.ARP_RESPONDER, 1, f.match(vlan_vid=10 | f.OFPVID_PRESENT), (f.Output(f.OFPP_CONTROLLER),),
                  goto=t.FLOOD, meter=t.METER_FLOOD, cookie=f.cookie(f.COOKIE_TENANT, 5001))
    send(sw, ofmsg.flow_mod(miss))
    packet, data = garp(10, MAC, "192.168.1.1")
    assert sw.inject(packet, data) == 2
    ins = [parser.OFPPacketIn.parser(ofmsg._DP, *HDR.unpack_from(m)[:3], x, m) for k, x, m in wire.messages()]
    assert [(p.table_id, p.cookie) for p in ins] == [(t.ARP_RESPONDER, wire_cookie(miss)),
                                                    (t.SRC_BINDING, wire_cookie(arp_punt))]
    assert ins[0].data == data and ins[0].match["in_port"] == 1
    binding = f.Flow(t.SRC_BINDING, 30, f.match(vlan_vid=10 | f.OFPVID_PRESENT, eth_src=MAC,
                                                eth_type=f.ETH_TYPE_ARP, arp_spa="192.168.1.1"),
                     (f.Resubmit(t.SRC_MAC),), cookie=f.cookie(f.COOKIE_ENDPOINT, 5001))
    send(sw, ofmsg.flow_mod(binding) + ofmsg.flow_mod(src_entry()))
    assert sw.inject(packet, data) == 1  # only the responder miss is left (no answer entry here)


def test_match_decoding_keeps_masks():
    fl = f.Flow(t.LOCAL_SPLIT, 10, f.match(eth_dst=f.MULTICAST_MAC), goto=t.FLOOD)
    mlen = struct.unpack_from("!H", ofmsg.flow_mod(fl), 50)[0]
    assert decode_match(ofmsg.flow_mod(fl)[48:48 + mlen]) == {"eth_dst": (1 << 40, 1 << 40)}


def test_ovsdb_transaction_gives_tunnels_ofports_and_reports_them():
    host = EmuHost("h1", "10.0.0.1", 7)
    host.db.take()
    br1 = host.db.br["br1"]
    result = host.db.transact(list(add_tunnels_txn(br1, "vxlan", "10.0.0.1", ["10.0.0.2", "10.0.0.3"])))
    assert len(result) == 5 and all("error" not in r for r in result)
    assert sorted(host.switch.ports.items()) == [(1, "patch-int"), (2, "vx-0a000002"), (3, "vx-0a000003")]
    sent = updates(host.db.take(), {"Interface": ["name", "ofport"], "Bridge": ["ports"]})
    assert sorted(r["new"]["ofport"] for r in sent["Interface"].values()) == [2, 3]
    [bridge] = sent["Bridge"].values()
    assert len(bridge["new"]["ports"][1]) == len(bridge["old"]["ports"][1]) + 2


def test_ovsdb_refuses_a_second_port_of_the_same_name_and_changes_nothing():
    host = EmuHost("h1", "10.0.0.1", 7)
    txn = list(add_tunnels_txn(host.db.br["br1"], "vxlan", "10.0.0.1", ["10.0.0.2"]))
    host.db.transact(txn)
    before = host.db.snapshot()
    [result] = host.db.transact(txn)  # a retry that crossed the update: the name index refuses it
    assert result["error"] == "constraint violation"
    assert host.db.snapshot() == before
