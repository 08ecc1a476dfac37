"""Turns on the event loop: whoever works long lets the others in after TURN_S.

Greenthreads never preempt one another: a REST request, a probe's /v1/health, a switch's barrier
reply wait until whatever runs lets go. While 1,000 hosts converge, three kinds of work run long:
the pump (recomputing, encoding, sending), the app's event loop (os-ken runs queued events back
to back, up to its queue's 128) and each switch's receive loop (every message a read brought in,
parsed and queued). Each asks for a turn between two pieces of work (`take`): the pump between
slices and switches, the event loop between events (EventGate.release, oskenpatch.py), a
receive loop between messages. The clock is the process's: any turn let go restarts it (a
greenthread that blocks on I/O lets go too, unseen: the next one then yields a little early).

Turns alone do not bound a round of the hub: each who works gets one in it. The app's rounds are
timed too (time_rounds): once one has run ROUND_S, whoever takes a turn waits in line for a round
with room, so that a request's green thread (a timer of the next round) waits about ROUND_S, not
for every busy connection. At 1,000 hosts converging, /v1/health p99 went from 140-190 ms to
27-28 ms, with the same cold start.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import greenlet
from os_ken.lib import hub

TURN_S = 0.005  # the longest a piece of work keeps the loop before the others get a turn
ROUND_S = 0.010  # the most work that can wait one round of the loop runs in it (time_rounds)
RESUMED_PER_ROUND = 16  # of those waiting for a round with room, resumed when one begins


class Turns:
    def __init__(self, sleep: Callable[[float], None] = hub.sleep,
                 clock: Callable[[], float] = time.perf_counter, turn_s: float = TURN_S) -> None:
        self.sleep = sleep
        self.clock = clock
        self.turn_s = turn_s
        self.last = clock()  # when the loop was last let go
        self.hub: Any = None  # the hub whose rounds are timed (time_rounds); None: they are not
        self.round_s = ROUND_S
        self.round = self.last  # when the hub began its current round
        self.waiting: deque[Any] = deque()  # green threads waiting for a round with room, first come first

    def take(self) -> None:
        """Let the others in if the loop has been held for TURN_S, or its round for ROUND_S."""
        now = self.clock()
        if now - self.last > self.turn_s or (self.hub is not None and now - self.round > self.round_s):
            self.let_go()

    def let_go(self) -> None:
        if not self._full():
            self.sleep(0)
        while self._full() and greenlet.getcurrent() is not self.hub.greenlet:  # wait in line for a round with room
            if not self.waiting:
                self.hub.schedule_call_global(0, _nothing)  # the hub must not sleep in its poll meanwhile
            self.waiting.append(greenlet.getcurrent())
            self.hub.switch()
        self.last = self.clock()

    def _full(self) -> bool:
        return self.hub is not None and self.clock() - self.round > self.round_s

    def time_rounds(self, event_hub: Any, round_s: float = ROUND_S) -> None:
        """Time the hub's rounds: one begins when it fires its timers (those who let go, and new
        green threads), then come the sockets that are ready. A round is not over when each who
        works has had a turn: with a thousand hosts connecting, hundreds of OVSDB and OpenFlow
        connections each ran once in it (100-220 ms), and a /v1/health waited two such rounds.
        Once a round ran round_s, those who take a turn wait in line; each round begins with the
        first few of them, then runs its timers (a request's green thread among them) and sockets.
        A line rather than sleep(0) again and again: a thousand who waited so woke every round."""
        fire = event_hub.fire_timers

        def fire_timers(when: float) -> None:
            self.round = self.clock()
            for _ in range(min(RESUMED_PER_ROUND, len(self.waiting))):
                waiter = self.waiting.popleft()
                if not waiter.dead:
                    waiter.switch()
            if self.waiting:
                event_hub.schedule_call_global(0, _nothing)  # the next round comes at once, for the rest
            fire(when)
        event_hub.fire_timers = fire_timers
        self.round_s = round_s
        self.hub = event_hub


def _nothing() -> None:
    """A timer that makes the hub begin its next round without waiting for a socket."""


TURNS = Turns()  # the process's one event loop
