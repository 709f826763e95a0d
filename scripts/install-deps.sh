#!/usr/bin/env bash
# Installs the Debian 12 packages rendr needs, only those that are missing.
# Idempotent. When not root, prints the exact command to run instead.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libasio-dev libssl-dev
  # the Boost.Asio flavour (make test-boost): Boost 1.81 (Asio 1.26). It conflicts with
  # libboost-dev (1.74, whose Asio lacks cancellation slots), which nothing here needs.
  libboost1.81-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format
  # the API reference (docs/api/Doxyfile), built by a test
  doxygen
  haproxy
  # rendr forward's tests run real programs over it: sshd and ssh, curl, python3 -m http.server.
  openssh-server openssh-client curl python3
  # the namespace tests and scripts/bench_fair_share.sh: ip, tc, ethtool
  iproute2 ethtool
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root:  apt-get update && $cmd" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
