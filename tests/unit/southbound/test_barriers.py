"""BarrierPacer: one barrier outstanding per switch, and every write confirmed by a later one."""

from controller.southbound.barriers import BarrierPacer


def test_an_idle_switch_gets_a_barrier_after_each_batch() -> None:
    p = BarrierPacer()
    assert p.wrote(1, 0.0)
    assert p.replied(1, 0.1) is None
    assert p.wrote(1, 0.2)


def test_writes_while_a_barrier_is_out_wait_for_its_reply_then_get_one_barrier() -> None:
    p = BarrierPacer()
    assert p.wrote(1, 0.0)
    assert not p.wrote(1, 0.1)
    assert not p.wrote(1, 0.2)
    assert p.wrote(2, 0.2)  # other switches are not held back
    assert p.replied(1, 0.3) == 0.1  # one more barrier, for the writes since 0.1
    assert not p.wrote(1, 0.4)  # that one is out now
    assert p.replied(1, 0.5) == 0.4
    assert p.replied(1, 0.6) is None
    assert p.wrote(1, 0.7)


def test_a_lost_reply_holds_nothing_back_for_long() -> None:
    p = BarrierPacer(overdue_s=5.0)
    assert p.wrote(1, 0.0)
    assert not p.wrote(1, 1.0)
    assert p.overdue(4.0) == []
    assert p.overdue(5.5) == [(1, 1.0)]  # the tick sends one for the waiting writes
    assert p.overdue(6.0) == []
    assert p.wrote(1, 11.0)  # and a write after that one is overdue too sends its own


def test_a_switch_that_goes_keeps_nothing() -> None:
    p = BarrierPacer()
    p.wrote(1, 0.0)
    p.wrote(1, 0.1)
    p.gone(1)
    assert p.replied(1, 0.2) is None
    assert p.wrote(1, 0.3)
