//! Async jobs: reading `queryAsyncJobResult` and waiting for one job.
//!
//! Every state-changing CloudStack command answers at once with a `jobid` (and, for
//! creates, the new object's `id`), then runs as a job. `jobstatus` is the ordinal of
//! `JobInfo.Status`: 0 in progress, 1 succeeded, 2 failed, 3 cancelled (apache/cloudstack
//! `framework/jobs/.../JobInfo.java`; Docs "Job Status"). A failed job's `jobresult`
//! holds `errorcode`/`errortext`; old servers may omit it.
//!
//! Many VMs are followed with one `listVirtualMachines` per tick (see the provider);
//! `queryAsyncJobResult` serves single jobs (VPN objects, one delete) and fetching one
//! failed job's error.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use intercloud_core::{Error, ErrorKind, Result, SiteId};

use crate::client::{decode, failure_of, Call, Client};
use crate::error::{parse_error, protocol};
use crate::model::{AsyncReply, JobResult};

/// Where a job stands.
#[derive(Debug)]
pub(crate) enum JobOutcome {
    /// Still running.
    Pending,
    /// Done; the `jobresult` (`{"<object>": …}` or `{"success": true}`).
    Succeeded(Value),
    /// Failed or cancelled; the mapped error.
    Failed(Error),
}

/// Reads a `queryAsyncJobResult` payload for a job of `command` (pure).
///
/// # Errors
/// `Protocol` for a `jobstatus` CloudStack does not define.
pub(crate) fn job_outcome(
    site: &SiteId,
    command: &str,
    jobid: &str,
    job: JobResult,
    secrets: &[String],
) -> Result<JobOutcome> {
    let failed = |what: &str| {
        let obj = match &job.jobresult {
            Some(Value::Object(o)) => o.clone(),
            _ => serde_json::Map::new(),
        };
        let mut f = failure_of(200, &obj, secrets);
        if f.errorcode.is_none() {
            f.errorcode = job.jobresultcode.filter(|c| *c > 0).or(Some(530));
        }
        if f.errortext.is_none() {
            f.errortext = Some(format!("job {what} without an error text"));
        }
        parse_error(site, &format!("{command} (job {jobid})"), &f)
    };
    match job.jobstatus {
        0 => Ok(JobOutcome::Pending),
        1 => Ok(JobOutcome::Succeeded(job.jobresult.unwrap_or(Value::Null))),
        2 => Ok(JobOutcome::Failed(failed("failed"))),
        3 => {
            let e = failed("was cancelled");
            Ok(JobOutcome::Failed(e))
        }
        other => Err(protocol(
            site,
            "queryAsyncJobResult",
            format!("unknown jobstatus {other} for job {jobid} of {command}"),
        )),
    }
}

/// The object named `object` inside a succeeded job's result, decoded as `T`.
pub(crate) fn job_object<T: DeserializeOwned>(
    site: &SiteId,
    command: &str,
    result: Value,
    object: &str,
) -> Result<T> {
    match result {
        Value::Object(mut map) => match map.remove(object) {
            Some(v) => decode(site, command, v),
            None => Err(protocol(
                site,
                command,
                format!("the job result has no `{object}`"),
            )),
        },
        _ => Err(protocol(site, command, "the job result is not an object")),
    }
}

impl Client {
    /// One `queryAsyncJobResult` for a job of `command`.
    pub(crate) async fn query_job(
        &self,
        command: &str,
        jobid: &str,
        secrets: &[String],
    ) -> Result<JobOutcome> {
        let call = Call::get("queryAsyncJobResult").param("jobid", jobid);
        let job: JobResult = self.fetch(&call).await?;
        job_outcome(self.site(), command, jobid, job, secrets)
    }

    /// Polls one job every `poll_interval` until it ends or `job_timeout` passes.
    ///
    /// # Errors
    /// The job's own error when it fails; `Timeout` (temporary) when it is still
    /// running at the deadline: it may yet succeed, so callers resolve it by looking
    /// the object up again, never by assuming failure.
    pub(crate) async fn wait_job(
        &self,
        command: &str,
        jobid: &str,
        secrets: &[String],
    ) -> Result<Value> {
        let deadline = Instant::now() + self.job_timeout;
        loop {
            match self.query_job(command, jobid, secrets).await? {
                JobOutcome::Succeeded(v) => return Ok(v),
                JobOutcome::Failed(e) => return Err(e),
                JobOutcome::Pending => {}
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{command}: job {jobid} still running after {:?}; it may yet \
                         succeed (retrying is safe)",
                        self.job_timeout
                    ),
                )
                .with_site(self.site().clone()));
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }

    /// Starts an async `call` and waits for its job; returns the immediate reply
    /// (job id, new object id) and the job result.
    pub(crate) async fn run(&self, call: &Call) -> Result<(AsyncReply, Value)> {
        let reply = self.start(call).await?;
        tracing::debug!(site = %self.site(), command = call.command, jobid = %reply.jobid, id = ?reply.id, "job started");
        let result = self
            .wait_job(call.command, &reply.jobid, &call.secrets)
            .await?;
        Ok((reply, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(body: &str) -> Result<JobOutcome> {
        let job: JobResult = serde_json::from_str(body).unwrap();
        job_outcome(&SiteId::new("s"), "deployVirtualMachine", "17177", job, &[])
    }

    #[test]
    fn statuses_map() {
        assert!(matches!(
            outcome(r#"{"jobstatus":0}"#),
            Ok(JobOutcome::Pending)
        ));
        assert!(matches!(
            outcome(r#"{"jobstatus":1,"jobresult":{"success":true}}"#),
            Ok(JobOutcome::Succeeded(_))
        ));
        let Ok(JobOutcome::Failed(e)) = outcome(
            r#"{"jobstatus":2,"jobresultcode":530,"jobresult":{"errorcode":533,"errortext":"Insufficient capacity"}}"#,
        ) else {
            panic!("failed job")
        };
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(e.to_string().contains("Insufficient capacity"));
        let Ok(JobOutcome::Failed(e)) = outcome(r#"{"jobstatus":3}"#) else {
            panic!("cancelled job")
        };
        assert!(e.to_string().contains("cancelled"), "{e}");
        let e = outcome(r#"{"jobstatus":7}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.to_string().contains("queryAsyncJobResult"));
    }

    #[test]
    fn minimal_failed_job_of_old_servers() {
        // libcloud fixture queryAsyncJobResult_17177.json: no jobresult at all.
        let Ok(JobOutcome::Failed(e)) = outcome(r#"{"jobid":17177,"jobstatus":2}"#) else {
            panic!("failed job")
        };
        assert!(
            e.to_string().contains("deployVirtualMachine (job 17177)"),
            "{e}"
        );
    }
}
