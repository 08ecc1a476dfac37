"""Fake control-channel peers on loopback: an OpenFlow 1.3 switch and an OVSDB host.

They speak just enough of each protocol to be served by the real controller (handshake,
echo, barrier, multipart, monitor, transact), and can send anything else as raw bytes: the
garbage tests use them to attack the controller and to check that a well-behaved peer on
the same controller keeps being served. Plain threads and sockets, no eventlet.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from typing import Any

OFP_VERSION = 0x04
OFP_HEADER = struct.Struct("!BBHI")
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY, PACKET_IN, FLOW_REMOVED = 5, 6, 10, 11
MULTIPART_REQUEST, MULTIPART_REPLY, BARRIER_REQUEST, BARRIER_REPLY = 18, 19, 20, 21
OFPMP_FLOW, OFPMP_AGGREGATE, OFPMP_PORT_DESC = 1, 2, 13


def of_msg(msg_type: int, body: bytes = b"", xid: int = 0, length: int | None = None,
           version: int = OFP_VERSION) -> bytes:
    """One OpenFlow message; `length` overrides the header's length field (to lie about it)."""
    return OFP_HEADER.pack(version, msg_type, 8 + len(body) if length is None else length, xid) + body


def multipart_reply(mp_type: int, body: bytes = b"", xid: int = 0, flags: int = 0) -> bytes:
    return of_msg(MULTIPART_REPLY, struct.pack("!HH4x", mp_type, flags) + body, xid)


def packet_in(frame: bytes, table_id: int = 0, in_port: int = 1, xid: int = 0) -> bytes:
    """An OFPT_PACKET_IN (no buffer, reason no-match) carrying `frame`, matched on in_port."""
    oxm = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)  # OXM_OF_IN_PORT
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    match += b"\0" * (-len(match) % 8)
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(frame), 0, table_id, 0) + match + b"\0\0" + frame
    return of_msg(PACKET_IN, body, xid)


def flow_removed(table_id: int, oxms: bytes, reason: int = 0, priority: int = 10) -> bytes:
    """An OFPT_FLOW_REMOVED whose match is the given OXM TLVs."""
    match = struct.pack("!HH", 1, 4 + len(oxms)) + oxms
    match += b"\0" * (-len(match) % 8)
    body = struct.pack("!QHBBIIHHQQ", 0, priority, reason, table_id, 0, 0, 60, 0, 0, 0) + match
    return of_msg(FLOW_REMOVED, body)


def oxm(field: int, value: bytes, mask: bytes = b"") -> bytes:
    """An OpenFlow-basic OXM TLV (e.g. field 6, vlan_vid), masked when mask is given."""
    return struct.pack("!I", (0x8000 << 16) | (field << 9) | (bool(mask) << 8) | (len(value) + len(mask))) \
        + value + mask



def _close(sock: socket.socket, reader: threading.Thread) -> None:
    """Shut a fake peer's connection and wait for its reader to see it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    if reader.is_alive():
        reader.join(5)

class FakeSwitch:
    """An OpenFlow 1.3 switch with datapath id `dpid`: answers what a controller asks of it."""

    def __init__(self, address: tuple[str, int], dpid: int) -> None:
        self.dpid = dpid
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()
        self._xids = itertools.count(0x10000)
        self._echoes: dict[int, threading.Event] = {}
        self.received: dict[int, int] = {}  # message type -> count
        self.closed = threading.Event()  # the controller closed the connection
        self.ready = threading.Event()  # features and port descriptions answered
        self._reader = threading.Thread(target=self._read, name=f"fake-switch-{dpid:x}", daemon=True)

    def start(self, timeout: float = 10.0) -> FakeSwitch:
        self.send(of_msg(HELLO))
        self._reader.start()
        if not self.ready.wait(timeout):
            raise TimeoutError(f"fake switch {self.dpid:x}: no handshake in {timeout} s")
        return self

    def send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def echo(self, timeout: float = 2.0) -> float:
        """Round-trip time of an echo request answered by the controller; raises on no answer."""
        xid = next(self._xids)
        done = self._echoes[xid] = threading.Event()
        start = time.monotonic()
        self.send(of_msg(ECHO_REQUEST, b"ping", xid))
        if not done.wait(timeout):
            raise TimeoutError(f"fake switch {self.dpid:x}: echo not answered in {timeout} s")
        return time.monotonic() - start

    def close(self) -> None:
        _close(self.sock, self._reader)

    def _recv_exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _read(self) -> None:
        try:
            while True:
                header = self._recv_exact(8)
                if header is None:
                    break
                _, msg_type, length, xid = OFP_HEADER.unpack(header)
                body = self._recv_exact(length - 8) if length > 8 else b""
                if body is None:
                    break
                self.received[msg_type] = self.received.get(msg_type, 0) + 1
                self._answer(msg_type, xid, body)
        except OSError:
            pass
        finally:
            self.closed.set()

    def _answer(self, msg_type: int, xid: int, body: bytes) -> None:
        if msg_type == ECHO_REQUEST:
            self.send(of_msg(ECHO_REPLY, body, xid))
        elif msg_type == ECHO_REPLY and xid in self._echoes:
            self._echoes.pop(xid).set()
        elif msg_type == FEATURES_REQUEST:
            self.send(of_msg(FEATURES_REPLY, struct.pack("!QIBB2xII", self.dpid, 0, 254, 0, 0x4F, 0), xid))
        elif msg_type == BARRIER_REQUEST:
            self.send(of_msg(BARRIER_REPLY, b"", xid))
        elif msg_type == MULTIPART_REQUEST:
            mp_type = struct.unpack_from("!H", body)[0]
            # an aggregate reply has a body even when nothing matched (the controller polls it)
            self.send(multipart_reply(mp_type, struct.pack("!QQI4x", 0, 0, 0) if mp_type == OFPMP_AGGREGATE else b"",
                                      xid))
            if mp_type == OFPMP_PORT_DESC:
                self.ready.set()


class FakeOvsdbHost:
    """An OVSDB server that dialled the controller's manager port, with one host's rows.

    It answers the controller's monitor with an Open_vSwitch row (system-id, overlay-ip) and a
    bridge `br1` with datapath id `dpid` (no overlay-ip: no tunnels are made toward it), answers
    echo and transact, and can send raw bytes.
    """

    def __init__(self, address: tuple[str, int], system_id: str, overlay_ip: str | None, dpid: int) -> None:
        self.system_id, self.overlay_ip, self.dpid = system_id, overlay_ip, dpid
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.settimeout(None)
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._echoes: dict[str, threading.Event] = {}
        self.monitored = threading.Event()
        self.closed = threading.Event()
        self.transacts = 0
        self.muted = False  # after attack(): answer no more requests (they would land inside the garbage)
        self._reader = threading.Thread(target=self._read, name=f"fake-ovsdb-{system_id}", daemon=True)

    def start(self, timeout: float = 10.0) -> FakeOvsdbHost:
        self._reader.start()
        if not self.monitored.wait(timeout):
            raise TimeoutError(f"fake OVSDB host {self.system_id}: no monitor request in {timeout} s")
        return self

    def rows(self) -> dict[str, Any]:
        """The <table-updates> of this host's initial monitor reply."""
        ids = ["map", [["system-id", self.system_id]] + ([["overlay-ip", self.overlay_ip]] if self.overlay_ip else [])]
        return {
            "Open_vSwitch": {"0000-root": {"new": {"external_ids": ids, "bridges": ["uuid", "0000-br1"]}}},
            "Bridge": {"0000-br1": {"new": {"name": "br1", "datapath_id": f"{self.dpid:016x}",
                                            "ports": ["set", []]}}},
        }

    def send(self, data: bytes | dict) -> None:
        raw = json.dumps(data).encode() if isinstance(data, dict) else data
        with self._send_lock:
            self.sock.sendall(raw)

    def attack(self, data: bytes) -> None:
        """Send raw bytes and stop answering the controller's requests."""
        self.muted = True
        self.send(data)

    def echo(self, timeout: float = 2.0) -> float:
        msg_id = f"echo-{next(self._ids)}"
        done = self._echoes[msg_id] = threading.Event()
        start = time.monotonic()
        self.send({"method": "echo", "params": [msg_id], "id": msg_id})
        if not done.wait(timeout):
            raise TimeoutError(f"fake OVSDB host {self.system_id}: echo not answered in {timeout} s")
        return time.monotonic() - start

    def close(self) -> None:
        _close(self.sock, self._reader)

    def _read(self) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data.decode()
                while True:
                    buf = buf.lstrip()
                    try:
                        msg, end = decoder.raw_decode(buf)
                    except json.JSONDecodeError:
                        break
                    buf = buf[end:]
                    self._answer(msg)
        except OSError:
            pass
        finally:
            self.closed.set()

    def _answer(self, msg: dict) -> None:
        method, msg_id = msg.get("method"), msg.get("id")
        if method is not None and self.muted:
            return
        if method == "monitor":
            self.send({"id": msg_id, "result": self.rows(), "error": None})
            self.monitored.set()
        elif method == "echo":
            self.send({"id": msg_id, "result": msg.get("params", []), "error": None})
        elif method == "transact":
            self.transacts += 1
            self.send({"id": msg_id, "result": [{} for _ in msg["params"][1:]], "error": None})
        elif method is None and msg_id in self._echoes:
            self._echoes.pop(msg_id).set()
