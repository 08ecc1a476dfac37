"""The reader: one green thread reads every plain-TCP connection it serves, each in order, and a
connection's end (its switch's, its own error, its send loop's) ends only that one."""

from __future__ import annotations

import eventlet
import pytest
from eventlet.green import socket

from controller.shell.reader import Reader
from controller.shell.turns import Turns

DEADLINE_S = 5.0


class Conn:
    """A connection as the reader sees it: `take` records what it was given."""

    def __init__(self, sock, fail_on: bytes | None = None, over_on: bytes | None = None) -> None:
        self.socket = sock
        self.received = b""
        self.fail_on, self.over_on = fail_on, over_on

    def take(self, data: bytes) -> bool:
        self.received += data
        if self.fail_on is not None and self.fail_on in self.received:
            raise ValueError("malformed")
        return self.over_on is None or self.over_on not in self.received


def until(condition, what: str) -> None:
    deadline = eventlet.hubs.get_hub().clock() + DEADLINE_S
    while not condition():
        assert eventlet.hubs.get_hub().clock() < deadline, what
        eventlet.sleep(0.001)


@pytest.fixture
def reader():
    r = Reader(Turns(eventlet.sleep))
    yield r
    if r.thread is not None:
        r.thread.kill()


def pair() -> tuple:
    ours, theirs = socket.socketpair()
    return ours, theirs


def test_every_connection_is_read_in_order_by_one_thread_until_its_peer_closes(reader):
    (a, a_peer), (b, b_peer) = pair(), pair()
    conn_a, conn_b = Conn(a), Conn(b)
    served = [eventlet.spawn(reader.serve, c) for c in (conn_a, conn_b)]
    for i in range(50):
        a_peer.sendall(b"a%02d" % i)
        b_peer.sendall(b"b%02d" % i)
        if i % 7 == 0:
            eventlet.sleep(0)
    until(lambda: len(conn_a.received) == 150 and len(conn_b.received) == 150, "all bytes read")
    assert conn_a.received == b"".join(b"a%02d" % i for i in range(50))
    assert conn_b.received == b"".join(b"b%02d" % i for i in range(50))
    a_peer.close()
    with eventlet.Timeout(DEADLINE_S):
        served[0].wait()  # returns: its switch closed
    assert not served[1].dead and set(reader.conns.values()) == {conn_b}
    b_peer.sendall(b"more")
    until(lambda: conn_b.received.endswith(b"more"), "the other connection is still read")
    b_peer.close()
    with eventlet.Timeout(DEADLINE_S):
        served[1].wait()
    assert reader.conns == {} and reader.reading == {}


def test_an_error_in_one_connection_is_raised_in_its_own_thread_only(reader):
    (a, a_peer), (b, b_peer) = pair(), pair()
    bad, good = Conn(a, fail_on=b"garbage"), Conn(b)
    served = [eventlet.spawn(reader.serve, c) for c in (bad, good)]
    a_peer.sendall(b"garbage")
    with eventlet.Timeout(DEADLINE_S), pytest.raises(ValueError, match="malformed"):
        served[0].wait()
    b_peer.sendall(b"fine")
    until(lambda: good.received == b"fine", "the good connection is read on")
    assert list(reader.conns.values()) == [good]
    b_peer.close()
    with eventlet.Timeout(DEADLINE_S):
        served[1].wait()


def test_the_app_closing_a_connection_ends_it_after_what_it_read(reader):
    a, a_peer = pair()
    conn = Conn(a, over_on=b"bye")
    served = eventlet.spawn(reader.serve, conn)
    a_peer.sendall(b"hello bye")
    with eventlet.Timeout(DEADLINE_S):
        served.wait()
    assert conn.received == b"hello bye" and reader.conns == {}
    a_peer.close()


def test_a_socket_closed_by_its_send_loop_lets_its_thread_go(reader):
    a, a_peer = pair()
    conn = Conn(a)
    served = eventlet.spawn(reader.serve, conn)
    until(lambda: conn in reader.reading, "served")
    a.close()  # as os-ken's send loop does when it ends
    reader.end(conn)
    with eventlet.Timeout(DEADLINE_S):
        served.wait()
    assert reader.conns == {}
    a_peer.close()


def test_plain_tcp_is_taken_and_anything_else_is_not():
    a, a_peer = pair()
    assert Reader.takes(a)
    assert not Reader.takes(object())
    a.close()
    assert not Reader.takes(a)
    a_peer.close()
