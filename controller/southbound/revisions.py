"""Which revision of the tenants each switch holds, as its barrier replies confirm it.

The core says, per host, the revision whose every change it has handed out as operations
(controller/core/marks.py). Those operations reach the switch in order, and a barrier reply
confirms every write sent before its barrier (controller/southbound/barriers.py): the barrier
that confirms a batch confirms every revision up to the one the batch came from. So a switch
holds:

- the core's revision for it, when none of its writes is still unconfirmed (a revision that
  changed nothing there counts at once);
- else the highest revision whose writes a barrier reply has confirmed.

The revision of a batch is taken when the batch is handed to the sender, before it may wait its
turn (`queued`): a batch computed earlier and still waiting must not pass as the later state.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Switch:
    queued: int = 0  # batches handed over, not yet written
    unbarriered: int | None = None  # the highest revision written since the last barrier went out
    awaiting: dict[int, int] = field(default_factory=dict)  # barrier xid -> revision it confirms, in order
    confirmed: int | None = None  # the highest revision a barrier reply confirmed


class RevisionLedger:
    def __init__(self) -> None:
        self.switches: dict[int, _Switch] = {}

    def _of(self, dpid: int) -> _Switch:
        return self.switches.setdefault(dpid, _Switch())

    def queued(self, dpid: int) -> None:
        """A batch for the switch was handed to the sender (it may wait its turn)."""
        self._of(dpid).queued += 1

    def wrote(self, dpid: int, revision: int | None) -> None:
        """The batch was written (revision: what the core had computed for the switch when it was
        handed over; None: nothing known); the next barrier confirms it."""
        sw = self._of(dpid)
        sw.queued = max(0, sw.queued - 1)
        if revision is None:
            return
        sw.unbarriered = revision if sw.unbarriered is None else max(sw.unbarriered, revision)

    def skipped(self, dpid: int) -> None:
        """A batch handed over was not written (nothing to send, or the switch is gone)."""
        sw = self.switches.get(dpid)
        if sw is not None:
            sw.queued = max(0, sw.queued - 1)

    def barrier(self, dpid: int, xid: int) -> None:
        """A barrier went out: it confirms what was written before it."""
        sw = self._of(dpid)
        floor = max(sw.awaiting.values(), default=sw.confirmed)
        revision = sw.unbarriered if sw.unbarriered is not None else floor
        if revision is not None:
            sw.awaiting[xid] = revision if floor is None else max(floor, revision)
        sw.unbarriered = None

    def replied(self, dpid: int, xid: int) -> int | None:
        """A barrier reply: what it confirms (every barrier sent before it too, replies come in
        order); the newly confirmed revision, or None when it confirms nothing new."""
        sw = self.switches.get(dpid)
        if sw is None or xid not in sw.awaiting:
            return None
        revision = None
        for x in list(sw.awaiting):
            revision = sw.awaiting.pop(x)
            if x == xid:
                break
        if revision is None or (sw.confirmed is not None and revision <= sw.confirmed):
            return None
        sw.confirmed = revision
        return revision

    def settled(self, dpid: int) -> bool:
        """Nothing written to the switch is waiting for a barrier reply, and nothing is queued."""
        sw = self.switches.get(dpid)
        return sw is None or (not sw.queued and sw.unbarriered is None and not sw.awaiting)

    def holds(self, dpid: int, computed: int | None) -> int | None:
        """The revision the switch holds, given the one the core computed for it."""
        if computed is None:
            return None
        if self.settled(dpid):
            return computed
        confirmed = self.switches[dpid].confirmed
        return None if confirmed is None else min(confirmed, computed)

    def gone(self, dpid: int) -> None:
        self.switches.pop(dpid, None)
