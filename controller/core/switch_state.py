"""What one switch holds, as far as the controller knows: what it installed, or read back.

After a (re)connect the controller reads the switch's flows (key and cookie), groups and
meters instead of wiping it. A flow read back with the key and cookie of a flow we want is left
alone (its counters and idle timer run on); the cookie's digest says the content is the same.
Learned endpoints are recovered from the same read-back: the source and binding entries on an
endpoint's own host say tenant (cookie), VLAN, MAC and IP (match).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controller.core.index import Index
from controller.core.parts import EpKey
from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import Endpoint
from controller.pipeline.desired import source_of

FlowKey = tuple[int, int, f.Match]  # (table, priority, match)
CookieOf = Callable[[f.Flow], int]  # the cookie a flow is written with (controller/southbound/encoder.py)


def held_as_made(fl: f.Flow, cookie: int, cookie_of: CookieOf | None) -> bool:
    """Is a flow read back with fl's key and this cookie fl itself? Its cookie is the one fl is
    written with now, or the one older controllers wrote (flows.legacy_cookie): an upgrade
    rewrites nothing. Without cookie_of (the core alone, in tests), only the latter is known."""
    if cookie_of is not None and cookie == cookie_of(fl):
        return True
    return cookie & ~f.DIGEST_MASK == fl.owner_cookie and cookie == f.legacy_cookie(fl)


@dataclass
class SwitchDump:
    flows: dict[FlowKey, int] = field(default_factory=dict)  # key as the switch wrote it -> cookie
    groups: set[int] = field(default_factory=set)
    meters: set[int] = field(default_factory=set)


class Installed:
    """What the controller installed on a switch, per partition: each flow by its key and digest
    (Flow.digest, 64 bits), not the flow itself: at 1,000 hosts a switch holds some 700 flows and
    the controller 730,000 of them; the flows are recomputed where they are needed again
    (reconcile.installed_flows)."""

    ABSENT = object()  # a group we do not hold (None: held, content unknown)

    def __init__(self) -> None:
        self.parts: dict[object, tuple[FlowKey, ...]] = {}  # partition -> keys it claimed (some may have moved on)
        self.owner: dict[FlowKey, object] = {}  # key -> partition
        self.digests: dict[FlowKey, int] = {}  # key -> digest of the flow the switch holds
        self.inputs: dict[object, object] = {}  # partition -> what its flows were computed from (or absent)
        self.groups: dict[int, f.GroupEntry | None] = {}
        self.meters: dict[int, f.Meter | None] = {}
        self._read_back: dict[FlowKey, int] = {}  # not yet claimed by any partition

    @classmethod
    def from_dump(cls, dump: SwitchDump) -> Installed:
        inst = cls()
        inst._read_back = dict(dump.flows)
        inst.groups = dict.fromkeys(dump.groups)
        inst.meters = dict.fromkeys(dump.meters)
        return inst

    def holds(self, part: object) -> bool:
        return part in self.parts

    def keys_of(self, part: object) -> list[FlowKey]:
        """The keys a partition holds now (a key another partition claimed since is that one's)."""
        return [k for k in self.parts.get(part, ()) if self.owner.get(k) == part]

    def flow_count(self) -> int:
        return len(self.owner)

    def put(self, part: object, want: Iterable[f.Flow], canon: Callable[[f.Match], f.Match],
            inputs: object = None, cookie_of: CookieOf | None = None) -> tuple[list[f.Flow], list[FlowKey]]:
        """Make want the partition's flows. Returns the flows the switch does not hold as they are
        (to send), and the keys of the partition's flows no longer wanted (to delete).

        `inputs`: what want was computed from, kept for `same_inputs` (None: nothing to compare).
        `canon`, `cookie_of`: how the switch reports a flow's match and cookie (read-back flows)."""
        send: list[f.Flow] = []
        keys: list[FlowKey] = []
        owner, digests, read_back = self.owner, self.digests, self._read_back
        for fl in want:
            key = fl.key
            digest = fl.digest
            had = digests.get(key)
            if had is None:
                ck = read_back.pop((key[0], key[1], canon(key[2])), None) if read_back else None
                if ck is None or not held_as_made(fl, ck, cookie_of):
                    send.append(fl)
            elif had != digest:
                send.append(fl)
            owner[key] = part
            digests[key] = digest
            keys.append(key)
        gone: list[FlowKey] = []
        old = self.parts.get(part)
        if old:
            keep = set(keys)
            for k in old:
                if k not in keep and owner.get(k) == part:
                    del owner[k]
                    del digests[k]
                    gone.append(k)
        if keys:
            self.parts[part] = tuple(keys)
        else:
            self.parts.pop(part, None)
        if inputs is None:
            self.inputs.pop(part, None)
        else:
            self.inputs[part] = inputs
        return send, gone

    def same_inputs(self, part: object, inputs: object) -> bool:
        """Were the partition's flows, as the switch holds them, computed from these inputs?"""
        return inputs is not None and self.inputs.get(part) == inputs

    def forget(self, key: FlowKey) -> None:
        """The switch removed it by itself (idle timeout): its partition is recomputed from scratch."""
        owner = self.owner.pop(key, None)
        self.digests.pop(key, None)
        if owner is not None:
            self.inputs.pop(owner, None)

    def unclaimed(self) -> dict[FlowKey, int]:
        """Flows read back that no partition claimed (yet), by key: their cookies."""
        return dict(self._read_back)

    def drop_unclaimed(self, role: int) -> list[FlowKey]:
        """Forget the unclaimed flows read back with this role (for the caller to delete)."""
        gone = [key for key, ck in self._read_back.items() if f.cookie_role(ck) == role]
        for key in gone:
            del self._read_back[key]
        return gone

    def read_back(self) -> bool:
        return bool(self._read_back)

    def unwanted(self, recovering: bool, keep_learned: bool) -> tuple[list[FlowKey], int]:
        """Read-back flows no partition claimed, to delete, and how many of them are not ours.

        Kept: hold-downs (they expire by themselves), learn()'s own entries (learn mode), and while
        recovering, endpoint entries (their endpoint's own host may not have been read back yet).
        """
        gone: list[FlowKey] = []
        kept: dict[FlowKey, int] = {}
        strangers = 0
        for key, ck in self._read_back.items():
            kind = f.cookie_kind(ck)
            if kind == f.COOKIE_HOLDDOWN or (ck == 0 and key[0] == t.UNICAST and keep_learned):
                continue
            if kind == f.COOKIE_ENDPOINT and recovering:
                kept[key] = ck
                continue
            strangers += kind not in f.OUR_KINDS
            gone.append(key)
        self._read_back = kept
        return gone, strangers


def recovered_endpoints(dump: SwitchDump, host_id: str, ix: Index, now: float = 0.0) -> Iterable[Endpoint]:
    """Endpoints (with their IPs) whose source entries this host's switch holds, not yet known."""
    found: dict[EpKey, Endpoint] = {}
    bindings: list[tuple[int, str, str]] = []
    for (_table, _prio, match), ck in dump.flows.items():
        if f.cookie_kind(ck) != f.COOKIE_ENDPOINT:
            continue
        role, vni, m = f.cookie_role(ck), f.cookie_vni(ck), dict(match)
        vid, mac = source_of(m)
        if not isinstance(mac, str) or not isinstance(vid, int):
            continue
        tenant = ix.tenant_on(host_id, vid & 0x0FFF)
        if tenant is None or tenant.vni != vni or (vni, mac) in ix.endpoints:
            continue
        if role == f.ROLE_SOURCE:
            found[EpKey(vni, mac)] = Endpoint(vni, mac, host_id, vid & 0x0FFF, now)
        elif role == f.ROLE_BINDING:
            ip = m.get("arp_spa") or m.get("ipv6_src")
            if isinstance(ip, str):
                bindings.append((vni, mac, ip))
    for vni, mac, ip in bindings:
        ep = found.get((vni, mac))
        if ep is not None and (vni, ip) not in ix.bindings:
            ep.ips.add(ip)
    return sorted(found.values(), key=lambda e: (e.vni, e.mac))
