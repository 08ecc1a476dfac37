"""Where tenants are kept: the SQLite store (the default), one implementation of the core's
TenantStore (controller/core/store.py). SQLite serves one controller, etcd
(controller/ha/etcd_store.py) several that share it. [overlay] store picks one
(controller/shell/config.py).

SQLite: each write is one transaction, durable before it is acknowledged, and bumps the store's
revision (a counter kept in the same file, in the same transaction): a write of several tenants
at once (`apply`, POST /v1/apply) is one transaction and one revision.

WAL with synchronous=FULL: a write returns only after its commit is on disk, so whatever the
API acknowledged survives kill -9 or a power cut, and a write cut short leaves no trace (one row
per write, inside BEGIN IMMEDIATE ... COMMIT).
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from controller.core.store import HostRecords, StoreError
from controller.model.host_doc import HostWrites
from controller.model.state import PortRule, Tenant

# admissions and port_rules came later, as tables of their own: a file without them gets them (empty)
# when opened, and a controller that knows nothing of them still reads the file as it did.
SCHEMA_VERSION = 1
SCHEMA = ("""
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    vni INTEGER NOT NULL UNIQUE,
    vlan INTEGER NOT NULL,
    hosts TEXT,            -- JSON list, NULL = every host
    vlans TEXT NOT NULL    -- JSON object host -> VLAN
)
""", """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL  -- 'revision': bumped by every write, in its transaction
)
""", """
CREATE TABLE IF NOT EXISTS admissions (
    host TEXT PRIMARY KEY,
    admitted INTEGER NOT NULL  -- 1 admitted, 0 revoked
)
""", """
CREATE TABLE IF NOT EXISTS port_rules (
    host TEXT NOT NULL,
    port TEXT NOT NULL,    -- the br0 port's name
    macs TEXT NOT NULL,    -- JSON list
    ips TEXT NOT NULL,     -- JSON list
    PRIMARY KEY (host, port)
)
""")
# The revision table (meta) came after version 1 without changing it: a table added beside the
# tenants, which a controller that does not know it leaves alone (it then writes without bumping it).


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # isolation_level=None: no implicit transactions, each write opens its own below.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
        self.db.execute("PRAGMA busy_timeout=5000")  # an operator's sqlite3 shell may hold a lock briefly
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} has schema version {version}; this controller knows {SCHEMA_VERSION}")
        with self._transaction():
            for table in SCHEMA:
                self.db.execute(table)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0)")
        self.revision = self.db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0]

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def tenants(self) -> list[Tenant]:
        rows = self.db.execute("SELECT name, vni, vlan, hosts, vlans FROM tenants ORDER BY name")
        return [Tenant(name, vni, vlan,
                       frozenset(json.loads(hosts)) if hosts is not None else None,
                       tuple(sorted(json.loads(vlans).items())))
                for name, vni, vlan, hosts, vlans in rows]

    def put_tenant(self, t: Tenant) -> bool:
        return self.apply([t], [])

    def delete_tenant(self, name: str) -> bool:
        return self.apply([], [name])

    def apply(self, puts: list[Tenant], deletes: list[str], hosts: HostWrites | None = None) -> bool:
        """Deletes and puts, and the host records' writes, in one transaction, one revision: all of them or none."""
        with self._transaction():
            if hosts is not None:
                self._write_hosts(hosts)
            for name in deletes:
                self.db.execute("DELETE FROM tenants WHERE name = ?", (name,))
            for t in puts:
                hosts = json.dumps(sorted(t.hosts)) if t.hosts is not None else None
                self.db.execute(
                    "INSERT INTO tenants (name, vni, vlan, hosts, vlans) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET vni=excluded.vni, vlan=excluded.vlan, "
                    "hosts=excluded.hosts, vlans=excluded.vlans",
                    (t.name, t.vni, t.vlan, hosts, json.dumps(dict(t.vlans))))
            revision = self.db.execute(
                "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value").fetchone()[0]
        self.revision = revision  # committed: only now is it the store's
        return True

    def host_records(self) -> HostRecords:
        rows = self.db.execute("SELECT host, admitted FROM admissions")
        admissions = {host: bool(admitted) for host, admitted in rows}
        rules = [PortRule(host, port, frozenset(json.loads(macs)), frozenset(json.loads(ips)))
                 for host, port, macs, ips in self.db.execute(
                     "SELECT host, port, macs, ips FROM port_rules ORDER BY host, port")]
        return admissions, rules

    def put_admission(self, host_id: str, admitted: bool) -> None:
        with self._transaction():
            self._write_hosts(HostWrites(admissions={host_id: admitted}))

    def put_port_rule(self, rule: PortRule) -> None:
        with self._transaction():
            self._write_hosts(HostWrites(rules={(rule.host, rule.port): rule}))

    def delete_port_rule(self, host_id: str, port: str) -> None:
        with self._transaction():
            self._write_hosts(HostWrites(rules={(host_id, port): None}))

    def _write_hosts(self, writes: HostWrites) -> None:
        """Inside a transaction: admissions and port rules put, or deleted (None)."""
        for host_id, admitted in writes.admissions.items():
            if admitted is None:
                self.db.execute("DELETE FROM admissions WHERE host = ?", (host_id,))
            else:
                self.db.execute("INSERT INTO admissions (host, admitted) VALUES (?, ?) ON CONFLICT(host) "
                                "DO UPDATE SET admitted=excluded.admitted", (host_id, int(admitted)))
        for (host_id, port), rule in writes.rules.items():
            if rule is None:
                self.db.execute("DELETE FROM port_rules WHERE host = ? AND port = ?", (host_id, port))
            else:
                self.db.execute("INSERT INTO port_rules (host, port, macs, ips) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT(host, port) DO UPDATE SET macs=excluded.macs, ips=excluded.ips",
                                (host_id, port, json.dumps(sorted(rule.macs)), json.dumps(sorted(rule.ips))))

    def watch_hosts(self, backend: Any) -> None:
        """One controller owns the file: no other writer to follow."""

    def ping(self) -> None:
        """Raise StoreError unless the database answers a read."""
        try:
            self.db.execute("SELECT count(*) FROM tenants").fetchone()
        except sqlite3.Error as e:
            raise StoreError(str(e)) from e

    def watch(self, backend: Any) -> None:
        """One controller owns the file: no other writer to follow."""

    def close(self) -> None:
        self.db.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error; sqlite errors become StoreError."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(str(e)) from e

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error as e:
                self._rollback()
                raise StoreError(str(e)) from e
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(str(exc)) from exc

    def _rollback(self) -> None:
        if self.db.in_transaction:  # sqlite may have rolled back already (e.g. disk full)
            self.db.execute("ROLLBACK")
