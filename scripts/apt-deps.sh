#!/usr/bin/env bash
# Installs Debian/Ubuntu packages for a group of tests, as root:
#   scripts/apt-deps.sh NAME WHAT-SKIPS PACKAGE...
# (NAME prefixes the messages; WHAT-SKIPS says which tests skip without them.)
#
# Idempotent: does nothing when every package is installed; runs `apt-get update`
# only when a package is missing and apt has no candidate for it. Never starts a
# service: a temporary policy-rc.d keeps the packages' daemons from starting on the
# host (the tests start them themselves, inside namespaces).
# Not root, or no apt-get: prints why and exits 0, so the tests decide (they skip,
# or fail when INTERCLOUD_REQUIRE_NETNS=1).
set -euo pipefail

name=$1 skips=$2
shift 2
PKGS=("$@")

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "$name: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "$name: missing ${missing[*]} but not root or no apt-get; $skips will skip" >&2
  exit 0
fi

APT=(apt-get -o DPkg::Lock::Timeout=300)
# `apt-get update` only when apt knows no candidate for a missing package.
for p in "${missing[@]}"; do
  # (read the whole answer first: `grep -q` closing the pipe early would make
  # apt-cache die of SIGPIPE, which pipefail reports as "no candidate")
  policy_out="$(apt-cache policy "$p" 2>/dev/null || true)"
  if ! grep -q 'Candidate: [0-9]' <<<"$policy_out"; then
    echo "$name: no apt candidate for $p, running apt-get update"
    "${APT[@]}" update -qq
    break
  fi
done
echo "$name: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d; made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 0755 "$policy"; made_policy=1
fi
trap '[ "$made_policy" = 0 ] || rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
echo "$name: done"
