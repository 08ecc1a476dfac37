"""What the app starts with: the core it runs, its OVSDB server, and every listener and
background task (OVSDB, REST, metrics, the loop-lag probe, the election, BGP, the store's watch,
the pump, the ticker, the SIGHUP watcher)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from os_ken.lib import hub

from controller.core.core import Core
from controller.model.state import HostView, Tenant
from controller.northbound import metrics
from controller.northbound.auth import TokenAuth
from controller.northbound.rest import Api
from controller.pipeline.settings import Settings
from controller.shell import config, loop, looplag, reload
from controller.shell.leadership import Leadership
from controller.southbound import ofmsg
from controller.southbound.ovsdb_server import OvsdbServer

LOG = logging.getLogger("overlay")
RECOVERY_WINDOW_S = 10.0  # after start: switches' endpoint entries wait for their own host's read-back
LOCAL = ("127.0.0.1", "::1", "localhost")


def app_core(settings: Settings, tenants: Iterable[Tenant], now: float) -> Core:
    """The core as the app runs it: drained in slices by the pump, and recovering what the switches
    learned before a restart until RECOVERY_WINDOW_S has passed."""
    core = Core(settings, tenants, canon=ofmsg.canonical_match)
    core.eager = False
    core.recovering, core.recover_until = True, now + RECOVERY_WINDOW_S
    return core


def collectors(loop_lag: looplag.LoopLag, leadership: Leadership) -> list[Any]:
    """The collectors the app adds to its Metrics: the event loop's lag and the role among instances
    (exported always, also by a single instance). The dashboard's test registers these same ones."""
    return [loop_lag, leadership.metrics()]


def ovsdb_server(conf: Any, on_view: Callable[[HostView], None], on_down: Callable[[str], None]) -> OvsdbServer:
    return OvsdbServer(conf.ovsdb.address, conf.ovsdb.port, conf.overlay.tunnel_bridge,
                       conf.overlay.integration_bridge, on_view=on_view, on_down=on_down)


def warn_if_open(conf: Any, auth: TokenAuth) -> None:
    if not auth.enabled and conf.wsapi_host not in LOCAL:
        LOG.warning("REST API on %s without [overlay] api_token_file: anyone who reaches it can "
                    "change tenants", conf.wsapi_host)


def warn_unknown_options(conf: Any) -> None:
    """A misspelt option in the file is not silently left at its default (config.unknown_options)."""
    for problem in config.unknown_options(conf):
        LOG.warning("config: %s", problem)


def start(app: Any, conf: Any) -> list[Any]:
    """Start the app's listeners and tasks; their green threads."""
    threads = []
    app.ovsdb.listen()
    threads.append(hub.spawn(app.ovsdb.serve))
    threads.append(hub.spawn(app.stats.run))
    threads.append(hub.spawn(app.pump.run))
    threads.append(hub.spawn(loop.ticker, lambda: app.post(app.tick)))
    threads.append(hub.spawn(reload.watch_sighup, lambda: app.post(app.reload)))
    threads.append(hub.spawn(app.store.watch, app))  # other instances' tenant writes
    address = (conf.wsapi_host, conf.wsapi_port)
    server = hub.WSGIServer(address, Api(app, app.api_auth))
    LOG.info("REST API on http://%s:%s/v1", *address)
    threads.append(hub.spawn(server.serve_forever))
    o = conf.overlay
    if o.metrics_port is not None:  # read-only: Prometheus scrapes here, never near the write API
        scrape = hub.WSGIServer((o.metrics_host, o.metrics_port), metrics.Listener(app, app.metrics))
        LOG.info("metrics on http://%s:%s/metrics", o.metrics_host, o.metrics_port)
        threads.append(hub.spawn(scrape.serve_forever))
    threads.append(hub.spawn(looplag.run_probe, app.loop_lag, app.post))
    if app.evpn is not None:
        app.evpn.start()
    if app.leadership.election is not None:
        threads.append(hub.spawn(app.leadership.election.run))
    return threads
