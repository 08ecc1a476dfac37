"""What one switch holds, as far as the controller knows: what it installed, or read back.

After a (re)connect the controller reads the switch's flows (key and cookie), groups and
meters instead of wiping it. A flow read back with the key and cookie of a flow we want is left
alone (its counters and idle timer run on); the cookie's digest says the content is the same.
Learned endpoints are recovered from the same read-back: the source and binding entries on an
endpoint's own host say tenant (cookie), VLAN, MAC and IP (match).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from controller.core.index import Index
from controller.core.parts import EpKey
from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import Endpoint
from controller.pipeline.desired import source_of

FlowKey = tuple[int, int, f.Match]  # (table, priority, match)


@dataclass
class SwitchDump:
    flows: dict[FlowKey, int] = field(default_factory=dict)  # key as the switch wrote it -> cookie
    groups: set[int] = field(default_factory=set)
    meters: set[int] = field(default_factory=set)


class Installed:
    ABSENT = object()  # a group we do not hold (None: held, content unknown)

    def __init__(self) -> None:
        self.flows: dict[object, dict[FlowKey, f.Flow]] = {}  # partition -> key -> flow
        self.owner: dict[FlowKey, object] = {}  # key -> partition
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

    def all_flows(self) -> Iterator[f.Flow]:
        for part in self.flows.values():
            yield from part.values()

    def claim(self, part: object, fl: f.Flow, canon: Callable[[f.Match], f.Match]) -> bool:
        """Make fl part's; True when the switch already holds exactly it."""
        key = fl.key
        have: f.Flow | int | None = None
        owner = self.owner.get(key)
        if owner is not None:
            have = self.flows[owner].pop(key)
        elif self._read_back:
            have = self._read_back.pop((key[0], key[1], canon(key[2])), None)
        self.flows.setdefault(part, {})[key] = fl
        self.owner[key] = part
        if have is None:
            return False
        return have == fl if isinstance(have, f.Flow) else have == fl.wire_cookie

    def release(self, part: object, keep: set[FlowKey]) -> list[tuple[FlowKey, f.Flow]]:
        """Part's flows not in keep: forgotten here, for the caller to delete on the switch."""
        held = self.flows.get(part, {})
        gone = [(k, fl) for k, fl in held.items() if k not in keep]
        for k, _ in gone:
            del held[k]
            del self.owner[k]
        if not held:
            self.flows.pop(part, None)
        return gone

    def forget(self, key: FlowKey) -> None:
        """The switch removed it by itself (idle timeout)."""
        owner = self.owner.pop(key, None)
        if owner is not None:
            self.flows[owner].pop(key, None)

    def naming(self, ports: set[int]) -> set[object]:
        """The partitions whose flows or groups send out of one of these ports."""
        parts = {part for part, flows in self.flows.items()
                 if any(f.outputs(fl.actions) & ports for fl in flows.values())}
        parts |= {part for part, g in self.groups.items()
                  if g is not None and any(f.outputs(b.actions) & ports for b in g.buckets)}
        return parts

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
