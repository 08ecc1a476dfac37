"""No impersonation (controller/core/identity.py): who may claim a host's system-id or its br1's
datapath ID, decided from the claim and what is known of the host."""

import pytest

from controller.core import admission, identity
from controller.core.admission import HostPolicy
from controller.core.core import Core
from controller.core.switch_state import SwitchDump
from controller.model.ops import Disconnect
from controller.model.state import Peer
from controller.shell.config import defaults
from tests.unit.world import BLUE, view

GRACE = defaults().host_grace
H2 = Peer("10.98.0.2:50000")  # where h2's channels come from
THERE = Peer("10.98.0.2:50001")  # h2 again, from another port
ELSEWHERE = Peer("10.98.0.66:40000")  # another machine


def known_world(mode=admission.OPEN):
    """h1-h3 joined from their own addresses (with their own certificates), each switch connected."""
    core = Core(defaults(), [BLUE], policy=HostPolicy(mode))
    for i in (1, 2, 3):
        peer = Peer(f"10.98.0.{i}:50000", f"h{i}" if mode.needs_certificate else None)
        core.datapath_up(i, peer)
        core.switch_read(i, SwitchDump(), 0.0)
        core.host_view(view(i, [j for j in (1, 2, 3) if j != i]), 0.0, peer)
    assert all(core.is_programmable(h) for h in core.read.hosts.values())
    return core


def test_a_second_ovsdb_connection_claiming_a_live_host_is_refused():
    core = known_world()
    assert core.claim_ovsdb("h2", ELSEWHERE, live=True, now=1.0) == identity.IN_USE
    assert core.claim_ovsdb("h2", THERE, live=True, now=1.0) == identity.IN_USE  # even from its address
    assert core.counters["identity_refused:ovsdb:in_use"] == 2
    refused = core.read.refused_claims("h2")
    assert [(r["peer"], r["channel"], r["reason"], r["count"]) for r in refused] == [
        (ELSEWHERE.address, "ovsdb", "in_use", 1), (THERE.address, "ovsdb", "in_use", 1)]


def test_while_one_channel_is_up_the_other_may_come_back_only_from_the_host():
    core = known_world()
    core.ovsdb_down("h2", now=1.0)  # its OpenFlow channel is still up
    assert core.claim_ovsdb("h2", ELSEWHERE, live=False, now=2.0) == identity.ADDRESS
    assert core.claim_ovsdb("h2", THERE, live=False, now=2.0) is None
    core.datapath_down(2, now=1.0)  # its br1 went; its OVSDB was up
    core.host_view(view(2, [1, 3]), 1.5, H2)
    assert core.claim_datapath(2, ELSEWHERE, now=2.0) == identity.ADDRESS
    assert core.claim_datapath(2, THERE, now=2.0) is None


def test_a_lost_host_can_be_taken_over_only_after_host_grace():
    core = known_world()
    core.ovsdb_down("h2", now=10.0)
    core.datapath_down(2, now=10.0)
    assert core.claim_ovsdb("h2", ELSEWHERE, live=False, now=10.0 + GRACE - 1) == identity.ADDRESS
    assert core.claim_datapath(2, ELSEWHERE, now=10.0 + GRACE - 1) == identity.ADDRESS
    assert core.claim_ovsdb("h2", THERE, live=False, now=11.0) is None  # its own return: at once
    assert core.claim_ovsdb("h2", ELSEWHERE, live=False, now=10.0 + GRACE) is None
    assert core.claim_datapath(2, ELSEWHERE, now=10.0 + GRACE) is None


def test_a_connected_datapath_id_cannot_be_claimed_again():
    core = known_world()
    assert core.claim_datapath(2, THERE, now=1.0) == identity.IN_USE
    assert core.counters["identity_refused:openflow:in_use"] == 1
    assert core.claim_datapath(99, ELSEWHERE, now=1.0) is None  # no host names it: nothing to take


def test_a_view_claiming_another_hosts_datapath_id_does_not_get_it():
    core = known_world()
    v = view(4, [1, 2, 3])
    core.host_view(v.__class__(**{**v.__dict__, "datapath_id": 2}), 1.0, ELSEWHERE)
    assert core.host_of_dpid(2).id == "h2"
    h4 = core.read.hosts["h4"]
    assert h4.view.datapath_id is None and "is host h2's" in h4.view.problems[-1]
    assert core.counters["identity_refused:ovsdb:datapath_taken"] == 1


@pytest.mark.parametrize("cn, system_id, reason", [
    (None, "h2", identity.NO_CERTIFICATE),
    ("h3", "h2", identity.WRONG_CERTIFICATE),
    ("h2", "h2", identity.IN_USE),  # the right certificate, while h2 is up: still refused
])
def test_with_certificates_a_host_is_its_certificates_cn(cn, system_id, reason):
    core = known_world(admission.CERTIFICATE)
    assert core.claim_ovsdb(system_id, Peer(ELSEWHERE.address, cn), live=True, now=1.0) == reason


def test_with_certificates_the_host_may_come_back_from_anywhere_but_only_with_its_own():
    core = known_world(admission.CERTIFICATE)
    core.ovsdb_down("h2", now=1.0)
    core.datapath_down(2, now=1.0)
    assert core.claim_ovsdb("h2", Peer(ELSEWHERE.address, "h2"), live=False, now=2.0) is None
    assert core.claim_datapath(2, Peer(ELSEWHERE.address, "h2"), now=2.0) is None
    assert core.claim_datapath(2, Peer(ELSEWHERE.address, "h3"), now=2.0) == identity.WRONG_CERTIFICATE
    assert core.claim_datapath(2, ELSEWHERE, now=2.0) == identity.NO_CERTIFICATE


def test_with_certificates_a_br1_is_bound_by_its_certificate_not_its_datapath_id():
    """A switch that connected under h4's datapath ID before h4's view named it, with h3's
    certificate, is closed once the view says whose that datapath ID is."""
    core = known_world(admission.CERTIFICATE)
    assert core.claim_datapath(4, Peer(ELSEWHERE.address, "h3"), now=1.0) is None  # nobody names 4 yet
    core.datapath_up(4, Peer(ELSEWHERE.address, "h3"))
    ops = core.host_view(view(4, [1, 2, 3]), 2.0, Peer("10.98.0.4:50000", "h4"))
    assert [op.dpid for op in ops if isinstance(op, Disconnect)] == [4]
    assert 4 not in core.datapaths and not core.is_programmable(core.read.hosts["h4"])
    assert core.counters["identity_refused:openflow:wrong_certificate"] == 1


def test_refusals_are_counted_each_time_and_kept_once_per_peer_and_reason():
    core = known_world()
    for now in (1.0, 2.0, 3.0):
        core.claim_ovsdb("h2", Peer(f"10.98.0.66:{40000 + int(now)}"), live=True, now=now)
    refused, = core.read.refused_claims("h2")
    assert (refused["count"], refused["first"], refused["at"], refused["peer"]) == (3, 1.0, 3.0, "10.98.0.66:40003")
    assert core.counters["identity_refused:ovsdb:in_use"] == 3


def test_remembered_refusals_are_bounded():
    core = known_world()
    for i in range(identity.MAX_IDENTITIES + 10):
        core.claim_ovsdb(f"x{i}", ELSEWHERE, live=True, now=1.0)
    assert len(core.read.refused_identities()) == identity.MAX_IDENTITIES
    assert core.read.refused_claims("x0") == [] and core.read.refused_claims(f"x{identity.MAX_IDENTITIES + 9}")
