//! Cross-cutting behaviour as wrappers around any [`CloudProvider`](crate::CloudProvider): retry with
//! jittered backoff ([`Retry`]), a per-site rate limit and concurrency cap
//! ([`RateLimit`]), a per-call timeout ([`Timeout`]) and a tracing span per call
//! ([`Traced`]).
//!
//! Each wrapper is a `CloudProvider` holding another one (`W<P: CloudProvider>`), so they
//! nest in any order and work over `Arc<dyn CloudProvider>` as well as concrete backends.
//! Each forwards every trait method; `site()` and `capabilities()` pass straight through
//! and never wait, count or fail.
//!
//! # Stacking order
//!
//! [`stack`] builds the order the deployer uses, outermost first:
//!
//! ```text
//! Retry( RateLimit( Timeout( provider ) ) )
//! ```
//!
//! - **Timeout innermost**: each attempt gets its own timeout, and only the call itself
//!   is timed; waiting in the site's queue for a token or a concurrency slot is not a
//!   failure of the cloud and never turns into a `Timeout` error.
//! - **Rate limit in the middle**: every attempt, retries included, takes a token and a
//!   concurrency slot, so retries can never push a site over its rate; while [`Retry`]
//!   sleeps between attempts it holds no slot, so other calls proceed.
//! - **Retry outermost**: it sees the `Timeout` errors of the inner layer (temporary,
//!   outcome unknown) and the site's own errors, and decides from
//!   [`Error::is_temporary`](crate::Error::is_temporary) and the provider's
//!   [`Capabilities::idempotent_create`](crate::Capabilities::idempotent_create)
//!   whether a new attempt is safe.
//!
//! ```
//! # use std::sync::Arc;
//! use intercloud_core::wrap::{stack, SitePolicy};
//! use intercloud_core::{CloudProvider, MemoryProvider};
//!
//! let site: Arc<dyn CloudProvider> = Arc::new(MemoryProvider::new("hokkaido"));
//! let wrapped = stack(site, &SitePolicy::default())?
//!     .on_retry(Arc::new(|e: &intercloud_core::wrap::RetryEvent<'_>| {
//!         eprintln!("retrying {} on {} in {:?}", e.method_name(), e.site, e.delay)
//!     }));
//! let shared: Arc<dyn CloudProvider> = Arc::new(wrapped);
//! # let _ = shared;
//! # Ok::<(), intercloud_core::Error>(())
//! ```

mod rate_limit;
mod retry;
mod stack;
mod timeout;
mod traced;

pub use rate_limit::{RateLimit, RateLimitPolicy, TokenBucket};
pub use retry::{backoff, Retry, RetryEvent, RetryHook, RetryPolicy};
pub use stack::{stack, SitePolicy, Stacked};
pub use timeout::{Timeout, TimeoutPolicy};
pub use traced::Traced;

use crate::Method;

/// The trait method's name, as used in error messages, events and logs.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Offerings => "offerings",
        Method::Capacity => "capacity",
        Method::Create => "create_vms",
        Method::List => "list_vms",
        Method::Delete => "delete_vm",
        Method::Start => "start_vm",
    }
}
