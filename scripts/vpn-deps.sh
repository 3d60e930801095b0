#!/usr/bin/env bash
# Installs what intercloud-vpn's namespace tests need (Debian/Ubuntu, as root):
#   WireGuard overlay: wireguard-tools wireguard-go iproute2 iputils-ping iperf3 python3
#   IPsec / L2TP:      strongswan-swanctl charon-systemd libcharon-extra-plugins
#                      libstrongswan-standard-plugins xl2tpd (pulls in ppp)
# How: scripts/apt-deps.sh (idempotent; never starts charon or xl2tpd on the host;
# without root it exits 0 and the tests skip).
set -euo pipefail
exec "$(dirname "$0")/apt-deps.sh" vpn-deps "netns tests" \
  wireguard-tools wireguard-go iproute2 iputils-ping iperf3 python3 \
  strongswan-swanctl charon-systemd libcharon-extra-plugins \
  libstrongswan-standard-plugins xl2tpd
