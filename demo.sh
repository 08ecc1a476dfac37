#!/usr/bin/env bash
# The demo in one command (root, fresh Debian 12): set-up, then the article's lab against the
# controller in both learning modes. Arguments go to the demo, e.g. ./demo.sh --live, --tunnel-type gre.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/python -m lab.demo "$@"
