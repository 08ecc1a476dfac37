"""os-ken entry point: `osken-manager apps/overlay.py --config-file overlay.conf`.

A thin shell: it turns os-ken, OVSDB and REST events into calls on the core (all on this
app's one event loop) and sends back the operations the core returns.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import os_ken.services.protocols.ovsdb.manager  # noqa: F401  registers [ovsdb] address/port
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import event, ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller import config, ofmsg
from controller.auth import TokenAuth
from controller.core import Core
from controller.ops import Op, OvsdbTransact
from controller.ovsdb import OvsdbServer
from controller.rest import Api
from controller.state import HostView
from controller.store import Store

LOG = logging.getLogger("overlay")
config.register(cfg.CONF)


class EventCall(event.EventBase):
    """A function to run on the app's event loop, with a place for its result."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.done = hub.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class OverlayApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conf = cfg.CONF
        self.settings = config.settings(conf)
        self.store = Store(config.db_path(conf))
        self.core = Core(self.settings, self.store.tenants())  # loaded before any switch is programmed
        self.datapaths: dict[int, Any] = {}
        self.ovsdb = OvsdbServer(conf.ovsdb.address, conf.ovsdb.port, conf.overlay.tunnel_bridge,
                                 conf.overlay.integration_bridge,
                                 on_view=lambda v: self.post(lambda: self._host_view(v)),
                                 on_down=lambda s: self.post(lambda: self.apply(self.core.ovsdb_down(s))))
        self.api_address = (conf.wsapi_host, conf.wsapi_port)
        self.api_auth = TokenAuth(conf.overlay.api_token_file, conf.overlay.api_read_open)
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
        self.threads.append(hub.spawn(self._watch_sighup))
        server = hub.WSGIServer(self.api_address, Api(self, self.api_auth))
        LOG.info("REST API on http://%s:%s/v1", *self.api_address)
        self.threads.append(hub.spawn(server.serve_forever))
        return thread

    # ---- running things on the event loop --------------------------------------------------

    @staticmethod
    def now() -> float:
        return time.time()

    def post(self, fn: Callable[[], Any]) -> EventCall:
        ev = EventCall(fn)
        self.send_event(self.name, ev)
        return ev

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        ev = self.post(fn)
        if not ev.done.wait(timeout):
            raise TimeoutError("the event loop did not answer in time")
        if ev.error is not None:
            raise ev.error
        return ev.result

    @set_ev_cls(EventCall)
    def _on_call(self, ev: EventCall) -> None:
        try:
            ev.result = ev.fn()
        except Exception as e:  # handed back to the caller (REST turns ApiError into a 4xx)
            ev.error = e
        ev.done.set()

    def apply(self, ops: list[Op]) -> None:
        of_ops = []
        for op in ops:
            if isinstance(op, OvsdbTransact):
                self.ovsdb.transact(op.system_id, op.ops, op.why)
            else:
                of_ops.append(op)
        for dpid, writes in ofmsg.batches(of_ops).items():
            dp = self.datapaths.get(dpid)
            if dp is None:
                continue
            for buf in writes:
                dp.send(buf)
            dp.send_msg(ofmsg.barrier())

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

    # ---- OpenFlow --------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        LOG.info("switch %016x connected from %s", dp.id, dp.address)
        self.datapaths[dp.id] = dp
        self.apply(self.core.datapath_up(dp.id))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _gone(self, ev: Any) -> None:
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            LOG.info("switch %016x disconnected", dp.id)
            del self.datapaths[dp.id]
            self.apply(self.core.datapath_down(dp.id))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        self.apply(self.core.packet_in(msg.datapath.id, msg.data, self.now(), msg.table_id))

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev: Any) -> None:
        msg = ev.msg
        match = dict(msg.match.items())
        self.apply(self.core.flow_removed(msg.datapath.id, msg.table_id, msg.reason, match, self.now()))

    def _poll_stats(self, interval: float) -> None:
        """Ask every switch for its flow counters: what was proxied, flooded, still alive."""
        while True:
            hub.sleep(interval)
            for dp in list(self.datapaths.values()):
                dp.send_msg(dp.ofproto_parser.OFPFlowStatsRequest(dp))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        entries = [(s.table_id, s.priority, tuple(sorted(s.match.items())), s.packet_count)
                   for s in ev.msg.body]
        self.apply(self.core.flow_stats(ev.msg.datapath.id, entries, self.now()))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        self.core.counters["switch_errors"] += 1
        LOG.warning("switch %016x error type=%d code=%d: %s", msg.datapath.id, msg.type, msg.code,
                    bytes(msg.data[:64]).hex())
