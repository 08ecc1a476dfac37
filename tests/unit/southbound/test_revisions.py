"""Which revision a switch holds: what the core computed for it, once every write carrying an older
state is confirmed by a barrier reply (one that confirms a batch confirms every one before it)."""

from controller.southbound.revisions import RevisionLedger


def test_a_switch_with_nothing_in_flight_holds_what_the_core_computed():
    ledger = RevisionLedger()
    assert ledger.settled(1) and ledger.holds(1, 7) == 7 and ledger.holds(1, None) is None


def test_writes_are_held_once_their_barrier_is_answered():
    ledger = RevisionLedger()
    ledger.queued(1)
    assert ledger.holds(1, 5) is None  # a batch is waiting its turn: nothing confirmed yet
    ledger.wrote(1, 5)
    ledger.barrier(1, xid=10)
    assert not ledger.settled(1) and ledger.holds(1, 6) is None
    assert ledger.replied(1, 10) == 5
    assert ledger.settled(1) and ledger.holds(1, 6) == 6  # 6 changed nothing here: held at once


def test_a_reply_confirms_every_barrier_before_it_and_writes_between_wait_for_the_next():
    ledger = RevisionLedger()
    for rev, xid in ((3, 1), (4, 2)):
        ledger.queued(1)
        ledger.wrote(1, rev)
        ledger.barrier(1, xid)
    ledger.queued(1)
    ledger.wrote(1, 6)  # no barrier yet: one is out
    assert ledger.replied(1, 2) == 4  # the first's reply was lost; the second's confirms both
    assert ledger.holds(1, 6) == 4
    ledger.barrier(1, 3)
    assert ledger.replied(1, 1) is None  # a late reply to an older barrier confirms nothing new
    assert ledger.replied(1, 3) == 6 and ledger.holds(1, 7) == 7


def test_a_batch_not_sent_and_a_switch_gone():
    ledger = RevisionLedger()
    ledger.queued(1)
    ledger.skipped(1)
    assert ledger.settled(1)
    ledger.queued(2)
    ledger.wrote(2, 1)
    ledger.barrier(2, 1)
    ledger.gone(2)
    assert ledger.settled(2) and ledger.replied(2, 1) is None
