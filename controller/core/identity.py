"""Nobody takes another host's place: who may claim a host's name (OVSDB system-id) or its br1's
datapath ID (OpenFlow), decided from the claim and what is known of the host, as values.

- While a host's channel is up, another connection claiming the same system-id (OVSDB) or
  datapath ID (OpenFlow) is refused: IN_USE. The host is not disturbed at all (the shell only asks
  the connection it holds for an echo, so that one dead without a word makes way).
- While any of a host's channels is up, and for host_grace after the last one went, a claim must
  come from the host itself: with certificates, its certificate (CN = system-id); without, the
  address its OVSDB connection came from (ADDRESS). After that anyone may take the name (with
  certificates, only with the right one).
- With `admission = certificate` a connection without a verified client certificate is refused
  (NO_CERTIFICATE), an OVSDB system-id other than the CN too, and a br1 whose datapath ID belongs
  to another host than its certificate's (WRONG_CERTIFICATE): a br1 is bound to its host by the
  certificate, not by the datapath ID it claims.
- An OVSDB view naming a br1 datapath ID another host holds does not get it (DATAPATH_TAKEN).

Each refusal is counted (`identity_refused:<channel>:<reason>`, exported as
overlay_identity_refused_total{channel,reason}), logged once per (identity, peer address, channel,
reason) and kept, bounded, for GET /v1/hosts (`Refusals`).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass

from controller.model.state import Peer

LOG = logging.getLogger(__name__)

OVSDB, OPENFLOW = "ovsdb", "openflow"
IN_USE = "in_use"
ADDRESS = "address"
NO_CERTIFICATE = "no_certificate"
WRONG_CERTIFICATE = "wrong_certificate"
DATAPATH_TAKEN = "datapath_taken"
REASONS = {
    IN_USE: "its {channel} channel is up on another connection",
    ADDRESS: "it is up, or lost less than host_grace ago, and this connection comes from another address",
    NO_CERTIFICATE: "no verified client certificate (admission = certificate)",
    WRONG_CERTIFICATE: "the client certificate names another host",
    DATAPATH_TAKEN: "its br1 datapath ID is another host's",
}
COUNTER = "identity_refused:"  # + channel:reason
MAX_IDENTITIES = 256  # refused identities remembered (the oldest forgotten first)
MAX_PER_IDENTITY = 8  # distinct (peer, channel, reason) per identity


@dataclass(frozen=True)
class Holder:
    """What is known of the host a claim names: its id, where its OVSDB came from, whether a
    channel of it is up, and since when it has none."""

    host_id: str
    peer: Peer | None
    up: bool
    lost_since: float | None

    def held(self, now: float, grace: float) -> bool:
        return self.up or (self.lost_since is not None and now - self.lost_since < grace)


def _from_the_host(claim: Peer, holder: Holder, needs_certificate: bool) -> bool:
    if needs_certificate:
        return claim.cn == holder.host_id
    return holder.peer is None or claim.ip == holder.peer.ip


def ovsdb_refusal(claim: Peer, system_id: str, live: bool, holder: Holder | None, needs_certificate: bool,
                  grace: float, now: float) -> str | None:
    """Why an OVSDB connection may not be host `system_id` (None: it may). `live`: another open
    connection is that host's."""
    if needs_certificate:
        if claim.cn is None:
            return NO_CERTIFICATE
        if claim.cn != system_id:
            return WRONG_CERTIFICATE
    if live:
        return IN_USE
    if holder is not None and holder.held(now, grace) and not _from_the_host(claim, holder, needs_certificate):
        return ADDRESS
    return None


def datapath_refusal(claim: Peer, connected: bool, holder: Holder | None, needs_certificate: bool,
                     grace: float, now: float) -> str | None:
    """Why an OpenFlow connection may not be the br1 with this datapath ID (None: it may).
    `connected`: that datapath ID is connected already; `holder`: the host whose view names it."""
    if needs_certificate and claim.cn is None:
        return NO_CERTIFICATE
    if connected:
        return IN_USE
    if holder is None:
        return None  # no host names it (yet): bound when one does (Core.host_view checks again)
    if needs_certificate:
        return None if claim.cn == holder.host_id else WRONG_CERTIFICATE
    return ADDRESS if holder.held(now, grace) and not _from_the_host(claim, holder, False) else None


def bound(dp_peer: Peer | None, host_id: str, needs_certificate: bool) -> bool:
    """May this connected br1 serve host_id? With certificates only its own; else (bound by its
    datapath ID) yes."""
    return not needs_certificate or (dp_peer is not None and dp_peer.cn == host_id)


@dataclass
class Refusal:
    peer: str
    channel: str
    reason: str
    first: float
    last: float
    count: int = 1

    def to_json(self) -> dict:
        return {"peer": self.peer, "channel": self.channel, "reason": self.reason,
                "why": REASONS[self.reason].format(channel=self.channel), "first": self.first, "at": self.last,
                "count": self.count}


class Refusals:
    """Refused claims by the identity they claimed (a host id, or "dpid:<hex>" for a datapath no
    host names), bounded; each refusal counted, the first of its kind logged."""

    def __init__(self, counters: Counter[str]) -> None:
        self.counters = counters
        self.by_identity: OrderedDict[str, list[Refusal]] = OrderedDict()

    def add(self, identity: str, claim: Peer, channel: str, reason: str, now: float) -> None:
        self.counters[f"{COUNTER}{channel}:{reason}"] += 1
        kept = self.by_identity.setdefault(identity, [])
        self.by_identity.move_to_end(identity)
        for r in kept:
            if (r.peer.rsplit(":", 1)[0], r.channel, r.reason) == (claim.ip, channel, reason):
                r.last, r.peer = now, claim.address
                r.count += 1
                return
        LOG.warning("refused %s connection from %s claiming %s%s: %s", channel, claim.address, identity,
                    f" (certificate CN {claim.cn!r})" if claim.cn else "", REASONS[reason].format(channel=channel))
        kept.append(Refusal(claim.address, channel, reason, now, now))
        del kept[:-MAX_PER_IDENTITY]
        while len(self.by_identity) > MAX_IDENTITIES:
            self.by_identity.popitem(last=False)

    def of(self, identity: str) -> list[dict]:
        return [r.to_json() for r in self.by_identity.get(identity, ())]

    def carry(self, other: Refusals) -> None:
        """A new core (a new leader) keeps what the old one was refused."""
        self.by_identity = other.by_identity


def dpid_identity(dpid: int) -> str:
    return f"dpid:{dpid:016x}"
