"""The OVSDB manager against a fake ovsdb-server on a socket pair: monitor, echo, views, bad input."""

import json
import socket

import eventlet

from controller.ovsdb import OvsdbServer, _Connection
from tests.unit.test_ovsdb_model import replica


def run_connection(messages: list[bytes]) -> tuple[list, list, list[dict]]:
    views, downs = [], []
    server = OvsdbServer("127.0.0.1", 0, "br1", "br0", views.append, downs.append)
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
