#!/usr/bin/env bash
# One code path for every machine (CI, Debian/Ubuntu host, Vagrant provisioning): installs the
# OS packages the twin needs, the pinned Python environment, starts dockerd and Open vSwitch,
# and builds the worker image. Idempotent: a second run changes nothing and takes seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo make setup): the twin creates namespaces, veths and OVS bridges"
command -v apt-get >/dev/null || die "apt-get not found: the twin supports Debian 12 and Ubuntu 22.04/24.04"

# apparmor: docker.io only recommends it, but where the kernel enforces AppArmor (Debian's and
# Ubuntu's stock kernels) dockerd starts no container without apparmor_parser.
PKGS=(docker.io apparmor openvswitch-switch mininet iperf3 iproute2 ethtool debootstrap tcpdump
      iputils-ping net-tools util-linux procps python3 python3-venv python3-dev gcc make
      busybox-static)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/tmp/twin-apt-update.log 2>&1 || die "apt-get update failed (see /tmp/twin-apt-update.log)"
  # Docker's upstream packages conflict with docker.io; keep whichever engine is already there.
  if command -v dockerd >/dev/null; then
    missing=("${missing[@]/docker.io}")
  fi
  apt-get install -y -qq --no-install-recommends ${missing[@]} >/tmp/twin-apt-install.log 2>&1 \
    || die "apt-get install failed: $(tail -n 1 /tmp/twin-apt-install.log) (full log: /tmp/twin-apt-install.log)"
fi

# Python environment: the system python3 (Debian/Ubuntu), pinned dependencies from requirements.lock.
PY=/usr/bin/python3
stamp=.venv/.twin-deps
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating .venv with pinned dependencies"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv || die "python3 -m venv failed (apt-get install python3-venv)"
  .venv/bin/pip install -q --upgrade pip >/tmp/twin-pip.log 2>&1 || true
  .venv/bin/pip install -q -c requirements.lock -e '.[test]' >>/tmp/twin-pip.log 2>&1 \
    || die "pip install failed: $(tail -n 1 /tmp/twin-pip.log) (full log: /tmp/twin-pip.log)"
  echo "$want" > "$stamp"
fi

# Daemons and the worker image: the twin's own code, so doctor and setup agree.
.venv/bin/twin setup || die "twin setup failed (see the line above)"
