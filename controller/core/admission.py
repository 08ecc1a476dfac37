"""Which hosts may join the overlay: `[overlay] admission = certificate | approve | open`, decoded
here only, and what the operator decided about each host (admitted, revoked, its ports' rules).

certificate  a host *is* its TLS client certificate's CN (controller/core/identity.py refuses any
             connection whose CN is not the system-id it claims): the CA that signed the
             certificate admitted it. An operator may still revoke it.
approve      a host nobody admitted waits, pending, until an operator admits it (REST, overlayctl,
             or `[overlay] admitted_hosts`): no tunnel, no flow, no broadcast copy, no endpoint.
open         every host that connects joins (the behaviour before admission existed), for labs.

The default is `certificate` when the [tls] section gives the channels a CA, else `approve`: a
fresh install never hands tenant traffic to a host the operator did not admit, either by signing
its certificate or by admitting its name (docs/operator/security.md).

A host that is not admitted is not in the core's index at all (controller/core/index.py): nothing
computes a flow, a tunnel or a flood bucket for it, so nothing needs to ask. The pending ones wait
in `Pending`, with their OVSDB view, until admitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.model.choices import by_name
from controller.model.state import HostView, Peer, PortRule


@dataclass(frozen=True)
class _Mode:
    name: str
    needs_certificate: bool  # a channel without a verified client certificate is refused
    admits_unlisted: bool  # a host nobody admitted or revoked joins
    by: str  # who admitted such a host, as GET /v1/hosts says

    def __str__(self) -> str:
        return self.name


CERTIFICATE = _Mode("certificate", needs_certificate=True, admits_unlisted=True, by="certificate")
APPROVE = _Mode("approve", needs_certificate=False, admits_unlisted=False, by="")
OPEN = _Mode("open", needs_certificate=False, admits_unlisted=True, by="open")
MODES: dict[str, _Mode] = {m.name: m for m in (CERTIFICATE, APPROVE, OPEN)}
Mode = _Mode

WAITING = "waiting for an operator to admit it (overlayctl hosts admit {id})"
REVOKED = "revoked by an operator (overlayctl hosts admit {id} lets it in again)"


def get(name: str) -> Mode:
    return by_name(MODES, name, "admission")


def default(tls_configured: bool) -> Mode:
    """The mode when [overlay] admission is not set: certificates when the channels have a CA."""
    return CERTIFICATE if tls_configured else APPROVE


class HostPolicy:
    """What the operator decided about hosts, kept across the cores an instance runs in turn (a new
    leader's core takes the same object) and updated by the store's watch (etcd).

    `decisions` are the store's: host -> True (admitted) or False (revoked). `listed` are the
    static `[overlay] admitted_hosts`. A revoke wins over the list: it is the later, explicit act.
    """

    def __init__(self, mode: Mode = OPEN, listed: Iterable[str] = (), decisions: Mapping[str, bool] | None = None,
                 rules: Iterable[PortRule] = ()) -> None:
        self.mode = mode
        self.listed = frozenset(listed)
        self.decisions: dict[str, bool] = dict(decisions or {})
        self.rules: dict[str, dict[str, PortRule]] = {}  # host -> br0 port -> its rule
        for rule in rules:
            self.put_rule(rule)

    def admitted(self, host_id: str) -> bool:
        decided = self.decisions.get(host_id)
        if decided is not None:
            return decided
        return host_id in self.listed or self.mode.admits_unlisted

    def status(self, host_id: str) -> tuple[bool, str]:
        """(admitted, by whom or why not), as GET /v1/hosts shows it."""
        decided = self.decisions.get(host_id)
        if decided is True:
            return True, "operator"
        if decided is False:
            return False, REVOKED.format(id=host_id)
        if host_id in self.listed:
            return True, "config"
        if self.mode.admits_unlisted:
            return True, self.mode.by
        return False, WAITING.format(id=host_id)

    def rules_of(self, host_id: str) -> Mapping[str, PortRule]:
        return self.rules.get(host_id, {})

    def put_rule(self, rule: PortRule) -> PortRule | None:
        """Set a port's rule; the one it replaces, if any."""
        ports = self.rules.setdefault(rule.host, {})
        old = ports.get(rule.port)
        ports[rule.port] = rule
        return old

    def drop_rule(self, host_id: str, port: str) -> PortRule | None:
        ports = self.rules.get(host_id, {})
        old = ports.pop(port, None)
        if not ports:
            self.rules.pop(host_id, None)
        return old


@dataclass
class PendingHost:
    """A host that connected but is not admitted: listed, never programmed, never a peer."""

    view: HostView
    peer: Peer | None
    since: float
