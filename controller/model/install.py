"""Where an installed controller keeps its state: the default that `[overlay] state_dir`
(controller/shell/config.py) and overlayctl's default token file (controller/cli/main.py) share."""

from __future__ import annotations

DEFAULT_STATE_DIR = "/var/lib/sdn-overlay"
TOKEN_FILE = "api.token"  # in the state directory: the REST API token made at the first start
LOCK_FILE = "controller.lock"  # in the state directory: held while a controller runs on it


def token_path(state_dir: str = DEFAULT_STATE_DIR) -> str:
    return f"{state_dir.rstrip('/')}/{TOKEN_FILE}"
