//! Example binaries of intercloud (see `src/bin/`), and the wiring they share with the
//! portal: [`connect`] builds a site's backend and VPN fabrics from its federation
//! entry.

pub mod connect;
