"""The registry of tunnel kinds, and that everything that names a kind reads it."""

import pytest

from controller.northbound.openapi import SCHEMAS
from controller.pipeline import tunnel_kinds as tunnels
from controller.shell import config
from controller.shell.config import defaults
from controller.southbound import ovsdb_model as om
from tests.unit.confs import conf_from
from tests.unit.southbound.test_ovsdb_model import replica

EXPECTED = {"vxlan": ("vx", "vxlan", 4789), "gre": ("gre", "gre", None), "geneve": ("gnv", "geneve", 6081)}


def test_the_registry_holds_the_known_kinds_with_their_wire_facts():
    assert {k.name: (k.prefix, k.ovsdb_type, k.udp_port) for k in tunnels.KINDS} == EXPECTED
    assert tunnels.NAMES == tuple(EXPECTED)
    assert tunnels.DEFAULT in tunnels.NAMES


def test_names_prefixes_and_types_are_unique():
    for attr in ("name", "prefix", "ovsdb_type"):
        values = [getattr(k, attr) for k in tunnels.KINDS]
        assert len(set(values)) == len(values), attr


@pytest.mark.parametrize("kind", tunnels.KINDS, ids=tunnels.NAMES)
def test_port_names_fit_ovs_and_tell_kind_and_peer_apart(kind):
    longest = kind.port_name("255.255.255.255")
    assert len(longest) < 16 and len(kind.flow_port_name) < 16
    assert kind.port_name("10.99.0.2") != kind.port_name("10.99.0.3")
    others = [k.port_name("10.99.0.2") for k in tunnels.KINDS if k is not kind]
    assert kind.port_name("10.99.0.2") not in others


def test_an_unknown_kind_is_an_error_everywhere_never_a_fallback():
    with pytest.raises(tunnels.UnknownTunnelKind, match="stt"):
        tunnels.get("stt")
    with pytest.raises(ValueError):
        defaults(tunnel_type="stt")
    with pytest.raises(ValueError):
        om.tunnel_name("stt", "10.99.0.2")
    assert tunnels.of_interface("stt") is None and tunnels.of_interface("patch") is None


def test_config_and_openapi_offer_exactly_the_registry():
    opt = next(o for o in config.OVERLAY_OPTS if o.name == "tunnel-type")
    assert list(opt.type.choices) == list(tunnels.NAMES) and opt.default == tunnels.DEFAULT
    tunnel_schema = SCHEMAS["Tunnel"]
    assert tunnel_schema["properties"]["type"]["enum"] == list(tunnels.NAMES)


def test_the_config_file_refuses_an_unknown_kind(tmp_path):
    conf = conf_from(tmp_path / "overlay.conf", "[overlay]\ntunnel_type = stt\n")
    with pytest.raises(ValueError):
        config.settings(conf)


@pytest.mark.parametrize("kind", tunnels.KINDS, ids=tunnels.NAMES)
def test_every_kind_is_made_and_read_back_over_ovsdb(kind):
    ops = om.add_tunnels_txn("b1", kind.name, "10.99.0.1", ["10.99.0.2"])
    (row,) = [o["row"] for o in ops if o["op"] == "insert" and o["table"] == "Interface"]
    assert row["type"] == kind.ovsdb_type and row["name"] == kind.port_name("10.99.0.2")
    view = om.host_view(replica([(kind.ovsdb_type, "10.99.0.2", True)]), "br1", "br0")
    assert [(p.type, p.remote_ip) for p in view.tunnels] == [(kind.name, "10.99.0.2")]


def test_the_lab_and_the_demo_take_their_kinds_from_the_registry():
    from lab import demo, netlab

    assert netlab.TUNNEL_TYPES == tuple(k.ovsdb_type for k in tunnels.KINDS)
    assert [demo._parse(["--tunnel-type", k]).tunnel_type for k in tunnels.NAMES] == list(tunnels.NAMES)
    with pytest.raises(SystemExit):
        demo._parse(["--tunnel-type", "stt"])
