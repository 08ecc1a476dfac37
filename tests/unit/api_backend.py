"""An in-memory backend for the WSGI app: the real core and store, no event loop, no switches."""

from __future__ import annotations

import json
from typing import Any

from webob import Request

from controller.core.admission import HostPolicy
from controller.core.core import Core
from controller.core.store import TenantStore
from controller.ha.roles import Roles
from controller.ha.store import Store
from controller.model.state import HostView, Tenant
from controller.northbound.events import EventHub
from controller.northbound.metrics import Metrics
from controller.northbound.rest import Api
from controller.shell.config import defaults


class FakeClockHub(EventHub):
    """The event hub on the backend's clock: waiting for a change moves the clock, it never sleeps."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(clock=lambda: backend.clock, monotonic=lambda: backend.clock)
        self.backend = backend
        self.waited = 0.0

    def wait_change(self, timeout: float) -> None:
        self.waited += timeout
        self.backend.clock += timeout


class Backend:
    def __init__(self, db_path: str, store: TenantStore | None = None, policy: HostPolicy | None = None) -> None:
        self.store = store or Store(db_path)
        self.core = Core(defaults(), self.store.tenants(), policy=policy)
        self.applied: list = []
        self.clock = 1000.0
        self.metrics = Metrics()
        self.unidentified: dict[str, str] = {}  # OVSDB peer -> why it is not a host
        self.event_hub = FakeClockHub(self)
        self.confirmed: dict[int, int] = {}  # dpid -> what its barrier replies confirmed (default: all)

    def switch_holds(self, dpid: int, computed: int | None) -> int | None:
        held = self.confirmed.get(dpid, computed)
        return None if computed is None or held is None else min(held, computed)

    def unidentified_hosts(self) -> dict[str, str]:
        return dict(self.unidentified)

    def role_status(self) -> dict:
        return Roles(False, "c1").status(self.clock)

    def call(self, fn, timeout=None):
        return fn()

    def apply(self, ops) -> None:
        self.event_hub.publish(self.core.take_events())
        self.applied += ops

    def now(self) -> float:
        return self.clock


def seeded(api: Api) -> Api:
    """Two tenants and two hosts, so reads and writes meet existing things."""
    for tenant in (Tenant("blue", 5001, 10), Tenant("red", 5002, 20)):
        api.b.store.put_tenant(tenant)
        api.b.core.put_tenant(tenant)
    api.b.core.at_revision(api.b.store.revision)
    for i, vlans in ((1, {10}), (2, {10, 20})):
        api.b.core.host_view(HostView(f"host{i}", f"10.99.0.{i}", i, "br", 1,
                                      member_vlans=frozenset(vlans)), now=0)
    return api


def call(api: Api, method: str, path: str, body: Any = None, content_type: str = "application/json",
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None or raw is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = content_type
    resp = req.get_response(api)
    if resp.content_type == "application/json" and resp.body:
        return resp.status_int, resp.json
    return resp.status_int, (resp.text if resp.body else None)


def state(api: Api) -> tuple:
    """Everything a request could change: stored and live tenants, hosts, ops sent out."""
    b = api.b
    return (b.store.tenants(), sorted(b.core.tenants.items()), sorted(b.core.hosts), len(b.applied),
            b.store.host_records(), dict(b.core.policy.decisions), {h: dict(p) for h, p in b.core.policy.rules.items()})
