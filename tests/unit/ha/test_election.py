"""Leader election as a state machine (controller/ha/election.py): no etcd, times given."""

from controller.ha.election import Campaign, Election, Follow, Grant, Holder, KeepAlive, Lead, Resign


def leader(now: float = 0.0) -> Election:
    e = Election("c1", ttl=1)
    assert e.tick(now) == [Grant(1)]
    assert e.granted(7, 1, now) == [Campaign(7)]
    assert e.campaigned(7, Holder("c1", 7, 42), now + 0.01) == [Lead(42)]
    return e


def test_no_lease_first_asks_for_one_then_campaigns():
    e = Election("c1", ttl=1)
    assert e.tick(0.0) == [Grant(1)]
    assert e.granted(7, 1, 0.0) == [Campaign(7)]


def test_the_instance_that_created_the_key_leads_with_its_create_revision_as_generation():
    e = leader()
    assert e.leading and e.generation == 42
    assert e.campaigned(7, Holder("c1", 7, 42), 0.2) == []  # still ours: nothing to do


def test_another_holder_makes_a_follower_once():
    e = Election("c2", ttl=1)
    e.tick(0.0)
    e.granted(8, 1, 0.0)
    assert e.campaigned(8, Holder("c1", 7, 42), 0.01) == [Follow("c1", 42)]
    assert e.campaigned(8, Holder("c1", 7, 42), 0.2) == []
    assert not e.leading


def test_a_follower_keeps_its_lease_alive_every_third_of_the_ttl_and_campaigns_every_tick():
    e = Election("c2", ttl=3)
    e.tick(0.0)
    e.granted(8, 3, 0.0)
    e.campaigned(8, Holder("c1", 7, 42), 0.0)
    assert e.tick(0.5) == [Campaign(8)]
    assert e.tick(1.0) == [KeepAlive(8), Campaign(8)]
    assert e.kept_alive(8, 3, 1.0) == []
    assert e.tick(1.5) == [Campaign(8)]


def test_when_the_leader_dies_its_key_goes_and_a_follower_takes_over_with_a_larger_generation():
    e = Election("c2", ttl=1)
    e.tick(0.0)
    e.granted(8, 1, 0.0)
    e.campaigned(8, Holder("c1", 7, 42), 0.0)
    assert e.campaigned(8, Holder("c2", 8, 57), 1.2) == []  # lease not renewed: not valid any more
    e.kept_alive(8, 1, 1.1)
    assert e.campaigned(8, Holder("c2", 8, 57), 1.2) == [Lead(57)]
    assert e.generation == 57


def test_a_leader_that_cannot_renew_steps_down_on_its_own_clock_before_its_lease_can_expire():
    e = leader()
    e.etcd_failed(0.4)
    assert e.tick(0.85) == [KeepAlive(7), Campaign(7)]  # still within the lease, renewal due
    assert e.leading
    assert e.tick(0.95)[0] == Follow(None, 42)  # within 10 % of the TTL of expiring: fenced
    assert not e.leading
    assert e.tick(1.0) == [Grant(1)]  # the lease has surely expired: a new one


def test_a_renewal_that_succeeded_counts_from_when_it_was_sent():
    e = leader()
    e.kept_alive(7, 1, 0.5)  # sent at 0.5, answered whenever
    assert e.valid_until == 1.5
    assert e.leading and Follow(None, 42) not in e.tick(1.3)
    assert e.tick(1.41)[0] == Follow(None, 42)


def test_a_lease_etcd_no_longer_knows_ends_leadership_at_once():
    e = leader()
    assert e.kept_alive(7, -1, 0.3) == [Follow(None, 42)]
    assert e.lease is None and e.tick(0.31) == [Grant(1)]


def test_another_holder_seen_while_leading_steps_down():
    e = leader()
    assert e.campaigned(7, Holder("c3", 9, 60), 0.2) == [Follow("c3", 60)]
    assert not e.leading and e.generation == 60


def test_a_stale_refusal_steps_down_resigns_and_holds_off_campaigning():
    e = leader()
    assert e.stale(60, 0.3) == [Follow(None, 60), Resign(7)]
    assert not e.leading and e.lease is None and e.generation == 60
    assert e.tick(0.4) == [Grant(1)]
    assert e.granted(9, 1, 0.4) == []  # within the hold-off: no campaign
    assert e.tick(1.0) == [KeepAlive(9)]  # renewed, but no campaign yet
    e.kept_alive(9, 1, 2.0)
    assert Campaign(9) in e.tick(2.41)


def test_a_stale_refusal_on_a_follower_changes_nothing_but_the_generation():
    e = Election("c2", ttl=1)
    e.tick(0.0)
    e.granted(8, 1, 0.0)
    e.campaigned(8, Holder("c1", 7, 42), 0.0)
    assert e.stale(50, 0.1) == []
    assert e.generation == 50 and e.lease == 8


def test_a_generation_never_goes_backwards():
    e = leader()
    e.campaigned(7, Holder("c3", 9, 30), 0.2)  # an older key (etcd restored from a backup)
    assert e.generation == 42


def test_a_leader_may_write_only_while_surely_within_its_lease():
    e = leader()
    assert e.may_lead(0.5) and not e.may_lead(0.9)  # fenced 10 % of the TTL early, before tick() ran
    e.kept_alive(7, 1, 0.8)
    assert e.may_lead(1.5)
