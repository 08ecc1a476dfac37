"""A switch's read-back: whole when flows, groups and meters are all in; given up after the timeout."""

from types import SimpleNamespace

from controller.shell import readback
from controller.shell.readback import READ_TIMEOUT_S, ReadBack


def test_the_dump_is_handed_over_once_every_part_is_in():
    rb = ReadBack()
    rb.start(1, now=0.0)
    flows = [SimpleNamespace(table_id=5, priority=10, match={"vlan_vid": 4106, "eth_src": "02:00:00:00:00:01"},
                             cookie=7)]
    assert rb.part(1, "flows", lambda d: readback.add_flows(d, flows), more=True) is None
    assert rb.part(1, "flows", lambda d: readback.add_flows(d, []), more=False) is None
    assert rb.part(1, "groups", lambda d: readback.add_groups(d, [SimpleNamespace(group_id=5001)]), more=False) is None
    dump = rb.part(1, "meters", lambda d: readback.add_meters(d, [SimpleNamespace(meter_id=1)]), more=False)
    assert dump is not None
    assert dump.flows == {(5, 10, (("eth_src", "02:00:00:00:00:01"), ("vlan_vid", 4106))): 7}
    assert (dump.groups, dump.meters) == ({5001}, {1})
    assert rb.part(1, "meters", lambda d: None, more=False) is None  # done: a late reply changes nothing


def test_replies_of_a_switch_not_being_read_are_ignored():
    rb = ReadBack()
    assert rb.part(2, "flows", lambda d: readback.add_flows(d, []), more=False) is None


def test_a_switch_not_read_back_in_time_is_handed_out_once():
    rb = ReadBack()
    rb.start(1, now=0.0)
    rb.start(2, now=5.0)
    assert list(rb.overdue(READ_TIMEOUT_S)) == []
    assert list(rb.overdue(READ_TIMEOUT_S + 1)) == [1]
    assert list(rb.overdue(READ_TIMEOUT_S + 1)) == []
    rb.gone(2)
    assert list(rb.overdue(100.0)) == []
