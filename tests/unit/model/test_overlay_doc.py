"""The overlay document's rules: every refusal names its field; a plan says what an apply changes;
tenants the document keeps are checked against what it puts; export reads back as the same."""

import pytest

from controller.model import overlay_doc as od
from controller.model.state import Tenant
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


@pytest.mark.parametrize("section", ["hosts", "ports"])
def test_the_reserved_sections_are_refused_not_ignored(section):
    e = refused({"tenants": {}, section: {"h7": {}}})
    assert e.path == (section,) and "not supported yet" in str(e)
    assert od.parse({section: None}) == {}  # an empty one says nothing


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
