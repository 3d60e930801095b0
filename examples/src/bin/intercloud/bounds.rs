//! The deployer's bounds as the CLI sets them: [`DeployOptions`]'s documented
//! defaults, with the dead-site bound overridable from the environment.
//!
//! - `INTERCLOUD_SITE_TIMEOUT` (seconds, default 60): how long a site may fail every
//!   call, or not answer, before `up`, `resume` and `repair` count it as unreachable.
//!   A dead site is noticed within `poll_max` (20 s) + this.

use std::time::Duration;

use intercloud_core::deploy::DeployOptions;
use intercloud_core::{Error, Result};

/// The environment variable overriding [`DeployOptions::site_timeout`].
pub(crate) const SITE_TIMEOUT_ENV: &str = "INTERCLOUD_SITE_TIMEOUT";

/// The options for this process.
///
/// # Errors
/// `Config` when `INTERCLOUD_SITE_TIMEOUT` is not a positive number of seconds.
pub(crate) fn deploy_options() -> Result<DeployOptions> {
    options_from(std::env::var(SITE_TIMEOUT_ENV).ok().as_deref())
}

fn options_from(site_timeout: Option<&str>) -> Result<DeployOptions> {
    let mut o = DeployOptions::default();
    if let Some(v) = site_timeout {
        let secs: f64 = v.trim().parse().map_err(|_| bad(v))?;
        if !(secs.is_finite() && secs > 0.0 && secs < 1e7) {
            return Err(bad(v));
        }
        o.site_timeout = Duration::from_secs_f64(secs);
    }
    Ok(o)
}

fn bad(v: &str) -> Error {
    Error::config(format!(
        "{SITE_TIMEOUT_ENV}={v:?}: expected a positive number of seconds, e.g. 60"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_and_an_override() {
        assert_eq!(
            options_from(None).unwrap().site_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(
            options_from(Some("7.5")).unwrap().site_timeout,
            Duration::from_millis(7500)
        );
        for bad in ["0", "-1", "x", "inf"] {
            let e = options_from(Some(bad)).unwrap_err();
            assert!(e.to_string().contains(SITE_TIMEOUT_ENV), "{e}");
        }
    }
}
