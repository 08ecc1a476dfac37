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

from os_ken.lib import hub

TURN_S = 0.005  # the longest a piece of work keeps the loop before the others get a turn


class Turns:
    def __init__(self, sleep: Callable[[float], None] = hub.sleep,
                 clock: Callable[[], float] = time.perf_counter, turn_s: float = TURN_S) -> None:
        self.sleep = sleep
        self.clock = clock
        self.turn_s = turn_s
        self.last = clock()  # when the loop was last let go

    def take(self) -> None:
        """Let the others in if the loop has been held for TURN_S."""
        if self.clock() - self.last > self.turn_s:
            self.let_go()

    def let_go(self) -> None:
        self.sleep(0)
        self.last = self.clock()


TURNS = Turns()  # the process's one event loop
