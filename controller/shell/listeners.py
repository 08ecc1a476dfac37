"""Every listener the controller opens, and who may talk to each (docs/operator/security.md).

All of them are bound when the app is made, before anything starts, so that a second controller
with the same configuration stops at once with one line naming the port and its option: no
listener sets SO_REUSEPORT (eventlet's listen() and os-ken's OpenFlow server set it by default,
which let two controllers share every port and split the switches between them). SO_REUSEADDR
stays: it only lets a restart bind over connections in TIME_WAIT, never over a live listener.

A Channel accepts on its socket and admits each connection in its own green thread
(controller/southbound/tlsconf.py: TLS with a verified certificate, or plain TCP where allowed);
a refused one is closed, counted in `overlay_tls_handshakes_refused_total{channel,reason}` and
logged at most once per peer address and channel a minute, without a traceback.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import eventlet
from prometheus_client.core import CounterMetricFamily, Metric

from controller.southbound import tlsconf

LOG = logging.getLogger("overlay")
LOG_EVERY_S = 60.0  # one log line per (channel, peer address) and minute; every refusal is counted
MAX_HANDSHAKES = 256  # per listener: connections being admitted at once (more wait in the backlog)
# Connections the kernel completes while the loop is busy elsewhere. A thousand hosts dial in at
# once after a restart; with eventlet's default of 50 the queue overflowed (the kernel's
# ListenOverflows: 650 in one 1,000-host run of bench/scale.py, whose hosts all connected after
# 12.3 s instead of 2.2 s), and each dropped handshake waited for a retransmission (1 s, 2 s, ...).
BACKLOG = 1024
REFUSED_METRIC = "overlay_tls_handshakes_refused"


def fail(message: str) -> NoReturn:
    """Stop the start with one line (no traceback)."""
    raise SystemExit(f"overlay-controller: {message}")


def bind(host: str, port: int, option: str) -> Any:
    """A listening green socket without SO_REUSEPORT; a port in use stops the start, naming `option`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return eventlet.listen((host, port), family=family, backlog=BACKLOG, reuse_port=False)
    except OSError as e:
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            fail(f"{where} ({option}) is already in use: is another controller running with this configuration?")
        fail(f"cannot listen on {where} ({option}): {e.strerror or e}")


class Refusals:
    """Connections refused at admission, by channel and reason; a prometheus_client collector."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.counts: Counter[tuple[str, str]] = Counter()
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # (channel, ip) -> (logged at, refused since)

    def refused(self, channel: str, ip: str, why: tlsconf.Refused) -> None:
        self.counts[(channel, why.reason)] += 1
        key = (channel, ip)
        now = self.clock()
        at, since = self._logged.get(key, (None, 0))
        if at is not None and now - at < LOG_EVERY_S:
            self._logged[key] = (at, since + 1)
            return
        more = f" ({since} more from there in the last minute)" if since else ""
        LOG.warning("%s connection from %s refused: %s%s", channel, ip, why, more)
        self._logged[key] = (now, 0)
        if len(self._logged) > 4096:  # many peers: forget those whose minute is over
            self._logged = {k: v for k, v in self._logged.items() if now - v[0] < LOG_EVERY_S}

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily(REFUSED_METRIC, "connections refused before they could speak: plain TCP "
                                "where TLS is required, a certificate not signed by [tls] ca_certificate (or "
                                "ours refused by the peer), a failed or unfinished TLS handshake",
                                labels=["channel", "reason"])
        for (channel, reason), n in sorted(self.counts.items()):
            c.add_metric([channel, reason], n)
        yield c


class Channel:
    """One listener: its socket, its TLS policy, and where refusals are counted."""

    def __init__(self, name: str, sock: Any, ctx: Any, plain_ok: bool, refusals: Refusals) -> None:
        self.name, self.sock, self.ctx, self.plain_ok, self.refusals = name, sock, ctx, plain_ok, refusals
        self.pool = eventlet.GreenPool(MAX_HANDSHAKES)

    @property
    def tls(self) -> bool:
        return self.ctx is not None

    def serve(self, handle: Callable[[Any, Any], None], quick: bool = False) -> None:
        """Accept for ever; handle(connection, address) each admitted one in its green thread
        (quick: handle only hands it on, and runs in the green thread that admitted it)."""
        while True:
            raw, addr = self.sock.accept()
            self.pool.spawn_n(self._admit, raw, addr, handle, quick)

    def _admit(self, raw: Any, addr: Any, handle: Callable[[Any, Any], None], quick: bool = False) -> None:
        try:
            conn = tlsconf.admit(raw, self.ctx, self.plain_ok)
        except tlsconf.Refused as why:
            self.refusals.refused(self.name, str(addr[0]), why)
            raw.close()
            return
        except Exception as e:  # anything else a peer provokes: this connection only, in one line
            self.refusals.refused(self.name, str(addr[0]), tlsconf.Refused("handshake", f"{type(e).__name__}: {e}"))
            raw.close()
            return
        if quick:
            handle(conn, addr)
        else:
            eventlet.spawn_n(handle, conn, addr)  # the connection's life is not the pool's: it bounds admissions

    def accepting(self) -> _Accepting:
        """A listening-socket stand-in whose accept() returns admitted connections only (eventlet.wsgi)."""
        return _Accepting(self)


class _Accepting:
    """On plain TCP, the listening socket itself: every green thread on the way from the listener
    to the request waits a round of the event loop, and while 1,000 hosts converge a round is
    long (a /v1/health went through five: 30 ms at the median, 144 at the 99th percentile)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.queue: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self.family = channel.sock.family
        self.thread = None
        if channel.tls:  # handshakes in green threads of their own, the admitted queued for eventlet.wsgi
            self.thread = eventlet.spawn(channel.serve, lambda conn, addr: self.queue.put((conn, addr)), True)
            self.do_handshake = None  # eventlet.wsgi tells HTTPS by this attribute

    def accept(self) -> tuple[Any, Any]:
        return self.queue.get() if self.thread is not None else self.channel.sock.accept()

    def getsockname(self) -> Any:
        return self.channel.sock.getsockname()

    def close(self) -> None:  # eventlet.wsgi's, when its server ends: the accept loop with it
        if self.thread is not None:
            self.thread.kill()
        self.channel.sock.close()
