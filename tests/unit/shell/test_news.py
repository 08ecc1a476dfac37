"""The shell's events and revisions: a batch carries the revision the core had computed for its switch
when it was made; the barrier reply that confirms it makes the switch hold it (revision_applied);
the counters are announced when they moved, at most once a tick."""

from controller.model import events as ev
from controller.model.state import Tenant
from controller.northbound.events import EventHub
from controller.northbound.metrics import Metrics
from controller.shell.news import News
from controller.shell.sender import Sender
from tests.unit.fake_switch import FakeDatapath
from tests.unit.world import world


def setup():
    core = world(2, tenants=(), members={1: frozenset({10}), 2: frozenset({10})})  # VMs in VLAN 10
    core.take_events()
    sender = Sender(Metrics(), sleep=lambda s: None)
    dps = {i: FakeDatapath(i) for i in (1, 2)}
    for dp in dps.values():
        sender.connected(dp)
    hub = EventHub(clock=lambda: 1.0)
    news = News(hub, sender.revisions)
    return core, sender, dps, hub, news


def apply(core, sender, news, ops):
    """What the app's apply() does with the core's operations."""
    revisions = news.batch_revisions(core, ops)
    news.from_core(core)
    core.counters["flow_mods"] += sender.send(ops, revisions)


def test_a_switch_holds_a_revision_when_the_barrier_after_its_writes_is_answered():
    core, sender, dps, hub, news = setup()
    ops = core.change_tenants({"blue": Tenant("blue", 5001, 10)}, revision=3)  # eager: drained at once
    assert {op.dpid for op in ops} == {1, 2}
    apply(core, sender, news, ops)
    assert [e.kind for e in (it.event for it in hub.ring)] == ["tenant_changed"]
    holds = {d: news.holds(d, core.read.computed_for(core.host_of_dpid(d))[0]) for d in (1, 2)}
    assert holds == {1: None, 2: None}  # written, not confirmed
    sender.barrier_replied(dps[1], 1)
    news.barrier_replied(core, 1)
    assert news.holds(1, 3) == 3 and news.holds(2, 3) is None
    assert hub.ring[-1].event == ev.RevisionApplied("h1", 3)
    news.barrier_replied(core, 1)  # the same again: announced once
    assert [it.event.kind for it in hub.ring].count("revision_applied") == 1


def test_counters_are_announced_when_they_moved():
    core, sender, _, hub, news = setup()
    apply(core, sender, news, core.change_tenants({"blue": Tenant("blue", 5001, 10)}, revision=1))
    news.tick(core)
    first = hub.ring[-1].event
    assert first.kind == "counters" and "flow_mods" in first.changed
    news.tick(core)
    assert hub.ring[-1].event is first  # nothing moved: nothing said
    core.counters["arp_proxied"] += 2
    news.tick(core)
    assert hub.ring[-1].event == ev.CountersChanged({"arp_proxied": 2})
