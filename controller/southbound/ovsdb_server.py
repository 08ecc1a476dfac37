"""A lean OVSDB manager: hosts connect with `ovs-vsctl set-manager ssl:<controller>:6640` (or `tcp:`).

Its listener is bound by the shell where os-ken's OVSDB service would listen ([ovsdb]
address/port; controller/shell/listeners.py admits each connection, TLS as [tls] says), but the
manager is our own: os-ken's polls each connection in a busy loop (hub.sleep(0)) and never
notices a host going away. Per connection it monitors only the columns a HostView needs, answers echo probes, and
reports each changed HostView; tunnel transactions are sent on the host's connection.

A connection's first view names a host: `claim` (the core's identity rules,
controller/core/identity.py) says whether it may be that host. Refused, it is closed, and the
host's own connection is left alone: it is only sent an echo, and closed if it does not answer in
PROBE_S (it was dead without a word: its host, reconnecting, gets its name back).
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
from collections.abc import Callable

from os_ken.lib import hub

from controller.model.ops import OvsdbOp
from controller.model.state import HostView, Peer
from controller.southbound import ovsdb_model as om
from controller.southbound import ovsdb_wire as wire
from controller.southbound import tlsconf

LOG = logging.getLogger(__name__)
DEAD_AFTER_S = 30.0  # ovsdb-server probes every 5 s by default; silence this long means gone
PROBE_S = 5.0  # a host's connection that does not answer an echo in this long, once another claims it, is dead


class Refused(Exception):
    """This connection may not be the host it names (controller/core/identity.py says why)."""


class _Connection:
    def __init__(self, server: OvsdbServer, sock: socket.socket, peer: str, peer_cn: str | None = None) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer  # "ip:port"
        self.peer_cn = peer_cn  # the host its verified certificate names (tlsconf.host_of_cn); None on plain TCP
        self.claimed: str | None = None  # the host (system-id) this connection is, once its claim held
        self.open = True
        self.heard = time.monotonic()  # when it last sent anything
        self.probed: float | None = None  # when it was sent an echo because another claimed its host
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
                self.heard = time.monotonic()
                take = self.server.take
                take()  # before the work, not only after: a thousand hosts' first dumps come at once
                for msg in framer.feed(data):
                    self._handle(msg)
                    take()
                if self.changed:  # not for echoes and transaction replies: a view costs O(ports)
                    self._report()
                hub.sleep(0)  # a peer that always has data ready must not starve the others
        except OSError as e:  # includes timeouts
            LOG.info("OVSDB connection from %s lost: %s", self.peer, e)
        except wire.Malformed as e:
            self.server.on_malformed(wire.COUNTER_PREFIX + e.kind)
            LOG.warning("OVSDB connection from %s dropped: malformed message (%s: %s)", self.peer, e.kind, e)
        except Refused as e:  # the core counted and logged it
            LOG.debug("OVSDB connection from %s refused: %s", self.peer, e)
        finally:
            self.open = False
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

    def identity(self) -> Peer:
        return Peer(self.peer, self.peer_cn)

    def probe(self) -> None:
        """Another connection claims this one's host: is this one still there? (An echo, nothing more.)"""
        if self.probed is not None:
            return
        self.probed = time.monotonic()
        try:
            self.transact_echo()
        except OSError:
            return
        hub.spawn_after(PROBE_S, self._probe_expired, self.probed)

    def transact_echo(self) -> None:
        txn_id = next(self.ids)
        self.pending[txn_id] = "an echo: is it still there?"
        self.send({"method": "echo", "params": [], "id": txn_id})

    def _probe_expired(self, sent: float) -> None:
        self.probed = None
        if self.open and self.heard < sent:
            LOG.warning("OVSDB connection from %s (host %s) silent for %.0f s after an echo: closed", self.peer,
                        self.claimed, time.monotonic() - sent)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

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
                 on_view: Callable[[HostView, Peer], None], on_down: Callable[[str], None],
                 on_malformed: Callable[[str], None] = lambda counter: None,
                 claim: Callable[[str, Peer, bool], str | None] = lambda system_id, peer, live: None,
                 take: Callable[[], None] = lambda: hub.sleep(0)) -> None:
        self.tunnel_bridge, self.integration_bridge = tunnel_bridge, integration_bridge
        self.take = take  # a turn for the others, between pieces of work (the app's: shell/turns.py)
        self.on_view, self.on_down, self.on_malformed = on_view, on_down, on_malformed
        self.claim = claim  # why a connection may not be the host it names (None: it may)
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
        name = view.system_id
        if conn.claimed != name:  # its first view, or it renamed itself: may it be that host?
            old = self.by_system.get(name)
            live = old is not None and old is not conn and old.open
            reason = self.claim(name, conn.identity(), live)
            if reason is not None:
                if live:
                    old.probe()  # type: ignore[union-attr]
                raise Refused(reason)
            self._closed(conn)  # the name it had, if any, is gone from here
            conn.claimed = name
        self.by_system[name] = conn
        self.on_view(view, conn.identity())

    def hosts(self) -> list[tuple[HostView, Peer]]:
        """Every connection that is a host (admitted or not), with its view and where it comes from."""
        return [(c.view, c.identity()) for c in self.by_system.values() if c.view is not None]

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
        name, conn.claimed = conn.claimed, None
        if name is not None and self.by_system.get(name) is conn:
            del self.by_system[name]
            self.on_down(name)
