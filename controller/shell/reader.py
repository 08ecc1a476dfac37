"""One green thread reads every established plain-TCP OpenFlow connection.

os-ken gives each switch a green thread that blocks in recv(). Under eventlet every such wait
registers the socket with epoll, switches to the hub, and unregisters it once woken: at 1,000
hosts learning that was 7 % of the controller's CPU (bench/scale.py sparse 1,000, py-spy), on
top of the read itself, for about 70,000 packet-ins and barrier replies.

Here a connection, once its handshake is done (MAIN_DISPATCHER), stays registered with the hub
for good, and the hub only notes that it is readable. The reader wakes once per round of the hub,
reads each ready socket once (up to RECV_BYTES: what a socket holds beyond that is reported ready
again by the next poll) and hands the bytes to the connection, which parses and dispatches them
in order as before. A connection's own green thread waits until the reader is done with it, then
ends it as os-ken does.

Every connection shares the reader, so nothing it runs may wait on one switch: an echo request
is answered from a green thread of its own (the reply waits on that switch's send queue); the rest
only queue events for the app (os-ken's bound on that queue holds back every switch alike, as it
did before). TLS connections keep their own green thread: the TLS layer holds bytes the socket
no longer reports as readable.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any, Protocol

import eventlet
from eventlet import patcher
from eventlet.event import Event
from eventlet.greenio import GreenSocket
from eventlet.hubs import get_hub
from eventlet.hubs.hub import READ

from controller.shell.turns import TURNS, Turns

RECV_BYTES = 1 << 16
_epoll = getattr(patcher.original("select"), "epoll", None)
ONESHOT = getattr(patcher.original("select"), "EPOLLONESHOT", 0)


class Connection(Protocol):
    socket: Any

    def take(self, data: bytes) -> bool:
        """Parse and dispatch what was read; False once the connection is over (closed by the app)."""


class _Reading:
    """A connection the reader serves: its socket's number, the hub's listener, and who waits."""

    def __init__(self, fileno: int) -> None:
        self.fileno = fileno
        self.done = Event()
        self.listener: Any = None


class Reader:
    def __init__(self, turns: Turns = TURNS) -> None:
        self.turns = turns
        self.conns: dict[int, Connection] = {}  # by socket number
        self.reading: dict[Connection, _Reading] = {}
        self.ready: dict[int, None] = {}  # socket numbers the hub found readable, in order
        self.thread: Any = None
        self.parked = False  # the reader waits for the hub to find a socket readable
        self.resuming = False  # a timer will resume it

    @staticmethod
    def takes(sock: Any) -> bool:
        """Plain TCP under eventlet (TLS buffers inside the TLS layer, where epoll cannot see)."""
        return isinstance(sock, GreenSocket) and not isinstance(sock, ssl.SSLSocket) and sock.fileno() >= 0

    def serve(self, conn: Connection) -> None:
        """Read `conn` until its switch or the app ends it; what ended it (a malformed message) is
        raised here, in the connection's own green thread."""
        hub = get_hub()
        reading = _Reading(conn.socket.fileno())
        reading.listener = hub.add(READ, reading.fileno, self._readable, lambda exc: self._end(conn, exc),
                                   conn.socket._mark_as_closed)
        self.conns[reading.fileno] = conn
        self.reading[conn] = reading
        _arm(hub, reading.fileno)
        if self.thread is None:
            self.thread = eventlet.spawn(self._run)
        try:
            reading.done.wait()
        finally:
            self._forget(conn)

    def end(self, conn: Connection) -> None:
        """The connection is over (its socket closed by its send loop): let its green thread go."""
        self._end(conn, None)

    def _readable(self, fileno: int) -> None:
        """In the hub, for each readable socket of a poll: noted; the reader runs after the poll."""
        self.ready[fileno] = None
        if self.parked and not self.resuming:
            self.resuming = True
            get_hub().schedule_call_global(0, self._resume)

    def _resume(self) -> None:
        self.resuming = False
        if self.parked:
            self.parked = False
            self.thread.switch()

    def _run(self) -> None:
        hub = get_hub()
        while True:
            if not self.ready:
                self.parked = True
                hub.switch()  # _resume switches back here
                continue
            ready, self.ready = self.ready, {}
            for fileno in ready:
                conn = self.conns.get(fileno)
                if conn is not None:
                    self._read(conn)
                self.turns.take()

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.socket.fd.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset: over, as os-ken's loop ends on it
            data = b""
        try:
            more = bool(data) and conn.take(data)
        except Exception as e:  # a malformed message, or a handler's error: this connection only
            self._end(conn, e)
            return
        if not more:
            self._end(conn, None)
        elif conn in self.reading:
            _arm(get_hub(), self.reading[conn].fileno)

    def _end(self, conn: Connection, error: BaseException | None) -> None:
        reading = self._forget(conn)
        if reading is not None and not reading.done.ready():
            if error is None:
                reading.done.send()
            else:
                reading.done.send_exception(error)

    def _forget(self, conn: Connection) -> _Reading | None:
        """No longer read conn: its listener off the hub (unless its socket is closed already)."""
        reading = self.reading.pop(conn, None)
        if reading is not None:
            del self.conns[reading.fileno]
            self.ready.pop(reading.fileno, None)
            with contextlib.suppress(Exception):  # already removed by the hub (a closed socket's number reused)
                get_hub().remove(reading.listener)
        return reading


def _arm(hub: Any, fileno: int) -> None:
    """Have epoll report the socket readable once, until it is read: a socket the reader has not
    come to yet (its turn is over) is not reported by every poll meanwhile. Without epoll, or
    when eventlet registers the socket anew (its send loop waits to write), it is reported as
    long as it is readable, which costs more and is as correct."""
    if _epoll is None or not isinstance(getattr(hub, "poll", None), _epoll):
        return
    mask = hub.READ_MASK | hub.EXC_MASK | ONESHOT
    if hub.listeners[hub.WRITE].get(fileno):
        mask |= hub.WRITE_MASK
    with contextlib.suppress(OSError):
        hub.poll.modify(fileno, mask)


READER = Reader()  # the process's one reader
