"""The bound on the app's event queue, without eventlet's Semaphore.

os-ken bounds an app's event queue (128 events) with an eventlet BoundedSemaphore that every
switch's receive loop acquires before queueing an event. eventlet's Semaphore.acquire scans its
list of waiters (`current not in waiters`) and removes itself from it linearly: with 1,000
switches' receive loops waiting on a full queue, that was 9 % of the controller's CPU while
1,000 emulated hosts learned (bench/scale.py, py-spy). EventGate does the same job in O(1): a
released slot is handed to the longest waiter directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from os_ken.lib import hub


class EventGate:
    """acquire()/release() as os-ken's OSKenApp uses its _events_sem (FIFO, never over-released).

    os-ken's event loop releases a slot for each event it takes from the queue, before handling it:
    `turn` is called there (controller/shell/turns.py), so that a full queue of packet-ins is not
    handled back to back while everyone else waits."""

    def __init__(self, slots: int, turn: Callable[[], None] = lambda: None) -> None:
        self.free = slots
        self.waiting: deque[hub.Event] = deque()
        self.turn = turn

    def acquire(self, blocking: bool = True) -> bool:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        if not blocking:
            return False
        handed = hub.Event()
        self.waiting.append(handed)
        try:
            handed.wait()
        except BaseException:  # killed while waiting (its switch went away): the slot is not lost
            if handed.is_set():
                self._free()  # no turn here: a dying greenthread lets nobody in
            else:
                self.waiting.remove(handed)
            raise
        return True

    def release(self) -> None:
        self._free()
        self.turn()

    def _free(self) -> None:
        if self.waiting:
            self.waiting.popleft().set()  # the slot goes to the longest waiter, not back to the pool
        else:
            self.free += 1
