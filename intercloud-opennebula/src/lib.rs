//! OpenNebula backend for intercloud (XML-RPC): not implemented yet, see issue 4.
//!
//! This crate holds only its documentation until its issue lands; it exports nothing.
