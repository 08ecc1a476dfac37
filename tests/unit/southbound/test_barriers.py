"""BarrierPacer: one barrier outstanding per switch, every write confirmed by a later one, and
replies matched to their barrier by xid."""

from controller.southbound.barriers import BarrierPacer


def wrote_and_sent(p: BarrierPacer, dpid: int, xid: int, now: float) -> bool:
    """A batch written at now; a barrier with this xid follows it when the pacer asks for one."""
    if not p.wrote(dpid, now):
        return False
    p.sent(dpid, xid, now)
    return True


def test_an_idle_switch_gets_a_barrier_after_each_batch() -> None:
    p = BarrierPacer()
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert p.replied(1, 1) is None
    assert wrote_and_sent(p, 1, 2, 0.2)


def test_writes_while_a_barrier_is_out_wait_for_its_reply_then_get_one_barrier() -> None:
    p = BarrierPacer()
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert not p.wrote(1, 0.1)
    assert not p.wrote(1, 0.2)
    assert wrote_and_sent(p, 2, 1, 0.2)  # other switches are not held back
    assert p.replied(1, 1) == 0.1  # one more barrier, for the writes since 0.1
    p.sent(1, 2, 0.3)
    assert not p.wrote(1, 0.4)  # that one is out now
    assert p.replied(1, 2) == 0.4
    p.sent(1, 3, 0.5)
    assert p.replied(1, 3) is None
    assert p.wrote(1, 0.7)


def test_a_lost_reply_holds_nothing_back_for_long() -> None:
    p = BarrierPacer(overdue_s=5.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert not p.wrote(1, 1.0)
    assert p.overdue(4.0) == []
    assert p.overdue(5.5) == [(1, 1.0)]  # the tick sends one for the waiting writes
    p.sent(1, 2, 5.5)
    assert p.overdue(6.0) == []
    assert p.wrote(1, 11.0)  # and a write after that one is overdue too sends its own


def test_a_late_reply_to_an_overdue_barrier_is_not_taken_for_the_newer_ones() -> None:
    # overdue -> write -> late reply -> real reply -> write (issue 22.10)
    p = BarrierPacer(overdue_s=5.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert wrote_and_sent(p, 1, 2, 6.0)  # barrier 1 is overdue: a write sends barrier 2
    assert p.replied(1, 1) is None  # barrier 1's reply comes after all: barrier 2 is still out
    assert not p.wrote(1, 6.5)  # so a write waits for it: never two barriers out at once
    assert p.replied(1, 2) == 6.5  # the real reply: one more barrier, for the write at 6.5
    p.sent(1, 3, 6.6)
    assert not p.wrote(1, 6.7)  # barrier 3 is out
    assert p.replied(1, 3) == 6.7


def test_a_reply_with_an_unknown_xid_confirms_nothing() -> None:
    p = BarrierPacer()
    assert wrote_and_sent(p, 1, 7, 0.0)
    assert not p.wrote(1, 0.1)
    assert p.replied(1, 8) is None
    assert p.overdue(1.0) == []  # still waiting for barrier 7, not overdue
    assert p.replied(1, 7) == 0.1


def test_a_switch_that_goes_keeps_nothing() -> None:
    p = BarrierPacer()
    wrote_and_sent(p, 1, 1, 0.0)
    p.wrote(1, 0.1)
    p.gone(1)
    assert p.replied(1, 1) is None
    assert p.wrote(1, 0.3)
