"""The revision each switch's flows were computed for (controller/core/marks.py): a host with nothing
to recompute has every change up to the current revision; a marked one, up to the revision of
when it was first marked; a switch read back or re-tuned, none until programmed in full."""

from dataclasses import replace

from controller.core.switch_state import SwitchDump
from controller.model.state import Tenant
from tests.unit.world import world

GREEN = Tenant("green", 5003, 30, frozenset({"h1"}))


def computed(core) -> dict[str, int | None]:
    return {h: core.read.computed_for(core.hosts[h])[0] for h in sorted(core.hosts)}


def test_a_host_holds_a_revision_once_its_changes_are_out_untouched_ones_at_once():
    core = world(3, tenants=())
    core.eager = False
    assert computed(core) == {"h1": 0, "h2": 0, "h3": 0}
    core.host_view(replace(core.hosts["h1"].view, member_vlans=frozenset({30})), 1.0)  # a VM port in VLAN 30
    core.drain()
    core.change_tenants({"green": GREEN}, revision=1)  # on h1 only: h1 has its VM
    assert list(core.marks.dirty) == ["h1"]  # h1's green is still to compute
    assert computed(core) == {"h1": 0, "h2": 1, "h3": 1}  # h2, h3: nothing to do for revision 1
    core.change_tenants({"blue": Tenant("blue", 5001, 10)}, revision=2)
    assert computed(core)["h1"] == 0  # marked since revision 0: computed up to 0 until drained
    ops = core.drain()
    assert ops and computed(core) == {"h1": 2, "h2": 2, "h3": 2}


def test_a_switch_read_back_holds_nothing_known_until_programmed_in_full():
    core = world(2, tenants=())
    core.eager = False
    core.at_revision(4)
    core.datapath_up(2)
    assert computed(core)["h2"] is None and core.read.computed_for(core.hosts["h2"])[1].startswith("being read back")
    core.switch_read(2, SwitchDump(), 1.0)
    assert computed(core)["h2"] is None  # marked in full: not yet out
    core.drain()
    assert computed(core)["h2"] == 4
    core.datapath_down(2)
    assert core.read.computed_for(core.hosts["h2"]) == (None, "disconnected: no OpenFlow connection from its br1")
    core.passive = True  # a follower programs nothing: no switch holds a known revision through it
    core.datapath_up(1)
    core.switch_read(1, SwitchDump(), 2.0)
    core.drain()
    assert computed(core)["h1"] is None
