//! Simulated clouds speaking CloudStack, OpenNebula and EC2 on loopback: not implemented yet, see issue 6.
//!
//! This crate holds only its documentation until its issue lands; it exports nothing.
