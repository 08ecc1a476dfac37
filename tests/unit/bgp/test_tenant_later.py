"""#22.12: routes a peer sent before their tenant existed count once it does, without the peer sending
them again; and our own routes a peer sends back (eBGP) are counted and said once, not logged whole.

The speaker (controller/bgp/speaker.py) as the app drives it, without os-ken's BGP: paths go in as
its best-path handler posts them, the core's tenant writes come out through sync(), as apply() calls it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from types import SimpleNamespace

from controller.bgp import external
from controller.bgp.evpn import Policy
from controller.bgp.speaker import OSKEN_PEER_LOG, EvpnSpeaker
from controller.core.core import Core
from controller.core.parts import EpKey
from controller.model.ops import GroupMod, Op, OvsdbOp
from controller.model.state import Tenant
from tests.unit.bgp.test_evpn import FAR_MAC, PEER, POLICY, VTEP, type2, type3
from tests.unit.world import BLUE, world

GREEN = Tenant("green", 5003, 30)


class App:
    """What apps/overlay.py gives the speaker: post (run at once here), apply (collect), now."""

    def __init__(self, core: Core, policy: Policy = POLICY) -> None:
        self.sent: list[Op] = []
        self.evpn = EvpnSpeaker(core, policy, [], "127.0.0.1", 0, lambda fn: fn(), self.sent.extend, lambda: 10.0)

    @property
    def core(self) -> Core:
        return self.evpn.core

    def path(self, r) -> None:
        """A best-path change, as _best_path posts it to the event loop."""
        self.evpn._receive(r)

    def put(self, tenant: Tenant) -> list[Op]:
        return self.apply(self.core.put_tenant(tenant))

    def delete(self, name: str) -> list[Op]:
        return self.apply(self.core.delete_tenant(name))

    def apply(self, ops: list[Op]) -> list[Op]:
        return [*ops, *self.evpn.sync()]  # what apps/overlay.py apply() sends

    def imported(self, vni: int = GREEN.vni) -> str | None:
        ep = self.core.read.endpoint(EpKey(vni, FAR_MAC))
        return ep.host_id if ep is not None else None

    def floods_to_vtep(self, vni: int = GREEN.vni) -> bool:
        """The VTEP is in the VNI's flood list (its type-3 route), as a tagged port puts a host there."""
        return external.vtep_id(VTEP) in self.core.ix.tagged.get(vni, ())


def green_paths(app: App) -> None:
    app.path(type2(vni=GREEN.vni, rts=("65000:5003",)))
    app.path(type3(vni=GREEN.vni, rts=("65000:5003",)))


def test_routes_sent_before_their_tenant_count_once_it_is_created():
    app = App(world(2, members={1: frozenset({BLUE.vlan, GREEN.vlan})}))
    green_paths(app)
    assert app.imported() is None and app.core.counters["evpn_endpoints_imported"] == 0  # no tenant: aside
    assert app.core.counters["evpn_paths_set_aside"] == 2
    ops = app.put(GREEN)
    assert app.imported() == external.vtep_id(VTEP) and app.floods_to_vtep()
    ep = app.core.read.endpoint(EpKey(GREEN.vni, FAR_MAC))
    assert ep.ips == {"10.0.0.50"}
    # in the same batch as the tenant's own flows: a tunnel port toward the VTEP on every host
    assert sorted(op.system_id for op in ops if isinstance(op, OvsdbOp)) == ["h1", "h2"], ops
    assert any(isinstance(op, GroupMod) for op in ops)  # h1, green's member, gets its flood group
    assert app.evpn.importer.aside == {}


def test_a_tenant_deleted_and_created_again_takes_its_routes_back():
    app = App(world(2, tenants=(BLUE, GREEN)))
    green_paths(app)
    assert app.imported() is not None
    app.delete("green")
    assert app.imported() is None and len(app.evpn.importer.aside) == 2  # held again for its VNI
    app.put(GREEN)
    assert app.imported() == external.vtep_id(VTEP) and app.floods_to_vtep()


def test_a_renumbered_tenant_takes_the_routes_of_its_new_vni_and_leaves_the_old_ones_aside():
    app = App(world(2, tenants=(BLUE, GREEN)))
    green_paths(app)
    app.path(replace(type2(vni=5004, rts=("65000:5004",)), rd="10.99.0.50:4"))  # another VNI, another RD
    app.put(Tenant("green", 5004, 30))
    assert app.imported(5004) == external.vtep_id(VTEP) and app.imported(5003) is None
    assert not app.floods_to_vtep(5004)  # the peer sent no type-3 route for 5004
    app.put(GREEN)
    assert app.imported(5003) == external.vtep_id(VTEP) and app.imported(5004) is None and app.floods_to_vtep()


def test_a_path_withdrawn_or_whose_peer_went_down_while_aside_never_counts():
    app = App(world(2))
    green_paths(app)
    app.path(type2(vni=GREEN.vni, rts=("65000:5003",), withdraw=True))
    app.evpn._received(app.evpn.importer.peer_down(PEER))
    assert app.evpn.importer.aside == {} and app.evpn.importer.waiting == {}
    app.put(GREEN)
    assert app.imported() is None and not app.floods_to_vtep()


def test_a_route_target_the_tenant_does_not_import_stays_aside():
    app = App(world(2), Policy(65000, "10.98.0.1", {"green": "65000:333"}))
    green_paths(app)
    app.put(GREEN)
    assert app.imported() is None and len(app.evpn.importer.aside) == 2
    app.path(type2(vni=GREEN.vni, rts=("65000:333",)))  # the peer's policy changes: now it counts
    assert app.imported() == external.vtep_id(VTEP)


def test_our_own_routes_reflected_back_never_wait_aside():
    app = App(world(2))
    app.path(type2(vni=GREEN.vni, rts=("65000:5003",), vtep="10.99.0.1"))  # h1's underlay IP
    assert app.evpn.importer.aside == {}


def test_a_vni_marked_for_another_reason_costs_nothing():
    app = App(world(2))
    assert app.apply([]) == []
    app.core.changed = {BLUE.vni}
    assert app.apply([]) == []


# ---- our own routes, back from an eBGP peer ----------------------------------------------------

def update_with(routes: int) -> SimpleNamespace:
    """What os-ken passes to its log call: the UPDATE, whose MP_REACH_NLRI holds the routes."""
    return SimpleNamespace(pathattr_map={14: SimpleNamespace(nlri=[object()] * routes)})


def test_our_own_routes_sent_back_are_counted_and_said_once(caplog):
    app = App(world(2))
    osken = logging.getLogger(OSKEN_PEER_LOG)
    osken.addFilter(app.evpn.looped)  # what start() does
    try:
        with caplog.at_level(logging.INFO):
            for routes in (1, 3, 1):
                osken.error("AS_PATH on UPDATE message has loops. Ignoring this message: %s", update_with(routes))
            osken.error("something else went wrong")
    finally:
        osken.removeFilter(app.evpn.looped)
    assert app.core.counters["evpn_own_routes_looped"] == 5
    assert [r.getMessage() for r in caplog.records if r.name == OSKEN_PEER_LOG] == ["something else went wrong"]
    said = [r.getMessage() for r in caplog.records if "own routes back" in r.getMessage()]
    assert len(said) == 1 and "evpn_own_routes_looped" in said[0]
