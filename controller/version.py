"""The version, read from the installed package's metadata: pyproject.toml is its single source."""

from importlib.metadata import PackageNotFoundError, version

DIST = "sdn-overlay"

try:
    __version__ = version(DIST)
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
