"""The committed sample config is what oslo-config-generator makes from the registered options."""

import io
from pathlib import Path

from oslo_config import cfg, generator

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "contrib" / "overlay.conf.sample"


def test_the_sample_config_is_generated_from_the_options():
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(["--config-file", str(REPO / "contrib" / "oslo-config-generator.conf")])
    out = io.StringIO()
    generator.generate(conf, output_file=out)
    assert out.getvalue() == SAMPLE.read_text(), (
        "contrib/overlay.conf.sample is out of date: "
        ".venv/bin/oslo-config-generator --config-file contrib/oslo-config-generator.conf")


def test_every_option_is_in_the_sample():
    from controller.shell import config

    text = SAMPLE.read_text()
    for group, opts in config.list_opts():
        assert f"[{group}]" in text
        for opt in opts:
            assert f"#{opt.dest} = " in text
