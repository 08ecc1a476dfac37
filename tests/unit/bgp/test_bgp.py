"""The speaker's thin shell: config, and os-ken's EVPN paths decoded into values (no BGP session)."""

import logging
import socket
from types import SimpleNamespace

import pytest
from os_ken.lib import sockopt
from os_ken.lib.packet import bgp as pkt
from oslo_config import cfg

from controller.bgp import speaker as bgp
from controller.bgp.evpn import Received
from controller.core.core import Core
from controller.shell import config
from controller.shell.config import defaults


def path(nlri, nexthop: str = "10.99.0.50", *attrs) -> SimpleNamespace:
    by_type = {a.type: a for a in attrs}
    return SimpleNamespace(nlri=nlri, nexthop=nexthop, source=SimpleNamespace(ip_address="10.98.0.9"),
                           get_pattr=by_type.get)


def communities(*cs) -> pkt.BGPPathAttributeExtendedCommunities:
    return pkt.BGPPathAttributeExtendedCommunities(communities=list(cs))


RT = pkt.BGPTwoOctetAsSpecificExtendedCommunity(subtype=2, as_number=65000, local_administrator=5001)


def test_a_mac_ip_route_is_decoded_with_its_vni_route_targets_and_mobility_sequence():
    nlri = pkt.EvpnMacIPAdvertisementNLRI(route_dist="10.99.0.50:2", ethernet_tag_id=0,
                                          mac_addr="02:00:00:00:05:50", ip_addr="192.168.1.50", vni=5001)
    mm = pkt.BGPEvpnMacMobilityExtendedCommunity(subtype=0, flags=0, sequence_number=3)
    got = bgp.decode(path(nlri, "10.99.0.50", communities(RT, mm)), False)
    assert got == Received("10.98.0.9", 2, "10.99.0.50:2", 5001, "10.99.0.50", ("65000:5001",),
                           mac="02:00:00:00:05:50", ip="192.168.1.50", seq=3)


def test_an_inclusive_multicast_route_names_its_originator_as_the_vtep():
    nlri = pkt.EvpnInclusiveMulticastEthernetTagNLRI(route_dist="10.99.0.50:2", ethernet_tag_id=0,
                                                     ip_addr="10.99.0.50")
    pmsi = pkt.BGPPathAttributePmsiTunnel(pmsi_flags=0, tunnel_type=6, vni=5001,
                                          tunnel_id=pkt.PmsiTunnelIdIngressReplication("10.99.0.50"))
    got = bgp.decode(path(nlri, "10.99.0.50", communities(RT), pmsi), True)
    assert got == Received("10.98.0.9", 3, "10.99.0.50:2", 5001, "10.99.0.50", ("65000:5001",), withdraw=True)


def test_other_route_types_are_not_ours():
    nlri = pkt.EvpnEthernetSegmentNLRI(route_dist="10.99.0.50:2", esi=pkt.EvpnArbitraryEsi(b"\0" * 9),
                                       ip_addr="10.99.0.50")
    assert bgp.decode(path(nlri), False) is None


def test_neighbors_are_ip_colon_as_and_a_bad_one_is_an_error():
    assert bgp.parse_neighbors(["10.0.0.1:65000", " 10.0.0.2:65001"]) == [("10.0.0.1", 65000), ("10.0.0.2", 65001)]
    with pytest.raises(ValueError, match="ip:remote_as"):
        bgp.parse_neighbors(["10.0.0.1"])


def conf(tmp_path, text: str) -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    config.register(c)
    (tmp_path / "o.conf").write_text(text)
    c(["--config-file", str(tmp_path / "o.conf")])
    return c


def test_bgp_is_off_without_local_as_and_needs_a_router_id_with_a_wildcard_listener(tmp_path):
    core = Core(defaults())
    assert bgp.from_conf(conf(tmp_path, "[bgp]\nneighbors = 10.0.0.1:65000\n"), core, print, print, float) is None
    assert core.changed is None  # nobody watches the core
    with pytest.raises(ValueError, match="router_id"):
        bgp.from_conf(conf(tmp_path, "[bgp]\nlocal_as = 65000\n"), core, print, print, float)
    sp = bgp.from_conf(conf(tmp_path, "[bgp]\nlocal_as = 65000\nrouter_id = 10.98.0.1\n"
                                      "neighbors = 10.98.0.9:65000\nroute_targets = blue:65000:100\n"),
                       core, print, print, float)
    assert sp is not None and sp.neighbors == [("10.98.0.9", 65000)] and core.changed == set()
    assert sp.policy.rt("blue", 5001) == "65000:100" and sp.policy.rt("red", 5002) == "65000:5002"


def test_the_md5_password_comes_from_its_file_and_goes_to_every_neighbour(tmp_path, caplog, monkeypatch):
    secret = tmp_path / "bgp.password"
    secret.write_text("s3cret-md5\n")
    secret.chmod(0o640)
    base = "[bgp]\nlocal_as = 65000\nrouter_id = 10.98.0.1\nneighbors = 10.98.0.9:65000,10.98.0.8:65001\n"
    sp = bgp.from_conf(conf(tmp_path, base + f"password_file = {secret}\n"), Core(defaults()), print, print, float)
    assert sp.password == b"s3cret-md5" and "readable by group or others" in caplog.text
    added = []

    class Speaker:  # os-ken's BGPSpeaker, as start() makes it
        def __init__(self, **kwargs) -> None:
            pass

        def neighbor_add(self, ip, asn, **kwargs) -> None:
            added.append((ip, kwargs.get("password")))
            with socket.socket() as sock:  # what os-ken's BGP core does with it, on its listening socket
                sockopt.set_tcp_md5sig(sock, ip, kwargs["password"])

    from os_ken.services.protocols.bgp import bgpspeaker
    monkeypatch.setattr(bgpspeaker, "BGPSpeaker", Speaker)
    try:
        sp.start()
    finally:  # start() hooks the speaker into os-ken's peer log: not beyond this test
        logging.getLogger(bgp.OSKEN_PEER_LOG).removeFilter(sp.looped)
    assert added == [("10.98.0.9", b"s3cret-md5"), ("10.98.0.8", b"s3cret-md5")]  # bytes: setsockopt's
    assert "s3cret" not in caplog.text
    assert bgp.from_conf(conf(tmp_path, base), Core(defaults()), print, print, float).password is None
    secret.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        bgp.from_conf(conf(tmp_path, base + f"password_file = {secret}\n"), Core(defaults()), print, print, float)


def test_evpn_is_refused_with_other_tunnel_kinds(tmp_path):
    with pytest.raises(ValueError, match="tunnel_type = vxlan"):
        bgp.from_conf(conf(tmp_path, "[overlay]\ntunnel_type = gre\n[bgp]\nlocal_as = 65000\nrouter_id = 10.0.0.1\n"),
                      Core(defaults()), print, print, float)
