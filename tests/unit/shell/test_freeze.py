"""The ticker's collector step (controller/shell/loop.py freeze_survivors): what survived is frozen
out of the collector's sight, but garbage is collected first, never frozen (a frozen object is
never freed: a REST request's cycles leaked, about 80 objects each)."""

import gc
import weakref

import pytest

from controller.shell import loop


@pytest.fixture(autouse=True)
def collector_by_hand():
    """Only the collections a test makes: an automatic one in between would change generations."""
    gc.disable()
    yield
    gc.enable()


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_cycles_left_behind_are_collected_and_what_is_alive_is_frozen() -> None:
    gc.collect(1)  # the middle generation's count starts from 0 (earlier tests allocated)
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
    gc.collect(1)
    dropped = Node()
    gone = weakref.ref(dropped)
    gc.collect(0)  # still alive: promoted to the middle generation
    del dropped
    try:
        loop.freeze_survivors()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_while_the_state_grows_fast_only_the_young_generation_is_gone_through() -> None:
    # The trade-off (loop.py): in a burst the middle generation is the core's new state, too
    # much to go through every quarter of a second; what already survived a collection stays.
    gc.collect(1)
    dropped = Node()
    kept = weakref.ref(dropped)
    gc.collect(0)  # survived one young collection: in the middle generation now
    del dropped
    for _ in range(loop.BUSY_YOUNG_COLLECTIONS):  # the burst: more young collections
        gc.collect(0)
    try:
        loop.freeze_survivors()
        assert kept() is not None  # frozen as it was, not gone through
    finally:
        gc.unfreeze()
        gc.collect()
    assert kept() is None  # (the unfrozen collector finds it, as a full collection would)
