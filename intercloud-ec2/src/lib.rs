//! AWS EC2 and Eucalyptus backend for intercloud (Query API): not implemented yet, see issue 5.
//!
//! This crate holds only its documentation until its issue lands; it exports nothing.
