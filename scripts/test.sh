#!/usr/bin/env bash
# The project's one test command (README: "Run all tests").
#
# Installs what the tests need and runs every test of the workspace:
#   - a cached Python venv with moto's EC2 server, boto3, cs and pyone
#     (scripts/pyenv.sh), used by the EC2 conformance run against real moto and by
#     the simulator's independent-client tests;
# then `cargo test --workspace`. Tests that need the venv find it through
# INTERCLOUD_VENV and fail (never skip) when INTERCLOUD_REQUIRE_PY=1.
set -euo pipefail
cd "$(dirname "$0")/.."

INTERCLOUD_VENV="$(scripts/pyenv.sh)"
export INTERCLOUD_VENV
export INTERCLOUD_REQUIRE_PY=1

cargo test --workspace --locked "$@"
