"""When to ask a switch for a barrier: at most one outstanding per switch.

A barrier after every batch cost as much as the batch when batches were small: at 1,000 hosts
learning, a 10 ms slice of recomputation touched dozens of switches with a few flows each, and
each barrier was a message out, a reply parsed by os-ken and an event dispatched. Writes made
while a barrier is out are confirmed by the next one, sent when the reply comes: under load the
barriers follow the switch's own pace, and when idle every batch still gets its own.

Replies are matched by xid: a barrier given up as overdue may still be answered, after the one
sent in its place; that late reply confirms only the writes before it, not the newer barrier's.
"""

from __future__ import annotations

OVERDUE_S = 5.0  # a barrier unanswered this long is taken as lost: the next write sends another


class BarrierPacer:
    def __init__(self, overdue_s: float = OVERDUE_S) -> None:
        self.overdue_s = overdue_s
        self.out: dict[int, tuple[int, float]] = {}  # dpid -> (xid, when sent) of its outstanding barrier
        self.unconfirmed: dict[int, float] = {}  # dpid -> first write since that barrier was sent

    def wrote(self, dpid: int, now: float) -> bool:
        """Writes went to the switch: True when a barrier should follow them now (the caller
        sends one and says so with sent())."""
        out = self.out.get(dpid)
        if out is None or now - out[1] > self.overdue_s:
            return True
        self.unconfirmed.setdefault(dpid, now)
        return False

    def sent(self, dpid: int, xid: int, now: float) -> None:
        """A barrier went to the switch: it confirms every write before it, and is the one out."""
        self.out[dpid] = (xid, now)
        self.unconfirmed.pop(dpid, None)

    def replied(self, dpid: int, xid: int) -> float | None:
        """The switch answered a barrier: when it is the one out, the first write still
        unconfirmed (then send one more barrier now, for the writes since), or None. A reply to
        another (one given up as overdue) changes nothing: the barrier out is still out."""
        out = self.out.get(dpid)
        if out is None or out[0] != xid:
            return None
        del self.out[dpid]
        return self.unconfirmed.pop(dpid, None)

    def overdue(self, now: float) -> list[tuple[int, float]]:
        """(switch, first unconfirmed write) where a barrier went unanswered with writes waiting:
        send each one more now (and say so with sent())."""
        return [(dpid, first) for dpid, first in self.unconfirmed.items()
                if now - self.out.get(dpid, (0, now))[1] > self.overdue_s]

    def gone(self, dpid: int) -> None:
        self.out.pop(dpid, None)
        self.unconfirmed.pop(dpid, None)
