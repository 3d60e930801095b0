//! Encrypted credential storage (not implemented yet; see issue 2).
