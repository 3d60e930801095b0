//! Benchmarks of intercloud (issue 11): inputs for the criterion micro-benchmarks in
//! `benches/` and the end-to-end deploy benchmark (`src/bin/deploy_bench.rs`).
//!
//! Run everything with `scripts/bench.sh`; see `BENCHMARKS.md` at the repository root.

pub mod bodies;
pub mod overlay;
pub mod runner;
pub mod scenario;
