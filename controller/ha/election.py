"""Leader election on an etcd lease, as a pure state machine: events in, actions out.

Every instance holds a lease (TTL `[etcd] lease_ttl`) and keeps it alive every TTL/3. Each
step it campaigns: one etcd transaction "create the election key with my lease if it is
absent, else read it". Whoever created the key leads until its lease expires (the process
died or lost etcd) or it resigns; the key's create revision is the leader's generation ID,
which only grows, so a newer leader always has a larger one (the switches refuse a MASTER
role request whose generation is older than one they have seen).

A leader also stops leading on its own clock: once it could not renew its lease for a TTL
(counted from when the last renewal that succeeded was *sent*), etcd may already have given
the key to another instance, so it steps down without waiting to hear so.

Nothing here touches etcd or a socket: controller/ha/election_etcd.py carries the actions out
and feeds the results back; times are the caller's monotonic `now`.
"""

from __future__ import annotations

from dataclasses import dataclass

FENCE_MARGIN = 0.1  # of the TTL: a leader steps down this much before its lease could have run out
STALE_HOLDOFF = 2.0  # TTLs a leader refused by a switch waits before it campaigns again


@dataclass(frozen=True)
class Grant:
    """Ask etcd for a new lease of `ttl` seconds."""

    ttl: int


@dataclass(frozen=True)
class KeepAlive:
    lease: int


@dataclass(frozen=True)
class Campaign:
    """Create the election key with this lease if it is absent; otherwise read who holds it."""

    lease: int


@dataclass(frozen=True)
class Resign:
    """Delete the election key if this lease holds it, and revoke the lease."""

    lease: int


@dataclass(frozen=True)
class Lead:
    """This instance leads from now on, with this generation ID."""

    generation: int


@dataclass(frozen=True)
class Follow:
    """Another instance leads (leader None: nobody known); `generation` is the newest seen."""

    leader: str | None
    generation: int


Action = Grant | KeepAlive | Campaign | Resign | Lead | Follow


@dataclass(frozen=True)
class Holder:
    """Who holds the election key: the instance's name, its lease, the key's create revision."""

    name: str
    lease: int
    generation: int


class Election:
    def __init__(self, me: str, ttl: int) -> None:
        self.me = me
        self.ttl = ttl  # asked for; etcd may grant more (its minimum TTL)
        self.lease: int | None = None
        self.granted_ttl = float(ttl)
        self.valid_until = 0.0  # our lease surely lives until then (sent time of the last renewal + TTL)
        self.next_keepalive = 0.0
        self.leading = False
        self.leader: str | None = None
        self.generation = 0  # the newest generation seen: ours while we lead
        self.holdoff_until = 0.0
        self.etcd_ok = False

    # ---- time passes ---------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """What to do now: step down if the lease may have run out, get or renew it, campaign."""
        out: list[Action] = []
        if self.leading and now >= self.valid_until - FENCE_MARGIN * self.granted_ttl:
            out += self._step_down(None)
        if self.lease is not None and now >= self.valid_until:
            self.lease = None  # it has expired in etcd too: get a new one
        if self.lease is None:
            return out + [Grant(self.ttl)]
        if now >= self.next_keepalive:
            out.append(KeepAlive(self.lease))
        if now >= self.holdoff_until:
            out.append(Campaign(self.lease))
        return out

    # ---- what etcd answered ----------------------------------------------------------------

    def granted(self, lease: int, ttl: float, sent_at: float) -> list[Action]:
        self.etcd_ok = True
        self.lease, self.granted_ttl = lease, max(float(ttl), 1.0)
        self._renewed(sent_at)
        return [] if sent_at < self.holdoff_until else [Campaign(lease)]

    def kept_alive(self, lease: int, ttl: float, sent_at: float) -> list[Action]:
        """A renewal answered: ttl > 0 renewed it; ttl <= 0 means etcd no longer knows the lease."""
        self.etcd_ok = True
        if lease != self.lease:
            return []
        if ttl <= 0:
            self.lease = None
            return self._step_down(self.leader if not self.leading else None)
        self.granted_ttl = float(ttl)
        self._renewed(sent_at)
        return []

    def _renewed(self, sent_at: float) -> None:
        self.valid_until = max(self.valid_until, sent_at + self.granted_ttl)
        self.next_keepalive = sent_at + self.granted_ttl / 3

    def campaigned(self, lease: int, holder: Holder | None, now: float) -> list[Action]:
        """The campaign's answer: the key's holder (us if we created it or held it already);
        None if the key vanished between the compare and the read."""
        self.etcd_ok = True
        if holder is None or lease != self.lease:
            return []
        if holder.lease == self.lease and holder.name == self.me:
            if now >= self.valid_until - FENCE_MARGIN * self.granted_ttl:
                return []  # not renewed in time: leading now could overlap the next leader
            if self.leading and holder.generation == self.generation:
                return []
            self.leading, self.leader = True, self.me
            self.generation = max(self.generation, holder.generation)
            return [Lead(self.generation)]
        if self.leading:
            return self._step_down(holder.name, holder.generation)
        if (holder.name, holder.generation) != (self.leader, self.generation):
            self.leader = holder.name
            self.generation = max(self.generation, holder.generation)
            return [Follow(holder.name, self.generation)]
        return []

    def etcd_failed(self, now: float) -> list[Action]:
        """A call failed (no endpoint answered): the clock in tick() decides when to step down."""
        self.etcd_ok = False
        return []

    # ---- what the switches said ----------------------------------------------------------------

    def stale(self, generation: int | None, now: float) -> list[Action]:
        """A switch refused our MASTER request: it has seen a newer generation, so a newer
        leader exists (or etcd lost its history). Step down, resign, and hold off a while."""
        if generation is not None:
            self.generation = max(self.generation, generation)
        if not self.leading:
            return []
        out = self._step_down(None)
        self.holdoff_until = now + STALE_HOLDOFF * self.granted_ttl
        if self.lease is not None:
            out.append(Resign(self.lease))
            self.lease = None
        return out

    def _step_down(self, leader: str | None, generation: int | None = None) -> list[Action]:
        was = self.leading
        self.leading = False
        if generation is not None:
            self.generation = max(self.generation, generation)
        changed = was or leader != self.leader
        self.leader = leader
        return [Follow(leader, self.generation)] if changed else []

    def may_lead(self, now: float) -> bool:
        """Leading, and surely still within the lease: checked before every write, so that a
        process that was paused past its lease sends nothing before tick() has run."""
        return self.leading and now < self.valid_until - FENCE_MARGIN * self.granted_ttl

    def status(self, now: float) -> dict:
        return {"role": "leader" if self.leading else "follower", "instance": self.me, "leader": self.leader,
                "generation": self.generation, "lease_ttl": self.granted_ttl, "etcd_reachable": self.etcd_ok,
                "lease_valid_s": round(max(0.0, self.valid_until - now), 3) if self.lease is not None else 0.0}
