"""What bench/scale.py builds: hosts, tenants and VMs of one size and shape, as plain values, and
the percentiles its phases are summed up with."""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field

VLAN_BASE = 100


@dataclass
class TenantPlan:
    name: str
    vni: int
    vlans: dict[str, int]  # host id -> its local VLAN (every host of the tenant)
    restricted: bool  # sent with a `hosts` list

    def body(self) -> dict:
        default = next(iter(self.vlans.values()), VLAN_BASE)
        doc: dict = {"name": self.name, "vni": self.vni, "vlan": default}
        if self.restricted:
            doc["hosts"] = sorted(self.vlans)
            doc["vlans"] = {h: v for h, v in self.vlans.items() if v != default}
        return doc


@dataclass
class VmPlan:
    tenant: TenantPlan
    host: str
    mac: str
    ip: str

    @property
    def vlan(self) -> int:
        return self.tenant.vlans[self.host]


@dataclass
class Plan:
    shape: str
    hosts: list[tuple[str, str, int]]  # (id, overlay ip, dpid)
    tenants: list[TenantPlan]
    vms: list[VmPlan] = field(default_factory=list)
    macs: int = 0
    per_tenant: dict[str, int] = field(default_factory=dict)  # VMs so far: their IPs count up

    def new_mac(self) -> str:
        self.macs += 1
        return ":".join(f"{b:02x}" for b in (0x020000000000 | self.macs).to_bytes(6, "big"))

    def add_vm(self, tenant: TenantPlan, host: str) -> VmPlan:
        n = self.per_tenant[tenant.name] = self.per_tenant.get(tenant.name, 0) + 1
        vm = VmPlan(tenant, host, self.new_mac(), f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
        self.vms.append(vm)
        return vm


def host_tuple(i: int) -> tuple[str, str, int]:
    return (f"h{i}", f"10.{100 + (i >> 16)}.{i >> 8 & 255}.{i & 255}", i)


def plan(shape: str, n: int, tenants: int, vms: int, tenants_per_host: int, seed: int) -> Plan:
    """dense: `tenants` tenants on every host, `vms` VMs per host per tenant.
    sparse: `tenants_per_host` x n tenants, each on 3-8 random hosts with `vms` VMs on each."""
    rng = random.Random(seed)
    hosts = [host_tuple(i) for i in range(1, n + 1)]
    ids = [h[0] for h in hosts]
    p = Plan(shape, hosts, [])
    if shape == "dense":
        for k in range(tenants):
            p.tenants.append(TenantPlan(f"t{k}", 1000 + k, {h: VLAN_BASE + k for h in ids}, False))
    else:
        next_vlan = dict.fromkeys(ids, VLAN_BASE)
        for k in range(tenants_per_host * n):
            members = rng.sample(ids, min(n, rng.randint(3, 8)))
            vlans = {}
            for h in members:
                vlans[h] = next_vlan[h]
                next_vlan[h] += 1
            p.tenants.append(TenantPlan(f"t{k}", 1000 + k, vlans, True))
    for tn in p.tenants:
        for h in tn.vlans:
            for _ in range(vms):
                p.add_vm(tn, h)
    return p


def percentiles(values: list[float], scale: float = 1.0) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * len(v)))] * scale  # noqa: E731
    return {"n": len(v), "p50": round(pick(0.5), 3), "p90": round(pick(0.9), 3), "p99": round(pick(0.99), 3),
            "max": round(v[-1] * scale, 3), "mean": round(statistics.fmean(v) * scale, 3)}
