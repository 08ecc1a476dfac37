"""Settings, read from the oslo.config file given with --config-file (or as flags via --user-flags).

osken-manager parses its command line before it imports apps, so these options are
registered as file options by the app, and as command-line options only by
controller/shell/flags.py when given with `--user-flags controller/shell/flags.py`. Both register the
same Opt objects, which oslo.config accepts twice.
"""

from __future__ import annotations

import difflib
import glob
import os
from dataclasses import fields, replace
from typing import Any

from oslo_config import cfg

from controller.core import admission
from controller.core.admission import HostPolicy
from controller.core.store import TenantStore
from controller.ha.store import Store
from controller.model import choices, install
from controller.pipeline import learning_modes, tunnel_ports
from controller.pipeline import tunnel_kinds as tunnels
from controller.pipeline.settings import Settings

# Ryu's names; os-ken 3.x no longer registers them.
WSAPI_OPTS = [
    cfg.HostAddressOpt("wsapi-host", default="127.0.0.1", help="REST API listen address"),
    cfg.PortOpt("wsapi-port", default=8080, help="REST API listen port"),
]


def etcd_tls(conf: cfg.ConfigOpts) -> Any:
    """What https:// etcd endpoints are spoken with (an etcd.ClientTls): [etcd] ca_certificate (else
    [tls]'s) verifies etcd, and [tls] certificate and private_key are this controller's client
    certificate (etcd --client-cert-auth)."""
    from controller.ha.etcd import ClientTls  # only a controller that uses etcd loads its client

    return ClientTls(conf.etcd.ca_certificate or conf.tls.ca_certificate, conf.tls.certificate, conf.tls.private_key)


def _etcd_store(conf: cfg.ConfigOpts) -> TenantStore:
    from controller.ha import etcd  # only a controller that uses etcd loads its client
    from controller.ha.etcd_store import EtcdStore

    e = conf.etcd
    return EtcdStore(etcd.connect(etcd.parse_endpoints(e.endpoints), e.timeout, e.retry_for, etcd_tls(conf)), e.prefix)


STORES = {"sqlite": lambda conf: Store(db_path(conf)), "etcd": _etcd_store}


OVERLAY_OPTS = [
    cfg.StrOpt("tunnel-type", default=tunnels.DEFAULT, choices=list(tunnels.NAMES),
               help="tunnel ports the controller creates between hosts"),
    cfg.StrOpt("tunnel-ports", default=tunnel_ports.MESH.name, choices=list(tunnel_ports.MODES),
               help="mesh: a tunnel port per peer on every host; flow: one port per kind "
                    "(remote_ip=flow), the flows set each packet's peer"),
    cfg.StrOpt("mac-learning", default=learning_modes.BY_CONTROLLER.name, choices=list(learning_modes.MODES),
               help="controller: controller-driven learning, ARP/ND proxy, pruned floods; "
                    "learn: the article's learn() pipeline (the baseline)"),
    cfg.StrOpt("tunnel-bridge", default="br1", help="the bridge the controller programs"),
    cfg.StrOpt("integration-bridge", default="br0", help="the bridge VMs attach to"),
    cfg.IntOpt("mac-idle-timeout", default=300, min=1, help="seconds before a silent MAC is forgotten"),
    cfg.IntOpt("learn-rate", default=200, min=1, help="learning packet-ins per second per host"),
    cfg.IntOpt("flood-rate", default=100, min=1, help="ARP/NS floods for unknown IPs per second per host"),
    cfg.IntOpt("unknown-ip-holddown", default=3, min=1,
               help="seconds a host drops further ARP/NS for an IP whose request was flooded unanswered"),
    cfg.FloatOpt("stats-interval", default=2.0, min=0.2,
                 help="seconds between counter polls (one cookie-masked aggregate per counted role per switch; "
                      "while the controller converges a poll waits, up to 5 intervals)"),
    cfg.IntOpt("max-endpoints", default=1000, min=1,
               help="learned endpoints per (host, tenant); beyond it nothing more is learned there"),
    cfg.FloatOpt("host-grace", default=30.0, min=0.0,
                 help="seconds a host may lose both its OVSDB and OpenFlow connections before its "
                      "endpoints are withdrawn from the other hosts (its tunnels stay)"),
    cfg.StrOpt("admission", default=None, choices=list(admission.MODES),
               help="which hosts join the overlay: certificate (a host is its TLS client certificate's CN, "
                    "signed by [tls]'s CA), approve (an operator admits each one: overlayctl hosts admit, the "
                    "REST API, or admitted_hosts), open (every host that connects: labs only); unset: "
                    "certificate when [tls] is configured, else approve (docs/operator/security.md)"),
    cfg.ListOpt("admitted-hosts", default=None,
                help="system-ids admitted without asking the API (static setups); a revoke through the API "
                     "still takes one out"),
    cfg.StrOpt("store", default="sqlite", choices=list(STORES),
               help="where tenants are kept: sqlite (one controller, the file at db) or etcd (several "
                    "controllers share [etcd] endpoints; see docs/operator/ha.md)"),
    cfg.StrOpt("state-dir", default=install.DEFAULT_STATE_DIR,
               help="where the database, the generated API token and the lock (one controller per "
                    "state directory) live"),
    cfg.StrOpt("db", default=None, help="SQLite database path (default: <state-dir>/overlay.db)"),
    cfg.BoolOpt("api-token", default=True,
                help="REST calls need the bearer token of api_token_file; false: no token at all (an "
                     "opt-out for a lab on loopback, warned about)"),
    cfg.StrOpt("api-token-file", default=None,
               help="file holding the REST API bearer token (default: <state-dir>/api.token, made with "
                    "mode 0600 at the first start if missing; a file named here must exist)"),
    cfg.BoolOpt("api-read-open", default=False, help="with a token: let GET calls through without it"),
    cfg.ListOpt("api-host-names", default=None,
                help="the names a request's Host header may give the REST API and metrics listeners "
                     "(DNS rebinding); default: their listen address, localhost, 127.0.0.1 and ::1 "
                     "when on loopback or a wildcard, and this machine's host name"),
    cfg.HostAddressOpt("metrics-host", default="127.0.0.1",
                       help="address of the read-only metrics listener (GET /metrics only, no token)"),
    cfg.PortOpt("metrics-port", default=None,
                help="port of the read-only metrics listener; unset = none (/metrics is on the REST API)"),
]

ETCD_OPTS = [
    cfg.StrOpt("endpoints", default="http://127.0.0.1:2379",
               help="comma-separated client URLs of the etcd members (etcd >= 3.4); a request goes "
                    "to the next one when a member does not answer"),
    cfg.FloatOpt("timeout", default=1.0, min=0.1,
                 help="seconds one etcd member has to answer a request before the next one is asked"),
    cfg.FloatOpt("retry-for", default=5.0, min=0.0,
                 help="seconds a request goes on asking the members while they time out or have no "
                      "leader (an election); then a REST write answers 503. Refused everywhere: at once"),
    cfg.StrOpt("prefix", default="/sdn-overlay/", help="the controllers' keys live under this etcd key prefix"),
    cfg.StrOpt("ca-certificate", default=None,
               help="with https:// endpoints: the CA that signs etcd's server certificates (default: [tls] "
                    "ca_certificate); the controller shows etcd [tls] certificate and private_key as its "
                    "client certificate (etcd --client-cert-auth)"),
]

# BGP EVPN (controller/bgp/speaker.py, docs/operator/evpn.md): off while local_as is unset.
BGP_OPTS = [
    cfg.IntOpt("local-as", default=None, min=1, max=4294967295,
               help="our AS number; unset: no BGP speaker (the default)"),
    cfg.StrOpt("router-id", default=None, help="BGP router ID, an IPv4 address (default: listen_host)"),
    cfg.ListOpt("neighbors", default=None, help="EVPN peers as ip:remote_as, e.g. 10.0.0.254:65000,10.0.1.254:65001"),
    cfg.HostAddressOpt("listen-host", default="0.0.0.0", help="address the speaker accepts BGP sessions on"),
    cfg.PortOpt("listen-port", default=179, help="port it accepts them on; 0: only connect to the neighbours"),
    cfg.StrOpt("password-file", default=None,
               help="file holding the BGP sessions' TCP MD5 password (RFC 2385), for every neighbour; "
                    "unset: none"),
    cfg.DictOpt("route-targets", default=None,
                help="route target per tenant, tenant:AS:N,... (default: AS:VNI with our AS, as FRR derives)"),
]

# TLS on the control channels (docs/operator/security.md): one certificate, one key and the CA that
# signs the hosts' certificates, read by every listener; off while unset.
TLS_OPTS = [
    cfg.StrOpt("private-key", default=None, help="the controller's private key (PEM file; never logged)"),
    cfg.StrOpt("certificate", default=None, help="the controller's certificate (PEM file), e.g. made by "
               "`ovs-pki req+sign ctl controller`"),
    cfg.StrOpt("ca-certificate", default=None,
               help="the CA certificate(s) (PEM file) that sign the hosts' certificates, e.g. ovs-pki's "
                    "switchca/cacert.pem; a host's certificate must verify against them"),
    cfg.BoolOpt("required", default=True,
                help="with the three files set, OpenFlow and OVSDB take TLS only; false: plain TCP too, on "
                     "the same ports (a migration, warned about)"),
    cfg.BoolOpt("https", default=False,
                help="the REST API and the metrics listener speak HTTPS with the same certificate "
                     "(clients are not asked for one: the API has its token)"),
]

# Several instances: leader election on an etcd lease (controller/ha/election.py, controller/ha/roles.py).
# With store = etcd this instance is one of several and programs only while it leads.
ELECTION_OPTS = [
    cfg.IntOpt("lease-ttl", default=1, min=1,
               help="seconds the leader's lease outlives its last renewal (renewed every third of it): a "
                    "new leader within about TTL + 0.7 s of the old one's death (etcd raises a TTL below "
                    "its minimum, 1.5 x its election timeout)"),
    cfg.StrOpt("instance-name", default=None, help="this instance's name in the election (default: hostname)"),
]

OVSDB_OPTS = ("address", "port")  # os-ken's [ovsdb] options our OVSDB manager uses


def register(conf: cfg.ConfigOpts, cli: bool = False) -> None:
    reg = conf.register_cli_opts if cli else conf.register_opts
    reg(WSAPI_OPTS)
    reg(OVERLAY_OPTS, group="overlay")
    reg(ETCD_OPTS, group="etcd")
    reg(BGP_OPTS, group="bgp")
    reg(ELECTION_OPTS, group="etcd")
    reg(TLS_OPTS, group="tls")


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator (entry point oslo.config.opts: sdn_overlay): the sample config."""
    from os_ken.services.protocols.ovsdb import manager as ovsdb_manager

    return [("DEFAULT", WSAPI_OPTS), ("ovsdb", [o for o in ovsdb_manager.opts if o.dest in OVSDB_OPTS]),
            ("overlay", OVERLAY_OPTS), ("etcd", ETCD_OPTS + ELECTION_OPTS), ("bgp", BGP_OPTS), ("tls", TLS_OPTS)]


def settings(conf: cfg.ConfigOpts) -> Settings:
    """The pipeline's settings from the parsed [overlay] options: the mode objects they name."""
    o = conf.overlay
    return Settings(learning=learning_modes.get(o.mac_learning), tunnel_type=o.tunnel_type,
                    tunnel_ports=tunnel_ports.get(o.tunnel_ports), mac_idle_timeout=o.mac_idle_timeout,
                    learn_rate=o.learn_rate, flood_rate=o.flood_rate, unknown_ip_holddown=o.unknown_ip_holddown,
                    max_endpoints=o.max_endpoints, host_grace=o.host_grace)


def defaults(**overlay: object) -> Settings:
    """The settings of a config file that sets nothing but these [overlay] options (by their names,
    with values as a file gives them): the defaults are the options' own (tests, benchmarks)."""
    conf = cfg.ConfigOpts()
    conf.register_opts(OVERLAY_OPTS, group="overlay")
    conf(args=[], default_config_files=[])
    for name, value in overlay.items():
        conf.set_override(name, value, group="overlay")
    return settings(conf)


LIVE = ("tunnel_type", "tunnel_ports")  # what a reload (SIGHUP) changes on a running overlay
OPTION_OF = {"learning": "mac_learning"}  # a Settings field named otherwise than its option


def reloaded(conf: cfg.ConfigOpts, current: Settings) -> tuple[Settings, list[str]]:
    """Re-read the config files: current with the new tunnel settings, and the names of the
    other options that changed (they take a restart). A bad file raises ValueError."""
    conf.reload_config_files()
    fresh = settings(conf)
    later = [OPTION_OF.get(fl.name, fl.name) for fl in fields(Settings) if fl.name not in LIVE
             and getattr(fresh, fl.name) != getattr(current, fl.name)]
    return replace(current, **{name: getattr(fresh, name) for name in LIVE}), later


def tls_configured(conf: cfg.ConfigOpts) -> bool:
    """Does the [tls] section give the control channels TLS with a CA (its three files), so that hosts
    hold certificates it verifies?"""
    tls = getattr(conf, "tls", None)
    return bool(tls is not None and all(getattr(tls, name, None) for name in ("private_key", "certificate",
                                                                              "ca_certificate")))


def admission_mode(conf: cfg.ConfigOpts) -> admission.Mode:
    """[overlay] admission, or its default: certificate with a [tls] CA, approve without."""
    name = conf.overlay.admission
    return admission.get(name) if name else admission.default(tls_configured(conf))


def host_policy(conf: cfg.ConfigOpts, store: TenantStore) -> HostPolicy:
    """Which hosts may join (the mode, the configured list, the operator's decisions in the store) and
    their ports' rules."""
    decisions, rules = store.host_records()
    return HostPolicy(admission_mode(conf), conf.overlay.admitted_hosts or (), decisions, rules)


def unknown_options(conf: cfg.ConfigOpts) -> list[str]:
    """What the config files set that no registered option reads, one message each, naming the file,
    the section and the key (and the nearest registered name): oslo.config ignores such a key in
    silence, so a misspelt `tunel_type` would leave the default in force. Call it once every option
    is registered (os-ken's, the app's)."""
    out = []
    files = list(conf.config_file or ())
    if conf.config_dir:
        files += sorted(glob.glob(os.path.join(conf.config_dir, "*.conf")))
    for path in files:
        sections: dict[str, dict] = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except (OSError, cfg.ParseError):
            continue  # oslo.config itself has said what is wrong with it
        for section, keys in sections.items():
            group = "DEFAULT" if section.upper() == "DEFAULT" else section.lower()
            known = _option_names(conf, group)
            if known is None:
                near = _nearest(section, _groups(conf))
                out.append(f"{path}: [{section}] is not a section the controller reads{near}; ignored")
                continue
            out += [f"{path}: [{section}] {key} is not an option{_nearest(key, known)}; ignored"
                    for key in keys if key not in known]
    return out


def _groups(conf: cfg.ConfigOpts) -> list[str]:
    """The registered groups (iterating a ConfigOpts gives option and group names alike)."""
    def is_group(name: str) -> bool:
        try:
            return isinstance(conf[name], cfg.ConfigOpts.GroupAttr)
        except (cfg.Error, ValueError):  # an option whose value is bad: oslo.config says so where it is read
            return False
    return [name for name in conf if is_group(name)]


def _option_names(conf: cfg.ConfigOpts, group: str) -> list[str] | None:
    """The options a section may set (their dests, as a file names them); None: no such section."""
    groups = _groups(conf)
    if group == "DEFAULT":
        return [name for name in conf if name not in groups]
    return list(conf[group]) if group in groups else None


def _nearest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def db_path(conf: cfg.ConfigOpts) -> str:
    return conf.overlay.db or f"{conf.overlay.state_dir}/overlay.db"


def sqlite_db(conf: cfg.ConfigOpts) -> str | None:
    """The SQLite database this controller keeps its tenants in; None when its store is elsewhere."""
    return db_path(conf) if conf.overlay.store == "sqlite" else None


def open_store(conf: cfg.ConfigOpts) -> TenantStore:
    """The tenant store [overlay] store names, opened."""
    return choices.by_name(STORES, conf.overlay.store, "store")(conf)
