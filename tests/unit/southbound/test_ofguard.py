"""The strict OpenFlow receive path: what a switch may send, checked before os-ken parses it."""

import struct

import pytest
from os_ken.controller.handler import CONFIG_DISPATCHER, HANDSHAKE_DISPATCHER, MAIN_DISPATCHER
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controller.southbound import ofguard
from controller.southbound.ofguard import Malformed, strict_msg
from lab.fakes import (
    ECHO_REQUEST,
    ERROR,
    FEATURES_REPLY,
    HELLO,
    OFPMP_FLOW,
    OFPMP_PORT_DESC,
    PACKET_IN,
    multipart_reply,
    of_msg,
    packet_in,
)


class Datapath:
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser

    def __init__(self, state=MAIN_DISPATCHER) -> None:
        self.state = state
        self.id = 1


def parse(buf: bytes, state=MAIN_DISPATCHER):
    version, msg_type, length, xid = struct.unpack_from("!BBHI", buf)
    return strict_msg(Datapath(state), version, msg_type, max(8, length), xid, bytearray(buf))


def kind_of(buf: bytes, state=MAIN_DISPATCHER) -> str | None:
    try:
        parse(buf, state)
    except Malformed as e:
        return e.kind
    return None


def flow_stats(length: int, instructions: bytes = b"", match_len: int = 4) -> bytes:
    match = struct.pack("!HH", 1, match_len) + b"\0" * (4 + (-(match_len + 4) % 8) if match_len > 4 else 4)
    return struct.pack("!HBxIIHHHH4xQQQ", length, 0, 0, 0, 10, 0, 0, 0, 1, 2, 3) + match + instructions


def output_action(port: int) -> bytes:
    return struct.pack("!HHIH6x", 0, 16, port, 0xFFE5)


def test_well_formed_messages_parse():
    apply = struct.pack("!HH4x", ofproto_v1_3.OFPIT_APPLY_ACTIONS, 8 + 16) + output_action(2)
    goto = struct.pack("!HHB3x", ofproto_v1_3.OFPIT_GOTO_TABLE, 8, 3)
    record = flow_stats(56 + len(apply) + len(goto), apply + goto)
    reply = parse(multipart_reply(OFPMP_FLOW, record * 2))
    assert [(s.priority, s.cookie, s.packet_count) for s in reply.body] == [(10, 1, 2)] * 2
    assert reply.body[0].instructions[0].actions[0].port == 2
    assert parse(packet_in(b"\x02" * 14, table_id=4)).table_id == 4
    assert parse(multipart_reply(OFPMP_PORT_DESC)).body == []
    assert parse(of_msg(HELLO), HANDSHAKE_DISPATCHER) is not None
    assert parse(of_msg(ECHO_REQUEST, b"x")).data == b"x"


@pytest.mark.parametrize("buf, kind", [
    (of_msg(ECHO_REQUEST, length=3), "bad_length"),
    (of_msg(ECHO_REQUEST, version=0x09), "bad_version"),
    (of_msg(ECHO_REQUEST, version=0x01), "bad_version"),
    (of_msg(99), "unknown_type"),
    (of_msg(14, b"\0" * 48), "unexpected_type"),  # a flow-mod from a switch
    (of_msg(FEATURES_REPLY, b"\0" * 3), "unparsable"),
    (of_msg(ERROR, b"\0"), "unparsable"),
    (multipart_reply(OFPMP_FLOW, struct.pack("!H", 200) + b"\0" * 10), "truncated"),
    (multipart_reply(OFPMP_FLOW, flow_stats(0)), "truncated"),
    (multipart_reply(OFPMP_FLOW, flow_stats(56, match_len=0)), "truncated"),
    (multipart_reply(OFPMP_FLOW, flow_stats(56, match_len=200)), "truncated"),
    (multipart_reply(OFPMP_FLOW, flow_stats(64, struct.pack("!HH4x", 4, 0))), "truncated"),
    (multipart_reply(OFPMP_FLOW, flow_stats(72, struct.pack("!HH4x", 4, 16) + struct.pack("!HH4x", 0, 0))),
     "truncated"),
    (multipart_reply(7, struct.pack("!HBxI", 24, 0, 1) + struct.pack("!HHII4x", 0, 0, 0, 0)), "truncated"),
    (multipart_reply(6, b"\0" * 40), "truncated"),
    (multipart_reply(9, b"\0" * 40), "truncated"),
    (multipart_reply(10, struct.pack("!HHI", 24, 0, 1) + struct.pack("!HHII4x", 1, 0, 0, 0)), "truncated"),
    (of_msg(19, b"\0\x01"), "truncated"),
])
def test_malformed_messages_are_named_before_os_ken_can_loop_on_them(buf, kind):
    assert kind_of(buf) == kind


def test_only_hello_echo_and_error_before_the_version_is_agreed():
    assert kind_of(packet_in(b"\x02" * 14), HANDSHAKE_DISPATCHER) == "unexpected_type"
    assert kind_of(packet_in(b"\x02" * 14), CONFIG_DISPATCHER) is None
    assert kind_of(of_msg(PACKET_IN, b"\0" * 20, version=0x01), CONFIG_DISPATCHER) == "bad_version"


def test_a_handler_that_cannot_use_a_message_closes_that_switch_only(monkeypatch):
    counted: list[str] = []
    monkeypatch.setattr(ofguard, "_count", counted.append)

    class Dp:
        id, closed = 7, False

        def close(self) -> None:
            self.closed = True

    class Ev:
        def __init__(self) -> None:
            self.msg = type("OFPFlowRemoved", (), {"datapath": Dp()})()

    @ofguard.guarded
    def handler(app, ev):
        return (0, 0x1000) & 0x0FFF  # a masked field where the core wants an int

    good, bad = Ev(), Ev()
    ofguard.guarded(lambda app, ev: None)(None, good)
    handler(None, bad)
    assert counted == ["openflow_malformed_unusable"]
    assert bad.msg.datapath.closed and not good.msg.datapath.closed
