"""Tenants in etcd, shared by several controller instances (`[overlay] store = etcd`).

Under the prefix ([etcd] prefix, default /sdn-overlay/):

    {prefix}tenants/by-name/{name}   a tenant's JSON, as GET /v1/tenants/{name} shows it
    {prefix}tenants/version          rewritten by every change, with the id of the write
    {prefix}hosts/...                admissions and port rules (controller/ha/etcd_hosts.py)

Writes: one transaction each (a whole apply too: every put and delete, the host records' with
the tenants', at most MAX_TXN_OPS operations as etcd's --max-txn-ops allows), which commits only
if `version` is still at the revision this instance has applied. Its view of every tenant was
then current, so whatever the tenant service checked on it (the name is free or exists, the VNI
and the VLANs are unused, If-Match) holds in etcd at the commit too, across instances. If
another instance wrote in between, the transaction's failure branch returns the whole current
listing, and the tenant service decides the request again on it (store.Behind): two writers
never both win, and no update is lost.
A write returns once etcd has committed it (a quorum has it on disk).

Reads: every instance watches the prefix and applies each change (controller/core/tenant_sync.py's
apply_change, as a local write does). A broken watch is re-opened from the last revision it
delivered (on another member if need be), so no change is missed; only when etcd has compacted
that far back does it re-list everything. Changes this instance made itself, or has seen in a
listing, are recognised by revision and skipped.

etcd unreachable: a write raises StoreError (REST answers 503) after at most the request timeout
per member, and nothing changes here; reads serve the state last seen; the watch retries.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from controller.core.store import Behind, HostRecords, StoreError, TooLarge
from controller.core.tenant_sync import apply_changes, apply_listing
from controller.ha import etcd as e
from controller.ha.etcd import Compacted, Etcd, EtcdError, EtcdUnavailable
from controller.ha.etcd_hosts import EtcdHostRecords
from controller.model.host_doc import HostWrites
from controller.model.state import PortRule, Tenant
from controller.model.tenant_rules import TenantError, tenant_from_json

LOG = logging.getLogger(__name__)
DEFAULT_PREFIX = "/sdn-overlay/"
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops: the version key takes one of them


class EtcdStore:
    def __init__(self, etcd: Etcd, prefix: str = DEFAULT_PREFIX) -> None:
        self.etcd = etcd
        self.root = prefix + "tenants/"
        self.by_name = self.root + "by-name/"
        self.version_key = self.root + "version"
        self.version = 0  # the version key's revision in this instance's view (0: never written)
        self.watched = 0  # the watch has delivered every change up to this revision
        self.writer = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.writes = itertools.count(1)
        self.closed = False
        self.hosts = EtcdHostRecords(etcd, prefix)  # admissions and port rules: controller/ha/etcd_hosts.py

    # ---- reads and writes (on the app's event loop) ---------------------------------------

    def tenants(self) -> list[Tenant]:
        """Every tenant, read from a quorum; this instance's view is at that revision from now on."""
        kvs, revision = self._call(lambda: self.etcd.range_prefix(self.root))
        self.watched = max(self.watched, revision)
        listing, self.version, _ = self._listing(kvs)
        return listing

    @property
    def revision(self) -> int:
        """The version key's revision in this instance's view: its last tenant change."""
        return self.version

    def put_tenant(self, t: Tenant) -> bool:
        return self.apply([t], [])

    def delete_tenant(self, name: str) -> bool:
        return self.apply([], [name])

    def apply(self, puts: list[Tenant], deletes: list[str], hosts: HostWrites | None = None) -> bool:
        ops = [e.delete(self.by_name + name) for name in deletes]
        ops += [e.put(self.by_name + t.name, json.dumps(t.to_json(), sort_keys=True, separators=(",", ":")).encode())
                for t in puts]
        ops += self.hosts.ops(hosts) if hosts is not None else []  # their watch brings them to the others
        if len(ops) + 1 > MAX_TXN_OPS:
            raise TooLarge(f"{len(ops)} changes at once: one etcd transaction takes at most {MAX_TXN_OPS - 1} "
                           "(etcd's --max-txn-ops, less the version key); apply fewer at a time or raise it")
        return self._commit(ops, hosts)

    def ping(self) -> None:
        self._call(lambda: self.etcd.get(self.version_key))

    def host_records(self) -> HostRecords:
        return self.hosts.records()

    def put_admission(self, host_id: str, admitted: bool) -> None:
        self.hosts.put_admission(host_id, admitted)

    def put_port_rule(self, rule: PortRule) -> None:
        self.hosts.put_port_rule(rule)

    def delete_port_rule(self, host_id: str, port: str) -> None:
        self.hosts.delete_port_rule(host_id, port)

    def watch_hosts(self, backend: Any) -> None:
        self.hosts.watch(backend)

    def close(self) -> None:
        self.closed = self.hosts.closed = True
        self.etcd.close()

    def _commit(self, ops: list[dict], hosts: HostWrites | None = None) -> bool:
        """Commit op if the view the caller decided on is current. True: the caller applies it;
        False: the watch got there first (while the answer was on its way) and applied it. The
        caller applies the host records it wrote (hosts) either way."""
        write = f"{self.writer}/{next(self.writes)}".encode()
        decided_on = self.version  # every member asked gets this compare, not a later view's
        ok, resp = self._call(lambda: self.etcd.txn(
            [e.compare_modified(self.version_key, decided_on)],
            [*ops, e.put(self.version_key, write)],
            [e.get_prefix(self.root)]))
        if ok:
            return self._advance(int(resp["header"]["revision"]), hosts)
        listing, version, last = self._listing(e.range_kvs(resp))
        if last == write:  # a member timed out after committing it; another one was asked again
            return self._advance(version, hosts)
        if version < self.version:  # older than what the watch applied meanwhile: just decide again
            raise Behind(None)
        self.version = version
        raise Behind(listing, version)

    def _advance(self, revision: int, hosts: HostWrites | None = None) -> bool:
        """This instance's own write at revision is in etcd: is it new to the view?"""
        if hosts is not None:
            self.hosts.wrote(hosts, revision)
        new = revision > self.version
        self.version = max(self.version, revision)
        return new

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except (EtcdUnavailable, EtcdError) as err:
            raise StoreError(f"etcd: {err}") from err

    def _listing(self, kvs: list[e.KV]) -> tuple[list[Tenant], int, bytes]:
        """(tenants by name, the version key's revision, the id of the last write)."""
        tenants, version, last = [], 0, b""
        for kv in kvs:
            if kv.key == self.version_key:
                version, last = kv.mod_revision, kv.value
            elif kv.key.startswith(self.by_name):
                tenant = self._decode(kv.key, kv.value)
                if tenant is not None:
                    tenants.append(tenant)
        return sorted(tenants, key=lambda t: t.name), version, last

    def _decode(self, key: str, value: bytes) -> Tenant | None:
        """A stored tenant; one that is not valid (written by hand?) is logged and left out."""
        name = key[len(self.by_name):]
        try:
            return tenant_from_json(json.loads(value), name=name)
        except (ValueError, TenantError) as err:
            LOG.error("etcd: ignoring %s: not a valid tenant: %s", key, err)
            return None

    # ---- following the other instances ----------------------------------------------------

    def watch(self, backend: Any) -> None:
        """Apply every change under the prefix to backend (via backend.call), until close()."""
        failures = 0
        while not self.closed:
            try:
                for revision, events in self.etcd.watch_prefix(self.root, self.watched + 1):
                    if failures:
                        LOG.warning("etcd: watching tenants again from revision %d", revision)
                        failures = 0
                    backend.call(lambda r=revision, ev=events: self._apply(backend, r, ev))
                    self.watched = max(self.watched, revision)
            except Compacted as err:
                LOG.warning("etcd: %s: re-listing the tenants", err)
                self._relist(backend)
            except (EtcdUnavailable, EtcdError, StoreError) as err:
                if not failures:
                    LOG.warning("etcd: tenant watch lost (%s); retrying; writes answer 503 meanwhile", err)
                failures += 1
                time.sleep(e.backoff(failures))
                continue
            except Exception:  # a bug or a garbled stream: say so, and keep following from where it was
                LOG.exception("etcd: tenant watch failed; re-opening it")
                failures += 1
                time.sleep(e.backoff(failures))
                continue
            time.sleep(0.05)  # the stream ended (member gone, or idle): open the next one

    def _relist(self, backend: Any) -> None:
        kvs, revision = self._call(lambda: self.etcd.range_prefix(self.root))

        def apply() -> None:
            listing, version, _ = self._listing(kvs)
            if version >= self.version:  # else a write of this instance is newer than the listing
                self.version = version
                apply_listing(backend, listing, version)
            self.watched = max(self.watched, revision)
        backend.call(apply)

    def _apply(self, backend: Any, revision: int, events: list[e.Event]) -> None:
        if revision <= self.version:  # this instance's own write, or already in a listing
            return
        # The view is at this revision before its change is applied: applying it may yield (the
        # switches are sent to), and a request deciding meanwhile must see the version and the
        # core agree. Were the version still older, a lost compare-and-swap's answer, taken before
        # this revision, would pass as current and roll the core back under the newer version:
        # a stale If-Match then won (a lost update, once in the three-instance e2e test).
        if any(ev.key == self.version_key for ev in events):
            self.version = revision
        changes: dict[str, Tenant | None] = {}  # one transaction (an apply: many tenants) at once
        for ev in events:
            if ev.key.startswith(self.by_name):
                tenant = None if ev.value is None else self._decode(ev.key, ev.value)
                if ev.value is None or tenant is not None:
                    changes[ev.key[len(self.by_name):]] = tenant
        apply_changes(backend, changes, revision)
