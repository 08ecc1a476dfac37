"""Host records in etcd (controller/core/admission.py): the operator's admissions and the port rules,
shared by every instance (`[overlay] store = etcd`). Under the prefix:

    {prefix}hosts/admission/{host}        b"admitted" or b"revoked"
    {prefix}hosts/ports/{host}/{port}     a port rule's JSON: {"macs": [...], "ips": [...]}

Host ids and port names never hold a "/" (the API refuses them), so a key says both. A write is
one put, acknowledged once etcd committed it; the last write wins (admitting twice is admitting). An
apply of the overlay document (POST /v1/apply) puts and deletes them in the tenants' transaction.
Every instance watches the prefix and applies each change (controller/core/host_sync.py), its own
writes too (idempotent); a watch broken off resumes from the revision after the last it applied,
and re-lists everything when etcd compacted that far.

A listing or an event older than this instance's own write of the same key never takes the core
back: the instance applied its write when etcd committed it, and the watch may still be behind it
(a re-list read before the write and applied after it once undid an apply's records, so the next
apply pruned nothing).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from controller.core.host_sync import apply_admission, apply_port_rule, apply_records
from controller.core.store import HostRecords, StoreError
from controller.ha import etcd as e
from controller.ha.etcd import Compacted, Etcd, EtcdError, EtcdUnavailable
from controller.model.host_doc import HostWrites
from controller.model.state import PortRule

LOG = logging.getLogger(__name__)
ADMITTED, REVOKED = b"admitted", b"revoked"


class EtcdHostRecords:
    def __init__(self, etcd: Etcd, prefix: str) -> None:
        self.etcd = etcd
        self.root = prefix + "hosts/"
        self.admission = self.root + "admission/"
        self.ports = self.root + "ports/"
        self.watched = 0  # every change up to this revision is applied
        self.written: dict[str, int] = {}  # key -> revision of this instance's write, until the watch is past it
        self.closed = False

    def records(self) -> HostRecords:
        kvs, revision = self._call(lambda: self.etcd.range_prefix(self.root))
        self.watched = max(self.watched, revision)
        return self._records(kvs)

    def _records(self, kvs: list[e.KV]) -> HostRecords:
        decisions: dict[str, bool] = {}
        rules: list[PortRule] = []
        for kv in kvs:
            decoded = self._decode(kv.key, kv.value)
            if isinstance(decoded, PortRule):
                rules.append(decoded)
            elif decoded is not None:
                decisions[decoded[0]] = decoded[1]
        return decisions, sorted(rules, key=lambda r: (r.host, r.port))

    def put_admission(self, host_id: str, admitted: bool) -> None:
        self._write(HostWrites(admissions={host_id: admitted}))

    def put_port_rule(self, rule: PortRule) -> None:
        self._write(HostWrites(rules={(rule.host, rule.port): rule}))

    def delete_port_rule(self, host_id: str, port: str) -> None:
        self._write(HostWrites(rules={(host_id, port): None}))

    def ops(self, writes: HostWrites) -> list[dict]:
        """The puts and deletes of these writes, for one transaction (alone, or with the tenants')."""
        out = []
        for host_id, admitted in writes.admissions.items():
            key = self._key(host_id)
            out.append(e.delete(key) if admitted is None else e.put(key, ADMITTED if admitted else REVOKED))
        for (host_id, port), rule in writes.rules.items():
            key = self._key(host_id, port)
            doc = None if rule is None else {"macs": sorted(rule.macs), "ips": sorted(rule.ips)}
            out.append(e.delete(key) if doc is None else e.put(key, json.dumps(doc, separators=(",", ":")).encode()))
        return out

    def wrote(self, writes: HostWrites, revision: int) -> None:
        """This instance committed writes at revision and applies them now, before its watch sees them."""
        keys = [self._key(h) for h in writes.admissions] + [self._key(h, p) for h, p in writes.rules]
        for key in keys:
            self.written[key] = max(self.written.get(key, 0), revision)

    def _newer(self, revision: int, host_id: str, port: str | None = None) -> bool:
        """This instance wrote the record after revision: what the watch read then is stale for it."""
        return self.written.get(self._key(host_id, port), 0) > revision

    def _key(self, host_id: str, port: str | None = None) -> str:
        return self.admission + host_id if port is None else f"{self.ports}{host_id}/{port}"

    def _write(self, writes: HostWrites) -> None:
        _, resp = self._call(lambda: self.etcd.txn([], self.ops(writes)))
        self.wrote(writes, int(resp["header"]["revision"]))

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except (EtcdUnavailable, EtcdError) as err:
            raise StoreError(f"etcd: {err}") from err

    def _decode(self, key: str, value: bytes | None) -> PortRule | tuple[str, bool | None] | None:
        """A port rule, (host, admitted; None: deleted), or None for what is not ours or not valid."""
        try:
            if key.startswith(self.admission):
                host = key[len(self.admission):]
                if value is None:
                    return host, None
                if value not in (ADMITTED, REVOKED):
                    raise ValueError(f"{value!r} is neither {ADMITTED!r} nor {REVOKED!r}")
                return host, value == ADMITTED
            if key.startswith(self.ports):
                host, _, port = key[len(self.ports):].partition("/")
                if value is None:
                    return PortRule(host, port, frozenset())
                doc = json.loads(value)
                return PortRule(host, port, frozenset(doc["macs"]), frozenset(doc.get("ips", ())))
        except (ValueError, KeyError, TypeError) as err:
            LOG.error("etcd: ignoring %s: not a valid host record: %s", key, err)
        return None

    def _apply(self, backend: Any, revision: int, events: list[e.Event]) -> None:
        for ev in events:
            if self.written.get(ev.key, 0) >= ev.revision:  # this instance's own, or older than it
                continue
            decoded = self._decode(ev.key, ev.value)
            if isinstance(decoded, PortRule):
                apply_port_rule(backend, decoded.host, decoded.port, decoded if ev.value is not None else None)
            elif decoded is not None:
                apply_admission(backend, *decoded)
        self._passed(revision)

    def watch(self, backend: Any) -> None:
        """Apply every change under the prefix to backend (via backend.call), until close()."""
        failures, relist = 0, False
        while not self.closed:
            try:
                if relist:
                    self._relist(backend)
                    relist = False
                for revision, events in self.etcd.watch_prefix(self.root, self.watched + 1):
                    failures = 0
                    backend.call(lambda r=revision, ev=events: self._apply(backend, r, ev))
            except Compacted as err:
                LOG.warning("etcd: %s: re-listing the host records", err)
                relist = True
                continue
            except Exception as err:  # unreachable, or a garbled stream: keep following from where it was
                if not failures:
                    LOG.warning("etcd: host records watch lost (%s); retrying", err)
                failures += 1
                time.sleep(e.backoff(failures))
                continue
            time.sleep(0.05)  # the stream ended (member gone, or idle): open the next one

    def _relist(self, backend: Any) -> None:
        """The core's host records made the store's, all but those this instance wrote since the listing."""
        kvs, revision = self._call(lambda: self.etcd.range_prefix(self.root))

        def apply() -> None:
            apply_records(backend, self._records(kvs), keep=lambda h, p=None: self._newer(revision, h, p))
            self._passed(revision)
        backend.call(apply)

    def _passed(self, revision: int) -> None:
        """The watch applied everything up to revision: no older event or listing comes after it
        (on the event loop, as the writes that fill `written` are)."""
        self.watched = max(self.watched, revision)
        if self.written:
            self.written = {k: r for k, r in self.written.items() if r > revision}
