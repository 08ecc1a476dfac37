"""The OpenFlow receive loop reads in bulk and dispatches every message as os-ken's loop does."""

import struct
from types import SimpleNamespace

import pytest
from os_ken.controller import ofp_event  # noqa: F401  (before controller: os-ken's own import order)
from os_ken.controller.handler import MAIN_DISPATCHER
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.shell import oskenpatch
from controller.southbound import ofguard


class Socket:
    """Hands out the given chunks, one per recv, then the end of the stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads: list[int] = []
        self.closed = False

    def recv(self, n: int) -> bytes:
        self.reads.append(n)
        return self.chunks.pop(0)[:n] if self.chunks else b""

    def close(self) -> None:
        self.closed = True


class Brick:
    def __init__(self) -> None:
        self.events: list = []

    def send_event_to_observers(self, ev, state) -> None:
        self.events.append(ev)

    def get_handlers(self, ev) -> list:
        return []


def barrier_reply(xid: int) -> bytes:
    return struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_BARRIER_REPLY, 8, xid)


def echo_reply(xid: int, data: bytes) -> bytes:
    return struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_ECHO_REPLY, 8 + len(data), xid) + data


def datapath(chunks: list[bytes], monkeypatch) -> tuple:
    from os_ken.controller import controller as osken_controller
    monkeypatch.setattr(osken_controller, "ofproto_parser",
                        SimpleNamespace(msg=ofguard.strict_msg), raising=False)
    cls = oskenpatch.bulk_datapath(osken_controller)
    dp = object.__new__(cls)
    dp.set_version(ofp.OFP_VERSION)
    dp.socket, dp.state, dp.ofp_brick, dp.id = Socket(chunks), MAIN_DISPATCHER, Brick(), 1
    return dp, dp.socket, dp.ofp_brick


def test_messages_split_and_joined_anyhow_are_each_dispatched_once_in_order(monkeypatch):
    stream = (barrier_reply(1) + echo_reply(2, b"hello") + barrier_reply(3) + echo_reply(4, b"x" * 100)
              + barrier_reply(5))
    cuts = [3, 9, 30, 31, 150]  # mid-header, mid-body, several messages in one read
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    dp, sock, brick = datapath(chunks, monkeypatch)
    dp._recv_loop()
    assert [ev.msg.xid for ev in brick.events] == [1, 2, 3, 4, 5]
    assert isinstance(brick.events[1].msg, parser.OFPEchoReply) and brick.events[3].msg.data == b"x" * 100
    assert sock.closed and set(sock.reads) == {oskenpatch.RECV_BYTES}  # never a header at a time


def test_a_message_shorter_than_its_header_closes_the_connection_as_malformed(monkeypatch):
    dp, sock, brick = datapath([barrier_reply(1) + struct.pack("!BBHI", ofp.OFP_VERSION, 21, 4, 2)], monkeypatch)
    with pytest.raises(ofguard.Malformed):
        dp._recv_loop()
    assert [ev.msg.xid for ev in brick.events] == [1] and sock.closed
