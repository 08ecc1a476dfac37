"""TLS admission of one connection, over real sockets, with certificates made by ovs-pki: who a
peer is (its CN as ovs-pki makes it), and what is refused and why."""

from __future__ import annotations

import eventlet
import pytest

from controller.southbound import tlsconf
from controller.southbound.tlsconf import Refused
from tests.unit.tls_peers import HELLO_OF13, Peer, client_context


def test_the_host_is_the_cn_up_to_ovs_pkis_id():
    assert tlsconf.host_of_cn("h7") == "h7"  # ovs-pki req -u h7
    assert tlsconf.host_of_cn("h7 id:7f5b975d-67f6-440a-8484-8bd3fd2ee0c1") == "h7"  # ovs-pki req h7
    assert tlsconf.host_of_cn("h7 id:Sun Dec  6 19:31:38 UTC 2026") == "h7"  # without uuidgen: a date
    assert tlsconf.host_of_cn("rack 4 id:x id:y") == "rack 4"
    cert = {"subject": ((("countryName", "US"),), (("organizationName", "Open vSwitch"),),
                        (("commonName", "h8 id:1234"),))}
    assert tlsconf.subject_cn(cert) == "h8 id:1234"
    assert tlsconf.subject_cn({"subject": ()}) is None and tlsconf.subject_cn(None) is None
    assert tlsconf.peer_cn(object()) is None  # a plain socket has no certificate


@pytest.fixture
def server(pki):
    sock = eventlet.listen(("127.0.0.1", 0))
    key, cert = pki.controller()
    ctx = tlsconf.server_context(tlsconf.TlsFiles(str(key), str(cert), str(pki.switch_ca)))
    yield sock, ctx
    sock.close()


def admitted(server, peer_kwargs, plain_ok=False, **admit_kwargs):
    """Connect a peer and admit its connection: (the connection or the Refused, the peer)."""
    sock, ctx = server
    peer = Peer(sock.getsockname()[1], **peer_kwargs)
    raw, _ = sock.accept()
    try:
        result = tlsconf.admit(raw, ctx, plain_ok, **admit_kwargs)
    except Refused as e:
        raw.close()
        return e, peer.wait()
    result.sendall(b"welcome")
    cn = tlsconf.peer_cn(result)
    peer.wait()
    result.close()
    return cn, peer


def test_a_host_with_a_certificate_of_our_ca_is_admitted_and_named_by_it(server, pki):
    cn, peer = admitted(server, {"ctx": client_context(pki, pki.host("h1"))})
    assert cn == "h1" and peer.got == b"welcome" and peer.error is None


def test_a_certificate_of_another_ca_is_refused(server, pki, foreign_pki):
    refused, peer = admitted(server, {"ctx": client_context(pki, foreign_pki.host("h1"))})
    assert isinstance(refused, Refused) and refused.reason == "certificate", refused
    assert peer.got != b"welcome"


def test_a_host_without_a_certificate_is_refused(server, pki):
    refused, _ = admitted(server, {"ctx": client_context(pki, None)})
    assert isinstance(refused, Refused) and refused.reason == "certificate", refused


def test_plain_tcp_is_refused_where_tls_is_required(server):
    refused, peer = admitted(server, {"send": HELLO_OF13})
    assert isinstance(refused, Refused) and refused.reason == "plain"
    assert peer.got == b""  # closed, nothing said


def test_a_silent_peer_gets_a_bounded_time_to_start_its_handshake(server):
    refused, _ = admitted(server, {"hold": 1.0}, handshake_timeout=0.2)
    assert isinstance(refused, Refused) and refused.reason == "timeout"


def test_where_plain_tcp_is_allowed_each_peer_is_taken_as_it_speaks(server, pki):
    cn, peer = admitted(server, {"send": HELLO_OF13}, plain_ok=True)  # an OpenFlow switch on tcp:
    assert cn is None and peer.got == b"welcome"
    cn, peer = admitted(server, {"hold": 0.5}, plain_ok=True, plain_after=0.1)  # ovsdb-server waits for us
    assert cn is None and peer.got == b"welcome"
    cn, peer = admitted(server, {"ctx": client_context(pki, pki.host("h2"))}, plain_ok=True)
    assert cn == "h2" and peer.got == b"welcome"
    refused, _ = admitted(server, {"ctx": client_context(pki, None)}, plain_ok=True)
    assert isinstance(refused, Refused) and refused.reason == "certificate"  # TLS is still verified


def test_no_tls_configured_admits_as_is(server):
    sock, _ = server
    peer = Peer(sock.getsockname()[1], send=HELLO_OF13)
    raw, _ = sock.accept()
    assert tlsconf.admit(raw, None, plain_ok=True) is raw
    raw.close()
    peer.wait()


def test_bad_files_are_named(tmp_path, pki):
    key, cert = pki.controller()
    with pytest.raises(ValueError, match="private_key .*nope"):
        tlsconf.server_context(tlsconf.TlsFiles(str(tmp_path / "nope"), str(cert), str(pki.switch_ca)))
    with pytest.raises(ValueError, match="ca_certificate .*missing"):
        tlsconf.server_context(tlsconf.TlsFiles(str(key), str(cert), str(tmp_path / "missing")))
    other_key, _ = pki.host("h9")
    with pytest.raises(ValueError, match="certificate .* with private_key"):  # a key that is not the cert's
        tlsconf.server_context(tlsconf.TlsFiles(str(other_key), str(cert), str(pki.switch_ca)))
