//! The VPN steps of a deployment: endpoints per site, links between sites, waiting for
//! links to come up, and their teardown (links before endpoints).
//!
//! Each call is journaled as an intent before it is made, retried on temporary errors
//! (the fabric contract makes `prepare_site` and `connect` idempotent), journaled
//! once it succeeded, and reported as an event.
//! Every site's overlay subnet is the cluster's overlay CIDR: node addresses come from
//! one address space, so fabrics route the whole CIDR.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::events::EventKind;
use super::executor::Executor;
use super::ipam::DEFAULT_OVERLAY_CIDR;
use super::journal::Record;
use crate::model::SiteId;
use crate::vpn::{LinkSpec, LinkState, SiteContext};
use crate::Result;

/// Calls `f` until it succeeds, fails for good, or `attempts` temporary failures.
pub(crate) async fn retry<T, F, Fut>(
    ex: &Executor<'_>,
    site: Option<&SiteId>,
    step: &str,
    attempts: u32,
    backoff: Duration,
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_temporary() && n + 1 < attempts => {
                n += 1;
                ex.d.events.emit(
                    site,
                    None,
                    EventKind::Retry {
                        step: step.to_owned(),
                        attempt: n,
                        error: e.info(),
                    },
                );
                tokio::time::sleep(backoff * n).await;
            }
            Err(e) => {
                ex.d.events.emit(
                    site,
                    None,
                    EventKind::StepFailed {
                        step: step.to_owned(),
                        error: e.info(),
                    },
                );
                return Err(e);
            }
        }
    }
}

impl Executor<'_> {
    /// Prepares `site`'s endpoint (if missing) and links it to every other endpoint.
    pub(crate) async fn ensure_site_overlay(&mut self, site: &SiteId) -> Result<()> {
        if self.d.fabric.is_none() {
            return Ok(());
        }
        if !self.st.endpoints.contains_key(site) {
            self.prepare_endpoint(site).await?;
            self.d
                .events
                .emit(Some(site), None, EventKind::EndpointReady);
        }
        let peers: Vec<SiteId> = self
            .st
            .endpoints
            .keys()
            .filter(|s| *s != site)
            .cloned()
            .collect();
        for peer in peers {
            let between = pair(site, &peer);
            if self.st.links.contains_key(&between) {
                continue;
            }
            self.connect_link(between).await?;
            self.d
                .events
                .emit(Some(site), None, EventKind::LinkRequested { peer });
        }
        Ok(())
    }

    /// Journals the intent, prepares `site`'s endpoint (retrying temporary errors;
    /// the fabric contract makes it idempotent) and journals it.
    async fn prepare_endpoint(&mut self, site: &SiteId) -> Result<()> {
        let Some(fabric) = self.d.fabric.clone() else {
            return Ok(());
        };
        let ctx = SiteContext {
            site: site.clone(),
            cluster: self.st.plan.cluster.clone(),
            overlay_subnet: self
                .st
                .plan
                .request
                .vpn
                .cidr
                .clone()
                .unwrap_or_else(|| DEFAULT_OVERLAY_CIDR.to_owned()),
            local_cidrs: Vec::new(),
            hints: Default::default(),
        };
        if !self.st.endpoint_intents.contains(site) {
            self.record(Record::EndpointIntent { site: site.clone() })?;
        }
        let (attempts, backoff) = (self.d.options.max_create_attempts, self.d.options.poll_min);
        let endpoint = retry(self, Some(site), "endpoint", attempts, backoff, || {
            fabric.prepare_site(&ctx)
        })
        .await?;
        self.record(Record::EndpointPrepared { endpoint })
    }

    /// Journals the intent, connects the two prepared endpoints of `between`
    /// (idempotent by the fabric contract) and journals the link.
    async fn connect_link(&mut self, between: [SiteId; 2]) -> Result<()> {
        let Some(fabric) = self.d.fabric.clone() else {
            return Ok(());
        };
        let (Some(a), Some(b)) = (
            self.st.endpoints.get(&between[0]).cloned(),
            self.st.endpoints.get(&between[1]).cloned(),
        ) else {
            return Err(crate::Error::config(format!(
                "link {} <-> {}: an endpoint is not prepared",
                between[0], between[1]
            )));
        };
        if !self.st.link_intents.contains(&between) {
            self.record(Record::LinkIntent {
                between: between.clone(),
            })?;
        }
        let spec = LinkSpec {
            bandwidth_mbps: self.st.plan.request.vpn.bandwidth_mbps,
            psk: None,
        };
        let step = format!("link {} <-> {}", between[0], between[1]);
        let (attempts, backoff) = (self.d.options.max_create_attempts, self.d.options.poll_min);
        let link = retry(self, Some(&between[0]), &step, attempts, backoff, || {
            fabric.connect(&a, &b, &spec)
        })
        .await?;
        self.record(Record::LinkConnected { between, link })
    }

    /// Polls every link until it is up; returns whether all are.
    pub(crate) async fn wait_links(&mut self) -> bool {
        let Some(fabric) = self.d.fabric.clone() else {
            return true;
        };
        let deadline = Instant::now() + self.d.options.timeout;
        let dead = self.unreachable_sites();
        // Links to a site that does not answer are reported `unreachable`, not waited
        // for; they matter only when nodes still want that site.
        let wanted = self.st.sites_in_use();
        let mut pending: Vec<([SiteId; 2], crate::vpn::LinkId)> = Vec::new();
        let mut dead_ok = true;
        for (k, v) in &self.st.links {
            if k.iter().any(|s| dead.contains_key(s)) {
                dead_ok &= !k.iter().any(|s| dead.contains_key(s) && wanted.contains(s));
            } else {
                self.link_states.insert(k.clone(), "pending".into());
                pending.push((k.clone(), v.clone()));
            }
        }
        let mut interval = self.d.options.poll_min;
        let site_timeout = self.d.options.site_timeout;
        // When each link's status calls began to fail (temporarily).
        let mut erring: BTreeMap<[SiteId; 2], Instant> = BTreeMap::new();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (between, link) in pending {
                let asked = Instant::now();
                let status =
                    match tokio::time::timeout(site_timeout, fabric.link_status(&link)).await {
                        Ok(r) => r,
                        Err(_) => Err(crate::Error::new(
                            crate::ErrorKind::Timeout,
                            format!(
                                "link {link}: no status within site_timeout = {} s",
                                site_timeout.as_secs()
                            ),
                        )),
                    };
                match status {
                    Ok(LinkState::Up) => {
                        self.link_states.insert(between.clone(), "connected".into());
                        self.d.events.emit(
                            Some(&between[0]),
                            None,
                            EventKind::LinkUp {
                                peer: between[1].clone(),
                                link,
                            },
                        )
                    }
                    Ok(LinkState::Failed(why)) => {
                        self.link_states.insert(between.clone(), "failed".into());
                        self.d.events.emit(
                            Some(&between[0]),
                            None,
                            EventKind::StepFailed {
                                step: format!("link {link}"),
                                // The fabric says so: waiting will not bring it up.
                                error: crate::ErrorInfo::new(crate::ErrorKind::Unavailable, why)
                                    .with_class(crate::ErrorClass::CloudRefused)
                                    .with_site(between[0].clone()),
                            },
                        );
                        return false;
                    }
                    Err(e) if !e.is_temporary() => {
                        self.link_states.insert(between.clone(), "failed".into());
                        self.d.events.emit(
                            Some(&between[0]),
                            None,
                            EventKind::StepFailed {
                                step: format!("link {link}"),
                                error: e.info(),
                            },
                        );
                        return false;
                    }
                    Err(e)
                        if erring
                            .get(&between)
                            .is_some_and(|t| t.elapsed() >= site_timeout) =>
                    {
                        // Its site (or gateway) stopped answering: not waited for longer.
                        self.link_states
                            .insert(between.clone(), "unreachable".into());
                        self.d.events.emit(
                            Some(&between[0]),
                            None,
                            EventKind::StepFailed {
                                step: format!("link {link}"),
                                error: e.info().with_message(format!(
                                    "no status for {} s: {e}",
                                    site_timeout.as_secs()
                                )),
                            },
                        );
                        return false;
                    }
                    Err(_) => {
                        erring.entry(between.clone()).or_insert(asked);
                        still.push((between, link));
                    }
                    Ok(_) => {
                        erring.remove(&between);
                        still.push((between, link));
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(interval).await;
            interval = interval.mul_f64(1.5).min(self.d.options.poll_max);
        }
        dead_ok
    }

    /// Disconnects every link, then releases every endpoint; returns what is left.
    ///
    /// An endpoint or link whose intent was journaled without its outcome (a crash
    /// during the call) may exist: it is found again by repeating the idempotent
    /// call, then removed with the rest.
    pub(crate) async fn teardown_overlay(&mut self) -> usize {
        let Some(fabric) = self.d.fabric.clone() else {
            return 0;
        };
        let attempts = self.d.options.max_create_attempts;
        let backoff = self.d.options.poll_min;
        let mut unsettled = 0;
        for site in self.st.endpoint_intents.clone() {
            if self.prepare_endpoint(&site).await.is_err() {
                unsettled += 1;
            }
        }
        for between in self.st.link_intents.clone() {
            if self.connect_link(between).await.is_err() {
                unsettled += 1;
            }
        }
        let links: Vec<crate::vpn::LinkId> = self.st.links.values().cloned().collect();
        for link in links {
            let step = format!("disconnect {link}");
            if retry(self, None, &step, attempts, backoff, || {
                fabric.disconnect(&link)
            })
            .await
            .is_ok()
            {
                let _ = self
                    .journal
                    .append(&Record::LinkRemoved { link: link.clone() });
                self.st.apply(&Record::LinkRemoved { link });
            }
        }
        let endpoints: Vec<crate::vpn::SiteEndpoint> =
            self.st.endpoints.values().cloned().collect();
        for ep in endpoints {
            let site = ep.site.clone();
            if retry(
                self,
                Some(&site),
                "release endpoint",
                attempts,
                backoff,
                || fabric.release_site(&ep),
            )
            .await
            .is_ok()
            {
                let r = Record::EndpointReleased { site };
                let _ = self.journal.append(&r);
                self.st.apply(&r);
            }
        }
        self.st.links.len() + self.st.endpoints.len() + unsettled
    }
}

/// A site pair in sorted order (the key of links).
pub(crate) fn pair(a: &SiteId, b: &SiteId) -> [SiteId; 2] {
    if a <= b {
        [a.clone(), b.clone()]
    } else {
        [b.clone(), a.clone()]
    }
}
