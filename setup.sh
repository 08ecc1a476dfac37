#!/usr/bin/env bash
# Fresh Debian 12 (root) -> everything the controller, the lab and the tests need.
# Idempotent: run it again after pulling.
set -euo pipefail
cd "$(dirname "$0")"

# mininet: Debian's python3-mininet, for mininet_topos/ (runs under /usr/bin/python3 only)
# chromium + chromium-driver: the web view's browser test (tests/e2e/test_webview.py), headless
APT_PACKAGES=(openvswitch-switch iproute2 ethtool iputils-ping arping tcpdump ndisc6 procps python3-venv mininet
              chromium chromium-driver iperf3  # iperf3: the sequence-numbered UDP stream of the restart tests
              etcd-server etcd-client  # the high-availability store (tests start their own cluster on loopback)
              frr)  # the EVPN lab's leaf (bgpd + zebra); the package's own service is never started
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: need Python >= 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
# The test harness (lab/, bench/, tests/) is not in the package: the dev venv sees it in this tree.
pwd > "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sdn-overlay-harness.pth"
echo "setup: done (.venv/bin/overlay-controller --config-file overlay.conf)"
