"""What the app starts with: the core it runs, its OVSDB server, every listener (bound at once,
TLS and tokens as [tls] and [overlay] say) and background task (OVSDB, REST, metrics, the
loop-lag probe, the election, BGP, the store's watch, the pump, the ticker, the SIGHUP watcher)."""

from __future__ import annotations

import logging
import os
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import eventlet.hubs
import eventlet.wsgi
from os_ken.lib import hub
from os_ken.ofproto import ofproto_common

from controller.core.admission import HostPolicy
from controller.core.core import Core
from controller.model import install
from controller.model.state import Tenant
from controller.northbound import auth, metrics
from controller.northbound.auth import HostNames, TokenAuth
from controller.northbound.rest import Api
from controller.pipeline.settings import Settings
from controller.shell import config, loop, looplag, oskenpatch, reload
from controller.shell.leadership import Leadership
from controller.shell.listeners import Channel, Refusals, bind, fail
from controller.shell.turns import TURNS
from controller.southbound import encoder, ofmsg, tlsconf
from controller.southbound.ovsdb_server import OvsdbServer

LOG = logging.getLogger("overlay")
RECOVERY_WINDOW_S = 10.0  # after start: switches' endpoint entries wait for their own host's read-back


def app_core(settings: Settings, tenants: Iterable[Tenant], now: float, policy: HostPolicy,
             revision: int = 0) -> Core:
    """The core as the app runs it: drained in slices by the pump, and recovering what the switches
    learned before a restart until RECOVERY_WINDOW_S has passed; `policy` says which hosts may join;
    its tenants are the store's at `revision`."""
    core = Core(settings, tenants, canon=ofmsg.canonical_match, policy=policy, cookie_of=encoder.wire_cookie)
    core.revision = revision
    core.eager = False
    core.recovering, core.recover_until = True, now + RECOVERY_WINDOW_S
    return core


def collectors(loop_lag: looplag.LoopLag, leadership: Leadership, refusals: Refusals) -> list[Any]:
    """The collectors the app adds to its Metrics: the event loop's lag, the role among instances
    (exported always, also by a single instance) and the connections its listeners refused. The
    dashboard's test registers these same ones."""
    return [loop_lag, leadership.metrics(), refusals]


def ovsdb_server(app: Any, conf: Any) -> OvsdbServer:
    """The OVSDB manager: a host's views go to the core on the event loop; whether a connection may
    be the host it names is asked at once (the core's identity rules)."""
    return OvsdbServer(conf.overlay.tunnel_bridge, conf.overlay.integration_bridge,
                       on_view=lambda v, p: app.post(lambda: app.apply(app.core.host_view(v, app.now(), p))),
                       on_down=lambda s: app.post(lambda: app.apply(app.core.ovsdb_down(s, app.now()))),
                       claim=lambda s, p, live: app.core.claim_ovsdb(s, p, live, app.now()), take=TURNS.take)


def guard_channels(app: Any) -> None:
    """Garbage on OpenFlow and OVSDB is counted by kind (the core's counters) and closes only its
    own connection; a REST client gone mid-answer is one log line."""
    def count(counter: str) -> None:
        app.core.counters[counter] += 1
    oskenpatch.guard_openflow(count)
    oskenpatch.quiet_gone_clients()
    app.ovsdb.on_malformed = count


def ready(app: Any, conf: Any) -> None:
    """The app is built: its metrics collectors registered, misspelt options named, what runs said."""
    for collector in collectors(app.loop_lag, app.leadership, app.refusals):
        app.metrics.register(collector)
    warn_unknown_options(conf)
    s = app.core.settings
    LOG.info("overlay controller: mode=%s tunnels=%s tunnel_ports=%s tenants=%d", s.learning.name, s.tunnel_type,
             s.tunnel_ports.name, len(app.core.tenants))


def log_admission(conf: Any, core: Core) -> None:
    """Say how hosts join, and warn when anyone who connects does."""
    policy = core.policy
    admitted = sorted(h for h, yes in policy.decisions.items() if yes) + sorted(policy.listed)
    LOG.info("admission=%s: hosts admitted by name: %s", policy.mode, ", ".join(admitted) or "none")
    if not policy.mode.admits_unlisted or policy.mode.needs_certificate:
        return
    LOG.warning("admission = open: every host that reaches the OVSDB port joins the overlay and receives "
                "tenant traffic (labs only; docs/operator/security.md)")


# ---- who may talk to the controller (docs/operator/security.md) ------------------------------

def _warn_if_readable(path: str, option: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # loading it names the problem
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        LOG.warning("%s %s is readable by group or others; chmod 600 it", option, path)


def tls_files(conf: Any) -> tlsconf.TlsFiles | None:
    """[tls]'s files, or None when TLS is not configured; half a configuration stops the start."""
    t = conf.tls
    given = {name: getattr(t, name) for name in ("private_key", "certificate", "ca_certificate")}
    if not any(given.values()):
        if conf.ctl_privkey or conf.ctl_cert or conf.ca_certs:
            fail("--ctl-privkey/--ctl-cert/--ca-certs are not used: set [tls] private_key, certificate "
                 "and ca_certificate (docs/operator/security.md)")
        if t.https:
            fail("[tls] https needs [tls] private_key, certificate and ca_certificate")
        return None
    missing = [f"[tls] {name}" for name, value in given.items() if not value]
    if missing:
        fail(f"TLS needs {' and '.join(missing)} too")
    _warn_if_readable(t.private_key, "[tls] private_key")
    return tlsconf.TlsFiles(**given)


def _context(files: tlsconf.TlsFiles, verify_peers: bool) -> Any:
    try:
        return tlsconf.server_context(files, verify_peers)
    except ValueError as e:
        fail(f"[tls] {e}")


def openflow_port(conf: Any, tls: bool) -> tuple[int, str]:
    """The OpenFlow port and the option it comes from: one port, TLS or plain as [tls] says."""
    if tls and conf.ofp_ssl_listen_port:
        return conf.ofp_ssl_listen_port, "ofp_ssl_listen_port"
    return conf.ofp_tcp_listen_port or ofproto_common.OFP_TCP_PORT, "ofp_tcp_listen_port"


@dataclass(frozen=True)
class Listeners:
    openflow: Channel
    ovsdb: Channel
    rest: Channel
    metrics: Channel | None


def bind_listeners(conf: Any, refusals: Refusals) -> Listeners:
    """Every listener, bound now (a port in use stops the start, naming its option)."""
    files = tls_files(conf)
    switches = _context(files, verify_peers=True) if files else None
    https = _context(files, verify_peers=False) if files and conf.tls.https else None
    plain_ok = files is None or not conf.tls.required
    if files is not None and plain_ok:
        LOG.warning("[tls] required = false: OpenFlow and OVSDB take plain TCP too; hosts on tcp: are "
                    "neither encrypted nor identified")
    port, option = openflow_port(conf, files is not None)
    o = conf.overlay
    return Listeners(
        openflow=Channel("openflow", bind(conf.ofp_listen_host, port, option), switches, plain_ok, refusals),
        ovsdb=Channel("ovsdb", bind(conf.ovsdb.address, conf.ovsdb.port, "[ovsdb] port"), switches, plain_ok,
                      refusals),
        rest=Channel("rest", bind(conf.wsapi_host, conf.wsapi_port, "wsapi_port"), https, https is None, refusals),
        metrics=None if o.metrics_port is None else Channel(
            "metrics", bind(o.metrics_host, o.metrics_port, "[overlay] metrics_port"), https, https is None, refusals))


def api_auth(conf: Any) -> TokenAuth:
    """The REST API's token: [overlay] api_token_file, else <state_dir>/api.token (made if missing)."""
    o = conf.overlay
    if not o.api_token:
        LOG.warning("REST API without a token ([overlay] api_token = false): any process that reaches "
                    "%s:%s can read and change tenants", conf.wsapi_host, conf.wsapi_port)
        return TokenAuth()
    path = o.api_token_file or install.token_path(o.state_dir)
    if o.api_token_file is None and auth.make_token(path):
        LOG.info("REST API token generated in %s (mode 0600; overlayctl reads it there)", path)
    else:
        LOG.info("REST API token read from %s", path)
    try:
        return TokenAuth(path, o.api_read_open)
    except (OSError, ValueError) as e:
        fail(f"the REST API token ([overlay] api_token_file): {getattr(e, 'strerror', None) or e}"
             + (f": {path}" if isinstance(e, OSError) else ""))


def host_names(conf: Any, listen: str) -> HostNames:
    """The names a request may call a listener by: its address, loopback, this host, api_host_names."""
    return HostNames(listen, [*(conf.overlay.api_host_names or []), socket.gethostname()])


def _describe(channel: Channel, what: str) -> str:
    if channel.ctx is None:
        return "plain TCP"
    return f"TLS ({what})" + (", plain TCP too" if channel.plain_ok else "")


def warn_unknown_options(conf: Any) -> None:
    """A misspelt option in the file is not silently left at its default (config.unknown_options)."""
    for problem in config.unknown_options(conf):
        LOG.warning("config: %s", problem)


def start(app: Any, conf: Any) -> list[Any]:
    """Start the app's listeners and tasks; their green threads."""
    threads = []
    TURNS.time_rounds(eventlet.hubs.get_hub())
    ls: Listeners = app.listeners
    switches = "certificates signed by [tls] ca_certificate"
    LOG.info("OpenFlow on %s:%s, %s", *ls.openflow.sock.getsockname()[:2], _describe(ls.openflow, switches))
    LOG.info("OVSDB manager on %s:%s, %s", *ls.ovsdb.sock.getsockname()[:2], _describe(ls.ovsdb, switches))
    threads.append(hub.spawn(ls.ovsdb.serve, app.ovsdb.connected))
    threads.append(hub.spawn(app.stats.run))
    threads.append(hub.spawn(app.pump.run))
    threads.append(hub.spawn(loop.ticker, lambda: app.post(app.tick)))
    threads.append(hub.spawn(reload.watch_sighup, lambda: app.post(app.reload)))
    threads.append(hub.spawn(app.store.watch, app))  # other instances' tenant writes
    threads.append(hub.spawn(app.store.watch_hosts, app))  # and their admissions and port rules
    scheme = "https" if ls.rest.tls else "http"
    api = Api(app, app.api_auth, host_names(conf, conf.wsapi_host))
    LOG.info("REST API on %s://%s:%s/v1 (%s)", scheme, conf.wsapi_host, conf.wsapi_port,
             "token required" + (" for changes" if app.api_auth.read_open else "") if app.api_auth.enabled
             else "no token")
    threads.append(hub.spawn(eventlet.wsgi.server, ls.rest.accepting(), api, hub.LoggingWrapper()))
    o = conf.overlay
    if ls.metrics is not None:  # read-only: Prometheus scrapes here, never near the write API
        scrape = metrics.Listener(app, app.metrics, host_names(conf, o.metrics_host))
        LOG.info("metrics on %s://%s:%s/metrics", scheme, o.metrics_host, o.metrics_port)
        threads.append(hub.spawn(eventlet.wsgi.server, ls.metrics.accepting(), scrape, hub.LoggingWrapper()))
    threads.append(hub.spawn(looplag.run_probe, app.loop_lag, app.post))
    if app.evpn is not None:
        app.evpn.start()
    if app.leadership.election is not None:
        threads.append(hub.spawn(app.leadership.election.run))
    return threads
