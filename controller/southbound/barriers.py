"""When to ask a switch for a barrier: at most one outstanding per switch, and under load at most
one a second for writes that carry no change of the tenants.

A barrier after every batch cost as much as the batch when batches were small: at 1,000 hosts
learning, a 10 ms slice of recomputation touched dozens of switches with a few flows each, and
each barrier was a message out, a reply parsed by os-ken and an event dispatched. Writes made
while a barrier is out are confirmed by the next one, sent when the reply comes.

That alone still sent a barrier per round trip to every busy switch (61,000 while 1,000 hosts
learned 27,597 endpoints, 9 % of the controller's CPU), mostly for learned endpoints' entries.
Nobody waits for those: a barrier reply is what says a switch holds a revision of the tenants
(controller/southbound/revisions.py), and learning does not change the revision. So a write is
*news* when it carries a revision the switch was not yet sent; news gets its barrier as soon as
none is out. Other writes get one at once when the switch had none for QUIET_S, else when QUIET_S
has passed since its last (the sender asks at every flush and every tick: `due`). An idle switch
still has each batch confirmed at once; a busy one, at most once a second, and every write is
confirmed within about QUIET_S (and the tick's second).

Replies are matched by xid: a barrier given up as overdue may still be answered, after the one
sent in its place; that late reply confirms only the writes before it, not the newer barrier's.
"""

from __future__ import annotations

import heapq

OVERDUE_S = 5.0  # a barrier unanswered this long is taken as lost: the next write sends another
QUIET_S = 1.0  # writes with no news wait for a barrier at most this long after the switch's last


class BarrierPacer:
    def __init__(self, overdue_s: float = OVERDUE_S, quiet_s: float = QUIET_S) -> None:
        self.overdue_s = overdue_s
        self.quiet_s = quiet_s
        self.out: dict[int, tuple[int, float]] = {}  # dpid -> (xid, when sent) of its outstanding barrier
        self.last: dict[int, float] = {}  # dpid -> when its last barrier was sent
        self.unconfirmed: dict[int, float] = {}  # dpid -> first write since its last barrier was sent
        self.news: set[int] = set()  # switches whose unconfirmed writes carry news: a barrier as soon as none is out
        self.waiting: list[tuple[float, int]] = []  # (when due, dpid) of writes held back for quiet_s: a heap

    def wrote(self, dpid: int, now: float, news: bool = True) -> bool:
        """Writes went to the switch (news: they carry a revision it was not sent before): True
        when a barrier should follow them now (the caller sends one and says so with sent())."""
        out = self.out.get(dpid)
        if out is None or now - out[1] > self.overdue_s:
            if news or now - self.last.get(dpid, -self.quiet_s) >= self.quiet_s:
                return True
            if dpid not in self.unconfirmed:
                heapq.heappush(self.waiting, (self.last[dpid] + self.quiet_s, dpid))
        elif news:
            self.news.add(dpid)
        self.unconfirmed.setdefault(dpid, now)
        return False

    def sent(self, dpid: int, xid: int, now: float) -> None:
        """A barrier went to the switch: it confirms every write before it, and is the one out."""
        self.out[dpid] = (xid, now)
        self.last[dpid] = now
        self.unconfirmed.pop(dpid, None)
        self.news.discard(dpid)

    def replied(self, dpid: int, xid: int, now: float) -> float | None:
        """The switch answered a barrier: when it is the one out and writes wait for one now, the
        first of them (then send one more barrier now), or None. Writes without news wait until
        quiet_s after the last barrier. A reply to another barrier (one given up as overdue)
        changes nothing: the barrier out is still out."""
        out = self.out.get(dpid)
        if out is None or out[0] != xid:
            return None
        del self.out[dpid]
        first = self.unconfirmed.get(dpid)
        if first is None:
            return None
        if dpid in self.news or now - self.last[dpid] >= self.quiet_s:
            return first
        heapq.heappush(self.waiting, (self.last[dpid] + self.quiet_s, dpid))
        return None

    def due(self, now: float) -> list[tuple[int, float]]:
        """(switch, first unconfirmed write) for each switch whose writes were held back and whose
        quiet_s is over: send each a barrier (and say so with sent()). Cheap: asked at every flush."""
        out = []
        while self.waiting and self.waiting[0][0] <= now:
            _, dpid = heapq.heappop(self.waiting)
            first = self.unconfirmed.get(dpid)
            # else confirmed meanwhile, or a barrier is out (its reply asks again), or an older entry
            if first is not None and dpid not in self.out and now - self.last[dpid] >= self.quiet_s:
                out.append((dpid, first))
        return out

    def overdue(self, now: float) -> list[tuple[int, float]]:
        """(switch, first unconfirmed write) where a barrier went unanswered with writes waiting:
        send each one more now (and say so with sent())."""
        return [(dpid, first) for dpid, first in self.unconfirmed.items()
                if dpid in self.out and now - self.out[dpid][1] > self.overdue_s]

    def gone(self, dpid: int) -> None:
        self.out.pop(dpid, None)
        self.last.pop(dpid, None)
        self.unconfirmed.pop(dpid, None)
        self.news.discard(dpid)
