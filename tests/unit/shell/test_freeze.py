"""The ticker's collector step (controller/shell/loop.py freeze_survivors): what survived is frozen
out of the collector's sight, but garbage is collected first, never frozen (a frozen object is
never freed: a REST request's cycles leaked, about 80 objects each)."""

import gc
import weakref

from controller.shell import loop


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_cycles_left_behind_are_collected_and_what_is_alive_is_frozen() -> None:
    before = gc.get_freeze_count()
    alive = Node()
    dropped = Node()
    gone = weakref.ref(dropped)
    del dropped
    try:
        assert loop.freeze_survivors() >= 1  # found unreachable: the dropped cycle, at least
        assert gone() is None  # collected, not frozen (frozen, it would stay forever)
        assert gc.get_freeze_count() > before  # the living were frozen
        assert alive.me is alive
    finally:
        gc.unfreeze()


def test_garbage_that_survived_a_young_collection_is_collected_too() -> None:
    dropped = Node()
    gone = weakref.ref(dropped)
    gc.collect(0)  # still alive: promoted to the middle generation
    del dropped
    try:
        loop.freeze_survivors()
        assert gone() is None
    finally:
        gc.unfreeze()
