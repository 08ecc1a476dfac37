"""Sending the core's OpenFlow operations: encoded per switch, whole batches in order, at most one
barrier outstanding per switch (controller/southbound/barriers.py), and the event loop let go
after YIELD_AFTER_S of work: encoding and sending thousands of flow-mods takes longer than
computing them, and REST and I/O must have their turn."""

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

    def connected(self, dp: Any) -> None:
        self.datapaths[dp.id] = dp

    def gone(self, dpid: int) -> None:
        self.barriers.gone(dpid)
        del self.datapaths[dpid]

    def send(self, of_ops: list[Op]) -> None:
        with self.lock:
            for dpid, dp_ops in ofmsg.per_datapath(of_ops).items():
                dp = self.datapaths.get(dpid)
                if dp is not None:
                    buf = ofmsg.write(dp_ops)
                    if buf and self.barriers.wrote(dpid, self.metrics.clock()):
                        buf += self._barrier_bytes(dp)  # one send, not two: a send wakes a greenthread
                    if buf:
                        dp.send(buf)
                self.maybe_yield()
        self.maybe_yield()

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
