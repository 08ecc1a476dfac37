"""EventGate: os-ken's event-queue bound, FIFO and O(1), never losing a slot."""

import eventlet

from controller.shell.eventgate import EventGate


def test_waiters_get_released_slots_in_order_and_the_count_stays_right():
    gate = EventGate(2)
    assert gate.acquire() and gate.acquire() and not gate.acquire(blocking=False)
    got: list[int] = []
    threads = [eventlet.spawn(lambda i=i: (gate.acquire(), got.append(i))) for i in range(3)]
    eventlet.sleep(0)
    assert got == [] and len(gate.waiting) == 3
    gate.release()
    gate.release()
    eventlet.sleep(0)
    assert got == [0, 1]  # first come, first served; the third still waits
    gate.release()
    eventlet.sleep(0)
    assert got == [0, 1, 2]
    for t in threads:
        t.wait()
    gate.release()  # five acquired, three given back so far: the other two now
    gate.release()
    assert gate.free == 2 and not gate.waiting  # as at the start
    assert gate.acquire() and gate.acquire() and not gate.acquire(blocking=False)


def test_a_waiter_killed_while_waiting_loses_no_slot():
    gate = EventGate(1)
    assert gate.acquire()
    doomed = eventlet.spawn(gate.acquire)
    survivor_got = []
    eventlet.sleep(0)
    survivor = eventlet.spawn(lambda: survivor_got.append(gate.acquire()))
    eventlet.sleep(0)
    doomed.kill()
    assert len(gate.waiting) == 1
    gate.release()  # goes to the survivor, not to the dead waiter
    survivor.wait()
    assert survivor_got == [True]
    gate.release()
    assert gate.free == 1


def test_a_waiter_killed_after_its_slot_was_handed_over_passes_it_on():
    gate = EventGate(1)
    assert gate.acquire()
    first = eventlet.spawn(gate.acquire)
    eventlet.sleep(0)
    gate.release()  # handed to `first`, which has not run yet
    first.kill()  # and dies before it could use it: the slot goes back
    assert gate.free == 1 and not gate.waiting


def test_os_ken_still_bounds_its_event_queue_with_the_attribute_the_app_replaces():
    """apps/overlay.py swaps OSKenApp._events_sem for an EventGate: an os-ken that renamed it
    would keep its own O(n) semaphore, and nothing else would say so."""
    import inspect

    from os_ken.base import app_manager
    source = inspect.getsource(app_manager.OSKenApp)
    assert "self._events_sem.acquire()" in source and "self._events_sem.release()" in source


def test_each_event_the_loop_takes_is_a_turn_point():
    turns: list[int] = []
    gate = EventGate(2, turn=lambda: turns.append(1))
    gate.acquire()
    gate.release()
    assert turns == [1]
