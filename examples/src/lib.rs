//! Example binaries of intercloud. See `src/bin/`.
