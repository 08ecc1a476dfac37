"""A strict OpenFlow receive path for os-ken: a malformed message closes only its own connection.

os-ken, left alone, logs a traceback and carries on for a message it cannot parse, and loops
forever (stalling every switch and the REST API) on a multipart reply whose entry, bucket or
instruction says its length is 0. Here every message from a switch is checked before os-ken
parses it: its length and version, that its type is one a switch sends, and that the
length-prefixed records of a multipart reply tile its body. A message that fails, or that
os-ken's parser rejects, raises Malformed: the connection is counted by kind, logged in one
line and closed; the other switches never notice.

controller/shell/oskenpatch.py swaps two names inside os_ken.controller.controller (the parser it
calls and the connection handler its server spawns) to put these checks in; nothing else of os-ken
changes.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable
from typing import Any

from os_ken.controller.handler import HANDSHAKE_DISPATCHER
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto.ofproto_protocol import _versions

from controller.core.counters import OPENFLOW_MALFORMED

LOG = logging.getLogger(__name__)
COUNTER_PREFIX = OPENFLOW_MALFORMED
_U16 = struct.Struct("!H")

# What a switch may send a controller (OpenFlow 1.3, section 7); anything else is garbage.
FROM_SWITCH = frozenset({
    ofp.OFPT_HELLO, ofp.OFPT_ERROR, ofp.OFPT_ECHO_REQUEST, ofp.OFPT_ECHO_REPLY, ofp.OFPT_EXPERIMENTER,
    ofp.OFPT_FEATURES_REPLY, ofp.OFPT_GET_CONFIG_REPLY, ofp.OFPT_PACKET_IN, ofp.OFPT_FLOW_REMOVED,
    ofp.OFPT_PORT_STATUS, ofp.OFPT_MULTIPART_REPLY, ofp.OFPT_BARRIER_REPLY, ofp.OFPT_ROLE_REPLY,
    ofp.OFPT_GET_ASYNC_REPLY,
})
HANDSHAKE_TYPES = frozenset({ofp.OFPT_HELLO, ofp.OFPT_ERROR, ofp.OFPT_ECHO_REQUEST, ofp.OFPT_ECHO_REPLY})
MULTIPART_HEADER = 16  # ofp_header + type, flags, pad

# Multipart replies made of variable-length records: type -> (offset of the record's length
# field, smallest valid record). os-ken walks these by that length, so a 0 never advances.
RECORDS = {
    ofp.OFPMP_FLOW: (0, 56),
    ofp.OFPMP_GROUP: (0, 40),
    ofp.OFPMP_GROUP_DESC: (0, 8),
    ofp.OFPMP_METER: (4, 40),
    ofp.OFPMP_METER_CONFIG: (0, 8),
    ofp.OFPMP_TABLE_FEATURES: (0, 64),
}
INSTRUCTION_MIN, BUCKET_MIN, ACTION_MIN, BAND_MIN, PROPERTY_MIN = 8, 16, 8, 16, 4


class Malformed(Exception):
    """A message no switch should send; `kind` names the counter it feeds."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _records(buf: bytes, start: int, end: int, len_at: int, min_len: int, what: str) -> list[tuple[int, int]]:
    """(offset, end) of each length-prefixed record in buf[start:end]; they must tile it exactly."""
    out = []
    off = start
    while off < end:
        if off + len_at + 2 > end:
            raise Malformed("truncated", f"{what} at byte {off} cut short")
        length = _U16.unpack_from(buf, off + len_at)[0]
        if length < min_len or off + length > end:
            raise Malformed("truncated", f"{what} at byte {off} has length {length}")
        out.append((off, off + length))
        off += length
    return out


def _actions(buf: bytes, start: int, end: int) -> None:
    _records(buf, start, end, 2, ACTION_MIN, "action")


def _check_multipart(buf: bytes) -> None:
    if len(buf) < MULTIPART_HEADER:
        raise Malformed("truncated", "multipart reply without its header")
    mp_type = _U16.unpack_from(buf, 8)[0]
    if mp_type not in RECORDS:
        return  # fixed-size records: os-ken's parser stops at the end (or fails, and is counted)
    len_at, min_len = RECORDS[mp_type]
    for off, end in _records(buf, MULTIPART_HEADER, len(buf), len_at, min_len, f"multipart {mp_type} record"):
        if mp_type == ofp.OFPMP_FLOW:
            match_len = _U16.unpack_from(buf, off + 50)[0]
            first = off + 48 + match_len + (-match_len % 8)
            if match_len < 4 or first > end:
                raise Malformed("truncated", f"flow stats match of length {match_len} overruns its record")
            for i_off, i_end in _records(buf, first, end, 2, INSTRUCTION_MIN, "instruction"):
                if _U16.unpack_from(buf, i_off)[0] in (ofp.OFPIT_WRITE_ACTIONS, ofp.OFPIT_APPLY_ACTIONS):
                    _actions(buf, i_off + 8, i_end)
        elif mp_type == ofp.OFPMP_GROUP_DESC:
            for b_off, b_end in _records(buf, off + 8, end, 0, BUCKET_MIN, "bucket"):
                _actions(buf, b_off + 16, b_end)
        elif mp_type == ofp.OFPMP_METER_CONFIG:
            _records(buf, off + 8, end, 2, BAND_MIN, "meter band")
        elif mp_type == ofp.OFPMP_TABLE_FEATURES:
            _records(buf, off + 64, end, 2, PROPERTY_MIN, "table feature property")


def check(datapath: Any, version: int, msg_type: int, buf: bytes) -> None:
    """Raise Malformed unless the message (header included) is one os-ken may safely parse."""
    length = _U16.unpack_from(buf, 2)[0]
    if length < 8:
        raise Malformed("bad_length", f"header says {length} bytes")
    if version not in _versions:
        raise Malformed("bad_version", f"unknown OpenFlow version {version:#x}")
    if datapath.state == HANDSHAKE_DISPATCHER:
        if msg_type not in HANDSHAKE_TYPES:
            raise Malformed("unexpected_type", f"type {msg_type} before the version was agreed")
        return
    if version != datapath.ofproto.OFP_VERSION:
        raise Malformed("bad_version", f"version {version:#x} after agreeing on {datapath.ofproto.OFP_VERSION:#x}")
    parsers = getattr(_versions[version][1], "_MSG_PARSERS", {})
    if msg_type not in parsers:
        raise Malformed("unknown_type", f"unknown message type {msg_type}")
    if version == ofp.OFP_VERSION and msg_type not in FROM_SWITCH:
        raise Malformed("unexpected_type", f"type {msg_type} is not sent by switches")
    if version == ofp.OFP_VERSION and msg_type == ofp.OFPT_MULTIPART_REPLY:
        _check_multipart(buf)


def strict_msg(datapath: Any, version: int, msg_type: int, msg_len: int, xid: int, buf: bytes) -> Any:
    """os-ken's ofproto_parser.msg, but a message it cannot parse raises Malformed (no traceback)."""
    check(datapath, version, msg_type, buf)
    try:
        return _versions[version][1].msg_parser(datapath, version, msg_type, msg_len, xid, buf)
    except Exception as e:  # struct.error, AssertionError, ValueError, KeyError, ...: all garbage
        raise Malformed("unparsable", f"type {msg_type}: {type(e).__name__}: {e}") from None


def counting(count: Callable[[str], None]) -> None:
    """Where the guards count what they drop: count(counter name)."""
    global _count
    _count = count


def dpid_text(dp: Any) -> str:
    return "(no features yet)" if dp.id is None else f"{dp.id:016x}"


_count: Callable[[str], None] = lambda counter: None  # noqa: E731  set by install()


def guarded(handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """For the app's OpenFlow event handlers: a message that parsed but makes no sense (a masked
    field where none can be, a value out of range) closes its switch's connection, counted and
    logged in one line, instead of a traceback in os-ken's event loop. Put under @set_ev_cls."""

    @functools.wraps(handler)
    def run(app: Any, ev: Any) -> None:
        try:
            handler(app, ev)
        except Exception as e:
            dp = ev.msg.datapath
            _count(COUNTER_PREFIX + "unusable")
            LOG.error("switch %s: %s could not use a %s (%s: %s); connection closed", dpid_text(dp),
                      handler.__name__, type(ev.msg).__name__, type(e).__name__, e)
            dp.close()
    return run
