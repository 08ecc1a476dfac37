"""OVSDB decoding into HostViews, and the transactions that make tunnels."""

import pytest

from controller.southbound import ovsdb_model as om


def replica(tunnels=(), tag_ports=()):
    rows = {
        "Open_vSwitch": {"o": {"new": {"external_ids": ["map", [["system-id", "h1"],
                                                                 ["overlay-ip", "10.99.0.1"]]],
                                       "bridges": ["set", [["uuid", "b1"], ["uuid", "b0"]]]}}},
        "Bridge": {
            "b1": {"new": {"name": "br1", "datapath_id": "00000000000000a1",
                           "ports": ["set", [["uuid", "p1"]] + [["uuid", f"pt{i}"] for i in range(len(tunnels))]]}},
            "b0": {"new": {"name": "br0", "ports": ["set", [["uuid", f"pv{i}"] for i in range(len(tag_ports))]]}},
        },
        "Port": {"p1": {"new": {"name": "patch-int", "interfaces": ["uuid", "i1"], "tag": ["set", []]}}},
        "Interface": {"i1": {"new": {"name": "patch-int", "type": "patch", "ofport": 1,
                                     "options": ["map", [["peer", "patch-tun"]]]}}},
    }
    for i, (kind, ip, managed) in enumerate(tunnels):
        ext = ["map", [[om.MANAGED_KEY, "true"]]] if managed else ["map", []]
        rows["Port"][f"pt{i}"] = {"new": {"name": f"t{i}", "interfaces": ["uuid", f"it{i}"], "external_ids": ext}}
        rows["Interface"][f"it{i}"] = {"new": {"name": f"t{i}", "type": kind, "ofport": 5 + i,
                                               "options": ["map", [["remote_ip", ip], ["key", "flow"]]]}}
    for i, tag in enumerate(tag_ports):
        rows["Port"][f"pv{i}"] = {"new": {"name": f"vm{i}", "interfaces": ["uuid", f"iv{i}"], "tag": tag}}
        rows["Interface"][f"iv{i}"] = {"new": {"name": f"vm{i}", "type": "", "external_ids": [
            "map", [["attached-mac", f"02:AA:00:00:00:0{i}"]]]}}
    out: om.Replica = {}
    om.apply_update(out, rows)
    return out


def test_host_view_reads_identity_patch_tunnels_and_members():
    view = om.host_view(replica([("vxlan", "10.99.0.2", True), ("gre", "10.99.0.3", False)], [10, ["set", []]]),
                        "br1", "br0")
    assert (view.system_id, view.overlay_ip, view.datapath_id, view.patch_ofport) == ("h1", "10.99.0.1", 0xA1, 1)
    assert [(p.type, p.remote_ip, p.ofport, p.managed) for p in view.tunnels] == [
        ("vxlan", "10.99.0.2", 5, True), ("gre", "10.99.0.3", 6, False)]
    assert view.member_vlans == frozenset({10})
    assert view.attached == (("02:aa:00:00:00:00", "vm0"), ("02:aa:00:00:00:01", "vm1"))


def test_no_system_id_no_view_and_bad_overlay_ip_is_ignored():
    r = replica()
    r["Open_vSwitch"]["o"]["external_ids"] = {"overlay-ip": "10.0.0.1"}
    assert om.host_view(r, "br1", "br0") is None
    r["Open_vSwitch"]["o"]["external_ids"] = {"system-id": "h", "overlay-ip": "not-an-ip"}
    assert om.host_view(r, "br1", "br0").overlay_ip is None


def test_updates_modify_and_delete_rows():
    r = replica([("vxlan", "10.99.0.2", True)])
    om.apply_update(r, {"Interface": {"it0": {"old": {}, "new": {"ofport": 9}}}})
    assert om.host_view(r, "br1", "br0").tunnels[0].ofport == 9
    om.apply_update(r, {"Bridge": {"b1": {"old": {}}}})
    assert om.host_view(r, "br1", "br0").datapath_id is None


def test_tunnel_names_are_short_and_unique_per_peer():
    assert om.tunnel_name("vxlan", "10.99.0.2") == "vx-0a630002"
    assert om.tunnel_name("gre", "192.168.255.254") == "gre-c0a8fffe"
    assert len(om.tunnel_name("gre", "255.255.255.255")) < 16


def test_add_and_delete_transactions():
    ops = om.add_tunnels_txn("b1", "gre", "10.99.0.1", ["10.99.0.2", "10.99.0.3"])
    assert [o["op"] for o in ops] == ["insert"] * 4 + ["mutate"]
    assert ops[-1]["mutations"][0][2] == ["set", [["named-uuid", "port0"], ["named-uuid", "port1"]]]
    (d,) = om.del_ports_txn("b1", ["p9"])
    assert d["mutations"] == [["ports", "delete", ["set", [["uuid", "p9"]]]]]


def test_a_complete_host_can_join():
    r = replica()
    assert om.host_view(r, "br1", "br0").problems == ()
    assert om.unidentified(r) is None


def _without(r, table, uuid):
    del r[table][uuid]
    return r


@pytest.mark.parametrize("change, reason", [
    (lambda r: r["Open_vSwitch"]["o"].update(external_ids={"system-id": "h1"}),
     "no external_ids:overlay-ip (its underlay IPv4 address)"),
    (lambda r: r["Open_vSwitch"]["o"].update(external_ids={"system-id": "h1", "overlay-ip": "10.0.0.300"}),
     "external_ids:overlay-ip '10.0.0.300' is not an IPv4 address"),
    (lambda r: _without(r, "Bridge", "b1"), "no bridge br1"),
    (lambda r: r["Interface"]["i1"].update(type="internal"), "no patch port on br1 (to br0)"),
    (lambda r: _without(r, "Bridge", "b0"), "no bridge br0"),
])
def test_what_keeps_a_host_from_joining_is_named(change, reason):
    r = replica([("vxlan", "10.99.0.2", True)])
    change(r)
    view = om.host_view(r, "br1", "br0")
    assert view.system_id == "h1" and view.problems == (reason,)


def test_an_ovsdb_without_a_system_id_is_unidentified_not_ignored():
    r = replica()
    r["Open_vSwitch"]["o"]["external_ids"] = {"overlay-ip": "10.0.0.1"}
    assert om.host_view(r, "br1", "br0") is None
    assert om.unidentified(r) == om.NO_SYSTEM_ID
    assert om.unidentified({}) is None  # no monitor reply yet: nothing to say
