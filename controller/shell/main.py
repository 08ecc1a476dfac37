"""`overlay-controller`: os-ken's manager with the overlay app, options as flags or in a file.

    overlay-controller --config-file /etc/sdn-overlay/overlay.conf
    overlay-controller --wsapi-port 8081 --overlay-tunnel-type gre --ofp-tcp-listen-port 6653

The same as `osken-manager --user-flags controller/shell/flags.py apps/overlay.py ...`, installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from controller.version import __version__

APP = "apps.overlay"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:  # ours, not os-ken's (osken-manager --version prints os-ken's)
        print(f"overlay-controller {__version__}")
        return 0
    from os_ken.cmd import manager

    import controller.shell.flags  # noqa: F401  registers every option as a flag, before os-ken parses

    # The app is imported by os-ken after it has monkey-patched the standard library.
    manager.main(args=[*args, APP], prog="overlay-controller")
    return 0


if __name__ == "__main__":
    sys.exit(main())
