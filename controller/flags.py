"""Load with `osken-manager --user-flags controller/flags.py ...` to set options as flags,
e.g. --wsapi-port 8081 --overlay-tunnel-type gre (see README)."""

from os_ken import cfg

from controller import config

config.register(cfg.CONF, cli=True)
