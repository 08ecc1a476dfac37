"""The SQLite store: one transaction per write, a failed write leaves nothing, data survives reopening."""

import sqlite3

import pytest

from controller.core.store import StoreError
from controller.ha.store import SCHEMA_VERSION, Store
from controller.model.host_doc import HostWrites
from controller.model.state import PortRule, Tenant

BLUE = Tenant("blue", 5001, 10)
RED = Tenant("red", 5002, 20, frozenset({"h1", "h2"}), (("h1", 21),))


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "sub" / "overlay.db")  # the directory is created


def test_round_trip_and_reopen(db):
    s = Store(db)
    s.put_tenant(RED)
    s.put_tenant(BLUE)
    assert s.tenants() == [BLUE, RED]
    s.close()
    again = Store(db)
    assert again.tenants() == [BLUE, RED]
    again.put_tenant(Tenant("blue", 6001, 11))
    again.delete_tenant("red")
    assert again.tenants() == [Tenant("blue", 6001, 11)]


def test_settings_that_make_acknowledged_writes_durable(db):
    s = Store(db)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert s.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_failed_write_is_rolled_back_whole(db):
    s = Store(db)
    s.put_tenant(BLUE)
    with pytest.raises(StoreError):
        s.put_tenant(Tenant("other", 5001, 99))  # VNI is UNIQUE: refused by the database itself
    assert not s.db.in_transaction
    assert s.tenants() == [BLUE]
    s.put_tenant(RED)  # and the connection is still usable
    assert [t.name for t in s.tenants()] == ["blue", "red"]


def test_a_write_is_visible_to_another_connection_once_it_returns(db):
    s = Store(db)
    s.put_tenant(BLUE)
    other = sqlite3.connect(db)
    assert other.execute("SELECT name, vni FROM tenants").fetchall() == [("blue", 5001)]


def test_a_locked_database_is_a_store_error_not_a_hang(db):
    s = Store(db)
    s.db.execute("PRAGMA busy_timeout=50")
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            s.put_tenant(BLUE)
    finally:
        locker.execute("ROLLBACK")
    s.put_tenant(BLUE)
    assert s.tenants() == [BLUE]


def test_a_newer_schema_is_refused(db):
    Store(db).db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version"):
        Store(db)


def test_ping(db):
    s = Store(db)
    s.ping()
    s.close()
    with pytest.raises(StoreError):
        s.ping()


def test_host_records_round_trip_and_reopen(db):
    s = Store(db)
    assert s.host_records() == ({}, [])
    rule = PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}), frozenset({"10.0.0.1", "fd00::1"}))
    s.put_admission("h1", True)
    s.put_admission("h2", True)
    s.put_admission("h2", False)  # the last word wins
    s.put_port_rule(rule)
    s.put_port_rule(PortRule("h1", "vm2", frozenset({"02:00:00:00:00:02"})))
    s.delete_port_rule("h1", "vm2")
    s.delete_port_rule("h9", "nope")  # nothing to delete: no error
    s.close()
    assert Store(db).host_records() == ({"h1": True, "h2": False}, [rule])


def test_a_file_from_before_host_records_gets_their_tables(db):
    Store(db).close()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE admissions")
    raw.execute("DROP TABLE port_rules")
    raw.commit()
    raw.close()
    s = Store(db)
    s.put_admission("h1", True)
    assert s.host_records() == ({"h1": True}, [])


def test_every_write_is_a_new_revision_kept_with_the_tenants(db):
    s = Store(db)
    assert s.revision == 0
    s.put_tenant(BLUE)
    s.apply([RED, Tenant("green", 5003, 30)], ["blue"])  # one write of three changes
    assert s.revision == 2 and [t.name for t in s.tenants()] == ["green", "red"]
    s.close()
    assert Store(db).revision == 2  # a restart goes on from there, never back


def test_an_apply_is_one_transaction_all_or_nothing(db):
    s = Store(db)
    s.put_tenant(BLUE)
    with pytest.raises(StoreError):  # the last put clashes (VNI UNIQUE): nothing of it is written
        s.apply([RED, Tenant("green", 5003, 30), Tenant("dup", 5003, 31)], ["blue"])
    assert s.tenants() == [BLUE] and s.revision == 1 and not s.db.in_transaction
    assert Store(db).revision == 1


def test_an_apply_writes_tenants_and_host_records_in_one_transaction_or_nothing(db):
    s = Store(db)
    s.put_admission("h3", True)
    s.put_port_rule(PortRule("h3", "vm3", frozenset({"02:00:00:00:00:03"})))
    r0 = s.revision
    rule = PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}), frozenset({"10.0.0.1"}))
    writes = HostWrites({"h1": True, "h2": False, "h3": None}, {("h1", "vm1"): rule, ("h3", "vm3"): None})
    assert s.apply([BLUE], [], writes) and s.revision == r0 + 1
    assert (s.tenants(), s.host_records()) == ([BLUE], ({"h1": True, "h2": False}, [rule]))
    # a write that fails (here: a VNI taken, which the table refuses) leaves nothing of its host records either
    with pytest.raises(StoreError):
        s.apply([Tenant("twin", BLUE.vni, 30)], [], HostWrites({"h9": True}, {("h1", "vm1"): None}))
    assert (s.tenants(), s.host_records(), s.revision) == ([BLUE], ({"h1": True, "h2": False}, [rule]), r0 + 1)
    s.close()
    assert Store(db).host_records() == ({"h1": True, "h2": False}, [rule])
