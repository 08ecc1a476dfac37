"""[overlay] admission and admitted_hosts: the default needs an operator (or, with a [tls] CA, a
certificate); the policy the app starts from joins the options with the store's decisions."""

from oslo_config import cfg

from controller.core import admission
from controller.ha.store import Store
from controller.model.state import PortRule
from controller.shell import config
from tests.unit.confs import conf_from


def test_without_tls_the_default_is_approve_and_open_must_be_asked_for(tmp_path):
    assert config.admission_mode(conf_from(tmp_path / "a.conf", "")) is admission.APPROVE
    assert config.admission_mode(conf_from(tmp_path / "b.conf", "[overlay]\nadmission = open\n")) is admission.OPEN


def test_with_a_tls_ca_the_default_is_certificate(tmp_path):
    conf = cfg.ConfigOpts()
    config.register(conf)
    (tmp_path / "t.conf").write_text("[tls]\nprivate_key = k.pem\ncertificate = c.pem\nca_certificate = ca.pem\n")
    conf(args=["--config-file", str(tmp_path / "t.conf")])
    assert config.tls_configured(conf) and config.admission_mode(conf) is admission.CERTIFICATE
    conf.set_override("ca_certificate", None, group="tls")
    assert not config.tls_configured(conf) and config.admission_mode(conf) is admission.APPROVE


def test_the_policy_joins_the_listed_hosts_and_the_stores_decisions(tmp_path):
    store = Store(str(tmp_path / "o.db"))
    store.put_admission("h3", False)
    rule = PortRule("h1", "vm1", frozenset({"02:00:00:00:00:01"}))
    store.put_port_rule(rule)
    policy = config.host_policy(conf_from(tmp_path / "p.conf", "[overlay]\nadmitted_hosts = h1, h3\n"), store)
    assert (policy.mode, policy.listed) == (admission.APPROVE, frozenset({"h1", "h3"}))
    assert [policy.admitted(h) for h in ("h1", "h2", "h3")] == [True, False, False]  # h3: the revoke wins
    assert policy.rules_of("h1") == {"vm1": rule}
