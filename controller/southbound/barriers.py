"""When to ask a switch for a barrier: at most one outstanding per switch.

A barrier after every batch cost as much as the batch when batches were small: at 1,000 hosts
learning, a 10 ms slice of recomputation touched dozens of switches with a few flows each, and
each barrier was a message out, a reply parsed by os-ken and an event dispatched. Writes made
while a barrier is out are confirmed by the next one, sent when the reply comes: under load the
barriers follow the switch's own pace, and when idle every batch still gets its own.
"""

from __future__ import annotations

OVERDUE_S = 5.0  # a barrier unanswered this long is taken as lost: the next write sends another


class BarrierPacer:
    def __init__(self, overdue_s: float = OVERDUE_S) -> None:
        self.overdue_s = overdue_s
        self.out: dict[int, float] = {}  # dpid -> when its outstanding barrier was sent
        self.unconfirmed: dict[int, float] = {}  # dpid -> first write since that barrier was sent

    def wrote(self, dpid: int, now: float) -> bool:
        """Writes went to the switch: True when a barrier should follow them now."""
        sent = self.out.get(dpid)
        if sent is None or now - sent > self.overdue_s:
            self.out[dpid] = now
            self.unconfirmed.pop(dpid, None)
            return True
        self.unconfirmed.setdefault(dpid, now)
        return False

    def replied(self, dpid: int, now: float) -> float | None:
        """The switch answered its barrier: the first write still unconfirmed (then send one more
        barrier now, for the writes since), or None."""
        self.out.pop(dpid, None)
        first = self.unconfirmed.pop(dpid, None)
        if first is not None:
            self.out[dpid] = now
        return first

    def overdue(self, now: float) -> list[tuple[int, float]]:
        """(switch, first unconfirmed write) where a barrier went unanswered with writes waiting:
        send each one more now."""
        late = [(dpid, first) for dpid, first in self.unconfirmed.items()
                if now - self.out.get(dpid, now) > self.overdue_s]
        for dpid, _ in late:
            self.out[dpid] = now
            del self.unconfirmed[dpid]
        return late

    def gone(self, dpid: int) -> None:
        self.out.pop(dpid, None)
        self.unconfirmed.pop(dpid, None)
