"""Sending the core's OpenFlow operations: encoded per switch, whole batches in order, at most one
barrier outstanding per switch (controller/southbound/barriers.py), and the event loop let go
after YIELD_AFTER_S of work: encoding and sending thousands of flow-mods takes longer than
computing them, and REST and I/O must have their turn.

What the pump drains in slices is held for up to HOLD_S and sent as one write per switch: while
learning at 1,000 hosts a slice touches dozens of switches with a few flows each, and every write
is a wake-up of the switch's send loop, a system call, and (loopback or not) a segment the switch
must take in. Anything else is sent at once, after what is held (a switch sees the order made)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eventlet.semaphore import Semaphore
from os_ken.lib import hub

from controller.model.ops import Op
from controller.northbound.metrics import Metrics
from controller.southbound import ofmsg
from controller.southbound.barriers import BarrierPacer

YIELD_AFTER_S = 0.02  # os-ken's event loop runs queued events back to back: let others in after this
HOLD_S = 0.05  # the pump's writes are held at most this long, to go out as one per switch


class Sender:
    def __init__(self, metrics: Metrics, sleep: Callable[[float], None] = hub.sleep) -> None:
        self.metrics = metrics
        self.sleep = sleep
        self.datapaths: dict[int, Any] = {}  # connected switches (os-ken Datapaths) by dpid
        self.barriers = BarrierPacer()
        # A switch's send queue may block, and a long batch yields between switches, letting another
        # send() run: the lock keeps batches whole and in order.
        self.lock = Semaphore(1)
        self.yielded = time.perf_counter()  # when the event loop was last let go
        self.held: dict[int, list[bytes]] = {}  # dpid -> writes held (the pump's), in order
        self.held_since = 0.0

    def connected(self, dp: Any) -> None:
        self.datapaths[dp.id] = dp

    def gone(self, dpid: int) -> None:
        self.barriers.gone(dpid)
        self.held.pop(dpid, None)
        del self.datapaths[dpid]

    def send(self, of_ops: list[Op], hold: bool = False) -> None:
        """Encode and send; with hold (the pump's slices), keep the writes for up to HOLD_S."""
        if not of_ops:
            return  # a handler with nothing to send (most packet-ins: the pump does the work) sends nothing held
        with self.lock:
            if not self.held:
                self.held_since = time.perf_counter()
            for dpid, dp_ops in ofmsg.per_datapath(of_ops).items():
                if dpid in self.datapaths:
                    buf = ofmsg.write(dp_ops)
                    if buf:
                        self.held.setdefault(dpid, []).append(buf)
                self.maybe_yield()
            if not hold or time.perf_counter() - self.held_since > HOLD_S:
                self._flush()
        self.maybe_yield()

    def flush(self) -> None:
        """Send what is held now (the pump is done)."""
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        held, self.held = self.held, {}
        for dpid, bufs in held.items():
            dp = self.datapaths.get(dpid)
            if dp is None:
                continue
            buf = b"".join(bufs)
            if self.barriers.wrote(dpid, self.metrics.clock()):
                buf += self._barrier_bytes(dp)  # one send, not two: a send wakes a greenthread
            dp.send(buf)

    def barrier_replied(self, dp: Any, xid: int) -> None:
        self.metrics.barrier_replied(dp.id, xid)
        first = self.barriers.replied(dp.id, self.metrics.clock())
        if first is not None and self.datapaths.get(dp.id) is dp:  # writes since: confirm them too
            self._send_barrier(dp, first)

    def resend_overdue(self) -> None:
        """A barrier unanswered too long with writes waiting: one more for them."""
        for dpid, first in self.barriers.overdue(self.metrics.clock()):
            dp = self.datapaths.get(dpid)
            if dp is not None:
                self._send_barrier(dp, first)

    def maybe_yield(self) -> None:
        """After YIELD_AFTER_S of work, let REST and I/O have a turn."""
        if time.perf_counter() - self.yielded > YIELD_AFTER_S:
            self.let_go()

    def let_go(self) -> None:
        self.sleep(0)
        self.yielded = time.perf_counter()

    def _barrier_bytes(self, dp: Any, since: float | None = None) -> bytes:
        barrier = ofmsg.barrier()
        dp.set_xid(barrier)
        barrier.serialize()
        self.metrics.barrier_sent(dp.id, barrier.xid, since)
        return bytes(barrier.buf)

    def _send_barrier(self, dp: Any, since: float | None = None) -> None:
        dp.send(self._barrier_bytes(dp, since))
