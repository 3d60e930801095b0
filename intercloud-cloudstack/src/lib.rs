//! Apache CloudStack backend for intercloud (signed JSON API): not implemented yet, see issue 3.
//!
//! This crate holds only its documentation until its issue lands; it exports nothing.
