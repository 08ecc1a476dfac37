"""The OVSDB manager against a fake ovsdb-server on a socket pair: monitor, echo, views, bad input."""

import json
import logging
import socket
import time

import eventlet

from controller.southbound import ovsdb_model as om
from controller.southbound.ovsdb_server import OvsdbServer, _Connection
from tests.unit.southbound.test_ovsdb_model import replica


def run_connection(messages: list[bytes]) -> tuple[list, list, list[dict]]:
    views, downs = [], []
    server = OvsdbServer("br1", "br0", lambda v, p: views.append(v), downs.append)
    ours, theirs = socket.socketpair()
    conn = _Connection(server, eventlet.green.socket.socket(fileno=ours.detach()), "test")
    for m in messages:
        theirs.sendall(m)
    theirs.shutdown(socket.SHUT_WR)
    conn.run()
    sent = theirs.recv(65536).decode()
    theirs.close()
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(sent):
        msg, i = decoder.raw_decode(sent, i)
        out.append(msg)
    return views, downs, out


def initial_rows() -> dict:
    r = replica([("vxlan", "10.99.0.2", True)])
    return {table: {uuid: {"new": {k: _encode(v, k in REFS) for k, v in row.items()}} for uuid, row in rows.items()}
            for table, rows in r.items()}


REFS = ("bridges", "ports", "interfaces")  # columns of row references: sets of ["uuid", ...]


def _encode(value, ref=False):
    if ref:
        return ["set", [["uuid", v] for v in (value if isinstance(value, list) else [value])]]
    if isinstance(value, dict):
        return ["map", [[k, v] for k, v in value.items()]]
    if isinstance(value, list):
        return ["set", [_encode(v) for v in value]]
    return value


def test_monitor_reply_becomes_a_view_and_echo_is_answered():
    reply = json.dumps({"id": "monitor", "result": initial_rows(), "error": None})
    echo = json.dumps({"id": "e1", "method": "echo", "params": []})
    # split a message across two reads to exercise the incremental decoder
    views, downs, sent = run_connection([reply[:50].encode(), (reply[50:] + echo).encode()])
    assert sent[0]["method"] == "monitor"
    assert {"id": "e1", "result": [], "error": None} in sent
    assert [v.system_id for v in views] == ["h1"] and views[0].tunnels[0].remote_ip == "10.99.0.2"
    assert downs == ["h1"]  # the peer hung up


def test_garbage_drops_the_connection_without_crashing():
    views, downs, sent = run_connection([b'{"id": "monitor", "result": {"Bridge": 5}}'])
    assert views == [] and downs == []


def run_in_steps(messages: list[bytes], downs: list | None = None) -> tuple[OvsdbServer, list]:
    """Like run_connection, but each message is read and reported before the next is sent."""
    views: list = []
    downs = [] if downs is None else downs
    server = OvsdbServer("br1", "br0", lambda v, p: views.append(v), downs.append)
    ours, theirs = socket.socketpair()
    conn = _Connection(server, eventlet.green.socket.socket(fileno=ours.detach()), "test")
    reports = []
    report = conn._report
    conn._report = lambda: (report(), reports.append(1))
    thread = eventlet.spawn(conn.run)
    for i, m in enumerate(messages, 1):
        theirs.sendall(m)
        deadline = time.monotonic() + 5
        while len(reports) < i:
            assert time.monotonic() < deadline, "the connection did not read the message"
            eventlet.sleep(0.001)
    theirs.close()
    thread.wait()
    return server, views


def _update(table: str, uuid: str, row: dict) -> bytes:
    return json.dumps({"id": None, "method": "update",
                       "params": [None, {table: {uuid: {"new": {k: _encode(v) for k, v in row.items()}}}}]}).encode()


def test_a_host_without_system_id_is_listed_until_it_has_one_and_logged_once(caplog, monkeypatch):
    rows = initial_rows()
    rows["Open_vSwitch"]["o"]["new"]["external_ids"] = ["map", [["overlay-ip", "10.99.0.1"]]]
    reply = json.dumps({"id": "monitor", "result": rows, "error": None}).encode()
    refusals = []
    original = OvsdbServer._refused

    def spy(self, conn, reason):
        original(self, conn, reason)
        refusals.append(dict(self.unidentified))
    monkeypatch.setattr(OvsdbServer, "_refused", spy)
    caplog.set_level(logging.INFO, logger="controller.southbound.ovsdb_server")
    server, views = run_in_steps([
        reply,
        _update("Interface", "it0", {"ofport": 9}),  # another update, still no system-id
        _update("Open_vSwitch", "o", {"external_ids": {"system-id": "h1", "overlay-ip": "10.99.0.1"}}),
    ])
    assert refusals == [{"test": om.NO_SYSTEM_ID}, {}]  # listed, then joined
    assert server.unidentified == {}
    assert [v.system_id for v in views] == ["h1"]
    assert sum("not joined" in r.message for r in caplog.records) == 1


def test_a_host_missing_its_overlay_ip_is_logged_once_and_when_fixed(caplog):
    rows = initial_rows()
    rows["Open_vSwitch"]["o"]["new"]["external_ids"] = ["map", [["system-id", "h1"]]]
    reply = json.dumps({"id": "monitor", "result": rows, "error": None}).encode()
    caplog.set_level(logging.INFO, logger="controller.southbound.ovsdb_server")
    _, views = run_in_steps([
        reply,
        _update("Interface", "it0", {"ofport": 9}),  # a new view, the same problem: no new warning
        _update("Open_vSwitch", "o", {"external_ids": {"system-id": "h1", "overlay-ip": "10.99.0.1"}}),
    ])
    assert [v.problems for v in views] == [("no external_ids:overlay-ip (its underlay IPv4 address)",)] * 2 + [()]
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["host h1 (test) not joined: no external_ids:overlay-ip (its underlay IPv4 address)"]
    assert any("h1 (test) can join now" in r.message for r in caplog.records)


def test_an_unidentified_connection_is_no_longer_listed_once_it_closes(monkeypatch):
    rows = initial_rows()
    rows["Open_vSwitch"]["o"]["new"]["external_ids"] = ["map", []]
    seen = []
    original = OvsdbServer._refused

    def spy(self, conn, reason):
        original(self, conn, reason)
        seen.append(dict(self.unidentified))
    monkeypatch.setattr(OvsdbServer, "_refused", spy)
    server, views = run_in_steps([json.dumps({"id": "monitor", "result": rows, "error": None}).encode()])
    assert seen == [{"test": om.NO_SYSTEM_ID}] and views == []
    assert server.unidentified == {}


def test_a_host_that_loses_its_system_id_is_down_and_listed_by_its_connection(monkeypatch):
    reply = json.dumps({"id": "monitor", "result": initial_rows(), "error": None}).encode()
    seen, downs = [], []
    original = OvsdbServer._refused

    def spy(self, conn, reason):
        original(self, conn, reason)
        seen.append((dict(self.unidentified), dict(self.by_system), list(downs)))
    monkeypatch.setattr(OvsdbServer, "_refused", spy)
    _, views = run_in_steps([reply, _update("Open_vSwitch", "o", {"external_ids": {"overlay-ip": "10.99.0.1"}})],
                            downs)
    assert [v.system_id for v in views] == ["h1"]
    assert seen == [({"test": om.NO_SYSTEM_ID}, {}, ["h1"])]
    assert downs == ["h1"]  # once: closing the connection later does not report it again


# ---- two connections claiming one host (controller/core/identity.py decides; the server acts) ----

def _connect(server: OvsdbServer, peer: str):
    ours, theirs = socket.socketpair()
    conn = _Connection(server, eventlet.green.socket.socket(fileno=ours.detach()), peer)
    return conn, theirs, eventlet.spawn(conn.run)


def _messages(sock: socket.socket, timeout: float = 2.0) -> list[dict]:
    """Everything the server sent on sock until it stops for 0.1 s (or closes)."""
    sock.settimeout(0.1)
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    decoder, out, text, i = json.JSONDecoder(), [], data.decode(), 0
    while i < len(text):
        msg, i = decoder.raw_decode(text, i)
        out.append(msg)
    return out


def _wait(cond, what: str) -> None:
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline, what
        eventlet.sleep(0.005)


def two_claims(monkeypatch, probe_s: float = 5.0):
    """h1 connected from 10.0.0.1; a second connection from 10.0.0.66 claims h1 too."""
    monkeypatch.setattr("controller.southbound.ovsdb_server.PROBE_S", probe_s)
    views, downs, claims = [], [], []

    def claim(system_id, peer, live):
        claims.append((system_id, peer.address, live))
        return "in_use" if live else None
    server = OvsdbServer("br1", "br0", lambda v, p: views.append((v.system_id, p.address)), downs.append,
                         claim=claim)
    reply = json.dumps({"id": "monitor", "result": initial_rows(), "error": None}).encode()
    real, real_sock, real_thread = _connect(server, "10.0.0.1:5000")
    real_sock.sendall(reply)
    _wait(lambda: views, "the real host's view")
    _messages(real_sock, 0.2)  # its monitor request
    rogue, rogue_sock, rogue_thread = _connect(server, "10.0.0.66:6000")
    rogue_sock.sendall(reply)
    rogue_thread.wait()  # refused: its connection ends
    return server, real, real_sock, real_thread, rogue_sock, views, downs, claims


def test_a_second_connection_claiming_a_live_host_is_closed_and_the_host_is_left_alone(monkeypatch):
    server, real, real_sock, real_thread, rogue_sock, views, downs, claims = two_claims(monkeypatch)
    assert claims == [("h1", "10.0.0.1:5000", False), ("h1", "10.0.0.66:6000", True)]
    assert rogue_sock.recv(65536) and rogue_sock.recv(65536) == b""  # its monitor request, then closed
    assert server.by_system["h1"] is real and real.open
    assert views == [("h1", "10.0.0.1:5000")] and downs == []
    echo, = _messages(real_sock)  # asked whether it is still there, nothing else
    assert echo["method"] == "echo"
    real_sock.sendall(json.dumps({"id": echo["id"], "result": [], "error": None}).encode())
    real_sock.sendall(_update("Interface", "it0", {"ofport": 9}))  # it goes on as before
    _wait(lambda: len(views) == 2, "the real host's next view")
    assert downs == [] and real.open
    real_sock.close()
    real_thread.wait()
    assert downs == ["h1"]


def test_a_host_connection_that_does_not_answer_the_echo_is_closed(monkeypatch):
    server, real, real_sock, real_thread, rogue_sock, views, downs, claims = two_claims(monkeypatch, probe_s=0.05)
    real_thread.wait()  # silent: closed after PROBE_S
    assert downs == ["h1"] and "h1" not in server.by_system
    real_sock.close()
