"""overlayctl: the operator's command-line client for the REST API (stdlib only)."""


def main() -> int:
    raise SystemExit("overlayctl: not implemented yet")
