"""Tenant assignments in SQLite: each write is one transaction, durable before it is acknowledged."""

from __future__ import annotations

import json
import os
import sqlite3

from controller.state import Tenant

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    vni INTEGER NOT NULL UNIQUE,
    vlan INTEGER NOT NULL,
    hosts TEXT,            -- JSON list, NULL = every host
    vlans TEXT NOT NULL    -- JSON object host -> VLAN
)
"""


class Store:
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives a crash
        self.db.execute(SCHEMA)

    def tenants(self) -> list[Tenant]:
        rows = self.db.execute("SELECT name, vni, vlan, hosts, vlans FROM tenants ORDER BY name")
        return [Tenant(name, vni, vlan,
                       frozenset(json.loads(hosts)) if hosts is not None else None,
                       tuple(sorted(json.loads(vlans).items())))
                for name, vni, vlan, hosts, vlans in rows]

    def put_tenant(self, t: Tenant) -> None:
        hosts = json.dumps(sorted(t.hosts)) if t.hosts is not None else None
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO tenants (name, vni, vlan, hosts, vlans) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET vni=excluded.vni, vlan=excluded.vlan, "
                "hosts=excluded.hosts, vlans=excluded.vlans",
                (t.name, t.vni, t.vlan, hosts, json.dumps(dict(t.vlans))))

    def delete_tenant(self, name: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM tenants WHERE name = ?", (name,))

    def close(self) -> None:
        self.db.close()
