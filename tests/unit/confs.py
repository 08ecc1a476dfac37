"""A config file, parsed as the app parses it (oslo.config with our options registered)."""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg

from controller.shell import config


def conf_from(path: Path, text: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    config.register(conf)
    path.write_text(text)
    conf(args=["--config-file", str(path)])
    return conf
