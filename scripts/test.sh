#!/usr/bin/env bash
# The project's one test command (README: "Run all tests").
#
# Installs what the tests need and runs every test of the workspace:
#   - a cached Python venv with moto's EC2 server, boto3, cs and pyone
#     (scripts/pyenv.sh), used by the EC2 conformance run against real moto and by
#     the simulator's independent-client tests;
#   - Debian packages for the VPN tests in network namespaces (wireguard-go,
#     wireguard-tools, iperf3, strongSwan, xl2tpd: scripts/vpn-deps.sh, as root);
#   - the real parsers of the rendered cluster files (slurmctld, Open MPI, MPICH, xmllint:
#     scripts/bootstrap-deps.sh, as root);
#   - Debian's chromium and chromium-driver for the portal's browser test
#     (scripts/browser-deps.sh, as root);
# then `cargo test --workspace`. Tests that need the venv find it through
# INTERCLOUD_VENV; with INTERCLOUD_REQUIRE_PY=1 and INTERCLOUD_REQUIRE_NETNS=1 they
# fail (never skip) when what they need is missing. Outside CI, the namespace tests
# may skip (loudly) when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

INTERCLOUD_VENV="$(scripts/pyenv.sh)"
export INTERCLOUD_VENV
export INTERCLOUD_REQUIRE_PY=1

scripts/vpn-deps.sh
scripts/bootstrap-deps.sh
bash scripts/browser-deps.sh || echo "test.sh: browser install failed; the portal browser test needs chromium" >&2
if [ "$(id -u)" = 0 ] || [ -n "${CI:-}" ]; then
  export INTERCLOUD_REQUIRE_NETNS=1
  export INTERCLOUD_REQUIRE_BROWSER=1
fi

cargo test --workspace --locked "$@"
