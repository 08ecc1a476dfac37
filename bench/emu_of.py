"""An emulated OpenFlow 1.3 switch (br1 of an emulated host) for the scale benchmark.

Thousands of these run in one asyncio process, so the hot path decodes with struct only:
a flow is stored as its raw match and instruction bytes, keyed by (table, priority, match
bytes); its match is decoded once into OXM fields for the classifier (hash lookups per
mask signature, as OVS's tuple-space search does) and for the marks the benchmark waits on.
Replies to the controller (flow/group/meter stats) are spliced from the stored bytes, so
`ovs-ofctl ofp-print` of a reply reads like `ovs-ofctl dump-flows` of a real br1
(tests/e2e/test_scale_emulator.py compares them).

Not emulated: packet forwarding (only what decides packet-ins), meter rate limiting,
idle/hard timeouts by themselves (`expire()` removes a flow as an idle timeout would),
counters (always 0).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import struct
import time
from collections.abc import Callable

from os_ken.ofproto import ofproto_v1_3 as ofp

from bench.emu_wire import (
    FLOW_MOD,
    FLOW_STATS,
    HDR,
    MP_HDR,
    NX_VENDOR,
    NXAST_CLONE,
    NXAST_RESUBMIT,
    NXAST_RESUBMIT_TABLE,
    STATS_REQ,
    VERSION,
    Fields,
    action_list,
    bucket_count,
    covers,
    decode_match,
    instructions,
    pad8,
    port_desc,
    split,
)
from controller.model import tables as t

LOG = logging.getLogger(__name__)
_U16 = struct.Struct("!H")


DECODED_KEPT = 1 << 16
_DECODED: dict[bytes, tuple[Fields, tuple, tuple]] = {}


def _decoded(match: bytes) -> tuple[Fields, tuple, tuple]:
    """A match's fields, and the classifier's mask signature and values in the match's own (OXM)
    order: decoded once for every emulated switch (dense: every host gets the same matches). The
    fields are shared: nobody changes them."""
    got = _DECODED.get(match)
    if got is None:
        fields = decode_match(match)
        got = (fields, tuple([(name, mask) for name, (_, mask) in fields.items()]),
               tuple([value for value, _ in fields.values()]))
        if len(_DECODED) >= DECODED_KEPT:
            _DECODED.clear()
        _DECODED[match] = got
    return got


class Flow:
    __slots__ = ("table", "priority", "match", "instr", "cookie", "idle", "hard", "flags", "fields",
                 "created", "mark", "sig", "vals", "_actions", "_goto")

    def __init__(self, table: int, priority: int, match: bytes, instr: bytes, cookie: int, idle: int,
                 hard: int, flags: int) -> None:
        self.table, self.priority, self.match, self.instr = table, priority, match, instr
        self.cookie, self.idle, self.hard, self.flags = cookie, idle, hard, flags
        self.fields, self.sig, self.vals = _decoded(match)
        self.created = time.monotonic()
        self.mark: tuple | None = None
        self._actions: list[tuple[int, bytes]] | None = None
        self._goto: int | None = -1

    def set_instructions(self, instr: bytes) -> None:
        self.instr, self._actions, self._goto = instr, None, -1

    @property
    def key(self) -> tuple[int, int, bytes]:
        return (self.table, self.priority, self.match)

    def stats_entry(self, now: float) -> bytes:
        body = self.match + self.instr
        age = max(0.0, now - self.created)
        return FLOW_STATS.pack(FLOW_STATS.size + len(body), self.table, int(age), int(age % 1 * 1e9),
                               self.priority, self.idle, self.hard, self.flags, self.cookie, 0, 0) + body

    def actions(self) -> list[tuple[int, bytes]]:
        """Apply/write actions, in order (parsed once)."""
        if self._actions is None:
            out: list[tuple[int, bytes]] = []
            for kind, ins in instructions(self.instr):
                if kind in (ofp.OFPIT_APPLY_ACTIONS, ofp.OFPIT_WRITE_ACTIONS):
                    out += action_list(ins[8:])
            self._actions = out
        return self._actions

    def goto(self) -> int | None:
        if self._goto == -1:
            self._goto = next((ins[4] for kind, ins in instructions(self.instr) if kind == ofp.OFPIT_GOTO_TABLE),
                              None)
        return self._goto

    def outputs(self, port: int, group: int) -> bool:
        """Does it output to port / the group (OFPP_ANY / OFPG_ANY: anything goes)?"""
        if port == ofp.OFPP_ANY and group == ofp.OFPG_ANY:
            return True
        for kind, a in self.actions():
            if kind == ofp.OFPAT_OUTPUT and port != ofp.OFPP_ANY and struct.unpack_from("!I", a, 4)[0] == port:
                return True
            if kind == ofp.OFPAT_GROUP and group != ofp.OFPG_ANY and struct.unpack_from("!I", a, 4)[0] == group:
                return True
        return False


class FlowTable:
    """All flows of one switch, with a tuple-space classifier per OpenFlow table."""

    def __init__(self) -> None:
        self.flows: dict[tuple[int, int, bytes], Flow] = {}
        self.version = 0  # bumped on every change: cached replies are reused until then
        # table -> mask signature -> masked values -> flows
        self.spaces: dict[int, dict[tuple, dict[tuple, list[Flow]]]] = {}
        # cookie mask -> masked cookie -> flows: kept for the masks aggregate requests asked for
        self.by_cookie: dict[int, dict[int, int]] = {}

    def put(self, fl: Flow) -> Flow | None:
        self.version += 1
        key = (fl.table, fl.priority, fl.match)
        old = self.flows.get(key)
        if old is not None:
            self._unindex(old)
        self.flows[key] = fl
        self.spaces.setdefault(fl.table, {}).setdefault(fl.sig, {}).setdefault(fl.vals, []).append(fl)
        if self.by_cookie:
            for mask, counts in self.by_cookie.items():
                counts[fl.cookie & mask] = counts.get(fl.cookie & mask, 0) + 1
        return old

    def remove(self, fl: Flow) -> None:
        self.version += 1
        del self.flows[fl.key]
        self._unindex(fl)

    def cookies(self, mask: int, cookie: int) -> int:
        """How many flows have this cookie under this mask (counted as flows come and go, once asked)."""
        counts = self.by_cookie.get(mask)
        if counts is None:
            counts = self.by_cookie[mask] = {}
            for fl in self.flows.values():
                counts[fl.cookie & mask] = counts.get(fl.cookie & mask, 0) + 1
        return counts.get(cookie & mask, 0)

    def _unindex(self, fl: Flow) -> None:
        for mask, counts in self.by_cookie.items():
            counts[fl.cookie & mask] -= 1
        space = self.spaces[fl.table][fl.sig]
        bucket = space[fl.vals]
        bucket[:] = [x for x in bucket if x.key != fl.key]
        if not bucket:
            del space[fl.vals]
            if not space:
                del self.spaces[fl.table][fl.sig]

    def lookup(self, table: int, packet: dict[str, int]) -> Flow | None:
        best: Flow | None = None
        for sig, space in self.spaces.get(table, {}).items():
            vals = []
            for name, mask in sig:
                v = packet.get(name)
                if v is None:
                    break
                vals.append(v if mask is None else v & mask)
            else:
                for fl in space.get(tuple(vals), ()):
                    if best is None or fl.priority > best.priority:
                        best = fl
        return best


def mark_of(fl: Flow, port_names: dict[int, str], patch: int) -> tuple | None:
    """What the benchmark waits for, named by content rather than by bytes."""
    f = fl.fields
    if fl.table == t.CLASSIFY and "in_port" in f:
        port = f["in_port"][0]
        return ("base",) if port == patch else ("tun", port_names.get(port, port))
    if fl.table == t.TUNNEL_IN and "tunnel_id" in f:
        return ("tin", f["tunnel_id"][0])
    if fl.table == t.SRC_MAC and "eth_src" in f:
        return ("src", f["eth_src"][0])
    if fl.table == t.UNICAST and "eth_dst" in f and f["eth_dst"][1] is None:
        return ("uc", f["eth_dst"][0])
    if fl.table == t.ARP_RESPONDER and "arp_tpa" in f and "arp_spa" not in f and fl.priority == t.PRIO_ENTRY:
        return ("arp", f.get("vlan_vid", (0, None))[0] & 0x0FFF, f["arp_tpa"][0])
    return None


class Switch(asyncio.Protocol):
    """One br1: the OpenFlow 1.3 side of an emulated host."""

    def __init__(self, dpid: int, patch_ofport: int = 1) -> None:
        self.dpid = dpid
        self.patch = patch_ofport
        self.table = FlowTable()
        self.groups: dict[int, tuple[int, bytes]] = {}  # id -> (type, buckets bytes)
        self.meters: dict[int, tuple[int, bytes]] = {}  # id -> (flags, bands bytes)
        self.ports: dict[int, str] = {}  # ofport -> name (tunnels, patch)
        self.marks: dict[tuple, float] = {}  # mark -> when it (last) appeared
        self.watch: Callable[[Switch, tuple, float], None] | None = None
        self.barriers: list[float] = []  # when each barrier reply was sent
        self._entries: tuple[int, list[bytes]] = (-1, [])
        self.counts = {"flow_mod": 0, "group_mod": 0, "meter_mod": 0, "packet_in": 0, "errors": 0,
                       "stats_requests": 0}
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.xid = 0
        self.features_seen = asyncio.Event()
        self.async_masks = (0b11, 0b111, 0b1111)  # packet-in, port-status, flow-removed (master)
        self.closed = asyncio.Event()

    # ---- transport ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send(ofp.OFPT_HELLO, b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def pause_writing(self) -> None:  # the controller reads slower than we answer: stop reading
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def send(self, kind: int, body: bytes, xid: int | None = None) -> None:
        if xid is None:
            self.xid = (self.xid + 1) & 0xFFFFFFFF
            xid = self.xid
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(HDR.pack(VERSION, kind, HDR.size + len(body), xid) + body)

    def data_received(self, data: bytes) -> None:
        if self.buf:  # a message cut off by the last read: once whole, messages are sliced from bytes
            self.buf += data
            data = bytes(self.buf)
            self.buf.clear()
        buf = data
        i = 0
        while len(buf) - i >= 8:
            _, kind, length, xid = HDR.unpack_from(buf, i)
            if length < 8:
                self.transport.close()  # type: ignore[union-attr]
                return
            if len(buf) - i < length:
                break
            msg = buf[i:i + length]
            i += length
            try:
                self.handle(kind, xid, msg)
            except (struct.error, IndexError, ValueError, KeyError) as e:
                self.counts["errors"] += 1
                LOG.warning("switch %x: bad message type %d: %r", self.dpid, kind, e)
                self.error(xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_LEN, msg)
        if i < len(buf):
            self.buf += memoryview(buf)[i:]

    def error(self, xid: int, kind: int, code: int, msg: bytes) -> None:
        self.send(ofp.OFPT_ERROR, struct.pack("!HH", kind, code) + msg[:64], xid)

    # ---- messages -------------------------------------------------------------------------

    def handle(self, kind: int, xid: int, msg: bytes) -> None:
        if kind == ofp.OFPT_FLOW_MOD:
            self.flow_mod(xid, msg)
        elif kind == ofp.OFPT_BARRIER_REQUEST:
            self.barriers.append(time.monotonic())
            self.send(ofp.OFPT_BARRIER_REPLY, b"", xid)
        elif kind == ofp.OFPT_MULTIPART_REQUEST:
            self.multipart(xid, msg)
        elif kind == ofp.OFPT_GROUP_MOD:
            self.group_mod(xid, msg)
        elif kind == ofp.OFPT_METER_MOD:
            self.meter_mod(xid, msg)
        elif kind == ofp.OFPT_ECHO_REQUEST:
            self.send(ofp.OFPT_ECHO_REPLY, msg[8:], xid)
        elif kind == ofp.OFPT_FEATURES_REQUEST:
            self.send(ofp.OFPT_FEATURES_REPLY, struct.pack("!QIBB2xII", self.dpid, 0, 254, 0, 0x4F, 0), xid)
            self.features_seen.set()
        elif kind == ofp.OFPT_GET_CONFIG_REQUEST:
            self.send(ofp.OFPT_GET_CONFIG_REPLY, struct.pack("!HH", 0, 0xFFFF), xid)
        elif kind == ofp.OFPT_SET_ASYNC:
            m = struct.unpack_from("!6I", msg, 8)
            self.async_masks = (m[0], m[2], m[4])
        elif kind in (ofp.OFPT_HELLO, ofp.OFPT_ECHO_REPLY, ofp.OFPT_SET_CONFIG, ofp.OFPT_PACKET_OUT,
                      ofp.OFPT_ERROR):
            pass
        else:
            self.error(xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_TYPE, msg)

    def flow_mod(self, xid: int, msg: bytes) -> None:
        self.counts["flow_mod"] += 1
        (cookie, cookie_mask, table, command, idle, hard, priority, _buffer, out_port, out_group,
         flags) = FLOW_MOD.unpack_from(msg, 8)
        end = 48 + pad8(_U16.unpack_from(msg, 50)[0])  # past the match
        match = msg[48:end]
        if command == ofp.OFPFC_ADD:
            if table >= ofp.OFPTT_ALL:
                return self.error(xid, ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_BAD_TABLE_ID, msg)
            self._install(Flow(table, priority, match, msg[end:], cookie, idle, hard, flags))
            return
        tables = None if table == ofp.OFPTT_ALL else {table}
        strict = command in (ofp.OFPFC_MODIFY_STRICT, ofp.OFPFC_DELETE_STRICT)
        if strict and tables is not None:
            fl = self.table.flows.get((table, priority, match))
            victims = [fl] if fl is not None else []
        else:
            request = decode_match(match)
            victims = [fl for fl in self.table.flows.values()
                       if (tables is None or fl.table in tables) and covers(request, fl.fields)
                       and (not strict or (fl.priority == priority and fl.fields == request))]
        victims = [fl for fl in victims if fl.cookie & cookie_mask == cookie & cookie_mask]
        if command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
            for fl in victims:
                if fl.outputs(out_port, out_group):
                    self._remove(fl, ofp.OFPRR_DELETE)
        else:  # modify: new instructions, same entry (OpenFlow 1.3 does not add on modify)
            for fl in victims:
                fl.set_instructions(msg[end:])
            self.table.version += 1

    def _install(self, fl: Flow) -> None:
        old = self.table.put(fl)
        if old is not None and old.mark is not None and self.marks.get(old.mark) is not None:
            del self.marks[old.mark]
        fl.mark = mark_of(fl, self.ports, self.patch)
        if fl.mark is not None:
            now = time.monotonic()
            self.marks[fl.mark] = now
            if self.watch is not None:
                self.watch(self, fl.mark, now)

    def _remove(self, fl: Flow, reason: int) -> None:
        self.table.remove(fl)
        if fl.mark is not None:
            self.marks.pop(fl.mark, None)
        if fl.flags & ofp.OFPFF_SEND_FLOW_REM and self.async_masks[2] >> reason & 1:
            age = max(0.0, time.monotonic() - fl.created)
            self.send(ofp.OFPT_FLOW_REMOVED, struct.pack(
                "!QHBBIIHHQQ", fl.cookie, fl.priority, reason, fl.table, int(age), int(age % 1 * 1e9),
                fl.idle, fl.hard, 0, 0) + fl.match)

    def expire(self, table: int, fields: Fields) -> int:
        """Remove the flows of table whose match equals fields, as an idle timeout would."""
        victims = [fl for fl in self.table.flows.values() if fl.table == table and fl.fields == fields]
        for fl in victims:
            self._remove(fl, ofp.OFPRR_IDLE_TIMEOUT)
        return len(victims)

    def group_mod(self, xid: int, msg: bytes) -> None:
        self.counts["group_mod"] += 1
        command, gtype, gid = struct.unpack_from("!HBxI", msg, 8)
        buckets = msg[16:]
        if command == ofp.OFPGC_ADD:
            if gid in self.groups:
                return self.error(xid, ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS, msg)
            self._set_group(gid, gtype, buckets)
        elif command == ofp.OFPGC_MODIFY:
            if gid not in self.groups:
                return self.error(xid, ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP, msg)
            self._set_group(gid, gtype, buckets)
        elif command == ofp.OFPGC_DELETE:
            for g in list(self.groups) if gid == ofp.OFPG_ALL else [gid]:
                if self.groups.pop(g, None) is not None:
                    self._group_mark(g, None)
                    for fl in [fl for fl in self.table.flows.values() if fl.outputs(ofp.OFPP_ANY, g)]:
                        self._remove(fl, ofp.OFPRR_GROUP_DELETE)  # OVS drops flows that used it
        else:
            self.error(xid, ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_BAD_COMMAND, msg)

    def _set_group(self, gid: int, gtype: int, buckets: bytes) -> None:
        self.groups[gid] = (gtype, buckets)
        self._group_mark(gid, bucket_count(buckets))

    def _group_mark(self, gid: int, n: int | None) -> None:
        for mark in [m for m in self.marks if m[0] == "grp" and m[1] == gid]:
            del self.marks[mark]
        if n is not None:
            now = time.monotonic()
            self.marks[("grp", gid, n)] = now
            if self.watch is not None:
                self.watch(self, ("grp", gid, n), now)

    def meter_mod(self, xid: int, msg: bytes) -> None:
        self.counts["meter_mod"] += 1
        command, flags, mid = struct.unpack_from("!HHI", msg, 8)
        if command == ofp.OFPMC_ADD:
            if mid in self.meters:
                return self.error(xid, ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS, msg)
            self.meters[mid] = (flags, msg[16:])
        elif command == ofp.OFPMC_MODIFY:
            if mid not in self.meters:
                return self.error(xid, ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_UNKNOWN_METER, msg)
            self.meters[mid] = (flags, msg[16:])
        elif command == ofp.OFPMC_DELETE:
            if mid == ofp.OFPM_ALL:
                self.meters.clear()
            else:
                self.meters.pop(mid, None)

    # ---- multipart ------------------------------------------------------------------------

    def multipart(self, xid: int, msg: bytes) -> None:
        self.counts["stats_requests"] += 1
        (mp_type, _flags) = struct.unpack_from("!HH", msg, 8)
        body = msg[16:]
        if mp_type == ofp.OFPMP_FLOW:
            if body[:1] + body[4:12] == b"\xff" * 9 and body[16:32] == bytes(16) and body[34:36] == b"\0\x04":
                self.reply(xid, mp_type, self.all_entries())  # the controller's poll: everything
            else:
                self.reply(xid, mp_type, [fl.stats_entry(time.monotonic()) for fl in self.select(body)])
        elif mp_type == ofp.OFPMP_AGGREGATE:
            self.reply(xid, mp_type, [struct.pack("!QQI4x", 0, 0, self.aggregate(body))])
        elif mp_type == ofp.OFPMP_TABLE:
            counts: dict[int, int] = {}
            for fl in self.table.flows.values():
                counts[fl.table] = counts.get(fl.table, 0) + 1
            self.reply(xid, mp_type, [struct.pack("!B3xIQQ", i, counts.get(i, 0), 0, 0) for i in range(254)])
        elif mp_type == ofp.OFPMP_GROUP_DESC:
            self.reply(xid, mp_type, self.group_desc())
        elif mp_type == ofp.OFPMP_GROUP:
            gid = struct.unpack_from("!I", body)[0]
            self.reply(xid, mp_type, [
                struct.pack("!H2xII4xQQII", 40 + 16 * bucket_count(b), g, 0, 0, 0, 0, 0)
                + b"\0" * 16 * bucket_count(b)
                for g, (_, b) in sorted(self.groups.items()) if gid in (ofp.OFPG_ALL, g)])
        elif mp_type == ofp.OFPMP_METER_CONFIG:
            mid = struct.unpack_from("!I", body)[0]
            self.reply(xid, mp_type, [struct.pack("!HHI", 8 + len(bands), flags, m) + bands
                                      for m, (flags, bands) in sorted(self.meters.items())
                                      if mid in (ofp.OFPM_ALL, m)])
        elif mp_type == ofp.OFPMP_METER:
            mid = struct.unpack_from("!I", body)[0]
            self.reply(xid, mp_type, [struct.pack("!IH6xIQQII", m, 40 + len(b) // 16 * 16, 0, 0, 0, 0, 0)
                                      + b"\0" * (len(b) // 16 * 16)
                                      for m, (_, b) in sorted(self.meters.items()) if mid in (ofp.OFPM_ALL, m)])
        elif mp_type == ofp.OFPMP_PORT_DESC:
            self.reply(xid, mp_type, [port_desc(n, name) for n, name in sorted(self.ports.items())])
        elif mp_type == ofp.OFPMP_DESC:
            self.reply(xid, mp_type, [b"".join(s.encode().ljust(n, b"\0") for s, n in (
                ("sdn-overlay bench", 256), ("emulated br1", 256), ("bench/emu_of.py", 256),
                ("-", 32), ("-", 256)))])
        else:
            self.error(xid, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_MULTIPART, msg)

    def select(self, body: bytes) -> list[Flow]:
        """Flows a flow/aggregate stats request asks for: table, out_port/group, cookie, match."""
        table, out_port, out_group, cookie, cookie_mask = STATS_REQ.unpack_from(body)
        request = decode_match(body[STATS_REQ.size:])
        return [fl for fl in self.table.flows.values()
                if (table == ofp.OFPTT_ALL or fl.table == table)
                and fl.cookie & cookie_mask == cookie & cookie_mask
                and (not request or covers(request, fl.fields)) and fl.outputs(out_port, out_group)]

    def aggregate(self, body: bytes) -> int:
        """How many flows an aggregate request covers; by cookie alone (the controller's counter poll),
        without going through every flow."""
        table, out_port, out_group, cookie, cookie_mask = STATS_REQ.unpack_from(body)
        if table == ofp.OFPTT_ALL and out_port == ofp.OFPP_ANY and out_group == ofp.OFPG_ANY \
                and not decode_match(body[STATS_REQ.size:]):
            return self.table.cookies(cookie_mask, cookie)
        return len(self.select(body))

    def all_entries(self) -> list[bytes]:
        """Every flow's stats entry, reused while the table is unchanged (durations as of then)."""
        if self._entries[0] != self.table.version:
            now = time.monotonic()
            self._entries = (self.table.version, [fl.stats_entry(now) for fl in self.table.flows.values()])
        return self._entries[1]

    def group_desc(self) -> list[bytes]:
        return [struct.pack("!HBxI", 8 + len(b), gtype, g) + b for g, (gtype, b) in sorted(self.groups.items())]

    def reply(self, xid: int, mp_type: int, entries: list[bytes]) -> None:
        """Entries in as few multipart replies as fit, REPLY_MORE on all but the last."""
        for chunk, more in split(entries):
            self.send(ofp.OFPT_MULTIPART_REPLY, MP_HDR.pack(mp_type, more) + chunk, xid)

    # ---- host events ----------------------------------------------------------------------

    def port_added(self, ofport: int, name: str) -> None:
        self.ports[ofport] = name
        if self.async_masks[1] & 1 << ofp.OFPPR_ADD:
            self.send(ofp.OFPT_PORT_STATUS, struct.pack("!B7x", ofp.OFPPR_ADD) + port_desc(ofport, name))

    def port_deleted(self, ofport: int) -> None:
        name = self.ports.pop(ofport, None)
        if name is not None and self.async_masks[1] & 1 << ofp.OFPPR_DELETE:
            self.send(ofp.OFPT_PORT_STATUS, struct.pack("!B7x", ofp.OFPPR_DELETE) + port_desc(ofport, name))

    def inject(self, packet: dict[str, int], data: bytes) -> int:
        """A frame arriving on a port: run the pipeline for packet-ins only; returns how many were sent."""
        sent: list[tuple[int, Flow]] = []
        self._run(t.CLASSIFY, packet, sent, 0)
        for table, fl in sent:
            reason = ofp.OFPR_NO_MATCH if fl.priority == 0 and not fl.fields else ofp.OFPR_ACTION
            if not self.async_masks[0] >> reason & 1:
                continue
            match = struct.pack("!HHII4x", 1, 12, 0x80000004, packet["in_port"])  # OXM in_port, padded
            self.send(ofp.OFPT_PACKET_IN, struct.pack("!IHBBQ", ofp.OFP_NO_BUFFER, len(data), reason, table,
                                                      fl.cookie) + match + b"\0\0" + data)
            self.counts["packet_in"] += 1
        return len(sent)

    def _run(self, table: int, packet: dict[str, int], sent: list, depth: int) -> None:
        if depth > 16:
            return
        fl = self.table.lookup(table, packet)
        if fl is None:
            return  # table miss: OpenFlow 1.3 drops
        self._apply(table, fl, fl.actions(), packet, sent, depth)
        goto = fl.goto()
        if goto is not None:
            self._run(goto, packet, sent, depth + 1)

    def _apply(self, table: int, fl: Flow, actions: list[tuple[int, bytes]], packet: dict[str, int],
               sent: list, depth: int) -> None:
        for kind, a in actions:
            if kind == ofp.OFPAT_OUTPUT and struct.unpack_from("!I", a, 4)[0] == ofp.OFPP_CONTROLLER:
                sent.append((table, fl))
            elif kind == ofp.OFPAT_EXPERIMENTER and struct.unpack_from("!I", a, 4)[0] == NX_VENDOR:
                subtype = struct.unpack_from("!H", a, 8)[0]
                if subtype in (NXAST_RESUBMIT, NXAST_RESUBMIT_TABLE):
                    target = a[12] if subtype == NXAST_RESUBMIT_TABLE else table
                    self._run(target, packet, sent, depth + 1)
                elif subtype == NXAST_CLONE:
                    self._apply(table, fl, action_list(a[16:]), dict(packet), sent, depth + 1)

    # ---- what the benchmark reads ---------------------------------------------------------

    def confirmed_at(self, t0: float) -> float | None:
        """When the first barrier reply at or after t0 was sent (None: none yet)."""
        i = bisect.bisect_left(self.barriers, t0)
        return self.barriers[i] if i < len(self.barriers) else None

    def flow_stats_reply(self) -> list[bytes]:
        """The flow stats reply messages for every flow, as the controller would receive them."""
        return [HDR.pack(VERSION, ofp.OFPT_MULTIPART_REPLY, 16 + len(chunk), 0)
                + MP_HDR.pack(ofp.OFPMP_FLOW, more) + chunk
                for chunk, more in split([fl.stats_entry(time.monotonic()) for fl in self.table.flows.values()])]

    def group_desc_reply(self) -> list[bytes]:
        return [HDR.pack(VERSION, ofp.OFPT_MULTIPART_REPLY, 16 + len(chunk), 0)
                + MP_HDR.pack(ofp.OFPMP_GROUP_DESC, more) + chunk
                for chunk, more in split(self.group_desc())]
