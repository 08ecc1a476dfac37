"""Load with `osken-manager --user-flags controller/shell/flags.py ...` to set options as flags,
e.g. --wsapi-port 8081 --overlay-tunnel-type gre --ovsdb-port 6641 (see docs/operator/configuration.md)."""

from os_ken import cfg
from os_ken.services.protocols.ovsdb import manager as ovsdb_manager

from controller.shell import config

config.register(cfg.CONF, cli=True)
cfg.CONF.register_cli_opts([o for o in ovsdb_manager.opts if o.dest in config.OVSDB_OPTS], group="ovsdb")
