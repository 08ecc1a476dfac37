"""os-ken's OpenFlow handler serves the app's listener, and every Datapath knows the host its
certificate names (peer_cn) before it reads its first message."""

from __future__ import annotations

import eventlet
import os_ken.controller.ofp_handler as ofp_handler  # before os-ken's controller module: it cannot come first
from os_ken.controller import controller as osken_controller

from controller.shell import listeners, oskenpatch
from controller.shell.listeners import Channel, Refusals
from controller.southbound import tlsconf
from tests.unit.tls_peers import HELLO_OF13, Peer, client_context


class FakeDatapath:
    served: list[tuple[str | None, bytes]] = []

    def __init__(self, sock, address) -> None:
        self.socket, self.address = sock, address

    def serve(self) -> None:  # os-ken's: the hello exchange, then every message
        FakeDatapath.served.append((getattr(self, "peer_cn", "unset"), self.socket.recv(8)))
        self.socket.sendall(b"ok")

    def close(self) -> None:
        self.socket.close()


def test_the_openflow_handler_serves_our_listener_and_names_each_datapath(monkeypatch, pki):
    for name in ("ofproto_parser", "datapath_connection_factory"):  # put back after the test
        monkeypatch.setattr(osken_controller, name, getattr(osken_controller, name))
    monkeypatch.setattr(osken_controller, "Datapath", FakeDatapath)
    monkeypatch.setattr(ofp_handler, "OpenFlowController", ofp_handler.OpenFlowController)
    FakeDatapath.served = []
    counted = []
    oskenpatch.guard_openflow(counted.append)
    key, cert = pki.controller()
    ctx = tlsconf.server_context(tlsconf.TlsFiles(str(key), str(cert), str(pki.switch_ca)))
    refusals = Refusals()
    channel = Channel("openflow", listeners.bind("127.0.0.1", 0, "ofp_tcp_listen_port"), ctx, False, refusals)
    oskenpatch.serve_openflow(channel)
    thread = eventlet.spawn(ofp_handler.OpenFlowController())  # what OFPHandler.start() spawns
    port = channel.sock.getsockname()[1]
    try:
        switch = Peer(port, ctx=client_context(pki, pki.host("h5")), send=HELLO_OF13).wait()
        plain = Peer(port, send=HELLO_OF13).wait()
    finally:
        thread.kill()
        channel.sock.close()
    assert FakeDatapath.served == [("h5", HELLO_OF13)] and switch.got == b"ok"
    assert plain.got == b"" and refusals.counts == {("openflow", "plain"): 1}
    assert counted == []
