"""os-ken entry point: `osken-manager apps/overlay.py --config-file overlay.conf`.

Only the os-ken handlers: each turns an OpenFlow, OVSDB or REST event into a call on the core
(all on this app's one event loop) and hands the operations the core returns to apply(). How they
are sent, read back, polled, elected and served is the shell's (controller/shell/).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from controller.bgp import speaker as bgp
from controller.core.switch_state import SwitchDump
from controller.ha.election import Action
from controller.model.ops import Op, Wipe
from controller.northbound.events import EventHub
from controller.northbound.metrics import Metrics
from controller.shell import carry, config, identity, oskenpatch, readback, reload, startup, statelock
from controller.shell.leadership import Leadership
from controller.shell.listeners import Refusals
from controller.shell.loop import EventCall, Pump
from controller.shell.looplag import LoopLag
from controller.shell.news import News
from controller.shell.readback import ReadBack
from controller.shell.sender import Sender
from controller.shell.stats import StatsPoller
from controller.southbound import ofguard, ofmsg

LOG = logging.getLogger("overlay")
config.register(cfg.CONF)


class OverlayApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        oskenpatch.gate_events(self)
        conf = cfg.CONF
        # One controller per state directory and ports: a second start stops here, in one line.
        self.locks = statelock.lock(conf.overlay.state_dir, config.sqlite_db(conf))
        self.refusals = Refusals()  # connections refused at admission (TLS), by channel and reason
        self.listeners = startup.bind_listeners(conf, self.refusals)
        oskenpatch.serve_openflow(self.listeners.openflow)
        self.store = config.open_store(conf)  # SQLite, or etcd shared with other instances
        # Tenants and which hosts may join (docs/operator/security.md) are loaded before any switch is
        # programmed; work is drained in slices by the pump.
        self.core = startup.app_core(config.settings(conf), self.store.tenants(), self.now(),
                                     config.host_policy(conf, self.store), self.store.revision)
        startup.log_admission(conf, self.core)
        self.metrics = Metrics()  # served by the REST API and the optional metrics listener
        self.sender = Sender(self.metrics)
        self.event_hub = EventHub()  # GET /v1/events; News feeds it (the core's events and the shell's)
        self.news = News(self.event_hub, self.sender.revisions)
        self.readback = ReadBack()
        self.pump = Pump(lambda: self.core, self.apply, self.sender, self.metrics)
        self.stats = StatsPoller(self.sender.datapaths, conf.overlay.stats_interval, busy=self.pump.converging)
        self.ovsdb = startup.ovsdb_server(self, conf)  # its views and its hosts' claims come to the core
        self.probes = identity.Probes(self.sender.datapaths)  # switches another connection claims
        self.api_auth = startup.api_auth(conf)
        startup.guard_channels(self)  # garbage on the control channels is counted by kind
        self.loop_lag = LoopLag()  # the event loop's own health
        # BGP EVPN toward VTEPs no controller programs (docs/operator/evpn.md); None unless [bgp] local_as is set.
        self.evpn = bgp.from_conf(conf, self.core, self.post, self.apply, self.now)
        # Several instances (etcd): only the elected leader programs; the others follow.
        self.leadership = Leadership.from_conf(conf, lambda a: self.post(lambda: self._role_change(a)))
        self.core.passive = not self.leadership.leading
        startup.ready(self, conf)  # metrics collectors, misspelt options, one line on what runs

    def start(self) -> Any:
        thread = super().start()
        self.threads += startup.start(self, cfg.CONF)
        return thread

    # ---- the REST API's backend (controller/northbound/rest.py), on the event loop --------------

    @staticmethod
    def now() -> float:
        return time.time()

    def role_status(self) -> dict:
        return self.leadership.status(self.now())

    def unidentified_hosts(self) -> dict[str, str]:
        return dict(self.ovsdb.unidentified)

    def switch_holds(self, dpid: int, computed: int | None) -> int | None:
        return self.news.holds(dpid, computed)

    def post(self, fn: Callable[[], Any]) -> EventCall:
        ev = EventCall(fn)
        self.send_event(self.name, ev)
        return ev

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run fn for a REST request, now, in the request's greenthread: greenthreads never preempt
        one another and the core never yields, so fn runs whole, as on the event loop, without
        waiting behind queued switch events (a packet-in storm must not make the API slow)."""
        return fn()

    def apply(self, ops: list[Op], hold: bool = False) -> None:
        """Carry out the core's operations; hold: the pump's, which the sender may gather (sender.py)."""
        carry.carry_out(self, ops, hold)

    # ---- events of the app's own -------------------------------------------------------------

    @set_ev_cls(EventCall)
    def _on_call(self, ev: EventCall) -> None:
        ev.run(self.loop_lag)

    def tick(self) -> None:
        now = self.now()
        for dpid in self.readback.overdue(now):
            self.apply([Wipe(dpid)] + self.core.switch_read(dpid, SwitchDump(), now))
        self.probes.overdue(now)
        self.apply(self.core.tick(now))
        self.sender.resend_overdue()
        self.news.tick(self.core)

    def reload(self) -> None:
        ops = reload.reload(cfg.CONF, self.core, self.now())
        if ops is not None:
            self.apply(ops)

    def _role_change(self, action: Action) -> None:
        views = self.ovsdb.hosts()
        old = self.core
        self.core, ops = self.leadership.change(action, old, views, len(self.sender.datapaths), self.now(),
                                                startup.RECOVERY_WINDOW_S)
        if self.core is not old and self.evpn is not None:
            self.evpn.rebind(self.core)
        for dp in list(self.sender.datapaths.values()):
            self.leadership.ask(dp, self.now())
        self.news.leader(self.role_status())
        self.apply(ops)

    # ---- OpenFlow --------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp, dpid, peer = ev.msg.datapath, ev.msg.datapath_id, identity.peer_of(ev.msg.datapath)
        if self.core.claim_datapath(dpid, peer, self.now()) is not None:  # counted and logged once
            self.probes.refuse(dp, dpid, self.now())
            return
        LOG.info("switch %016x connected from %s", dpid, peer.address)
        dp.id = dpid
        self.sender.connected(dp)
        self.leadership.ask(dp, self.now())  # before anything else on this connection: the switch handles it first
        self.apply(self.core.datapath_up(dpid, peer))  # reads it back; reconciled when the replies are in

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _gone(self, ev: Any) -> None:
        dp = ev.datapath
        if dp.id is not None and self.sender.datapaths.get(dp.id) is dp:
            LOG.info("switch %016x disconnected", dp.id)
            carry.forget_switch(self, dp.id)
            self.apply(self.core.datapath_down(dp.id, self.now()))

    @set_ev_cls(ofp_event.EventOFPEchoReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @identity.registered
    def _echo_reply(self, ev: Any) -> None:
        self.probes.replied(ev.msg.datapath, ev.msg.xid)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        started = time.perf_counter()
        self.apply(self.core.packet_in(msg.datapath.id, msg.data, self.now(), msg.table_id))
        self.metrics.packet_in(msg.datapath.id, time.perf_counter() - started)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @identity.registered
    def _barrier_reply(self, ev: Any) -> None:
        self.sender.barrier_replied(ev.msg.datapath, ev.msg.xid)
        self.news.barrier_replied(self.core, ev.msg.datapath.id)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _flow_removed(self, ev: Any) -> None:
        msg = ev.msg
        match = dict(msg.match.items())
        self.apply(self.core.flow_removed(msg.datapath.id, msg.table_id, msg.reason, match, self.now()))

    @set_ev_cls(ofp_event.EventOFPRoleReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @identity.registered
    def _role_reply(self, ev: Any) -> None:
        msg = ev.msg
        self.leadership.replied(msg.datapath.id, msg.role, msg.generation_id, self.now())

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @ofguard.guarded
    @identity.registered
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        self.core.counters["switch_errors"] += 1
        if self.leadership.roles.enabled and ofmsg.refused_as_stale(msg.type, msg.code):
            self.leadership.refused(msg.datapath.id, self.core)
            return
        LOG.warning("switch %016x error type=%d code=%d: %s", msg.datapath.id, msg.type, msg.code,
                    bytes(msg.data[:64]).hex())

    # ---- reading a switch back, and its counters ---------------------------------------------

    def _read_part(self, ev: Any, part: str, fill: Callable[[SwitchDump], None]) -> None:
        dpid = ev.msg.datapath.id
        dump = self.readback.part(dpid, part, fill, bool(ev.msg.flags & ofproto_v1_3.OFPMPF_REPLY_MORE))
        if dump is not None:
            self.apply(self.core.switch_read(dpid, dump, self.now()))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _flow_stats(self, ev: Any) -> None:
        self._read_part(ev, "flows", lambda dump: readback.add_flows(dump, ev.msg.body))

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _group_desc(self, ev: Any) -> None:
        self._read_part(ev, "groups", lambda dump: readback.add_groups(dump, ev.msg.body))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _meter_config(self, ev: Any) -> None:
        self._read_part(ev, "meters", lambda dump: readback.add_meters(dump, ev.msg.body))

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    @identity.registered
    def _aggregate(self, ev: Any) -> None:
        role = self.stats.replied(ev.msg.datapath.id, ev.msg.xid)
        if role is not None:
            self.core.role_stats(ev.msg.datapath.id, role, ev.msg.body.packet_count)
