"""Everything this app changes in os-ken's own behaviour, in one place.

- The event queue's bound: os-ken guards each app's queue with an eventlet BoundedSemaphore whose
  waiters are a list scanned on every acquire; EventGate (controller/shell/eventgate.py) is the
  same bound in O(1). tests/unit fails if os-ken stops using the attribute replaced here.
- OpenFlow connections: every message goes through the guards (controller/southbound/ofguard.py)
  before os-ken parses it, and a connection that sends garbage is closed alone, counted. Each
  Datapath gets `peer_cn` (the host its verified certificate names, None on plain TCP) before
  it reads its first message.
- The OpenFlow listener: os-ken's server (one plain or TLS port with its own context, a second
  plain one on 6633, SO_REUSEPORT, a traceback per refused handshake) is replaced by the app's
  listener (controller/shell/listeners.py), bound at start, TLS as [tls] says.
- The [ovsdb] listener options (address, port): os-ken registers them with its OVSDB manager;
  our own OVSDB server (controller/southbound/ovsdb_server.py) listens there instead.
- Its WSGI server's log: a client that went away while being answered (an event stream closed,
  GET /v1/events) is logged as a traceback by eventlet's server, through os-ken's hub logger;
  it is no error, and one line says it instead.
- An OpenFlow connection's receive loop reads what the socket holds (up to RECV_BYTES) instead of
  each message's 8-byte header and then its body: two system calls and two trips through the hub
  per message, for every packet-in and barrier reply of a thousand switches. The messages are
  parsed and dispatched as os-ken's loop does, one by one, in order.
- A write to a plain-TCP switch goes straight to its socket when the connection's send loop waits
  with nothing queued: a VM at 1,000 hosts is a write to each of its 3-8 member switches, and
  each was a hand-over to that switch's send loop and a wake-up of it.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import os_ken.services.protocols.ovsdb.manager  # noqa: F401  registers [ovsdb] address/port
from eventlet.greenio import GreenSocket
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER
from os_ken.ofproto import ofproto_parser

from controller.shell.eventgate import EventGate
from controller.shell.listeners import Channel
from controller.shell.turns import TURNS
from controller.southbound import ofguard, tlsconf
from controller.southbound.ofmsg import HEADER

LOG = logging.getLogger("overlay")


def gate_events(app: Any) -> None:
    """Replace the app's event-queue semaphore by an EventGate of the same size."""
    if not hasattr(app, "_events_sem"):  # os-ken renamed it: its own (slower) bound stays in force
        LOG.warning("os-ken has no OSKenApp._events_sem: its event-queue bound is not replaced by EventGate")
    app._events_sem = EventGate(app.events.maxsize, TURNS.take)


GONE = ("BrokenPipeError", "ConnectionResetError")


class _ClientGone(logging.Filter):
    """A WSGI answer cut short by its client: one line instead of eventlet's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("Traceback") and text.rstrip().rsplit("\n", 1)[-1].startswith(GONE):
            record.msg, record.args = "REST: a client went away while being answered (%s)", (
                text.rstrip().rsplit("\n", 1)[-1],)
        return True


def quiet_gone_clients() -> None:
    """Install _ClientGone on os-ken's hub logger (eventlet's WSGI server logs through it)."""
    hub_log = logging.getLogger("os_ken.lib.hub")
    if not any(isinstance(f, _ClientGone) for f in hub_log.filters):
        hub_log.addFilter(_ClientGone())


RECV_BYTES = 1 << 16


def bulk_datapath(osken_controller: Any) -> type:
    """os-ken's Datapath with a receive loop that reads in bulk (see the module's docstring)."""

    class BulkDatapath(osken_controller.Datapath):  # type: ignore[name-defined, misc]
        def _recv_loop(self) -> None:
            try:
                self._read_messages()
            finally:
                with contextlib.suppress(OSError):
                    self.socket.close()

        def _read_messages(self) -> None:
            buf = bytearray()
            while self.state != DEAD_DISPATCHER:
                try:
                    data = self.socket.recv(RECV_BYTES)
                except (TimeoutError, ssl.SSLError):
                    continue
                except (EOFError, OSError):
                    break
                if not data:
                    break
                TURNS.take()  # before the work too: a thousand switches' replies come at once
                buf += data
                at = 0
                while len(buf) - at >= HEADER.size:
                    version, msg_type, msg_len, xid = HEADER.unpack_from(buf, at)
                    msg_len = max(msg_len, HEADER.size)  # as os-ken's loop: the guard counts a short one
                    if len(buf) - at < msg_len:
                        break
                    self._dispatch(osken_controller.ofproto_parser.msg(
                        self, version, msg_type, msg_len, xid, buf[at:at + msg_len]))
                    at += msg_len
                    TURNS.take()  # let the other switches, REST and the pump in (turns.py)
                del buf[:at]

        def _dispatch(self, msg: Any) -> None:
            """What os-ken's _recv_loop does with each message it parsed."""
            if not msg or self.ofp_brick is None:
                return
            ev = ofp_event.ofp_msg_to_ev(msg)
            self.ofp_brick.send_event_to_observers(ev, self.state)
            for handler in self.ofp_brick.get_handlers(ev):
                if self.state in handler.callers[ev.__class__].dispatchers:
                    handler(ev)

        def send(self, buf: bytes, close_socket: bool = False) -> bool:
            """Written at once when the send loop waits with nothing queued (no write of its is under
            way); what the socket does not take, and anything else, goes through the loop, in order."""
            queue = self.send_q
            if not close_socket and queue is not None and not queue.qsize() and queue.getting() \
                    and direct_writes(self.socket):
                try:
                    sent = self.socket.fd.send(buf)
                except OSError:  # full (the loop waits for room), or broken (the loop meets it and ends)
                    sent = 0
                if sent == len(buf):
                    return True
                buf = buf[sent:]
            return super().send(buf, close_socket)

    return BulkDatapath


def direct_writes(sock: Any) -> bool:
    """Plain TCP under eventlet: its non-blocking socket can be written past the send loop. (TLS
    records cannot be cut where the socket stops taking bytes.)"""
    return isinstance(sock, GreenSocket) and not isinstance(sock, ssl.SSLSocket)


def guard_openflow(count: Callable[[str], None]) -> None:
    """Route every OpenFlow connection through the guards, and read it in bulk; count(counter name)
    per dropped one."""
    from os_ken.controller import controller as osken_controller  # imported first, it cannot import itself

    ofguard.counting(count)
    datapath = bulk_datapath(osken_controller)

    def serve(sock: Any, address: Any) -> None:
        with contextlib.closing(datapath(sock, address)) as dp:
            dp.peer_cn = tlsconf.peer_cn(sock)
            try:
                dp.serve()
            except ofguard.Malformed as e:
                count(ofguard.COUNTER_PREFIX + e.kind)
                ofguard.LOG.warning("switch %s from %s sent a malformed message (%s: %s); connection closed",
                            ofguard.dpid_text(dp), address, e.kind, e)
            except Exception as e:  # e.g. a reset socket mid-handshake: this connection only
                count(ofguard.COUNTER_PREFIX + "connection_error")
                ofguard.LOG.warning("switch %s from %s: connection closed after %s: %s", ofguard.dpid_text(dp), address,
                            type(e).__name__, e)

    osken_controller.ofproto_parser = SimpleNamespace(header=ofproto_parser.header, msg=ofguard.strict_msg)
    osken_controller.datapath_connection_factory = serve


class _OpenFlowServer:
    """What os-ken's OpenFlow handler runs in place of its OpenFlowController: the app's listener."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def __call__(self) -> None:
        from os_ken.controller import controller as osken_controller

        # Looked up per call: guard_openflow() replaces the factory.
        self.channel.serve(lambda sock, address: osken_controller.datapath_connection_factory(sock, address))


def serve_openflow(channel: Channel) -> None:
    """os-ken's OpenFlow handler serves `channel` (bound by the app) instead of listening itself."""
    from os_ken.controller import ofp_handler

    ofp_handler.OpenFlowController = lambda: _OpenFlowServer(channel)
