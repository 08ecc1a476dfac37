"""The OpenFlow side of identity (controller/shell/identity.py): a refused switch is closed, the
switch that holds its datapath ID only asked for an echo (closed if silent), and an impostor's
messages never reach a handler."""

from types import SimpleNamespace

from controller.model.state import Peer
from controller.shell import identity
from tests.unit.fake_switch import FakeDatapath


class Closable(FakeDatapath):
    def __init__(self, dpid: int, address=("10.98.0.2", 40000)) -> None:
        super().__init__(dpid)
        self.address = address
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_refused_switch_is_closed_and_the_holder_only_probed():
    holder, impostor = Closable(2), Closable(2, ("10.98.0.66", 5000))
    probes = identity.Probes({2: holder})
    probes.refuse(impostor, 2, now=10.0)
    assert impostor.closed and not holder.closed
    echo, = holder.msgs
    assert type(echo).__name__ == "OFPEchoRequest"
    probes.refuse(Closable(2), 2, now=11.0)  # another attempt: the question is already asked
    assert len(holder.msgs) == 1
    probes.replied(holder, echo.xid)
    probes.overdue(now=20.0)
    assert not holder.closed  # it answered: it stays


def test_a_holder_that_does_not_answer_is_closed():
    holder = Closable(2)
    probes = identity.Probes({2: holder})
    probes.refuse(Closable(2), 2, now=10.0)
    probes.overdue(now=10.0 + identity.PROBE_S - 0.1)
    assert not holder.closed
    probes.overdue(now=10.0 + identity.PROBE_S)
    assert holder.closed


def test_only_the_connection_that_holds_the_datapath_id_is_heard():
    heard = []

    class App:
        sender = SimpleNamespace(datapaths={})

        @identity.registered
        def handler(self, ev):
            heard.append(ev.msg.datapath)

    app, holder, impostor = App(), Closable(2), Closable(2)
    app.sender.datapaths[2] = holder
    for dp in (holder, impostor):
        app.handler(SimpleNamespace(msg=SimpleNamespace(datapath=dp)))
    assert heard == [holder]


def test_a_switchs_peer_is_its_address_and_certificate():
    dp = Closable(1, ("10.98.0.2", 40000))
    assert identity.peer_of(dp) == Peer("10.98.0.2:40000", None)
    dp.peer_cn = "h2"
    assert identity.peer_of(dp) == Peer("10.98.0.2:40000", "h2")
    assert identity.peer_of(Closable(1, ("fd00::2", 40000))).ip == "fd00::2"
