"""An emulated host's OVSDB (ovsdb-server + the ofports ovs-vswitchd assigns), for the scale benchmark.

It dials the controller's manager port as `ovs-vsctl set-manager` makes a real host do,
answers the controller's monitor with the rows a host built like lab/ has (Open_vSwitch
external_ids, br0/br1, patch ports, VM ports tagged on br0 with attached-mac), applies its
transactions (insert, mutate of a set column; Port/Interface rows nobody references are
garbage-collected, as in OVSDB), gives new br1 interfaces ofports and sends the resulting
update notifications. It probes the controller every 5 s, as ovsdb-server does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
PROBE_S = 5.0
REF_COLUMNS = {("Open_vSwitch", "bridges"), ("Bridge", "ports"), ("Port", "interfaces")}
NAME_INDEXED = ("Bridge", "Port", "Interface")  # the schema indexes these by name

Row = dict[str, Any]  # column -> OVSDB JSON datum


def omap(d: dict[str, str]) -> list:
    return ["map", sorted([k, v] for k, v in d.items())]


def refs(uuids: list[str]) -> list:
    return ["set", [["uuid", u] for u in uuids]]


def ref_list(datum: Any) -> list[str]:
    """The uuids of a reference datum: ["uuid", u] or ["set", [...]]."""
    if datum[0] == "uuid":
        return [datum[1]]
    return [d[1] for d in datum[1]]


class Database:
    """The rows of one host's Open_vSwitch database that the benchmark needs."""

    def __init__(self, system_id: str, overlay_ip: str, dpid: int) -> None:
        self.tables: dict[str, dict[str, Row]] = {t: {} for t in ("Open_vSwitch", "Bridge", "Port", "Interface")}
        self.next_ofport: dict[str, itertools.count] = {}
        self.touched: dict[tuple[str, str], Row | None] = {}  # (table, uuid) -> the row before this change
        self.used_ofports: dict[str, set[int]] = {}
        self.on_ofport: Callable[[str, int | None, str], None] | None = None  # bridge name, ofport, iface name
        self.br = {name: self._new_bridge(name, f"{dpid:016x}" if name == "br1" else f"{dpid | 1 << 63:016x}")
                   for name in ("br1", "br0")}
        self.root = self._insert("Open_vSwitch", {
            "external_ids": omap({"system-id": system_id, "overlay-ip": overlay_ip, "hostname": system_id}),
            "bridges": refs(list(self.br.values()))})
        self.add_port("br1", "patch-int", "patch", {"peer": "patch-tun"}, ofport=1)
        self.add_port("br0", "patch-tun", "patch", {"peer": "patch-int"})

    def _insert(self, table: str, row: Row, uid: str | None = None) -> str:
        uid = uid or str(uuidlib.uuid4())
        self.touch(table, uid)
        self.tables[table][uid] = row
        return uid

    def touch(self, table: str, uid: str) -> None:
        """Remember a row as it was before the change under way (None: it did not exist)."""
        if (table, uid) not in self.touched:
            row = self.tables[table].get(uid)
            self.touched[(table, uid)] = dict(row) if row is not None else None

    def take(self) -> list[tuple[str, str, Row | None, Row | None]]:
        """(table, uuid, before, now) of every row changed since the last take."""
        out = [(t, u, old, self.tables[t].get(u)) for (t, u), old in self.touched.items()]
        self.touched = {}
        return out

    def _new_bridge(self, name: str, dpid: str) -> str:
        self.next_ofport[name] = itertools.count(1)
        self.used_ofports[name] = set()
        port_iface = self._insert("Interface", {"name": name, "type": "internal", "options": omap({}),
                                                "ofport": 65534, "external_ids": omap({})})
        port = self._insert("Port", {"name": name, "interfaces": refs([port_iface]), "tag": ["set", []],
                                     "external_ids": omap({})})
        return self._insert("Bridge", {"name": name, "datapath_id": dpid, "ports": refs([port])})

    def add_port(self, bridge: str, name: str, kind: str = "", options: dict | None = None, *,
                 tag: int | None = None, attached_mac: str | None = None, ofport: int | None = None) -> str:
        """A port with one interface; returns the Port uuid. (The caller sends the update.)"""
        ofport = ofport or self._free_ofport(bridge)
        self.used_ofports[bridge].add(ofport)
        iface = self._insert("Interface", {
            "name": name, "type": kind, "options": omap(options or {}), "ofport": ofport,
            "external_ids": omap({"attached-mac": attached_mac} if attached_mac else {})})
        port = self._insert("Port", {"name": name, "interfaces": refs([iface]),
                                     "tag": tag if tag is not None else ["set", []], "external_ids": omap({})})
        self.touch("Bridge", self.br[bridge])
        b = self.tables["Bridge"][self.br[bridge]]
        b["ports"] = refs(ref_list(b["ports"]) + [port])
        if self.on_ofport is not None:
            self.on_ofport(bridge, ofport, name)
        return port

    def _free_ofport(self, bridge: str) -> int:
        """The next ofport never used on the bridge (OVS does not hand a freed one out at once)."""
        used = self.used_ofports[bridge]
        n = next(n for n in self.next_ofport[bridge] if n not in used)
        used.add(n)
        return n

    def snapshot(self) -> dict[str, dict[str, Row]]:
        return {t: {u: dict(r) for u, r in rows.items()} for t, rows in self.tables.items()}

    def rows(self) -> list[tuple[str, str, Row | None, Row | None]]:
        """Every row as if just inserted: a monitor's initial contents."""
        return [(t, u, None, r) for t, rows in self.tables.items() for u, r in rows.items()]

    def refuse(self, ops: list[dict]) -> str | None:
        """Why OVSDB would refuse the whole transaction (nothing is applied then), or None."""
        names = {t: {r.get("name") for r in self.tables[t].values()} for t in NAME_INDEXED}
        for op in ops:
            kind = op.get("op")
            if kind not in ("insert", "mutate", "comment", "wait"):
                return f"operation {kind} not supported here"
            if kind == "mutate" and any(m[1] not in ("insert", "delete") for m in op["mutations"]):
                return f"mutator in {op['mutations']} not supported here"
            if kind == "insert" and op["table"] in NAME_INDEXED:
                name = op.get("row", {}).get("name")
                if name in names[op["table"]]:  # the schema's name index
                    return f"constraint violation: a {op['table']} named {name} exists"
                names[op["table"]].add(name)
        return None

    def transact(self, ops: list[dict]) -> list[dict]:
        """Apply a transaction's operations; one result per operation, or an error and no change."""
        why = self.refuse(ops)
        if why is not None:
            return [{"error": "constraint violation" if "constraint" in why else "not supported", "details": why}]
        names: dict[str, str] = {}
        results: list[dict] = []
        inserted: list[tuple[str, Row]] = []
        deleted = False
        for op in ops:
            kind = op.get("op")
            if kind == "insert":
                uid = str(uuidlib.uuid4())
                if "uuid-name" in op:
                    names[op["uuid-name"]] = uid
                self.touch(op["table"], uid)
                row = self.tables[op["table"]][uid] = dict(op.get("row", {}))
                inserted.append((op["table"], row))
                results.append({"uuid": ["uuid", uid]})
            elif kind == "mutate":
                rows = self._where(op["table"], op.get("where", []))
                for uid, row in rows:
                    self.touch(op["table"], uid)
                    for column, mutator, value in op["mutations"]:
                        have = ref_list(row[column]) if row.get(column) else []
                        given = ref_list(value) if value[0] in ("set", "uuid") else []
                        given = [names.get(g, g) for g in given]
                        if mutator == "insert":
                            there = set(have)
                            row[column] = refs(have + [g for g in given if g not in there])
                        else:
                            gone = set(given)
                            row[column] = refs([h for h in have if h not in gone])
                            deleted = True
                results.append({"count": len(rows)})
            else:
                results.append({})
        for table, row in inserted:  # named-uuid -> uuid, in the columns that hold references
            for column in row:
                if (table, column) in REF_COLUMNS:
                    row[column] = _resolve(row[column], names)
        if deleted:
            self._collect_garbage()
        new = [u for u, row in self.tables["Interface"].items() if "ofport" not in row]
        if new:  # vswitchd gives new interfaces an ofport on their bridge
            port_of = {i: p for p, row in self.tables["Port"].items() for i in ref_list(row["interfaces"])}
            bridge_of = {p: name for name, b in self.br.items() for p in ref_list(self.tables["Bridge"][b]["ports"])}
            for uid in new:
                row = self.tables["Interface"][uid]
                bridge = bridge_of.get(port_of.get(uid, ""), "br1")
                row.setdefault("external_ids", omap({}))
                row.setdefault("options", omap({}))
                row["ofport"] = self._free_ofport(bridge)
                if self.on_ofport is not None:
                    self.on_ofport(bridge, row["ofport"], row.get("name", ""))
        for row in self.tables["Port"].values():
            row.setdefault("tag", ["set", []])
            row.setdefault("external_ids", omap({}))
        return results

    def _where(self, table: str, where: list) -> list[tuple[str, Row]]:
        rows = self.tables[table]
        for column, fn, value in where:
            if column == "_uuid" and fn == "==":
                return [(value[1], rows[value[1]])] if value[1] in rows else []
        return list(rows.items())

    def _collect_garbage(self) -> None:
        used_ports = {p for b in self.tables["Bridge"].values() for p in ref_list(b["ports"])}
        for uid in [u for u in self.tables["Port"] if u not in used_ports]:
            self.touch("Port", uid)
            del self.tables["Port"][uid]
        used_ifaces = {i for p in self.tables["Port"].values() for i in ref_list(p["interfaces"])}
        for uid in [u for u in self.tables["Interface"] if u not in used_ifaces]:
            self.touch("Interface", uid)
            row = self.tables["Interface"].pop(uid)
            if self.on_ofport is not None:
                self.on_ofport("br1", None, row.get("name", ""))


def _resolve(datum: Any, names: dict[str, str]) -> Any:
    if isinstance(datum, list):
        if len(datum) == 2 and datum[0] == "named-uuid":
            return ["uuid", names[datum[1]]]
        return [_resolve(d, names) for d in datum]
    return datum


def updates(changes: list[tuple[str, str, Row | None, Row | None]], columns: dict[str, list[str]]) -> dict:
    """<table-updates> for changed rows (table, uuid, before, now), monitored columns only."""
    out: dict[str, dict] = {}
    for table, uid, before, now in changes:
        cols = columns.get(table)
        if cols is None:
            continue
        o = {c: before[c] for c in cols if c in before} if before is not None else None
        n = {c: now[c] for c in cols if c in now} if now is not None else None
        if o == n:
            continue
        change: dict[str, Any] = {}
        if n is not None:
            change["new"] = n
        if o is not None:
            change["old"] = {c: v for c, v in o.items() if n is None or n.get(c) != v}
        out.setdefault(table, {})[uid] = change
    return out


class OvsdbPeer(asyncio.Protocol):
    """The JSON-RPC connection to the controller's manager port."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.transport: asyncio.Transport | None = None
        self.decoder = json.JSONDecoder()
        self.buf = ""
        self.monitors: list[tuple[Any, dict[str, list[str]]]] = []  # (monitor id, table -> columns)
        self.probe: asyncio.TimerHandle | None = None
        self.transactions = 0
        self.monitored = asyncio.Event()
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._schedule_probe()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.probe is not None:
            self.probe.cancel()
        self.closed.set()

    def _schedule_probe(self) -> None:
        self.probe = asyncio.get_running_loop().call_later(PROBE_S, self._send_probe)

    def _send_probe(self) -> None:
        self.send({"method": "echo", "params": [], "id": "echo"})
        self._schedule_probe()

    def send(self, msg: dict) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(json.dumps(msg).encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data.decode()
        while True:
            self.buf = self.buf.lstrip()
            if not self.buf:
                return
            try:
                msg, end = self.decoder.raw_decode(self.buf)
            except json.JSONDecodeError:
                return  # incomplete
            self.buf = self.buf[end:]
            self.handle(msg)

    def handle(self, msg: dict) -> None:
        method, msg_id = msg.get("method"), msg.get("id")
        if method == "echo":
            self.send({"id": msg_id, "result": msg.get("params", []), "error": None})
        elif method == "monitor":
            _db, monitor_id, requests = msg["params"]
            columns = {t: list(r.get("columns", [])) for t, r in requests.items() if t in self.db.tables}
            self.monitors.append((monitor_id, columns))
            self.send({"id": msg_id, "result": updates(self.db.rows(), columns), "error": None})
            self.monitored.set()
        elif method == "transact":
            self.db.take()
            result = self.db.transact(msg["params"][1:])
            self.transactions += 1
            self.send({"id": msg_id, "result": result, "error": None})
            self.notify(self.db.take())
        elif method is not None:
            self.send({"id": msg_id, "result": None, "error": f"unknown method {method}"})

    def notify(self, changes: list[tuple[str, str, Row | None, Row | None]]) -> None:
        """Send these changes (Database.take) to every monitor."""
        for monitor_id, columns in self.monitors:
            table_updates = updates(changes, columns)
            if table_updates:
                self.send({"method": "update", "params": [monitor_id, table_updates], "id": None})
