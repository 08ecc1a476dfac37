"""The controller's listeners: no SO_REUSEPORT (a second controller cannot share a port), one
line when a port is taken, the state directory's lock, and refused connections counted and
logged at most once per peer and minute, never with a traceback."""

from __future__ import annotations

import logging
import select
import socket
import sys
import time

import eventlet
import eventlet.wsgi
import pytest
from eventlet.green import ssl
from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import generate_latest

from controller.northbound.auth import HostNames
from controller.northbound.rest import Api
from controller.shell import listeners, statelock
from controller.shell.listeners import Channel, Refusals
from controller.southbound import tlsconf
from controller.southbound.ovsdb_server import OvsdbServer, _Connection
from tests.unit.api_backend import Backend
from tests.unit.tls_peers import HELLO_OF13, Peer, client_context


def test_a_listener_does_not_share_its_port():
    first = listeners.bind("127.0.0.1", 0, "wsapi_port")
    port = first.getsockname()[1]
    assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1  # a restart binds over TIME_WAIT
    with pytest.raises(SystemExit) as e:
        listeners.bind("127.0.0.1", port, "[ovsdb] port")
    assert str(e.value) == (f"overlay-controller: 127.0.0.1:{port} ([ovsdb] port) is already in use: "
                            "is another controller running with this configuration?")
    first.close()


def test_a_listener_holds_hundreds_of_hosts_dialling_in_while_the_loop_is_busy():
    """Connections the loop has not accepted yet wait in the kernel's queue: 200 at once here
    (eventlet's default backlog, 50, dropped the rest's handshakes: they waited for the kernel's
    SYN retransmissions, a second and more)."""
    server = listeners.bind("127.0.0.1", 0, "ofp_tcp_listen_port")
    port = server.getsockname()[1]
    clients = [socket.socket() for _ in range(200)]
    try:
        for c in clients:
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
        # none accepted, each connected (writable) within moments: a dropped SYN waits a second
        connected: set[socket.socket] = set()
        deadline = time.monotonic() + 0.9
        while len(connected) < len(clients) and time.monotonic() < deadline:
            connected.update(select.select([], [c for c in clients if c not in connected], [], 0.05)[1])
        assert len(connected) == len(clients)
        assert all(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for c in clients)
    finally:
        for c in clients:
            c.close()
        server.close()


def test_eventlets_own_listen_would_share_it():
    """Why bind() exists: eventlet.listen's default (and os-ken's servers) let a second process in."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    first = eventlet.listen(("127.0.0.1", port))
    second = eventlet.listen(("127.0.0.1", port))  # no error: both accept
    assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    first.close()
    second.close()


def test_one_controller_per_state_directory(tmp_path):
    state = tmp_path / "state"
    held = statelock.lock(str(state), str(state / "overlay.db"))
    assert len(held) == 1 and (state / "controller.lock").read_text().startswith("pid ")
    assert state.stat().st_mode & 0o777 == 0o700
    with pytest.raises(SystemExit) as e:  # flock: another open file is another holder, even in one process
        statelock.lock(str(state))
    assert str(e.value).startswith(f"overlay-controller: {state}/controller.lock is locked by pid ")
    # A database elsewhere is locked too: another state directory cannot share it.
    other = statelock.lock(str(tmp_path / "other"), str(tmp_path / "shared.db"))
    with pytest.raises(SystemExit, match="shared.db.lock is locked"):
        statelock.lock(str(tmp_path / "third"), str(tmp_path / "shared.db"))
    for fh in held + other:
        fh.close()
    statelock.lock(str(state))  # released with its file (as when a process ends)


def _scrape(refusals: Refusals) -> str:
    registry = CollectorRegistry()
    registry.register(refusals)
    return generate_latest(registry).decode()


def test_refusals_are_counted_each_and_logged_once_per_peer_and_minute(caplog):
    now = [1000.0]
    refusals = Refusals(clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="overlay")
    plain = tlsconf.Refused("plain", "plain TCP where TLS is required")
    for _ in range(3):
        refusals.refused("openflow", "10.0.0.9", plain)
    refusals.refused("ovsdb", "10.0.0.9", plain)  # another channel: its own line
    refusals.refused("openflow", "10.0.0.8", tlsconf.Refused("certificate", "unknown ca"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["openflow connection from 10.0.0.9 refused: plain TCP where TLS is required",
                     "ovsdb connection from 10.0.0.9 refused: plain TCP where TLS is required",
                     "openflow connection from 10.0.0.8 refused: unknown ca"]
    assert all(r.exc_info is None for r in caplog.records)
    now[0] += 61
    refusals.refused("openflow", "10.0.0.9", plain)
    assert caplog.records[-1].getMessage().endswith("(2 more from there in the last minute)")
    text = _scrape(refusals)
    assert 'overlay_tls_handshakes_refused_total{channel="openflow",reason="plain"} 4.0' in text
    assert 'overlay_tls_handshakes_refused_total{channel="openflow",reason="certificate"} 1.0' in text
    assert 'overlay_tls_handshakes_refused_total{channel="ovsdb",reason="plain"} 1.0' in text


def test_a_channel_hands_over_admitted_connections_only(pki, foreign_pki, caplog):
    caplog.set_level(logging.INFO, logger="overlay")
    key, cert = pki.controller()
    ctx = tlsconf.server_context(tlsconf.TlsFiles(str(key), str(cert), str(pki.switch_ca)))
    refusals = Refusals()
    channel = Channel("ovsdb", listeners.bind("127.0.0.1", 0, "[ovsdb] port"), ctx, False, refusals)
    seen = []
    server = OvsdbServer("br1", "br0", on_view=lambda v: None, on_down=lambda s: None)
    original = _Connection.run

    def run(conn):  # the OVSDB manager's connection: who it is, then its usual life
        seen.append((conn.peer_cn, conn.peer.startswith("127.0.0.1:")))
        conn.sock.sendall(b"hi")
        original(conn)

    _Connection.run = run
    thread = eventlet.spawn(channel.serve, server.connected)
    port = channel.sock.getsockname()[1]
    try:
        Peer(port, ctx=client_context(pki, foreign_pki.host("h3"))).wait()
        Peer(port, send=HELLO_OF13).wait()
        good = Peer(port, ctx=client_context(pki, pki.host("h3"))).wait()
    finally:
        _Connection.run = original
        thread.kill()
        channel.sock.close()
    assert seen == [("h3", True)] and good.got == b"hi"
    assert refusals.counts == {("ovsdb", "certificate"): 1, ("ovsdb", "plain"): 1}
    assert not any(r.exc_info for r in caplog.records)


def test_the_rest_api_over_https_through_eventlets_wsgi_server(pki, tmp_path):
    """[tls] https: the REST listener admits TLS only (no client certificate asked) and eventlet's
    WSGI server sees https; plain HTTP on it is refused and counted."""
    key, cert = pki.controller()
    ctx = tlsconf.server_context(tlsconf.TlsFiles(str(key), str(cert), None), verify_peers=False)
    refusals = Refusals()
    channel = Channel("rest", listeners.bind("127.0.0.1", 0, "wsapi_port"), ctx, False, refusals)
    schemes = []
    api = Api(Backend(str(tmp_path / "r.db")), names=HostNames("127.0.0.1"))

    def app(environ, start_response):
        schemes.append(environ["wsgi.url_scheme"])
        return api(environ, start_response)

    server = eventlet.spawn(eventlet.wsgi.server, channel.accepting(), app, log_output=False)
    port = channel.sock.getsockname()[1]
    request = f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.load_verify_locations(pki.controller_ca)  # a client checks the controller's CA
        answer = Peer(port, ctx=client, send=request).wait()
        plain = Peer(port, send=request).wait()
    finally:
        server.kill()
        channel.sock.close()
    assert answer.got.startswith(b"HTTP/1.1 200") and schemes == ["https"], answer.got
    assert plain.got == b"" and refusals.counts == {("rest", "plain"): 1}


def test_plain_http_reaches_the_rest_api_in_two_rounds_of_a_busy_event_loop(tmp_path):
    """Every green thread between the listener and the request waits a round of the event loop,
    and while 1,000 hosts converge a round is long: on plain TCP eventlet.wsgi accepts on the
    listening socket itself (a /v1/health went through five rounds before, 30 ms at the median)."""
    channel = Channel("rest", listeners.bind("127.0.0.1", 0, "wsapi_port"), None, True, Refusals())
    api = Api(Backend(str(tmp_path / "r.db")), names=HostNames("127.0.0.1"))
    server = eventlet.spawn(eventlet.wsgi.server, channel.accepting(), api, log_output=False)
    port = channel.sock.getsockname()[1]
    rounds, done = [0], []

    def busy() -> None:  # a round of the loop takes 10 ms of work here
        while not done:
            until = time.perf_counter() + 0.01
            while time.perf_counter() < until:
                pass
            rounds[0] += 1
            eventlet.sleep(0)

    def client() -> None:  # a thread of its own: the probe is not one of the loop's green threads
        with real_socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            seen.append(rounds[0])
            s.sendall(f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            answer = s.recv(4096)
            seen.append(rounds[0])
            seen.append(answer)

    real_socket = eventlet.patcher.original("socket")
    seen: list = []
    spinner = eventlet.spawn(busy)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the client thread gets the GIL within a fraction of a round
    try:
        thread = eventlet.patcher.original("threading").Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            eventlet.sleep(0.001)
    finally:
        sys.setswitchinterval(switch)
        done.append(True)
        spinner.wait()
        server.kill()
        channel.sock.close()
    assert len(seen) == 3 and seen[2].startswith(b"HTTP/1.1 200"), seen
    assert seen[1] - seen[0] <= 3, f"answered after {seen[1] - seen[0]} rounds of the loop"
