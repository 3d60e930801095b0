#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: every criterion bench of the intercloud-benches crate
# (micro: signing, list parsing, overlay rendering; planner), then the end-to-end deploy
# benchmark on the simulator with the Apache Libcloud comparison, then the report.
#
#   scripts/bench.sh                 # the full run (about 10 minutes on 2 cores)
#   BENCH_RUNS=1 scripts/bench.sh    # fewer repetitions of the deploy runs
#
# Needs cargo and python3; the Libcloud venv comes from scripts/pyenv.sh.
# Benches never run in the test command (scripts/test.sh); this is the only entry point.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
out="${BENCH_OUT:-$CARGO_TARGET_DIR/bench-report}"
mkdir -p "$out"
start="$(date +%s)"

VENV="$(scripts/pyenv.sh)"
export INTERCLOUD_VENV="$VENV"

echo "bench: criterion benches" >&2
cargo bench -p intercloud-benches --benches 2>&1 | tee "$out/criterion.log" >&2

echo "bench: deploy benchmark on the simulator" >&2
cargo build --release -p intercloud-benches --bin deploy_bench >&2
"$CARGO_TARGET_DIR/release/deploy_bench" \
  --sizes "${BENCH_SIZES:-100,500,2000}" \
  --runs "${BENCH_RUNS:-3}" \
  --time-scale "${BENCH_TIME_SCALE:-0.1}" \
  --peer-sizes "${BENCH_PEER_SIZES:-100,500}" \
  --peer-loop-max "${BENCH_PEER_LOOP_MAX:-100}" \
  --python "$VENV/bin/python" \
  --json "$out/deploy.json" \
  --markdown "$out/deploy.md" >&2

python3 benches/py/report.py \
  --criterion "$CARGO_TARGET_DIR/criterion" \
  --since "$start" \
  --deploy "$out/deploy.md" \
  --output "$root/BENCHMARKS.md"
echo "bench: wrote BENCHMARKS.md" >&2
