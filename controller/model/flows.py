"""Flow, group and meter values: plain data that the core computes and ofmsg encodes.

A flow's identity is its key (table, priority, match): installing and deleting a flow both
use that key, so a delete always removes exactly what the install put there.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from controller.model import tables as t
from controller.model.memo import ByIdentity

OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
OFPVID_PRESENT = 0x1000
ETH_TYPE_ARP = 0x0806
ETH_TYPE_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
ICMPV6_NS = 135
ICMPV6_NA = 136

UNICAST_MAC = ("00:00:00:00:00:00", "01:00:00:00:00:00")
MULTICAST_MAC = ("01:00:00:00:00:00", "01:00:00:00:00:00")

# Cookies say who owns a flow and what it holds, so a switch's own table can be read back:
#   bits 56-63 kind, 32-55 the tenant's VNI, 24-31 the flow's role (what its packets count as),
#   0-23 a digest of everything else in the flow: a flow read back with the same key and cookie
#   is the flow we would install, and is left alone. The digest is the encoder's, of the
#   flow-mod it writes (controller/southbound/encoder.py, wire_cookie); flows an older
#   controller wrote hold one of the flow's repr (legacy_cookie), still taken as the same flow.
COOKIE_BASE = 0x01 << 56  # the fixed pipeline
COOKIE_TUNNEL = 0x02 << 56  # classify of one tunnel port
COOKIE_TENANT = 0x03 << 56  # a tenant's tunnel-in, flood and responder-miss flows
COOKIE_ENDPOINT = 0x04 << 56  # learned endpoints: unicast, source, responder entries
COOKIE_HOLDDOWN = 0x05 << 56  # short-lived drops of requests for unanswered IPs
COOKIE_KIND_MASK = 0xFF << 56
OUR_KINDS = (COOKIE_BASE, COOKIE_TUNNEL, COOKIE_TENANT, COOKIE_ENDPOINT, COOKIE_HOLDDOWN)
ROLE_SHIFT = 24
ROLE_MASK = 0xFF << ROLE_SHIFT
DIGEST_MASK = (1 << ROLE_SHIFT) - 1

# Roles: what a flow's packets mean, so counters ask a flow (or a cookie-masked aggregate of the
# switch's flows) instead of guessing from table and priority numbers.
ROLE_NONE = 0
ROLE_ARP_PROXY = 1  # ARP request answered in the switch for a remote endpoint
ROLE_ARP_LOCAL = 2  # ARP request for a local endpoint: its owner answers, nothing crosses the underlay
ROLE_ND_PROXY = 3
ROLE_ND_LOCAL = 4
ROLE_FLOOD_UNKNOWN = 5  # ARP/NS for an IP nobody announced: flooded (metered)
ROLE_FLOOD = 6  # a tenant's broadcast/multicast/unknown unicast sent to its flood group
ROLE_UNICAST_KNOWN = 7  # unicast to a known remote endpoint
ROLE_SOURCE = 8  # a local endpoint's source entry: its idle timeout ages the MAC
ROLE_BINDING = 9  # a local endpoint's known (MAC, IP) binding
ROLE_SPOOFED = 10  # a frame from br0 whose source port security does not allow: dropped


def cookie(kind: int, vni: int = 0) -> int:
    return kind | (vni & 0xFFFFFF) << 32


def cookie_kind(value: int) -> int:
    return value & COOKIE_KIND_MASK


def cookie_vni(value: int) -> int:
    return value >> 32 & 0xFFFFFF


def cookie_role(value: int) -> int:
    return (value & ROLE_MASK) >> ROLE_SHIFT


# Match values: int/str, or (value, mask) for masked fields.
MatchValue = int | str | tuple
Match = tuple[tuple[str, MatchValue], ...]


_PAIRS: dict[tuple[str, MatchValue], tuple[str, MatchValue]] = {}
PAIRS_KEPT = 1 << 18


def match(**fields: MatchValue) -> Match:
    """The one match builder: a canonical, hashable match (sorted by field name).

    Its (field, value) pairs are shared: an endpoint's MAC and IP recur in its entries on every
    member host and a host's VLAN of a tenant in all of its entries there, and a switch's keys
    are the controller's largest state (1,000 hosts: 730,000 flows)."""
    pairs = _PAIRS
    if len(pairs) >= PAIRS_KEPT:
        pairs.clear()  # those still in use stay shared as they are; new ones start over
    return tuple([pairs.setdefault(p, p) for p in sorted(fields.items())])


@dataclass(frozen=True, slots=True)
class Output:
    port: int
    max_len: int = 0xFFE5  # OFPCML_NO_BUFFER for the controller; ignored elsewhere


@dataclass(frozen=True, slots=True)
class PushVlan:
    ethertype: int = 0x8100


@dataclass(frozen=True, slots=True)
class PopVlan:
    pass


@dataclass(frozen=True, slots=True)
class SetField:
    field: str
    value: int | str


@dataclass(frozen=True, slots=True)
class Move:
    """Copy n_bits of src into dst (Nicira reg_move)."""

    src: str
    dst: str
    n_bits: int


@dataclass(frozen=True, slots=True)
class Group:
    group_id: int


@dataclass(frozen=True, slots=True)
class Resubmit:
    table: int


@dataclass(frozen=True, slots=True)
class Learn:
    """The article's learn(): remember 'this source MAC is behind this tunnel' in table `table`."""

    table: int
    priority: int
    hard_timeout: int
    tun_dst_from_src: bool = False  # flow-based tunnel ports: reply to the frame's tun_src


@dataclass(frozen=True, slots=True)
class Clone:
    """Run actions on a copy: a meter dropping the copy cannot drop the original."""

    actions: tuple


Action = Output | PushVlan | PopVlan | SetField | Move | Group | Resubmit | Learn | Clone


def resubmits(actions: tuple) -> list[int]:
    """Tables that actions resubmit to, clones included."""
    out: list[int] = []
    for a in actions:  # by exact type: this runs for every flow made (action types are final)
        kind = type(a)
        if kind is Resubmit:
            out.append(a.table)
        elif kind is Clone:
            out += resubmits(a.actions)
    return out


def outputs(actions: tuple) -> set[int]:
    """Ports that actions output to, clones included."""
    out: set[int] = set()
    for a in actions:
        kind = type(a)
        if kind is Output:
            out.add(a.port)
        elif kind is Clone:
            out |= outputs(a.actions)
    return out


@dataclass(slots=True)  # not frozen: making one is the controller's most frequent step, and a frozen
class Flow:  # dataclass's __init__ takes 3x as long. Never changed once made: flows are shared and hashed.
    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    meter: int | None = None
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    notify_removed: bool = False
    role: int = ROLE_NONE
    _hash: int = field(default=0, init=False, repr=False, compare=False)
    _digest: int = field(default=0, init=False, repr=False, compare=False)
    _add: bytes = field(default=b"", init=False, repr=False, compare=False)  # encoder.flow_mod's, once made
    _base: Flow | None = field(default=None, init=False, repr=False, compare=False)  # on_vlan's: the flow it
    # differs from in its VLAN only (the encoder patches that flow's bytes)

    def __hash__(self) -> int:
        # Flows live in sets and are hashed over and over: the dataclass's own hash re-hashed every
        # field and action each time. The key is enough (equal flows have equal keys; two flows
        # with one key are rare, and compared whole), and its hash is kept.
        h = self._hash
        if not h:
            h = hash((self.table, self.priority, self.match)) or 1
            self._hash = h
        return h

    @property
    def key(self) -> tuple[int, int, Match]:
        return (self.table, self.priority, self.match)

    @property
    def owner_cookie(self) -> int:
        """The cookie's owner and role bits (the digest bits are the encoder's: wire_cookie)."""
        return self.cookie | self.role << ROLE_SHIFT

    @property
    def digest(self) -> int:
        """The whole flow in 64 bits (cookie and role included): what the core keeps of a flow it
        installed, to tell whether the switch holds it as made now. Made of the fields' own hashes,
        within this process only (never written anywhere): the actions' once per tuple (shared by
        every host an endpoint's or a tenant's entries go to)."""
        h = self._digest
        if not h:
            h = hash((self.table, self.priority, self.match, _actions_hash(self.actions), self.goto, self.meter,
                      self.idle_timeout, self.hard_timeout, self.notify_removed, self.cookie, self.role)) or 1
            self._digest = h
        return h

    def __post_init__(self) -> None:
        if self.table not in t.BY_ID:
            raise ValueError(f"unknown table {self.table}")
        if self.goto is not None and self.goto <= self.table:
            raise ValueError(f"goto_table must move forward: {self.table} -> {self.goto}")
        nexts = [self.goto] if self.goto is not None else []
        nexts += resubmits(self.actions)
        for n in nexts:
            if n not in t.BY_ID[self.table].next:
                raise ValueError(f"table {self.table} may not continue to table {n}")


def vlan_at(m: Match) -> int | None:
    """Where a match's VLAN is (its index), or None."""
    return next((i for i, (name, _) in enumerate(m) if name == "vlan_vid"), None)


def on_vlan(base: Flow, vid: int) -> Flow:
    """base with vid as its match's VLAN, and otherwise the same: an endpoint's entries on each of
    its member hosts, where a tenant's VLAN is the host's own. Made without __init__'s checks (base
    passed them, and nothing they look at changes), and linked to base, whose bytes the encoder
    patches instead of encoding the flow again (encoder.flow_mod)."""
    m = base.match
    i = vlan_at(m)
    if i is None:
        raise ValueError(f"no VLAN in {m!r}")
    pair = ("vlan_vid", vid)
    m = (*m[:i], _PAIRS.setdefault(pair, pair), *m[i + 1:])
    fl = object.__new__(Flow)
    fl.table, fl.priority, fl.match, fl.actions = base.table, base.priority, m, base.actions
    fl.goto, fl.meter, fl.cookie, fl.role = base.goto, base.meter, base.cookie, base.role
    fl.idle_timeout, fl.hard_timeout, fl.notify_removed = base.idle_timeout, base.hard_timeout, base.notify_removed
    fl._hash = fl._digest = 0
    fl._add = b""
    fl._base = base if base._base is None else base._base
    return fl


def legacy_cookie(fl: Flow) -> int:
    """The cookie older controllers wrote (until December 2026): owner and role, and a digest of
    the flow's repr. A flow read back with it is still the flow we would install (an upgrade
    rewrites nothing)."""
    return fl.owner_cookie | zlib.crc32(digest_content(fl)) & DIGEST_MASK


def digest_content(fl: Flow) -> bytes:
    """repr((table, priority, match, actions, goto, meter, idle, hard, notify)): legacy_cookie's input."""
    return f"{_head(fl.table, fl.priority)}{fl.match!r}, {_actions_repr(fl.actions)}, {_tail(fl)}".encode()


@lru_cache(maxsize=1 << 10)
def _head(table: int, priority: int) -> str:
    return f"({table!r}, {priority!r}, "


def _tail(fl: Flow) -> str:
    return _tails(fl.goto, fl.meter, fl.idle_timeout, fl.hard_timeout, fl.notify_removed)


@lru_cache(maxsize=1 << 10, typed=True)  # typed: False and 0 print differently
def _tails(goto: int | None, meter: int | None, idle: int, hard: int, notify: bool) -> str:
    return f"{goto!r}, {meter!r}, {idle!r}, {hard!r}, {notify!r})"


_actions_repr = ByIdentity(repr, 1 << 10)  # a read-back after an upgrade: the same tuples on many hosts
_actions_hash = ByIdentity(hash, 1 << 13)  # the same tuple goes to every host an endpoint's entries go to


@dataclass(frozen=True, slots=True)
class Bucket:
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """A group of type ALL: every bucket gets a copy."""

    group_id: int
    buckets: tuple[Bucket, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Meter:
    meter_id: int
    rate_pps: int
    burst: int
