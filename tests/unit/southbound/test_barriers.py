"""BarrierPacer: one barrier outstanding per switch, every write confirmed by a later one, writes
without news (learning) confirmed at most once per QUIET_S under load, and replies matched to
their barrier by xid."""

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
    assert p.replied(1, 1, 0.0) is None
    assert wrote_and_sent(p, 1, 2, 0.2)


def test_writes_while_a_barrier_is_out_wait_for_its_reply_then_get_one_barrier() -> None:
    p = BarrierPacer()
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert not p.wrote(1, 0.1)
    assert not p.wrote(1, 0.2)
    assert wrote_and_sent(p, 2, 1, 0.2)  # other switches are not held back
    assert p.replied(1, 1, 0.2) == 0.1  # one more barrier, for the writes since 0.1
    p.sent(1, 2, 0.3)
    assert not p.wrote(1, 0.4)  # that one is out now
    assert p.replied(1, 2, 0.4) == 0.4
    p.sent(1, 3, 0.5)
    assert p.replied(1, 3, 0.5) is None
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
    assert p.replied(1, 1, 6.0) is None  # barrier 1's reply comes after all: barrier 2 is still out
    assert not p.wrote(1, 6.5)  # so a write waits for it: never two barriers out at once
    assert p.replied(1, 2, 6.5) == 6.5  # the real reply: one more barrier, for the write at 6.5
    p.sent(1, 3, 6.6)
    assert not p.wrote(1, 6.7)  # barrier 3 is out
    assert p.replied(1, 3, 6.7) == 6.7


def test_a_reply_with_an_unknown_xid_confirms_nothing() -> None:
    p = BarrierPacer()
    assert wrote_and_sent(p, 1, 7, 0.0)
    assert not p.wrote(1, 0.1)
    assert p.replied(1, 8, 0.1) is None
    assert p.overdue(1.0) == []  # still waiting for barrier 7, not overdue
    assert p.replied(1, 7, 1.0) == 0.1


def test_a_switch_that_goes_keeps_nothing() -> None:
    p = BarrierPacer()
    wrote_and_sent(p, 1, 1, 0.0)
    p.wrote(1, 0.1)
    p.gone(1)
    assert p.replied(1, 1, 0.1) is None
    assert p.wrote(1, 0.3)


def test_writes_without_news_get_a_barrier_at_once_when_the_switch_had_none_for_quiet_s() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert p.wrote(1, 0.0, news=False)  # an idle switch: confirmed at once, as any batch
    p.sent(1, 1, 0.0)
    assert p.replied(1, 1, 0.01) is None
    assert p.wrote(1, 2.0, news=False)  # a second later: at once again


def test_a_busy_switch_gets_one_barrier_per_quiet_s_for_writes_without_news() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert p.replied(1, 1, 0.01) is None
    assert not p.wrote(1, 0.1, news=False)  # held back: the last barrier went 0.1 s ago
    assert not p.wrote(1, 0.5, news=False)
    assert p.due(0.9) == []
    assert p.due(1.0) == [(1, 0.1)]  # quiet_s after the last barrier: one for both writes
    p.sent(1, 2, 1.0)
    assert p.due(5.0) == []  # asked once


def test_writes_without_news_behind_a_barrier_wait_for_quiet_s_after_its_reply() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert not p.wrote(1, 0.1, news=False)
    assert p.replied(1, 1, 0.2) is None  # not at once: nobody waits for these
    assert p.due(0.5) == []
    assert p.due(1.0) == [(1, 0.1)]


def test_news_behind_a_barrier_gets_the_next_one_at_its_reply_whatever_came_before() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert not p.wrote(1, 0.1, news=False)
    assert not p.wrote(1, 0.2, news=True)  # a change of the tenants: a REST client may be waiting
    assert p.replied(1, 1, 0.3) == 0.1
    p.sent(1, 2, 0.3)
    assert p.due(2.0) == []  # the held-back writes went with it


def test_news_after_held_back_writes_sends_a_barrier_at_once() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert p.replied(1, 1, 0.01) is None
    assert not p.wrote(1, 0.1, news=False)
    assert wrote_and_sent(p, 1, 2, 0.2)  # news, no barrier out: at once (confirming 0.1 too)
    assert p.due(1.5) == []  # nothing left held back: the older entry is dropped


def test_a_switch_that_goes_with_writes_held_back_gets_no_barrier() -> None:
    p = BarrierPacer(quiet_s=1.0)
    assert wrote_and_sent(p, 1, 1, 0.0)
    assert p.replied(1, 1, 0.01) is None
    assert not p.wrote(1, 0.1, news=False)
    p.gone(1)
    assert p.due(2.0) == []
