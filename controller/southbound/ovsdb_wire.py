"""What a host's OVSDB may send us, checked before it is believed (no sockets here).

Framer cuts the byte stream into JSON-RPC messages with a size limit; check_message() says
whether a message is one ovsdb-server sends a manager (echo requests, monitor updates,
replies to our requests) and whether its monitor rows fit the schema of the columns we asked
for. Anything else raises Malformed with a kind, which names the counter it feeds; the
connection that sent it is closed (ovsdb.py).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any

from controller.core.counters import OVSDB_MALFORMED
from controller.model.state import HOST_ID_RE
from controller.southbound import ovsdb_model as om

COUNTER_PREFIX = OVSDB_MALFORMED
# A monitor reply of a host with ~1,200 ports fits in one message; decoding a larger one (JSON
# decoding holds the GIL, so every green thread waits) could take over ~50 ms on a loaded machine.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_ROWS_PER_TABLE = 10_000
UUID_RE = re.compile(r"[0-9a-zA-Z_-]{1,64}")
DPID_RE = re.compile(r"[0-9a-fA-F]{16}")


class Malformed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


# ---- framing -----------------------------------------------------------------------------

class Framer:
    """Bytes in, whole JSON objects out; garbage or an oversized message raises Malformed.

    Each byte is scanned once (braces and quotes outside strings, quotes and backslashes in
    them, found by regex), so a message's end is known as soon as it arrives, and a large
    message arriving in many reads costs one decode, not one per read.
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        self._pos = 0  # scanned up to here
        self._depth = 0  # of braces, outside strings; 0: between messages

    def feed(self, data: bytes) -> list[Any]:
        try:
            self._buf += self._text.decode(data)
        except UnicodeDecodeError as e:
            raise Malformed("bad_utf8", str(e)) from None
        out = []
        while (end := self._scan()) is not None:
            if end > self.max_bytes:
                raise Malformed("too_big", f"a message of {end} bytes (limit {self.max_bytes})")
            raw, self._buf, self._pos = self._buf[:end], self._buf[end:], 0
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError as e:
                raise Malformed("bad_json", f"{e.msg} at byte {e.pos}") from None
            except RecursionError:
                raise Malformed("bad_json", "nested too deeply") from None
        if len(self._buf) > self.max_bytes:
            raise Malformed("too_big", f"a message longer than {self.max_bytes} bytes")
        return out

    def _scan(self) -> int | None:
        """Where the message at the start of the buffer ends, once it has all arrived."""
        buf, pos = self._buf, self._pos
        while True:
            if self._depth == 0:
                m = _NOT_SPACE.search(buf, pos)
                if m is None:
                    self._buf, self._pos = "", 0  # only whitespace so far
                    return None
                if m.group() != "{":
                    raise Malformed("not_json_rpc", f"a message starts with {buf[m.start():m.start() + 16]!r}")
                if m.start():
                    buf = self._buf = buf[m.start():]
                self._depth, pos = 1, 1
                continue
            pos = _TO_BRACE.match(buf, pos).end()  # type: ignore[union-attr]  # (it matches "" too)
            if pos >= len(buf) or buf[pos] == '"':  # the rest has not arrived (a string is still open)
                self._pos = pos
                return None
            self._depth += 1 if buf[pos] == "{" else -1
            pos += 1
            if self._depth == 0:
                self._pos = pos
                return pos


_NOT_SPACE = re.compile(r"[^ \t\r\n]")
# Up to the next brace outside a string: whole strings (escapes included) are skipped by the regex
# engine, so Python steps once per brace, not once per quote.
_TO_BRACE = re.compile(r'(?:[^{}"]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)


# ---- the schema of what we monitor -------------------------------------------------------

def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_uuid(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and v[0] == "uuid" and isinstance(v[1], str) \
        and UUID_RE.fullmatch(v[1]) is not None


def _is_dpid(v: Any) -> bool:
    return isinstance(v, str) and DPID_RE.fullmatch(v) is not None


def _set_of(atom: Callable[[Any], bool], most: int | None = None) -> Callable[[Any], bool]:
    """An OVSDB set: one bare atom, or ["set", [atoms]] with at most `most` of them."""
    def ok(v: Any) -> bool:
        if isinstance(v, list) and len(v) == 2 and v[0] == "set":
            return isinstance(v[1], list) and (most is None or len(v[1]) <= most) and all(atom(a) for a in v[1])
        return atom(v)
    return ok


def _is_str_map(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and v[0] == "map" and isinstance(v[1], list)
            and all(isinstance(p, list) and len(p) == 2 and _is_str(p[0]) and _is_str(p[1]) for p in v[1]))


COLUMN_TYPES: dict[str, dict[str, Callable[[Any], bool]]] = {
    "Open_vSwitch": {"external_ids": _is_str_map, "bridges": _set_of(_is_uuid)},
    "Bridge": {"name": _is_str, "datapath_id": _set_of(_is_dpid, 1), "ports": _set_of(_is_uuid)},
    "Port": {"name": _is_str, "interfaces": _set_of(_is_uuid), "tag": _set_of(_is_int, 1),
             "external_ids": _is_str_map},
    "Interface": {"name": _is_str, "type": _is_str, "options": _is_str_map, "ofport": _set_of(_is_int, 1),
                  "external_ids": _is_str_map},
}
assert {t: set(c) for t, c in COLUMN_TYPES.items()} == {t: set(c) for t, c in om.MONITORED.items()}


def check_table_updates(updates: Any, replica: om.Replica) -> None:
    """A monitor reply's or update's <table-updates>: only our tables and columns, right types."""
    if not isinstance(updates, dict):
        raise Malformed("wrong_type", "table-updates is not an object")
    for table, rows in updates.items():
        columns = COLUMN_TYPES.get(table)
        if columns is None:
            raise Malformed("unknown_table", f"table {str(table)[:40]!r} was not monitored")
        if not isinstance(rows, dict):
            raise Malformed("wrong_type", f"{table}: rows are not an object")
        if len(rows) + len(replica.get(table, {})) > MAX_ROWS_PER_TABLE:
            raise Malformed("too_many_rows", f"{table}: more than {MAX_ROWS_PER_TABLE} rows")
        for uuid, change in rows.items():
            if not UUID_RE.fullmatch(uuid) or not isinstance(change, dict) or set(change) - {"old", "new"}:
                raise Malformed("wrong_type", f"{table}: row {uuid[:40]!r} is not a row update")
            for state in change.values():
                if state is not None and not isinstance(state, dict):
                    raise Malformed("wrong_type", f"{table} {uuid}: old/new is not an object")
            for column, value in (change.get("new") or {}).items():
                valid = columns.get(column)
                if valid is None:
                    raise Malformed("unknown_column", f"{table}.{str(column)[:40]} was not monitored")
                if not valid(value):
                    raise Malformed("wrong_type", f"{table}.{column} = {json.dumps(value)[:60]}")


def check_system_id(replica: om.Replica) -> None:
    for row in replica.get("Open_vSwitch", {}).values():
        system_id = (row.get("external_ids") or {}).get("system-id")
        if system_id is not None and not HOST_ID_RE.fullmatch(system_id):
            raise Malformed("bad_system_id", f"system-id {system_id[:40]!r}")


def check_message(msg: Any, pending: dict) -> str:
    """What the message is ("echo", "update", "monitor", "reply"), or Malformed."""
    if not isinstance(msg, dict):
        raise Malformed("not_json_rpc", "a message is not an object")
    method, msg_id = msg.get("method"), msg.get("id")
    if method == "echo":
        return "echo"
    if method == "update":
        params = msg.get("params")
        if not (isinstance(params, list) and len(params) == 2):
            raise Malformed("wrong_type", "update params are not [monitor id, table-updates]")
        return "update"
    if method is not None:
        raise Malformed("unknown_method", f"method {str(method)[:40]!r}")
    if msg_id == "monitor":
        return "monitor"
    if isinstance(msg_id, int) and not isinstance(msg_id, bool) and msg_id in pending:
        return "reply"
    raise Malformed("unknown_id", f"a reply to request {json.dumps(msg_id)[:40]} we never sent")
