"""The shell's sender: batches per switch, one barrier riding in the last write, at most one out."""

from controller.model import flows as f
from controller.model import tables as t
from controller.model.ops import DeletePorts, FlowMod
from controller.northbound.metrics import Metrics
from controller.shell import sender as sender_module
from controller.shell.sender import Sender
from controller.southbound import ofmsg
from tests.unit.fake_switch import OFPT_BARRIER_REQUEST, FakeDatapath

OFPT_FLOW_MOD = 14


def flow(n: int) -> f.Flow:
    return f.Flow(t.UNICAST, t.PRIO_ENTRY, f.match(vlan_vid=0x1000 | n, eth_dst="02:00:00:00:00:01"), cookie=1)


def sender() -> tuple[Sender, list[float], FakeDatapath, FakeDatapath]:
    slept: list[float] = []
    s = Sender(Metrics(), sleep=slept.append)
    dp1, dp2 = FakeDatapath(1), FakeDatapath(2)
    s.connected(dp1)
    s.connected(dp2)
    return s, slept, dp1, dp2


def test_a_batch_goes_to_its_switches_with_one_barrier_each_in_the_same_send():
    s, _, dp1, dp2 = sender()
    sent = s.send([FlowMod(1, flow(1)), FlowMod(1, flow(2)), FlowMod(2, flow(3)), FlowMod(9, flow(4))])  # 9: gone
    assert sent == 3  # the flow-mods written (overlay_flow_mods_total counts these, not what was computed)
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST]
    assert dp2.message_types() == [OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST]
    assert len(dp2.sent) == 1  # the barrier rides in the batch's last write


def test_writes_while_a_barrier_is_out_get_the_next_one_when_it_is_answered():
    s, _, dp1, _ = sender()
    s.send([FlowMod(1, flow(1))])
    s.send([FlowMod(1, flow(2))])
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST, OFPT_FLOW_MOD]
    s.barrier_replied(dp1, 1)
    assert dp1.message_types()[-1] == OFPT_BARRIER_REQUEST
    s.barrier_replied(dp1, 2)
    assert dp1.message_types().count(OFPT_BARRIER_REQUEST) == 2  # nothing unconfirmed: no more


def test_a_switch_gone_gets_nothing_and_a_reply_from_an_old_connection_sends_nothing():
    s, _, dp1, _ = sender()
    s.send([FlowMod(1, flow(1))])
    s.send([FlowMod(1, flow(2))])
    s.gone(1)
    s.send([FlowMod(1, flow(3))])
    s.barrier_replied(dp1, 1)
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST, OFPT_FLOW_MOD]


def test_long_work_lets_the_event_loop_go():
    s, slept, _, _ = sender()
    s.turns.last -= 1.0  # a second of work since the last turn
    s.send([FlowMod(1, flow(1))])
    assert slept == [0]
    s.send([FlowMod(1, flow(2))])
    assert slept == [0]  # just let go: no turn needed yet


def test_a_late_reply_to_an_overdue_barrier_sends_no_second_barrier_while_the_newer_is_out():
    s, _, dp1, _ = sender()
    now = [0.0]
    s.metrics.clock = lambda: now[0]  # type: ignore[method-assign]
    s.send([FlowMod(1, flow(1))])  # barrier xid 1
    now[0] = 6.0  # barrier 1 is overdue
    s.send([FlowMod(1, flow(2))])  # barrier xid 2
    s.barrier_replied(dp1, 1)  # late: barrier 2 is still out
    now[0] = 6.5
    s.send([FlowMod(1, flow(3))])
    assert dp1.message_types().count(OFPT_BARRIER_REQUEST) == 2  # the write waits for barrier 2
    s.barrier_replied(dp1, 2)  # the real reply: one barrier for the write at 6.5
    assert dp1.message_types().count(OFPT_BARRIER_REQUEST) == 3
    s.send([FlowMod(1, flow(4))])
    assert dp1.message_types().count(OFPT_BARRIER_REQUEST) == 3


def test_an_ovsdb_operation_goes_after_the_openflow_operations_before_it():
    # A tunnel port is removed after the flows that stopped using it (issue 22.13): the shell once
    # carried every OVSDB operation of a batch out first, before any flow-mod of the batch.
    s, _, dp1, _ = sender()
    events: list[str] = []
    dp1.send = lambda buf: events.append("openflow")  # type: ignore[method-assign]
    gone = DeletePorts("h1", "br-uuid-1", ("port-uuid",), "mode switched")
    s.send_in_order([FlowMod(1, flow(1)), FlowMod(1, flow(2)), gone, FlowMod(1, flow(3))],
                    lambda op: events.append(f"ovsdb {op.system_id}"))
    assert events == ["openflow", "ovsdb h1", "openflow"]


def test_the_pumps_slices_are_held_and_go_out_as_one_write_per_switch():
    s, _, dp1, dp2 = sender()
    s.send([FlowMod(1, flow(1)), FlowMod(2, flow(2))], hold=True)
    s.send([FlowMod(1, flow(3))], hold=True)
    assert dp1.sent == [] and dp2.sent == []
    s.flush()
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST]
    assert len(dp1.sent) == 1 and len(dp2.sent) == 1


def test_held_writes_go_out_after_at_most_hold_s():
    s, _, dp1, _ = sender()
    s.send([FlowMod(1, flow(1))], hold=True)
    s.held_since -= sender_module.HOLD_S + 0.01
    s.send([FlowMod(1, flow(2))], hold=True)
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST]


def test_a_send_not_held_goes_after_what_is_held_in_order():
    s, _, dp1, _ = sender()
    s.send([FlowMod(1, flow(1))], hold=True)
    s.send([FlowMod(1, flow(2))])
    assert len(dp1.sent) == 1
    assert dp1.message_types() == [OFPT_FLOW_MOD, OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST]
    assert dp1.sent[0].startswith(ofmsg.flow_mod(flow(1)) + ofmsg.flow_mod(flow(2)))  # in the order made


def test_nothing_to_send_sends_nothing_held():
    s, _, dp1, _ = sender()
    s.send([FlowMod(1, flow(1))], hold=True)
    s.send([])  # a packet-in whose work is the pump's
    assert dp1.sent == []
