//! Wrappers around any provider: retry, rate limit, timeout (being written; see issue 2).
