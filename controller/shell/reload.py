"""SIGHUP re-reads the config file: tunnel_type and tunnel_ports switch without a restart.

The signal handler only raises a flag; the reload runs on the app's event loop like any event.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

from os_ken.lib import hub
from oslo_config import cfg

from controller.core.core import Core
from controller.model.ops import Op
from controller.shell import config

LOG = logging.getLogger("overlay")


def watch_sighup(post_reload: Callable[[], Any], sleep: Callable[[float], None] = hub.sleep) -> None:
    asked = []
    signal.signal(signal.SIGHUP, lambda *_: asked.append(True))
    while True:
        sleep(0.1)
        if asked:
            asked.clear()
            post_reload()


def reload(conf: cfg.ConfigOpts, core: Core, now: float) -> list[Op] | None:
    """The core retuned to the file's tunnel settings; None: the file is refused, nothing changed."""
    try:
        new, later = config.reloaded(conf, core.settings)
    except ValueError as e:
        LOG.error("config reload refused, nothing changed: %s", e)
        return None
    for problem in config.unknown_options(conf):
        LOG.warning("config reload: %s", problem)
    if later:
        LOG.warning("config reload: %s take effect at the next restart", ", ".join(later))
    LOG.info("config reload: tunnels=%s tunnel_ports=%s", new.tunnel_type, new.tunnel_ports.name)
    return core.retune_tunnels(new, now)
