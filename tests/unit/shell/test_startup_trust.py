"""What the options make of the listeners at start: the REST token by default (made in the state
directory, 0600, its path logged and never its value), the opt-out, [tls] whole or refused in one
line, and which listener speaks TLS."""

from __future__ import annotations

import logging
import socket

import pytest
from os_ken.services.protocols.ovsdb import manager as ovsdb_manager
from oslo_config import cfg

from controller.shell import config, startup
from controller.shell.listeners import Refusals

OSKEN_OPTS = [cfg.StrOpt("ofp-listen-host", default="127.0.0.1"), cfg.IntOpt("ofp-tcp-listen-port"),
              cfg.IntOpt("ofp-ssl-listen-port"), cfg.StrOpt("ctl-privkey"), cfg.StrOpt("ctl-cert"),
              cfg.StrOpt("ca-certs")]  # os-ken's own, registered by os-ken in the app


def conf_of(tmp_path, text: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register(conf)
    conf.register_opts(OSKEN_OPTS)
    conf.register_opts([o for o in ovsdb_manager.opts if o.dest in config.OVSDB_OPTS], group="ovsdb")
    path = tmp_path / "overlay.conf"
    path.write_text(f"[overlay]\nstate_dir = {tmp_path / 'state'}\n" + text)
    conf(args=["--config-file", str(path)])
    (tmp_path / "state").mkdir(exist_ok=True)
    return conf


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_a_fresh_install_makes_a_token_and_requires_it(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="overlay")
    auth = startup.api_auth(conf_of(tmp_path, ""))
    token = tmp_path / "state" / "api.token"
    assert auth.enabled and auth.required("POST") and auth.required("GET")  # reads too: not api_read_open
    assert token.stat().st_mode & 0o777 == 0o600
    value = token.read_text().strip()
    assert len(value) >= 40 and auth.check(f"Bearer {value}")
    assert str(token) in caplog.text and value not in caplog.text
    again = startup.api_auth(conf_of(tmp_path, ""))  # the next start keeps it
    assert token.read_text().strip() == value and again.check(f"Bearer {value}")


def test_the_token_can_be_turned_off_and_that_is_warned_about(tmp_path, caplog):
    auth = startup.api_auth(conf_of(tmp_path, "api_token = false\n"))
    assert not auth.enabled and not auth.required("DELETE")
    assert "without a token" in caplog.text and not (tmp_path / "state" / "api.token").exists()


def test_a_named_token_file_must_exist(tmp_path):
    with pytest.raises(SystemExit) as e:
        startup.api_auth(conf_of(tmp_path, f"api_token_file = {tmp_path / 'nope'}\n"))
    assert str(e.value).startswith("overlay-controller: the REST API token ([overlay] api_token_file): ")
    assert str(tmp_path / "nope") in str(e.value) and "\n" not in str(e.value)


def tls_conf(tmp_path, pki, extra: str = "", ports: list[int] | None = None) -> cfg.ConfigOpts:
    of, ovsdb, rest = ports or free_ports(3)
    key, cert = pki.controller()
    return conf_of(tmp_path, f"[DEFAULT]\nofp_tcp_listen_port = {of}\nwsapi_port = {rest}\n"
                             f"[ovsdb]\naddress = 127.0.0.1\nport = {ovsdb}\n"
                             f"[tls]\nprivate_key = {key}\ncertificate = {cert}\nca_certificate = {pki.switch_ca}\n"
                             + extra)


def close(ls: startup.Listeners) -> None:
    for ch in (ls.openflow, ls.ovsdb, ls.rest, ls.metrics):
        if ch is not None:
            ch.sock.close()


def test_with_tls_the_switch_channels_take_tls_only_and_rest_stays_as_it_was(tmp_path, pki):
    ls = startup.bind_listeners(tls_conf(tmp_path, pki), Refusals())
    try:
        assert ls.openflow.tls and ls.ovsdb.tls and not ls.openflow.plain_ok and not ls.ovsdb.plain_ok
        assert not ls.rest.tls and ls.metrics is None
    finally:
        close(ls)
    ls = startup.bind_listeners(tls_conf(tmp_path, pki, "required = false\nhttps = true\n"), Refusals())
    try:
        assert ls.openflow.plain_ok and ls.ovsdb.plain_ok  # a migration: plain TCP too
        assert ls.rest.tls and not ls.rest.plain_ok
    finally:
        close(ls)


def test_without_tls_every_listener_is_plain(tmp_path):
    of, ovsdb, rest = free_ports(3)
    ls = startup.bind_listeners(conf_of(tmp_path, f"[DEFAULT]\nofp_tcp_listen_port = {of}\nwsapi_port = {rest}\n"
                                                  f"[ovsdb]\naddress = 127.0.0.1\nport = {ovsdb}\n"), Refusals())
    try:
        assert not ls.openflow.tls and not ls.ovsdb.tls and not ls.rest.tls
        assert ls.openflow.sock.getsockname()[1] == of
    finally:
        close(ls)


@pytest.mark.parametrize("text,message", [
    ("[tls]\ncertificate = /x.pem\n", "TLS needs [tls] private_key and [tls] ca_certificate too"),
    ("[tls]\nhttps = true\n", "[tls] https needs [tls] private_key, certificate and ca_certificate"),
    ("[DEFAULT]\nctl_privkey = /k.pem\n", "--ctl-privkey/--ctl-cert/--ca-certs are not used"),
])
def test_half_a_tls_configuration_stops_the_start_in_one_line(tmp_path, text, message):
    with pytest.raises(SystemExit) as e:
        startup.bind_listeners(conf_of(tmp_path, text), Refusals())
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_unreadable_key_is_named_and_warned_about_when_too_open(tmp_path, pki, caplog):
    key, _ = pki.controller()
    conf = tls_conf(tmp_path, pki)
    conf.set_override("private_key", str(tmp_path / "missing.pem"), group="tls")
    with pytest.raises(SystemExit, match=r"\[tls\] certificate .* with private_key .*missing.pem"):
        startup.bind_listeners(conf, Refusals())
    open_key = tmp_path / "open.pem"
    open_key.write_bytes(key.read_bytes())
    open_key.chmod(0o644)
    conf.set_override("private_key", str(open_key), group="tls")
    close(startup.bind_listeners(conf, Refusals()))
    assert f"[tls] private_key {open_key} is readable by group or others" in caplog.text
