"""A stand-in for an os-ken Datapath: what the shell sends to a switch, as bytes and messages."""

from __future__ import annotations

import itertools
import struct
from typing import Any

OFPT_BARRIER_REQUEST = 20


class FakeDatapath:
    def __init__(self, dpid: int) -> None:
        self.id = dpid
        self.address = ("127.0.0.1", 6653)
        self.sent: list[bytes] = []  # send(): raw writes
        self.msgs: list[Any] = []  # send_msg(): parser objects
        self._xids = itertools.count(1)

    def set_xid(self, msg: Any) -> None:
        msg.set_xid(next(self._xids))

    def send(self, buf: bytes) -> None:
        self.sent.append(bytes(buf))

    def send_msg(self, msg: Any) -> None:
        self.msgs.append(msg)

    def message_types(self) -> list[int]:
        """The OpenFlow message types of everything send() got, in order."""
        out = []
        for buf in self.sent:
            while buf:
                _, msg_type, length = struct.unpack_from("!BBH", buf)
                out.append(msg_type)
                buf = buf[length:]
        return out
