"""os-ken entry point: `osken-manager apps/overlay.py --config-file overlay.conf`.

A thin shell: it turns os-ken, OVSDB and REST events into calls on the core (all on this
app's one event loop) and sends back the operations the core returns.
"""

from __future__ import annotations

import gc
import itertools
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import os_ken.services.protocols.ovsdb.manager  # noqa: F401  registers [ovsdb] address/port
from eventlet.semaphore import Semaphore
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import event, ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller import bgp, config, ha, looplag, metrics, ofguard, ofmsg
from controller.auth import TokenAuth
from controller.barriers import BarrierPacer
from controller.core import ROLE_COUNTERS, Core
from controller.election import Action, Lead
from controller.eventgate import EventGate
from controller.ops import FlowDelete, FlowMod, Op, OvsdbTransact, ReadSwitch, Wipe
from controller.ovsdb import OvsdbServer
from controller.rest import Api
from controller.state import HostView
from controller.switch_state import SwitchDump, read_flows

LOG = logging.getLogger("overlay")
config.register(cfg.CONF)
SLICE_S = 0.01  # recomputation per slice; encoding and sending it take longer (apply() yields)
YIELD_AFTER_S = 0.02  # os-ken's event loop runs queued events back to back: let others in after this
TICK_S = 1.0
GC_THRESHOLDS = (10_000, 20, 1000)
FREEZE_S = 0.25
POLL_RATE = 500  # counter requests per second at most (one per counted role and switch)
POLL_EVERY = 50  # switches polled between pauses
READ_TIMEOUT_S = 10.0  # a switch that has not been read back by then is wiped and refilled
RECOVERY_WINDOW_S = 10.0  # after start: switches' endpoint entries wait for their own host's read-back


class EventCall(event.EventBase):
    """A function to run on the app's event loop, with a place for its result."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.posted = time.monotonic()  # its wait in the queue feeds looplag
        self.done = hub.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Reading:
    """A switch's read-back in progress: flow, group and meter replies still to come."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.dump = SwitchDump()
        self.waiting = {"flows", "groups", "meters"}


class OverlayApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not hasattr(self, "_events_sem"):  # os-ken renamed it: its own (slower) bound stays in force
            LOG.warning("os-ken has no OSKenApp._events_sem: its event-queue bound is not replaced by EventGate")
        self._events_sem = EventGate(self.events.maxsize)  # os-ken's bound, O(1) (controller/eventgate.py)
        conf = cfg.CONF
        self.settings = config.settings(conf)
        self.store = config.open_store(conf)  # SQLite, or etcd shared with other instances
        # Tenants are loaded before any switch is programmed; work is drained in slices by _pump.
        self.core = Core(self.settings, self.store.tenants(), canon=ofmsg.canonical_match)
        self.core.eager = False
        self.core.recovering, self.core.recover_until = True, self.now() + RECOVERY_WINDOW_S
        self.work = hub.Event()
        self.yielded = time.perf_counter()  # when apply() last let other greenthreads run
        self.send_lock = Semaphore(1)
        self.datapaths: dict[int, Any] = {}
        self.barriers = BarrierPacer()
        self.reading: dict[int, _Reading] = {}  # switches being read back
        self.polls: dict[tuple[int, int], int] = {}  # (dpid, xid) -> role asked for
        self.ovsdb = OvsdbServer(conf.ovsdb.address, conf.ovsdb.port, conf.overlay.tunnel_bridge,
                                 conf.overlay.integration_bridge,
                                 on_view=lambda v: self.post(lambda: self._host_view(v)),
                                 on_down=lambda s: self.post(lambda: self.apply(self.core.ovsdb_down(s, self.now()))))
        self.api_address = (conf.wsapi_host, conf.wsapi_port)
        self.api_auth = TokenAuth(conf.overlay.api_token_file, conf.overlay.api_read_open)
        self.metrics = metrics.Metrics()  # served by the REST API and the optional metrics listener
        # Garbage on the control channels is counted by kind; the event loop's own health measured.
        count = lambda counter: self.core.counters.update((counter,))  # noqa: E731
        ofguard.install(count)
        self.ovsdb.on_malformed = count
        self.loop_lag = looplag.LoopLag()
        # BGP EVPN toward VTEPs no controller programs (docs/operator/evpn.md); None unless [bgp] local_as is set.
        self.evpn = bgp.from_conf(conf, self.core, self.post, self.apply, self.now)
        self.metrics.register(self.loop_lag)
        # Several instances (etcd): only the elected leader programs; the others follow.
        e = conf.etcd
        self.roles = ha.Roles(conf.overlay.store == "etcd", e.instance_name or socket.gethostname())
        self.core.passive = not self.roles.leading
        self.election = None
        if self.roles.enabled:
            from controller.election_etcd import EtcdElection
            from controller.etcd import parse_endpoints
            self.election = EtcdElection(parse_endpoints(e.endpoints), self.roles.instance, e.lease_ttl,
                                         lambda a: self.post(lambda: self._role_change(a)), e.prefix)
        self.metrics.register(ha.RoleMetrics(lambda: self.roles))
        if not self.api_auth.enabled and conf.wsapi_host not in ("127.0.0.1", "::1", "localhost"):
            LOG.warning("REST API on %s without [overlay] api_token_file: anyone who reaches it can "
                        "change tenants", conf.wsapi_host)
        LOG.info("overlay controller: mode=%s tunnels=%s tunnel_ports=%s tenants=%d", self.settings.mode,
                 self.settings.tunnel_type, self.settings.tunnel_ports.name, len(self.core.tenants))

    def start(self) -> Any:
        thread = super().start()
        self.ovsdb.listen()
        self.threads.append(hub.spawn(self.ovsdb.serve))
        self.threads.append(hub.spawn(self._poll_stats, cfg.CONF.overlay.stats_interval))
        self.threads.append(hub.spawn(self._pump))
        self.threads.append(hub.spawn(self._ticker))
        self.threads.append(hub.spawn(self._watch_sighup))
        self.threads.append(hub.spawn(self.store.watch, self))  # other instances' tenant writes
        server = hub.WSGIServer(self.api_address, Api(self, self.api_auth))
        LOG.info("REST API on http://%s:%s/v1", *self.api_address)
        self.threads.append(hub.spawn(server.serve_forever))
        o = cfg.CONF.overlay
        if o.metrics_port is not None:  # read-only: Prometheus scrapes here, never near the write API
            scrape = hub.WSGIServer((o.metrics_host, o.metrics_port), metrics.Listener(self, self.metrics))
            LOG.info("metrics on http://%s:%s/metrics", o.metrics_host, o.metrics_port)
            self.threads.append(hub.spawn(scrape.serve_forever))
        self.threads.append(hub.spawn(looplag.run_probe, self.loop_lag, self.post))
        if self.evpn is not None:
            self.evpn.start()
        if self.election is not None:
            self.threads.append(hub.spawn(self.election.run))
        return thread

    # ---- running things on the event loop --------------------------------------------------

    @staticmethod
    def now() -> float:
        return time.time()

    def role_status(self) -> dict:
        election = self.election.election.status(time.monotonic()) if self.election is not None else None
        return self.roles.status(self.now(), election)

    def unidentified_hosts(self) -> dict[str, str]:
        return dict(self.ovsdb.unidentified)

    def post(self, fn: Callable[[], Any]) -> EventCall:
        ev = EventCall(fn)
        self.send_event(self.name, ev)
        return ev

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run fn for a REST request, now, in the request's greenthread.

        Greenthreads never preempt one another and the core never yields, so fn runs whole, just
        as it would on the event loop, without waiting behind thousands of queued switch events
        (a packet-in storm must not make the API slow). Its operations go out through apply(),
        which keeps every batch whole and in order.
        """
        return fn()

    @set_ev_cls(EventCall)
    def _on_call(self, ev: EventCall) -> None:
        self.loop_lag.observe(time.monotonic() - ev.posted)
        try:
            ev.result = ev.fn()
        except Exception as e:  # handed back to the caller (REST turns ApiError into a 4xx)
            ev.error = e
        ev.done.set()

    def apply(self, ops: list[Op]) -> None:
        if self.evpn is not None:  # routes follow the state the ops came from
            self.evpn.sync()
        of_ops = []
        if not self._may_write():  # a follower reads switches back and changes nothing
            ops = [op for op in ops if ha.read_only(op)]
        for op in ops:
            if isinstance(op, OvsdbTransact):
                self.ovsdb.transact(op.system_id, op.ops, op.why)
            else:
                if isinstance(op, ReadSwitch):
                    self.reading[op.dpid] = _Reading(self.now())
                of_ops.append(op)
        if self.core.pending():
            self.work.set()
        # A switch's send queue may block, and a long batch yields between switches, letting another
        # apply() run: the lock keeps batches whole and in order.
        with self.send_lock:
            for dpid, dp_ops in ofmsg.per_datapath(of_ops).items():
                dp = self.datapaths.get(dpid)
                if dp is not None:
                    # counted here, as sent: a core that still thinks it leads computes what is never sent
                    self.core.counters["flow_mods"] += sum(isinstance(op, (FlowMod, FlowDelete)) for op in dp_ops)
                    bufs = ofmsg.writes(dp_ops)
                    if bufs and self.barriers.wrote(dpid, self.metrics.clock()):
                        bufs[-1] += self._barrier_bytes(dp)  # one send, not two: a send wakes a greenthread
                    for buf in bufs:
                        dp.send(buf)
                self._maybe_yield()
        self._maybe_yield()

    def _barrier_bytes(self, dp: Any, since: float | None = None) -> bytes:
        barrier = ofmsg.barrier()
        dp.set_xid(barrier)
        barrier.serialize()
        self.metrics.barrier_sent(dp.id, barrier.xid, since)
        return bytes(barrier.buf)

    def _send_barrier(self, dp: Any, since: float | None = None) -> None:
        dp.send(self._barrier_bytes(dp, since))

    def _maybe_yield(self) -> None:
        """After YIELD_AFTER_S of work, let REST and I/O have a turn: encoding and sending thousands
        of flow-mods takes longer than computing them."""
        if time.perf_counter() - self.yielded > YIELD_AFTER_S:
            hub.sleep(0)
            self.yielded = time.perf_counter()

    def _watch_sighup(self) -> None:
        """SIGHUP re-reads the config file: tunnel_type and tunnel_ports switch without a restart.

        The handler only raises a flag; the reload runs on the event loop like any event.
        """
        asked = []
        signal.signal(signal.SIGHUP, lambda *_: asked.append(True))
        while True:
            hub.sleep(0.1)
            if asked:
                asked.clear()
                self.post(self._reload)

    def _reload(self) -> None:
        try:
            new, later = config.reloaded(cfg.CONF, self.core.settings)
        except ValueError as e:
            LOG.error("config reload refused, nothing changed: %s", e)
            return
        if later:
            LOG.warning("config reload: %s take effect at the next restart", ", ".join(later))
        LOG.info("config reload: tunnels=%s tunnel_ports=%s", new.tunnel_type, new.tunnel_ports.name)
        self.settings = new
        self.apply(self.core.retune_tunnels(new, self.now()))

    def _host_view(self, view: HostView) -> None:
        self.apply(self.core.host_view(view, self.now()))

    def _pump(self) -> None:
        """Drain the core's dirty work in slices, yielding to other events between them."""
        while True:
            self.work.wait()
            self.work.clear()
            started = time.perf_counter()
            while self.core.pending():
                self.apply(self.core.drain(SLICE_S))
                hub.sleep(0)
                self.yielded = time.perf_counter()
            self.metrics.reconciled(time.perf_counter() - started)

    def _ticker(self) -> None:
        # The state is millions of long-lived, acyclic objects: a full collection over them would
        # stall the loop for a second. Young garbage is collected as usual; what survived a quarter
        # of a second is moved out of the collector's sight (gc.freeze costs nothing), so that no
        # collection has much to go through: at 1,000 hosts converging, freezing once a second, a
        # young collection took up to 77 ms (50,000 allocations) and a middle one up to 130 ms.
        gc.set_threshold(*GC_THRESHOLDS)
        for n in itertools.count(1):
            hub.sleep(FREEZE_S)
            gc.freeze()
            if n % round(TICK_S / FREEZE_S) == 0:
                self.post(self._tick)

    def _tick(self) -> None:
        now = self.now()
        for dpid, reading in list(self.reading.items()):
            if now - reading.since > READ_TIMEOUT_S:
                LOG.warning("switch %016x: could not read back its flows in %.0f s: wiping it", dpid,
                            READ_TIMEOUT_S)
                del self.reading[dpid]
                self.apply([Wipe(dpid)] + self.core.switch_read(dpid, SwitchDump(), now))
        self.apply(self.core.tick(now))
        for dpid, first in self.barriers.overdue(self.metrics.clock()):
            dp = self.datapaths.get(dpid)
            if dp is not None:
                self._send_barrier(dp, first)

    # ---- OpenFlow --------------------------------------------------------------------------

    # ---- several instances: the leader is MASTER, the others SLAVE ----------------------------

    def _ask_role(self, dp: Any) -> None:
        want = self.roles.ask(dp.id, self.now())
        if want is not None:  # before anything else on this connection: the switch handles it first
            dp.send_msg(ofmsg.role_request(*want))

    def _may_write(self) -> bool:
        return self.roles.leading and (self.election is None or self.election.election.may_lead(time.monotonic()))

    def _role_change(self, action: Action) -> None:
        if isinstance(action, Lead):
            LOG.warning("leader now, generation %d: MASTER on %d switches, reading them back", action.generation,
                        len(self.datapaths))
            self.roles.lead(action.generation, self.now())
            self.core.counters["leader_elected"] += 1
            views = [c.view for c in self.ovsdb.by_system.values() if c.view is not None]
            # The tenants as the store's watch kept them here: a takeover needs no etcd read.
            self.core, ops = ha.promoted(self.core, list(self.core.tenants.values()), views, self.now(),
                                         RECOVERY_WINDOW_S)
            if self.evpn is not None:
                self.evpn.rebind(self.core)
        else:
            was = self.roles.leading
            self.roles.follow(action.leader, action.generation)
            self.core.passive = True
            if was:
                LOG.warning("not the leader any more (leader: %s, generation %d): SLAVE on every switch",
                            action.leader or "unknown", action.generation)
            ops = []
        for dp in list(self.datapaths.values()):
            self._ask_role(dp)
        self.apply(ops)

    @set_ev_cls(ofp_event.EventOFPRoleReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _role_reply(self, ev: Any) -> None:
        msg = ev.msg
        role = ofmsg.ROLE_NAMES.get(msg.role, str(msg.role))
        self.roles.replied(msg.datapath.id, role, msg.generation_id, self.now())
        LOG.info("switch %016x: role %s accepted (generation %d)", msg.datapath.id, role, msg.generation_id)

    def _refused(self, dpid: int) -> None:
        """The switch says another controller is master with a newer generation: step down."""
        self.core.counters["role_refused"] += 1
        if self.roles.refused(dpid) and self.election is not None:
            LOG.warning("switch %016x refused us as master: another instance leads; stepping down", dpid)
            self.election.stale(None)

    # ---- OpenFlow --------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        LOG.info("switch %016x connected from %s", dp.id, dp.address)
        self.datapaths[dp.id] = dp
        self._ask_role(dp)
        self.apply(self.core.datapath_up(dp.id))  # reads it back; reconciled when the replies are in

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _gone(self, ev: Any) -> None:
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            LOG.info("switch %016x disconnected", dp.id)
            self.metrics.datapath_gone(dp.id)
            self.barriers.gone(dp.id)
            del self.datapaths[dp.id]
            self.roles.gone(dp.id)
            self.reading.pop(dp.id, None)
            self.polls = {k: role for k, role in self.polls.items() if k[0] != dp.id}
            self.apply(self.core.datapath_down(dp.id, self.now()))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    @ofguard.guarded
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        started = time.perf_counter()
        self.apply(self.core.packet_in(msg.datapath.id, msg.data, self.now(), msg.table_id))
        self.metrics.packet_in(msg.datapath.id, time.perf_counter() - started)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _barrier_reply(self, ev: Any) -> None:
        dp = ev.msg.datapath
        self.metrics.barrier_replied(dp.id, ev.msg.xid)
        first = self.barriers.replied(dp.id, self.metrics.clock())
        if first is not None and self.datapaths.get(dp.id) is dp:  # writes since: confirm them too
            self._send_barrier(dp, first)

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    @ofguard.guarded
    def _flow_removed(self, ev: Any) -> None:
        msg = ev.msg
        match = dict(msg.match.items())
        self.apply(self.core.flow_removed(msg.datapath.id, msg.table_id, msg.reason, match, self.now()))

    # ---- reading a switch back ---------------------------------------------------------------

    def _read_part(self, ev: Any, part: str, fill: Callable[[SwitchDump], None]) -> None:
        dpid = ev.msg.datapath.id
        reading = self.reading.get(dpid)
        if reading is None:
            return
        fill(reading.dump)
        if ev.msg.flags & ofproto_v1_3.OFPMPF_REPLY_MORE:
            return
        reading.waiting.discard(part)
        if not reading.waiting:
            del self.reading[dpid]
            LOG.info("switch %016x read back: %d flows, %d groups, %d meters", dpid, len(reading.dump.flows),
                     len(reading.dump.groups), len(reading.dump.meters))
            self.apply(self.core.switch_read(dpid, reading.dump, self.now()))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    def _flow_stats(self, ev: Any) -> None:
        self._read_part(ev, "flows", lambda dump: dump.flows.update(read_flows(ev.msg.body)))

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    def _group_desc(self, ev: Any) -> None:
        self._read_part(ev, "groups", lambda dump: dump.groups.update(g.group_id for g in ev.msg.body))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    def _meter_config(self, ev: Any) -> None:
        self._read_part(ev, "meters", lambda dump: dump.meters.update(m.meter_id for m in ev.msg.body))

    # ---- counters: one cookie-masked aggregate per counted role, never a flow dump -------------

    def _poll_stats(self, interval: float) -> None:
        """Every interval, or slower with many switches: about POLL_RATE requests a second at most (a
        request and its reply cost some 50 us with dispatch: 1,000 hosts every 2 s, a sixth of a core)."""
        while True:
            hub.sleep(interval)
            dps = list(self.datapaths.values())
            for i, dp in enumerate(dps):
                for role in ROLE_COUNTERS:
                    req = ofmsg.role_stats_request(role)
                    dp.set_xid(req)
                    self.polls[(dp.id, req.xid)] = role
                    dp.send_msg(req)
                if i % POLL_EVERY == POLL_EVERY - 1 and i + 1 < len(dps):
                    hub.sleep(POLL_EVERY * len(ROLE_COUNTERS) / POLL_RATE)

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    @ofguard.guarded
    def _aggregate(self, ev: Any) -> None:
        role = self.polls.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if role is not None:
            self.core.role_stats(ev.msg.datapath.id, role, ev.msg.body.packet_count)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @ofguard.guarded
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        self.core.counters["switch_errors"] += 1
        if self.roles.enabled and ofmsg.refused_as_stale(msg.type, msg.code):
            self._refused(msg.datapath.id)
            return
        LOG.warning("switch %016x error type=%d code=%d: %s", msg.datapath.id, msg.type, msg.code,
                    bytes(msg.data[:64]).hex())
