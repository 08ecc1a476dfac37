"""Moved to lab/overlay.py (shared with bench/ and the demo)."""

from lab.overlay import *  # noqa: F401,F403
