"""Sending the core's OpenFlow operations: encoded per switch, whole batches in order, at most one
barrier outstanding per switch (controller/southbound/barriers.py), and the event loop let go
between switches when the turn is over (controller/shell/turns.py): encoding and sending
thousands of flow-mods takes longer than computing them, and REST and I/O must have their turn.

What the pump drains in slices is held for up to HOLD_S and sent as one write per switch: while
learning at 1,000 hosts a slice touches dozens of switches with a few flows each, and every write
is a wake-up of the switch's send loop, a system call, and (loopback or not) a segment the switch
must take in. Anything else is sent at once, after what is held (a switch sees the order made).

Which revision of the tenants each batch carries, and so which one each switch holds once its
barrier is answered, is kept alongside (controller/southbound/revisions.py): a held batch counts
as written when it goes out, so that no barrier sent before it can confirm it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eventlet.semaphore import Semaphore

from controller.model.ops import FlowDelete, FlowMod, Op, OvsdbOp
from controller.northbound.metrics import Metrics
from controller.shell.turns import TURNS, Turns
from controller.southbound import ofmsg
from controller.southbound.barriers import BarrierPacer
from controller.southbound.revisions import RevisionLedger

HOLD_S = 0.05  # the pump's writes are held at most this long, to go out as one per switch


class Sender:
    def __init__(self, metrics: Metrics, sleep: Callable[[float], None] | None = None) -> None:
        self.metrics = metrics
        self.turns = TURNS if sleep is None else Turns(sleep)  # the process's, unless told otherwise (tests)
        self.datapaths: dict[int, Any] = {}  # connected switches (os-ken Datapaths) by dpid
        self.barriers = BarrierPacer()
        self.revisions = RevisionLedger()
        # A switch's send queue may block, and a long batch yields between switches, letting another
        # send() run: the lock keeps batches whole and in order.
        self.lock = Semaphore(1)
        self.held: dict[int, list[tuple[bytes, int | None]]] = {}  # dpid -> writes held (the pump's), in
        # order, each with its revision
        self.held_since = 0.0

    def connected(self, dp: Any) -> None:
        self.datapaths[dp.id] = dp

    def gone(self, dpid: int) -> None:
        self.barriers.gone(dpid)
        self.revisions.gone(dpid)
        self.held.pop(dpid, None)
        del self.datapaths[dpid]

    def send(self, of_ops: list[Op], revisions: dict[int, int | None] | None = None, hold: bool = False) -> int:
        """Encode and send; with hold (the pump's slices), keep the writes for up to HOLD_S. How many
        flow-mods went out or are held to (to connected switches). `revisions`: per switch, the
        revision of the tenants the core had computed for it when the batch was made
        (controller/core/marks.py)."""
        if not of_ops:
            return 0  # a handler with nothing to send (most packet-ins: the pump does the work) sends nothing held
        flow_mods = 0
        per_dp = ofmsg.per_datapath(of_ops)
        for dpid in per_dp:
            self.revisions.queued(dpid)  # before waiting for the lock: the switch is not settled
        with self.lock:
            if not self.held:
                self.held_since = time.perf_counter()
            for dpid, dp_ops in per_dp.items():
                buf = ofmsg.write(dp_ops) if dpid in self.datapaths else b""
                if buf:
                    flow_mods += sum(isinstance(op, (FlowMod, FlowDelete)) for op in dp_ops)
                    self.held.setdefault(dpid, []).append((buf, (revisions or {}).get(dpid)))
                else:
                    self.revisions.skipped(dpid)
                self.maybe_yield()
            if not hold or time.perf_counter() - self.held_since > HOLD_S:
                self._flush()
        self.maybe_yield()
        return flow_mods

    def send_in_order(self, ops: list[Op], carry_out: Callable[[OvsdbOp], object],
                      revisions: dict[int, int | None] | None = None, hold: bool = False) -> int:
        """OpenFlow operations as send() does, each OVSDB operation (carry_out) in its place: after
        the OpenFlow ones before it went out, held ones included. A tunnel port is removed after
        the flows that stopped using it (controller/core/core.py, Core._ports_removed). How many
        flow-mods went out."""
        flow_mods = 0
        batch: list[Op] = []
        for op in ops:
            if isinstance(op, OvsdbOp):
                flow_mods += self.send(batch, revisions)
                self.flush()
                batch = []
                carry_out(op)
            else:
                batch.append(op)
        return flow_mods + self.send(batch, revisions, hold)

    def flush(self) -> None:
        """Send what is held now (the pump is done)."""
        if self.held:
            with self.lock:
                self._flush()

    def _flush(self) -> None:
        held, self.held = self.held, {}
        for dpid, writes in held.items():
            dp = self.datapaths.get(dpid)
            if dp is None:
                for _ in writes:
                    self.revisions.skipped(dpid)
                continue
            for _, revision in writes:
                self.revisions.wrote(dpid, revision)
            buf = b"".join(buf for buf, _ in writes)
            if self.barriers.wrote(dpid, self.metrics.clock()):
                buf += self._barrier_bytes(dp)  # one send, not two: a send wakes a greenthread
            dp.send(buf)

    def barrier_replied(self, dp: Any, xid: int) -> int | None:
        """The switch answered a barrier: the revision this confirmed there, if a newer one."""
        self.metrics.barrier_replied(dp.id, xid)
        confirmed = self.revisions.replied(dp.id, xid)
        first = self.barriers.replied(dp.id, xid)
        if first is not None and self.datapaths.get(dp.id) is dp:  # writes since: confirm them too
            self._send_barrier(dp, first)
        return confirmed

    def resend_overdue(self) -> None:
        """A barrier unanswered too long with writes waiting: one more for them."""
        for dpid, first in self.barriers.overdue(self.metrics.clock()):
            dp = self.datapaths.get(dpid)
            if dp is not None:
                self._send_barrier(dp, first)

    def maybe_yield(self) -> None:
        """When the turn is over, let REST and I/O in."""
        self.turns.take()

    def let_go(self) -> None:
        self.turns.let_go()

    def _barrier_bytes(self, dp: Any, since: float | None = None) -> bytes:
        """A barrier for the switch, as the one outstanding from now (the caller sends it)."""
        xid, buf = ofmsg.barrier(dp)
        self.barriers.sent(dp.id, xid, self.metrics.clock())
        self.metrics.barrier_sent(dp.id, xid, since)
        self.revisions.barrier(dp.id, xid)
        return buf

    def _send_barrier(self, dp: Any, since: float | None = None) -> None:
        dp.send(self._barrier_bytes(dp, since))
