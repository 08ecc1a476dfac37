"""Writes to a plain-TCP switch go straight to its socket when its send loop waits with nothing
queued, and through the loop otherwise: in order either way, whatever the socket takes."""

import eventlet
from eventlet.green import socket
from os_ken.controller import ofp_event  # noqa: F401  (before controller: os-ken's own import order)

from controller.shell import oskenpatch

DEADLINE_S = 5.0
# Small socket buffers: a 10 MB write is then never taken whole (with the kernel's defaults on
# loopback it sometimes was, and nothing was left for the loop).
SMALL_BUFFER = 64 * 1024


def datapath():
    from os_ken.controller import controller as osken_controller
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # loopback: os-ken sets TCP_NODELAY, which a socketpair refuses
    listener.listen(1)
    theirs = socket.socket()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before connecting: the window
    theirs.connect(listener.getsockname())
    ours, _ = listener.accept()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    listener.close()
    dp = oskenpatch.bulk_datapath(osken_controller)(ours, ("127.0.0.1", 6653))
    return dp, theirs


def read(sock, n: int) -> bytes:
    got = b""
    with eventlet.Timeout(DEADLINE_S):
        while len(got) < n:
            got += sock.recv(1 << 20)
    return got


def test_a_write_while_the_send_loop_waits_is_on_the_wire_before_anyone_else_runs():
    dp, peer = datapath()
    loop = eventlet.spawn(dp._send_loop)
    eventlet.sleep(0)  # the loop now waits for something to send
    assert dp.send(b"hello")
    assert dp.send_q.qsize() == 0  # checked before any green thread ran: handed to the loop, it would be 1
    assert read(peer, 5) == b"hello"
    loop.kill()
    peer.close()


def test_a_write_while_the_send_loop_is_not_waiting_goes_through_it():
    dp, peer = datapath()
    assert dp.send(b"queued")  # no loop waiting yet (it is busy, or not started)
    assert dp.send_q.qsize() == 1
    loop = eventlet.spawn(dp._send_loop)
    assert read(peer, 6) == b"queued"
    loop.kill()
    peer.close()


def test_what_the_socket_does_not_take_goes_out_after_through_the_loop_in_order():
    dp, peer = datapath()
    loop = eventlet.spawn(dp._send_loop)
    eventlet.sleep(0)
    big = bytes(range(256)) * (40 * 1024)  # 10 MB: more than any socket buffer takes at once
    assert dp.send(big)
    assert dp.send_q.qsize() == 1  # the rest, queued
    assert dp.send(b"after")  # queued behind it, not written past it
    assert read(peer, len(big) + 5) == big + b"after"
    loop.kill()
    peer.close()
