#!/usr/bin/env bash
# Creates (once) and prints the path of the cached Python venv holding the packages in
# scripts/requirements-test.txt (moto's EC2 server, boto3, cs, pyone, libcloud).
#
#   VENV=$(scripts/pyenv.sh)     # stdout: the venv path only; messages on stderr
#
# The venv lives in ${INTERCLOUD_CACHE:-$HOME/.cache/intercloud}/venv-<hash of the
# requirements>, so a changed requirements file gets a fresh venv and an unchanged
# one is reused across runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
req="$here/requirements-test.txt"
cache="${INTERCLOUD_CACHE:-$HOME/.cache/intercloud}"
hash="$(sha256sum "$req" | cut -c1-12)"
venv="$cache/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  echo "pyenv: creating $venv" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv"
