//! Benchmarks of intercloud live in `benches/` of this crate (see issue 11).
