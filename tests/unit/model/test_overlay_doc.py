"""The overlay document's rules: every refusal names its field; a plan says what an apply changes;
tenants the document keeps are checked against what it puts; export reads back as the same."""

import pytest

from controller.model import overlay_doc as od
from controller.model.state import PortRule, Tenant
from controller.model.tenant_rules import Conflict, Invalid

BLUE, RED = Tenant("blue", 5001, 10), Tenant("red", 5002, 20, frozenset({"h1", "h2"}), (("h2", 21),))


def refused(doc) -> Invalid:
    with pytest.raises(Invalid) as e:
        od.parse(doc)
    return e.value


def test_a_document_reads_as_its_tenants_in_its_order():
    doc = {"version": 1, "tenants": {"red": {"vni": 5002, "vlan": 20, "hosts": ["h2", "h1"], "vlans": {"h2": 21}},
                                     "blue": {"vni": 5001, "vlan": 10}}}
    assert od.parse(doc) == {"red": RED, "blue": BLUE} and list(od.parse(doc)) == ["red", "blue"]
    assert od.parse({}) == {} and od.parse({"tenants": None}) == {}


@pytest.mark.parametrize("doc,path,words", [
    ([], (), "mapping"),
    ({"tenants": []}, ("tenants",), "mapping"),
    ({"tenants": {"b": 7}}, ("tenants", "b"), "mapping"),
    ({"version": 2}, ("version",), "must be 1"),
    ({"version": True}, ("version",), "must be 1"),
    ({"tenant": {}}, ("tenant",), "unknown section"),
    ({"tenants": {"b": {"vni": 0, "vlan": 1}}}, ("tenants", "b", "vni"), "integer from 1"),
    ({"tenants": {"b": {"vni": 1, "vlan": "10"}}}, ("tenants", "b", "vlan"), "integer from 1"),
    ({"tenants": {"b": {"vni": 1}}}, ("tenants", "b", "vlan"), "integer"),
    ({"tenants": {"b": {"vni": 1, "vlan": 2, "colour": "x"}}}, ("tenants", "b", "colour"), "unknown field"),
    ({"tenants": {"-b": {"vni": 1, "vlan": 2}}}, ("tenants", "-b", "name"), "letters"),
    ({"tenants": {"b": {"vni": 1, "vlan": 2, "name": "c"}}}, ("tenants", "b", "name"), "cannot be changed"),
    ({"tenants": {"b": {"vni": 1, "vlan": 2, "hosts": ["h1", "a/b"]}}}, ("tenants", "b", "hosts", 1), "host id"),
    ({"tenants": {"b": {"vni": 1, "vlan": 2, "hosts": ["h1"], "vlans": {"h2": 3}}}}, ("tenants", "b", "vlans", "h2"),
     "not in 'hosts'"),
    ({"tenants": {"b": {"vni": 1, "vlan": 2, "vlans": {"h2": 5000}}}}, ("tenants", "b", "vlans", "h2"), "4094"),
])
def test_a_refusal_names_the_field(doc, path, words):
    e = refused(doc)
    assert e.path == path and words in str(e)
    if path:
        assert str(e).startswith(od.path_text(path))


def test_the_host_sections_read_as_admissions_and_port_rules():
    doc = {"hosts": {"h1": {"admitted": True}, "h9": {"admitted": False}},
           "ports": {"h1": {"vm1": {"macs": ["02:00:00:00:00:0A"], "ips": ["10.0.0.1", "fd00::0:1"]},
                            "vm2": {"macs": ["02:00:00:00:00:02"]}}}}
    got = od.read(doc)
    assert (got.tenants, got.hosts) == ({}, {"h1": True, "h9": False})
    assert got.ports == {("h1", "vm1"): PortRule("h1", "vm1", frozenset({"02:00:00:00:00:0a"}),
                                                 frozenset({"10.0.0.1", "fd00::1"})),
                         ("h1", "vm2"): PortRule("h1", "vm2", frozenset({"02:00:00:00:00:02"}))}
    # left out, or empty (null): not the document's; {}: the document's, and empty
    assert od.read({}).hosts is None and od.read({"hosts": None, "ports": None}).ports is None
    assert (od.read({"hosts": {}}).hosts, od.read({"ports": {}}).ports) == ({}, {})


@pytest.mark.parametrize("doc,path,words", [
    ({"hosts": []}, ("hosts",), "mapping"),
    ({"hosts": {"h1": True}}, ("hosts", "h1"), "body must be a JSON object"),
    ({"hosts": {"h1": {}}}, ("hosts", "h1", "admitted"), "is required"),
    ({"hosts": {"h1": {"admitted": "yes"}}}, ("hosts", "h1", "admitted"), "true or false"),
    ({"hosts": {"h1": {"admitted": True, "by": "me"}}}, ("hosts", "h1", "by"), "unknown field"),
    ({"hosts": {"a/b": {"admitted": True}}}, ("hosts", "a/b"), "host id"),
    ({"ports": {"h1": []}}, ("ports", "h1"), "mapping"),
    ({"ports": {"a/b": {}}}, ("ports", "a/b"), "host id"),
    ({"ports": {"h1": {"a/b": {"macs": ["02:00:00:00:00:01"]}}}}, ("ports", "h1", "a/b"), "port name"),
    ({"ports": {"h1": {"vm1": {}}}}, ("ports", "h1", "vm1", "macs"), "is required"),
    ({"ports": {"h1": {"vm1": {"macs": []}}}}, ("ports", "h1", "vm1", "macs"), "1 to 64 MACs"),
    ({"ports": {"h1": {"vm1": {"macs": ["02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff"]}}}},
     ("ports", "h1", "vm1", "macs", 1), "unicast MAC"),
    ({"ports": {"h1": {"vm1": {"macs": ["00:00:00:00:00:00"]}}}}, ("ports", "h1", "vm1", "macs", 0), "unicast MAC"),
    ({"ports": {"h1": {"vm1": {"macs": ["02:00:00:00:00:01"], "ips": ["10.0.0.1", "0.0.0.0"]}}}},
     ("ports", "h1", "vm1", "ips", 1), "unicast IPv4"),
    ({"ports": {"h1": {"vm1": {"macs": ["02:00:00:00:00:01"], "vlan": 3}}}}, ("ports", "h1", "vm1", "vlan"),
     "unknown field"),
])
def test_a_refused_host_or_port_entry_names_its_field(doc, path, words):
    with pytest.raises(Invalid) as e:
        od.read({"tenants": {"blue": {"vni": 1, "vlan": 1}}, **doc})
    assert e.value.path == path and words in str(e.value), str(e.value)
    assert str(e.value).startswith(od.path_text(path) + ": ")


def test_the_host_sections_plan_creates_changes_and_with_prune_removes():
    r1 = PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}))
    r2 = PortRule("h1", "vm2", frozenset({"02:00:00:00:00:02"}))
    decisions, rules = {"h1": True, "h2": False, "h3": True}, {"h1": {"vm1": r1, "vm2": r2}}
    r1b = PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}), frozenset({"10.0.0.1"}))
    r3 = PortRule("h4", "eth1", frozenset({"02:00:00:00:00:04"}))
    desired = od.Document({}, {"h1": True, "h2": True, "h5": False}, {("h1", "vm1"): r1b, ("h4", "eth1"): r3})
    p = od.plan_document({}, decisions, rules, desired, prune=False)
    h = p.hosts
    assert p.changes and not p.tenant_changes
    assert (h.hosts.create, h.hosts.change, h.hosts.delete, h.hosts.unchanged, h.hosts.kept) == (
        [("h5", False)], [("h2", False, True)], [], 1, ["h3"])
    assert (h.ports.create, h.ports.change, h.ports.delete, h.ports.kept) == (
        [(("h4", "eth1"), r3)], [(("h1", "vm1"), r1, r1b)], [], ["h1/vm2"])
    writes = h.writes()
    assert writes.admissions == {"h5": False, "h2": True} and writes.rules == {("h4", "eth1"): r3, ("h1", "vm1"): r1b}
    pruned = od.plan_document({}, decisions, rules, desired, prune=True).hosts
    assert pruned.writes().admissions["h3"] is None and pruned.writes().rules[("h1", "vm2")] is None
    assert pruned.to_json()["hosts"]["delete"] == [{"host": "h3", "admitted": True}]
    assert pruned.to_json()["ports"]["delete"] == [r2.to_json()]
    # sections the document leaves out are not its own: nothing to do, with prune neither
    assert not od.plan_document({}, decisions, rules, od.Document({}), prune=True).changes
    # the same records: nothing to do
    same = od.Document({}, decisions, {(r.host, r.port): r for r in (r1, r2)})
    assert not od.plan_document({}, decisions, rules, same, prune=True).changes


def test_export_of_host_records_reads_back_as_the_same():
    rules = [PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}), frozenset({"10.0.0.1"})),
             PortRule("h1", "vm2", frozenset({"02:00:00:00:00:02"}))]
    doc = od.to_doc([BLUE], {"h1": True, "h9": False}, rules)
    assert doc["hosts"] == {"h1": {"admitted": True}, "h9": {"admitted": False}}
    assert doc["ports"] == {"h1": {"vm1": {"macs": ["02:00:00:00:00:01"], "ips": ["10.0.0.1"]},
                                   "vm2": {"macs": ["02:00:00:00:00:02"]}}}
    back = od.read(doc)
    assert (back.tenants, back.hosts, sorted(back.ports.values(), key=lambda r: r.port)) == (
        {"blue": BLUE}, {"h1": True, "h9": False}, rules)
    assert od.to_doc([], {}, []) == {"version": 1, "tenants": {}, "hosts": {}, "ports": {}}


def test_two_tenants_of_the_file_that_clash_name_the_later_one():
    e = refused({"tenants": {"a": {"vni": 7, "vlan": 1}, "b": {"vni": 7, "vlan": 2}}})
    assert e.path == ("tenants", "b", "vni") and "'a'" in str(e)
    e = refused({"tenants": {"a": {"vni": 7, "vlan": 1}, "b": {"vni": 8, "vlan": 1}}})
    assert e.path == ("tenants", "b", "vlan") and "every host" in str(e)
    e = refused({"tenants": {"a": {"vni": 7, "vlan": 1, "hosts": ["h1"]},
                             "b": {"vni": 8, "vlan": 2, "vlans": {"h1": 1}}}})
    assert e.path == ("tenants", "b", "vlans", "h1") and "host 'h1'" in str(e)
    # apart on every host: fine
    od.parse({"tenants": {"a": {"vni": 7, "vlan": 1, "hosts": ["h1"]}, "b": {"vni": 8, "vlan": 1, "hosts": ["h2"]}}})


def test_a_thousand_tenants_are_checked_by_vlan_not_pair_by_pair():
    doc = {"tenants": {f"t{i}": {"vni": i + 1, "vlan": i % 4000 + 1, "hosts": [f"h{i}"]} for i in range(1000)}}
    assert len(od.parse(doc)) == 1000


def test_a_plan_creates_changes_and_with_prune_deletes():
    current = {"blue": BLUE, "red": RED, "old": Tenant("old", 9, 9)}
    desired = {"blue": BLUE, "red": Tenant("red", 5002, 22), "new": Tenant("new", 7, 7)}
    p = od.plan(current, desired, prune=False)
    assert ([t.name for t in p.create], [(a.name, b.vlan) for a, b in p.change], p.delete, p.unchanged, p.kept) == (
        ["new"], [("red", 22)], [], 1, ["old"])
    doc = p.to_json()
    assert doc["changes"] and doc["change"][0]["fields"] == ["vlan", "hosts", "vlans"]
    p = od.plan(current, desired, prune=True)
    assert [t.name for t in p.delete] == ["old"] and p.kept == [] and p.deletes() == ["old"]
    assert {t.name for t in p.puts()} == {"new", "red"}
    same = od.plan(current, current, prune=True)
    assert not same.changes and same.unchanged == 3


def test_what_the_plan_puts_must_not_clash_with_what_it_keeps():
    current = {"blue": BLUE, "red": RED}
    with pytest.raises(Conflict) as e:
        od.check(current, od.plan(current, {"green": Tenant("green", 5001, 30)}, prune=False))
    assert e.value.path == ("tenants", "green", "vni") and "'blue'" in str(e.value) and "prune" in str(e.value)
    with pytest.raises(Conflict) as e:
        od.check(current, od.plan(current, {"green": Tenant("green", 7, 21, frozenset({"h2"}))}, prune=False))
    assert e.value.path == ("tenants", "green") and "'red'" in str(e.value)
    od.check(current, od.plan(current, {"green": Tenant("green", 5001, 30)}, prune=True))  # blue goes


def test_export_reads_back_as_the_same_tenants():
    doc = od.to_doc({"red": RED, "blue": BLUE})
    red = {"vni": 5002, "vlan": 20, "hosts": ["h1", "h2"], "vlans": {"h2": 21}}
    assert doc == {"version": 1, "tenants": {"blue": {"vni": 5001, "vlan": 10}, "red": red}}
    assert od.parse(doc) == {"blue": BLUE, "red": RED}
