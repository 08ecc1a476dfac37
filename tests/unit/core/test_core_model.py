"""The core against fake switches, driven by random event sequences (a Hypothesis state machine).

After every step, once drained: each programmed switch holds exactly what the core believes it
installed, and that is what a fresh core computes from the same state (tenants, hosts' views,
endpoints with their IPs); and no tunnel port was removed while a flow or group still sent out of
it. The events: tenants put, renumbered and deleted; hosts' VM VLANs changing; tunnel ports asked
for, coming up and going; packet-ins (learning, moves, IP binds, unknown IPs); source entries
idling out; switches and OVSDB disconnecting and reconnecting (read back); a host forgotten and
joining again; the controller restarting (endpoints recovered from the switches); mesh <-> flow
and tunnel kind retuned live; time passing past host_grace.
"""

from __future__ import annotations

import os
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from controller.model import flows as f
from controller.model import tables as t
from controller.model.state import Tenant, vlan_clash
from controller.shell.config import defaults
from controller.southbound.encoder import wire_cookie
from tests.unit.fake_overlay import Overlay
from tests.unit.world import arp_frame

HOSTS = (1, 2, 3, 4)
NAMES = ("blue", "red", "green")
VNIS = (5001, 5002, 5003, 5010, 5011)
VLANS = (10, 20, 30)
MACS = tuple(f"02:00:00:00:00:{i:02x}" for i in range(1, 7))
IPS = tuple(f"10.0.0.{i}" for i in range(1, 6))
HOST_GRACE = 30.0
RECOVERY_S = 10.0  # the shell's window (controller/shell/startup.py)


class CoreAgainstSwitches(RuleBasedStateMachine):
    ov: Overlay

    @initialize(learning=st.sampled_from(["controller", "learn"]), ports=st.sampled_from(["mesh", "flow"]),
                cap=st.sampled_from([2, 100]))
    def start(self, learning: str, ports: str, cap: int) -> None:
        self.options = {"mac_learning": learning, "tunnel_ports": ports, "max_endpoints": cap,
                        "host_grace": HOST_GRACE}
        tenants = [Tenant("blue", 5001, 10), Tenant("red", 5002, 20)]
        self.ov = Overlay(defaults(**self.options), tenants)
        for i in HOSTS[:3]:
            self.ov.join(i, frozenset({10, 20}))
        for dpid in sorted(self.ov.reads):
            self.ov.answer_read(dpid)
        self.ov.settle_ovsdb()
        assert self.ov.problems() == []

    # ---- tenants -------------------------------------------------------------------------------

    def _valid(self, tn: Tenant) -> bool:
        others = [o for o in self.ov.core.tenants.values() if o.name != tn.name]
        return all(o.vni != tn.vni and vlan_clash(o, tn) is None for o in others)

    @rule(name=st.sampled_from(NAMES), vni=st.sampled_from(VNIS), vlan=st.sampled_from(VLANS),
          hosts=st.none() | st.frozensets(st.sampled_from([f"h{i}" for i in HOSTS]), min_size=1),
          override=st.none() | st.tuples(st.sampled_from([f"h{i}" for i in HOSTS]), st.sampled_from(VLANS)))
    def put_tenant(self, name, vni, vlan, hosts, override) -> None:
        tn = Tenant(name, vni, vlan, hosts, (override,) if override else ())
        if self._valid(tn):
            self.ov.run(self.ov.core.put_tenant(tn))

    @precondition(lambda self: self.ov.core.tenants)
    @rule(data=st.data(), vni=st.sampled_from(VNIS))
    def renumber(self, data, vni) -> None:
        name = data.draw(st.sampled_from(sorted(self.ov.core.tenants)))
        tn = replace(self.ov.core.tenants[name], vni=vni)
        if self._valid(tn):
            self.ov.run(self.ov.core.put_tenant(tn))

    @precondition(lambda self: self.ov.core.tenants)
    @rule(data=st.data())
    def delete_tenant(self, data) -> None:
        self.ov.run(self.ov.core.delete_tenant(data.draw(st.sampled_from(sorted(self.ov.core.tenants)))))

    # ---- hosts and their channels ------------------------------------------------------------------

    @rule(i=st.sampled_from(HOSTS), vlans=st.frozensets(st.sampled_from(VLANS)))
    def vm_ports_change(self, i, vlans) -> None:
        db = self.ov.ovsdbs.get(f"h{i}")
        if db is not None:
            db.view = replace(db.view, member_vlans=vlans)
            self.ov.report(db.view.system_id)

    @rule(i=st.sampled_from(HOSTS), up=st.booleans())
    def ovsdb_reports(self, i, up) -> None:
        if f"h{i}" in self.ov.ovsdbs:
            self.ov.report(f"h{i}", ports_up=up)

    @rule()
    def ovsdb_settles(self) -> None:
        self.ov.settle_ovsdb()

    @rule(i=st.sampled_from(HOSTS))
    def openflow_flaps(self, i) -> None:
        sw = self.ov.switches.get(i)
        if sw is None:
            return
        if sw.connected:
            self.ov.openflow_disconnect(i)
        else:
            self.ov.openflow_connect(i)

    @precondition(lambda self: self.ov.reads)
    @rule(data=st.data())
    def read_back_arrives(self, data) -> None:
        self.ov.answer_read(data.draw(st.sampled_from(sorted(self.ov.reads))))

    @rule(i=st.sampled_from(HOSTS))
    def ovsdb_flaps(self, i) -> None:
        db = self.ov.ovsdbs.get(f"h{i}")
        if db is None:
            return
        if db.connected:
            self.ov.ovsdb_disconnect(db.view.system_id)
        else:
            self.ov.ovsdb_connect(db.view.system_id)

    @rule(i=st.sampled_from(HOSTS), vlans=st.frozensets(st.sampled_from(VLANS)))
    def host_joins(self, i, vlans) -> None:
        if f"h{i}" not in self.ov.core.hosts:
            self.ov.join(i, vlans)

    @rule(i=st.sampled_from(HOSTS))
    def host_forgotten(self, i) -> None:
        sid = f"h{i}"
        if sid in self.ov.core.hosts and not self.ov.ovsdbs[sid].connected and not self.ov.switches[i].connected:
            self.ov.run(self.ov.core.forget_host(sid, self.ov.now))
            del self.ov.ovsdbs[sid]  # it comes back as a new machine, if at all
            del self.ov.switches[i]

    @rule(ports=st.sampled_from(["mesh", "flow"]), kind=st.sampled_from(["vxlan", "gre"]))
    def retune(self, ports, kind) -> None:
        self.options.update(tunnel_ports=ports, tunnel_type=kind)
        self.ov.run(self.ov.core.retune_tunnels(defaults(**self.options), self.ov.now))

    @rule()
    def controller_restarts(self) -> None:
        self.ov.restart(RECOVERY_S)

    @rule(dt=st.sampled_from([0.5, 5.0, HOST_GRACE + 1]))
    def time_passes(self, dt) -> None:
        self.ov.tick(dt)

    # ---- what the switches tell ------------------------------------------------------------------------

    @rule(i=st.sampled_from(HOSTS), src=st.sampled_from(MACS), vlan=st.sampled_from(VLANS),
          ip=st.sampled_from(IPS), asks=st.sampled_from(IPS), responder=st.booleans(), reply=st.booleans())
    def packet_in(self, i, src, vlan, ip, asks, responder, reply) -> None:
        sw = self.ov.switches.get(i)
        if sw is None or not sw.connected:
            return
        self.ov.now += 0.01
        frame = arp_frame(src, ip, ip if reply else asks, vlan, op=2 if reply else 1)
        self.ov.run(self.ov.core.packet_in(i, frame, self.ov.now, t.ARP_RESPONDER if responder else t.SRC_BINDING))

    @rule(data=st.data())
    def source_entry_idles_out(self, data) -> None:
        sources = sorted((dpid, fl.key) for dpid, sw in self.ov.switches.items() if sw.connected
                         for fl in sw.flows.values() if f.cookie_role(wire_cookie(fl)) == f.ROLE_SOURCE)
        if not sources:
            return
        dpid, key = data.draw(st.sampled_from(sources))
        del self.ov.switches[dpid].flows[key]
        self.ov.now += 0.01
        self.ov.run(self.ov.core.flow_removed(dpid, key[0], 0, dict(key[2]), self.ov.now))

    # ---- after every step ----------------------------------------------------------------------------

    @invariant()
    def switches_hold_what_the_core_says_and_what_it_would_compute_afresh(self) -> None:
        problems = self.ov.problems()
        assert problems == [], "\n".join(problems)


# Fixed examples (derandomized) keep the unit suite fast and repeatable; CORE_MODEL_EXAMPLES=2000
# searches further, at random (minutes).
SEARCH = os.environ.get("CORE_MODEL_EXAMPLES")
CoreAgainstSwitches.TestCase.settings = settings(
    max_examples=int(SEARCH or 100), stateful_step_count=30, deadline=None, derandomize=not SEARCH,
    suppress_health_check=[HealthCheck.too_slow], database=None)
test_core_against_fake_switches = CoreAgainstSwitches.TestCase
