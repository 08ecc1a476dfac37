"""Committed host records (admissions and port rules, controller/core/admission.py) into the core
and out to the switches: for a REST write on this instance and for one another instance made alike
(the etcd store's watch). Each is idempotent: the same record applied twice changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from controller.core.core import Core
from controller.core.store import HostRecords
from controller.model.host_doc import HostWrites
from controller.model.ops import Op
from controller.model.state import PortRule


class Backend(Protocol):
    """What takes the core's operations to the switches (the app)."""

    core: Core

    def apply(self, ops: list[Op]) -> None:
        """Send operations to switches and OVSDB."""

    def now(self) -> float:
        """Wall-clock seconds."""


def apply_admission(b: Backend, host_id: str, admitted: bool | None) -> None:
    """A committed admission (True), revocation (False) or its removal (None)."""
    if b.core.policy.decisions.get(host_id) != admitted:
        b.apply(b.core.decide(host_id, admitted, b.now()))


def apply_port_rule(b: Backend, host_id: str, port: str, rule: PortRule | None) -> None:
    """A committed port rule, or its deletion (None)."""
    if b.core.policy.rules_of(host_id).get(port) == rule:
        return
    b.apply(b.core.put_port_rule(rule) if rule is not None else b.core.drop_port_rule(host_id, port))


def written_ops(core: Core, writes: HostWrites, now: float) -> list[Op]:
    """Committed writes of many records at once (an apply of the overlay document) into the core:
    the rules first, so that a host admitted with them joins guarded, never open for a moment."""
    ops: list[Op] = []
    for (host_id, port), rule in sorted(writes.rules.items()):
        if core.policy.rules_of(host_id).get(port) != rule:
            ops += core.put_port_rule(rule) if rule is not None else core.drop_port_rule(host_id, port)
    for host_id, admitted in sorted(writes.admissions.items()):
        if core.policy.decisions.get(host_id) != admitted:
            ops += core.decide(host_id, admitted, now)
    return ops


def apply_records(b: Backend, records: HostRecords,
                  keep: Callable[[str, str | None], bool] = lambda host_id, port: False) -> None:
    """Make the core's host records equal to a full listing of the store, but for those keep says
    are newer in the core than the listing (this instance wrote them since: asked record by record,
    as applying one may yield to a request that writes another)."""
    decisions, rules = records
    policy = b.core.policy
    for host_id in sorted(set(policy.decisions) | set(decisions)):
        if not keep(host_id, None):
            apply_admission(b, host_id, decisions.get(host_id))
    want = {(r.host, r.port): r for r in rules}
    for host_id, ports in sorted(policy.rules.items()):
        for port in sorted(ports):
            if (host_id, port) not in want and not keep(host_id, port):
                apply_port_rule(b, host_id, port, None)
    for rule in rules:
        if not keep(rule.host, rule.port):
            apply_port_rule(b, rule.host, rule.port, rule)
