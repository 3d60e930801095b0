#!/usr/bin/env bash
# Installs what intercloud-vpn's namespace tests need (Debian/Ubuntu, as root):
#   WireGuard overlay: wireguard-tools wireguard-go iproute2 iputils-ping iperf3 python3
#   IPsec / L2TP:      strongswan-swanctl charon-systemd libcharon-extra-plugins
#                      libstrongswan-standard-plugins xl2tpd (pulls in ppp)
#
# Idempotent: does nothing when every package is installed; runs `apt-get update`
# only when a package is missing and apt has no list for it. Never starts a service
# (charon and xl2tpd are started by the tests themselves, inside namespaces).
# Not root, or no apt-get: prints why and exits 0, so the tests decide (they skip,
# or fail when INTERCLOUD_REQUIRE_NETNS=1).
set -euo pipefail

PKGS=(wireguard-tools wireguard-go iproute2 iputils-ping iperf3 python3
      strongswan-swanctl charon-systemd libcharon-extra-plugins
      libstrongswan-standard-plugins xl2tpd)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "vpn-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "vpn-deps: missing ${missing[*]} but not root or no apt-get; netns tests will skip" >&2
  exit 0
fi

APT=(apt-get -o DPkg::Lock::Timeout=300)
# `apt-get update` only when apt knows no candidate for a missing package.
for p in "${missing[@]}"; do
  if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "vpn-deps: no apt candidate for $p, running apt-get update"
    "${APT[@]}" update -qq
    break
  fi
done
echo "vpn-deps: installing ${missing[*]}"
# policy-rc.d keeps the packages' services from starting on the host.
policy=/usr/sbin/policy-rc.d; made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"; made_policy=1
fi
trap '[ "$made_policy" = 0 ] || rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
echo "vpn-deps: done"
