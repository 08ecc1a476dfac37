"""A lean OVSDB manager: hosts connect with `ovs-vsctl set-manager ssl:<controller>:6640` (or `tcp:`).

Its listener is bound by the shell where os-ken's OVSDB service would listen ([ovsdb]
address/port; controller/shell/listeners.py admits each connection, TLS as [tls] says), but the
manager is our own: os-ken's polls each connection in a busy loop (hub.sleep(0)) and never
notices a host going away. Per connection it monitors only the columns a HostView needs, answers echo probes, and
reports each changed HostView; tunnel transactions are sent on the host's connection.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
from collections.abc import Callable

from os_ken.lib import hub

from controller.model.ops import OvsdbOp
from controller.model.state import HostView
from controller.southbound import ovsdb_model as om
from controller.southbound import ovsdb_wire as wire
from controller.southbound import tlsconf

LOG = logging.getLogger(__name__)
DEAD_AFTER_S = 30.0  # ovsdb-server probes every 5 s by default; silence this long means gone


class _Connection:
    def __init__(self, server: OvsdbServer, sock: socket.socket, peer: str, peer_cn: str | None = None) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer  # "ip:port"
        self.peer_cn = peer_cn  # the host its verified certificate names (tlsconf.host_of_cn); None on plain TCP
        self.replica: om.Replica = {}
        self.view: HostView | None = None
        self.refused: str | None = None  # why this OVSDB cannot be a host at all (no system-id)
        self.ids = itertools.count(1)
        self.pending: dict[int, str] = {}  # transact id -> why
        self.changed = False  # the replica changed since the last report

    def send(self, msg: dict) -> None:
        self.sock.sendall(json.dumps(msg).encode())

    def transact(self, ops: tuple, why: str) -> None:
        txn_id = next(self.ids)
        self.pending[txn_id] = why
        self.send({"method": "transact", "params": ["Open_vSwitch", *ops], "id": txn_id})

    def run(self) -> None:
        framer = wire.Framer()
        self.sock.settimeout(DEAD_AFTER_S)
        self.send({"method": "monitor", "id": "monitor",
                   "params": ["Open_vSwitch", None, {tbl: {"columns": cols}
                                                      for tbl, cols in om.MONITORED.items()}]})
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in framer.feed(data):
                    self._handle(msg)
                    hub.sleep(0)
                if self.changed:  # not for echoes and transaction replies: a view costs O(ports)
                    self._report()
                hub.sleep(0)  # a peer that always has data ready must not starve the others
        except OSError as e:  # includes timeouts
            LOG.info("OVSDB connection from %s lost: %s", self.peer, e)
        except wire.Malformed as e:
            self.server.on_malformed(wire.COUNTER_PREFIX + e.kind)
            LOG.warning("OVSDB connection from %s dropped: malformed message (%s: %s)", self.peer, e.kind, e)
        finally:
            self.sock.close()
            self.server.unidentified.pop(self.peer, None)
            self.server._closed(self)

    def _handle(self, msg: dict) -> None:
        kind = wire.check_message(msg, self.pending)
        if kind == "echo":
            self.send({"id": msg["id"], "result": msg.get("params", []), "error": None})
        elif kind == "update":
            self._apply(msg["params"][1])
        elif kind == "monitor":
            if msg.get("error"):
                LOG.error("OVSDB monitor refused by %s: %s", self.peer, msg["error"])
            else:
                self._apply(msg.get("result") or {})
        else:
            why = self.pending.pop(msg["id"])
            errors = [r for r in (msg.get("result") or []) if isinstance(r, dict) and "error" in r]
            if msg.get("error") or errors:
                LOG.warning("OVSDB transaction on %s (%s) failed: %s", self.peer, why,
                            msg.get("error") or errors)

    def _apply(self, updates: dict) -> None:
        wire.check_table_updates(updates, self.replica)
        om.apply_update(self.replica, updates)
        wire.check_system_id(self.replica)
        self.changed = True

    def _report(self) -> None:
        self.changed = False
        refused = om.unidentified(self.replica)
        if refused != self.refused:
            self.refused = refused
            self.server._refused(self, refused)
        view = om.host_view(self.replica, self.server.tunnel_bridge, self.server.integration_bridge)
        if view is not None and view != self.view:
            old_problems = self.view.problems if self.view is not None else ()
            if view.problems and view.problems != old_problems:  # logged once per change, not per update
                LOG.warning("host %s (%s) not joined: %s", view.system_id, self.peer, "; ".join(view.problems))
            elif old_problems and not view.problems:
                LOG.info("host %s (%s) can join now", view.system_id, self.peer)
            self.view = view
            self.server._view_changed(self, view)


class OvsdbServer:
    def __init__(self, tunnel_bridge: str, integration_bridge: str,
                 on_view: Callable[[HostView], None], on_down: Callable[[str], None],
                 on_malformed: Callable[[str], None] = lambda counter: None) -> None:
        self.tunnel_bridge, self.integration_bridge = tunnel_bridge, integration_bridge
        self.on_view, self.on_down, self.on_malformed = on_view, on_down, on_malformed
        self.by_system: dict[str, _Connection] = {}
        self.unidentified: dict[str, str] = {}  # peer -> why it is not a host (listed by GET /v1/hosts)

    def connected(self, sock: socket.socket, addr: tuple) -> None:
        """One connection the listener admitted (TLS verified, or plain where allowed): served until it ends."""
        _Connection(self, sock, f"{addr[0]}:{addr[1]}", tlsconf.peer_cn(sock)).run()

    def carry_out(self, op: OvsdbOp) -> bool:
        """One of the core's OVSDB operations, as a transaction on its host's connection."""
        return self.transact(op.system_id, om.transaction(op), op.why)

    def transact(self, system_id: str, ops: tuple, why: str) -> bool:
        conn = self.by_system.get(system_id)
        if conn is None:
            LOG.warning("no OVSDB connection to %s for %s", system_id, why)
            return False
        try:
            conn.transact(ops, why)
        except OSError as e:
            LOG.warning("OVSDB transaction to %s failed: %s", system_id, e)
            return False
        return True

    def _view_changed(self, conn: _Connection, view: HostView) -> None:
        old = self.by_system.get(view.system_id)
        if old is not None and old is not conn:
            LOG.info("host %s reconnected from %s", view.system_id, conn.peer)
        self.by_system[view.system_id] = conn
        self.on_view(view)

    def _refused(self, conn: _Connection, reason: str | None) -> None:
        if reason is None:
            self.unidentified.pop(conn.peer, None)
        else:
            LOG.warning("OVSDB connection from %s not joined: %s", conn.peer, reason)
            self.unidentified[conn.peer] = reason
            if conn.view is not None:  # it was a host and lost its name: that host is gone from here
                self._closed(conn)
                conn.view = None

    def _closed(self, conn: _Connection) -> None:
        if conn.view is not None and self.by_system.get(conn.view.system_id) is conn:
            del self.by_system[conn.view.system_id]
            self.on_down(conn.view.system_id)
