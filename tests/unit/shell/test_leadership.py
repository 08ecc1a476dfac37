"""The shell's stats poller and role keeping, against fake switches."""

import time
from types import SimpleNamespace

from controller.core.core import Core
from controller.core.counters import ROLE_COUNTERS
from controller.ha.election import Follow, Lead
from controller.ha.roles import Roles
from controller.model.ops import FlowMod, ReadSwitch
from controller.model.state import HostView
from controller.shell.config import defaults
from controller.shell.leadership import Leadership
from controller.shell.loop import CALM_S, Pump
from controller.shell.stats import MAX_DEFER, POLL_EVERY, StatsPoller
from controller.southbound import ofmsg
from tests.unit.fake_switch import FakeDatapath
from tests.unit.world import BLUE, ip_of


def test_every_switch_is_asked_for_each_counted_role_and_replies_find_their_role():
    slept: list[float] = []
    dps = {i: FakeDatapath(i) for i in range(1, POLL_EVERY + 2)}
    poller = StatsPoller(dps, interval=2.0, sleep=slept.append)
    poller.poll()
    assert all(len(dp.msgs) == len(ROLE_COUNTERS) for dp in dps.values())
    assert len(slept) == 1  # a pause after POLL_EVERY switches
    xid, role = next(iter((xid, r) for (dpid, xid), r in poller.polls.items() if dpid == 1))
    assert poller.replied(1, xid) == role and poller.replied(1, xid) is None
    poller.gone(2)
    assert not [k for k in poller.polls if k[0] == 2]


def test_a_round_waits_while_the_controller_converges_but_not_longer_than_max_defer_intervals():
    now = [0.0]
    busy = [True]

    def sleep(s: float) -> None:
        now[0] += s
        if now[0] >= 1.0:
            busy[0] = False  # converged after a second

    dps = {i: FakeDatapath(i) for i in range(1, POLL_EVERY + 2)}
    poller = StatsPoller(dps, interval=2.0, sleep=sleep, busy=lambda: busy[0], clock=lambda: now[0])
    poller.poll(defer=True)
    assert poller.deferred == 1 and all(dp.msgs for dp in dps.values())  # the first batch waited, then all
    asked_at = now[0]
    busy[0] = True  # converging again before the second batch: it waits too
    poller.poll(defer=True)
    assert poller.deferred == 2 and now[0] > asked_at
    now[0], busy[0] = 0.0, True
    dps = {i: FakeDatapath(i) for i in range(1, POLL_EVERY + 2)}
    poller = StatsPoller(dps, interval=2.0, sleep=lambda s: now.__setitem__(0, now[0] + s), busy=lambda: True,
                         clock=lambda: now[0])
    poller.poll(defer=True)
    # never converging: counters are read anyway, each batch MAX_DEFER intervals late
    assert now[0] >= 2 * MAX_DEFER * 2.0 and all(len(dp.msgs) == len(ROLE_COUNTERS) for dp in dps.values())


def test_alone_it_leads_asks_no_role_and_may_write_everything():
    lead = Leadership(Roles(enabled=False, instance="c1"))
    dp = FakeDatapath(1)
    lead.ask(dp, now=0.0)
    assert dp.msgs == [] and lead.may_write()
    ops = [ReadSwitch(1), FlowMod(1, None)]  # type: ignore[arg-type]
    assert lead.writable(ops) == ops


def test_a_follower_asks_to_be_slave_and_only_reads_and_a_new_leader_gets_a_fresh_core():
    lead = Leadership(Roles(enabled=True, instance="c1"))
    dp = FakeDatapath(1)
    lead.ask(dp, now=0.0)
    assert [m.role for m in dp.msgs] == [ofmsg.ROLES["slave"]]
    assert lead.writable([ReadSwitch(1), FlowMod(1, None)]) == [ReadSwitch(1)]  # type: ignore[arg-type]
    core = Core(defaults(), [BLUE])
    core.datapath_up(1)
    new, ops = lead.change(Lead(7), core, [(HostView("h1", ip_of(1), 1, "br-1", 1), None)], 1, now=10.0, recovery_s=5.0)
    assert new is not core and new.counters["leader_elected"] == 1 and ReadSwitch(1) in ops
    assert lead.leading and lead.may_write()
    lead.ask(dp, now=11.0)
    assert [m.role for m in dp.msgs][-1] == ofmsg.ROLES["master"]
    same, ops = lead.change(Follow("c2", 8), new, [], 1, now=12.0, recovery_s=5.0)
    assert same is new and new.passive and ops == [] and not lead.leading


def test_a_switch_refusing_us_steps_the_election_down():
    stale = []
    lead = Leadership(Roles(enabled=True, instance="c1"), SimpleNamespace(stale=stale.append))
    lead.roles.lead(3, now=0.0)
    core = Core(defaults())
    lead.refused(1, core)
    assert core.counters["role_refused"] == 1 and stale == [None]


def test_the_pump_is_converging_while_it_has_work_and_for_a_moment_after():
    pending = [True]
    pump = Pump(lambda: SimpleNamespace(pending=lambda: pending[0]), lambda *a, **k: None, None, None)  # type: ignore[arg-type]
    assert pump.converging()
    pending[0] = False
    assert not pump.converging()  # never had work
    pump.done_at = time.monotonic()
    assert pump.converging()  # ran out of work just now: more is likely on its way
    pump.done_at -= CALM_S
    assert not pump.converging()
