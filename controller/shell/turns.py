"""Turns on the event loop: whoever works long lets the others in after TURN_S.

Greenthreads never preempt one another: a REST request, a probe's /v1/health, a switch's barrier
reply wait until whatever runs lets go. While 1,000 hosts converge, three kinds of work run long:
the pump (recomputing, encoding, sending), the app's event loop (os-ken runs queued events back
to back, up to its queue's 128) and each switch's receive loop (every message a read brought in,
parsed and queued). Each asks for a turn between two pieces of work (`take`): the pump between
slices and switches, the event loop between events (EventGate.release, oskenpatch.py), a
receive loop between messages. The clock is the process's: any turn let go restarts it (a
greenthread that blocks on I/O lets go too, unseen: the next one then yields a little early).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from os_ken.lib import hub

TURN_S = 0.005  # the longest a piece of work keeps the loop before the others get a turn
ROUND_S = 0.010  # the most work that can wait one round of the loop runs in it (time_rounds)


class Turns:
    def __init__(self, sleep: Callable[[float], None] = hub.sleep,
                 clock: Callable[[], float] = time.perf_counter, turn_s: float = TURN_S) -> None:
        self.sleep = sleep
        self.clock = clock
        self.turn_s = turn_s
        self.last = clock()  # when the loop was last let go
        self.round_s: float | None = None  # none: rounds are not timed
        self.round = self.last  # when the hub began its current round

    def take(self) -> None:
        """Let the others in if the loop has been held for TURN_S, or its round for ROUND_S."""
        now = self.clock()
        if now - self.last > self.turn_s or (self.round_s is not None and now - self.round > self.round_s):
            self.let_go()

    def let_go(self) -> None:
        self.sleep(0)
        while self.round_s is not None and self.clock() - self.round > self.round_s:
            self.sleep(0)  # this round is full already: the next one, whose timers come first
        self.last = self.clock()

    def time_rounds(self, event_hub: Any, round_s: float = ROUND_S) -> None:
        """Time the hub's rounds: one begins when it fires its timers (those who let go, and new
        green threads), then come the sockets that are ready. A round is not over when each who
        works has had a turn: with a thousand hosts connecting, hundreds of OVSDB and OpenFlow
        connections each ran once in it, 100-220 ms, and a /v1/health waited two such rounds.
        Those who take turns wait for a round with room once this one ran round_s."""
        fire = event_hub.fire_timers

        def fire_timers(when: float) -> None:
            self.round = self.clock()
            fire(when)
        event_hub.fire_timers = fire_timers
        self.round_s = round_s


TURNS = Turns()  # the process's one event loop
