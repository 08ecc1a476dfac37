"""`overlay-controller`: os-ken's manager with the overlay app, options as flags or in a file.

    overlay-controller --config-file /etc/sdn-overlay/overlay.conf
    overlay-controller --wsapi-port 8081 --overlay-tunnel-type gre --ofp-tcp-listen-port 6653

The same as `osken-manager --user-flags controller/shell/flags.py apps/overlay.py ...`, installed,
with a command line of its own around it: --help shows our options (controller/shell/usage.py;
--help-all: os-ken's too), a config file that cannot be read is one line and exit status 2, and
third-party warnings at import (deprecations in eventlet, dnspython's use of cryptography) are
not shown.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from controller.version import __version__

APP = "apps.overlay"
PROG = "overlay-controller"
USAGE_ERROR = 2  # as argparse exits on a bad flag
NOT_OURS = r"(?!(controller|apps)(\.|$))"  # a warning attributed to a module outside this project


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore", module=NOT_OURS)  # not ours to fix, and not the operator's
    if "--version" in args:  # ours, not os-ken's (osken-manager --version prints os-ken's)
        print(f"{PROG} {__version__}")
        return 0
    if "--help-all" in args:  # os-ken's parser: every option it registers, ours among them
        args = ["--help" if a == "--help-all" else a for a in args]
    elif "-h" in args or "--help" in args or args[:1] == ["--shell_completion"]:
        from controller.shell import usage

        if args[:1] != ["--shell_completion"]:
            print(usage.short_help(PROG), end="")
        elif args[1:2] in (["bash"], ["zsh"]):
            print(usage.completion(args[1], PROG), end="")
        else:
            print(f"{PROG}: --shell_completion takes bash or zsh", file=sys.stderr)
            return USAGE_ERROR
        return 0
    from os_ken.lib import hub

    if "--enable-debugger" not in args:
        hub.patch(thread=True)  # before anything makes a lock: else eventlet warns of RLocks it cannot green
    from os_ken.cmd import manager
    from oslo_config import cfg

    import controller.shell.flags  # noqa: F401  registers every option as a flag, before os-ken parses

    try:
        # The app is imported by os-ken after it has monkey-patched the standard library.
        manager.main(args=[*args, APP], prog=PROG)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigFilesPermissionDeniedError, cfg.ConfigFileParseError,
            cfg.ConfigFileValueError, cfg.RequiredOptError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)  # the file or a value in it: the operator's to fix, no traceback
        return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
