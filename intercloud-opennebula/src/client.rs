//! [`OneClient`]: the one place that talks to oned. It encodes a call with the session
//! as first parameter, POSTs it, and turns the answer into a value or a core error.
//!
//! OpenNebula answers every method with an array: `[true, value, 0]` on success and
//! `[false, message, code, resp_id, replication_idx]` on failure (5 elements since
//! 5.x; the docs still say 3, so elements are read by index and extras ignored). A
//! missing or mistyped parameter is answered by xmlrpc-c with a `<fault>` instead.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use intercloud_core::{Error, Result, SiteId};

use crate::error;
use crate::xmlrpc::{self, Response, Value};

/// The largest answer read (a pool of 2,000 extended VM documents is ~15 MB).
const MAX_RESPONSE_BYTES: usize = 512 << 20;

/// An authenticated XML-RPC client for one oned endpoint.
///
/// Built by [`crate::OpenNebulaBuilder`]; reach it through
/// [`crate::OpenNebulaProvider::client`] for methods the provider does not wrap.
/// Every error names the site and the method and never contains the session.
#[derive(Clone)]
pub struct OneClient {
    http: reqwest::Client,
    endpoint: Url,
    site: SiteId,
    user: String,
    session: SecretString,
    password: SecretString,
}

impl fmt::Debug for OneClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("site", &self.site)
            .field("user", &self.user)
            .field("session", &"******")
            .finish()
    }
}

impl OneClient {
    pub(crate) fn new(
        http: reqwest::Client,
        endpoint: Url,
        site: SiteId,
        user: String,
        password: SecretString,
    ) -> Self {
        let session = SecretString::from(format!("{user}:{}", password.expose_secret()));
        Self {
            http,
            endpoint,
            site,
            user,
            session,
            password,
        }
    }

    /// The endpoint URL (`http://HOST:2633/RPC2`).
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Calls `method` with the session followed by `params`; returns the value of a
    /// successful answer (element 1 of the array).
    ///
    /// # Errors
    /// OpenNebula's error codes and faults as mapped in [`crate::error`]; HTTP and
    /// transport failures as `Unavailable`/`Timeout`/`Config`; an answer that does not
    /// parse as `Protocol`. The site is set on every error.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Value::String(self.session.expose_secret().to_owned()));
        all.extend(params);
        let body = xmlrpc::encode_call(method, &all)
            .map_err(|e| Error::invalid(format!("{method}: {e}")).with_site(&self.site))?;
        drop(all);
        tracing::debug!(site = %self.site, method, "OpenNebula XML-RPC call");
        let endpoint = self.endpoint.as_str();
        let resp = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| error::from_transport(method, endpoint, e).with_site(&self.site))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(error::from_status(method, endpoint, status).with_site(&self.site));
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| error::from_transport(method, endpoint, e).with_site(&self.site))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::protocol(format!(
                    "{method}: the answer is larger than {} MiB; list fewer VMs per call \
                     (a narrower PoolFilter)",
                    MAX_RESPONSE_BYTES >> 20
                ))
                .with_site(&self.site));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::protocol(format!("{method}: the answer is not UTF-8")).with_site(&self.site)
        })?;
        let decoded = xmlrpc::decode_response(text).map_err(|e| {
            Error::protocol(format!("{method}: unreadable XML-RPC answer: {e}"))
                .with_site(&self.site)
        })?;
        unpack(method, decoded).map_err(|e| self.scrubbed(e))
    }

    /// Removes the session and password from an error built from server text, in case
    /// a server or proxy echoes the request.
    fn scrubbed(&self, e: Error) -> Error {
        let session = self.session.expose_secret();
        let password = self.password.expose_secret();
        let mut msg = e.message().replace(session, "******");
        if password.len() >= 4 {
            msg = msg.replace(password, "******");
        }
        let mut out = Error::new(e.kind(), msg)
            .with_site(&self.site)
            .with_temporary(e.is_temporary());
        if let Some(r) = e.resource() {
            out = out.with_resource(r);
        }
        out
    }

    async fn call_string(&self, method: &str, params: Vec<Value>) -> Result<String> {
        match self.call(method, params).await? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(method, "string", &other)),
        }
    }

    async fn call_int(&self, method: &str, params: Vec<Value>) -> Result<i64> {
        match self.call(method, params).await? {
            Value::Int(i) => Ok(i),
            other => Err(self.wrong_type(method, "int", &other)),
        }
    }

    fn wrong_type(&self, method: &str, want: &str, got: &Value) -> Error {
        Error::protocol(format!(
            "{method}: expected an {want} result, got {}",
            got.type_name()
        ))
        .with_site(&self.site)
    }

    /// `one.system.version`: the core version string. It authenticates like every
    /// call, so it doubles as the credentials check.
    ///
    /// # Errors
    /// As [`Self::call`]; `Unauthenticated` for wrong credentials.
    pub async fn system_version(&self) -> Result<String> {
        self.call_string("one.system.version", vec![]).await
    }

    /// `one.vm.info(id)`: the `<VM>` document.
    ///
    /// # Errors
    /// As [`Self::call`]; `NotFound` for an unknown id.
    pub async fn vm_info(&self, id: i64) -> Result<String> {
        self.call_string("one.vm.info", vec![Value::Int(id)]).await
    }

    /// `one.vm.action(action, id)` — the action name comes first (`terminate-hard`).
    /// Asynchronous: success means the action started.
    ///
    /// # Errors
    /// As [`Self::call`]; `InvalidRequest` for an unknown action or the wrong state,
    /// `NotFound` for an unknown id.
    pub async fn vm_action(&self, action: &str, id: i64) -> Result<i64> {
        self.call_int("one.vm.action", vec![Value::string(action), Value::Int(id)])
            .await
    }

    /// `one.vm.update(id, template, type)`: edits the VM's `USER_TEMPLATE`; `merge`
    /// sends type 1 (merge), otherwise 0 (replace the whole user template).
    ///
    /// # Errors
    /// As [`Self::call`]; a template oned cannot parse is `InvalidRequest`.
    pub async fn vm_update(&self, id: i64, template: &str, merge: bool) -> Result<i64> {
        self.call_int(
            "one.vm.update",
            vec![
                Value::Int(id),
                Value::string(template),
                Value::Int(i64::from(merge)),
            ],
        )
        .await
    }

    /// `one.vm.allocate(template, hold)`: a new VM from a full template text (render
    /// it with [`crate::Template`]); returns its id.
    ///
    /// # Errors
    /// As [`Self::call`]; a template oned cannot parse is `InvalidRequest`.
    pub async fn vm_allocate(&self, template: &str, hold: bool) -> Result<i64> {
        self.call_int(
            "one.vm.allocate",
            vec![Value::string(template), Value::Bool(hold)],
        )
        .await
    }

    /// `one.template.instantiate(id, name, hold, extra_template, persistent)`; all
    /// five parameters are always sent (6.10 reads 3 and 4 together). Returns the new
    /// VM's id. `extra_template` attributes replace the template's top-level
    /// attributes of the same name whole (merge by attribute, not by vector member).
    ///
    /// # Errors
    /// As [`Self::call`]; quota exhaustion is `QuotaExceeded`.
    pub async fn template_instantiate(
        &self,
        template_id: i64,
        name: &str,
        hold: bool,
        extra_template: &str,
        persistent: bool,
    ) -> Result<i64> {
        self.call_int(
            "one.template.instantiate",
            vec![
                Value::Int(template_id),
                Value::string(name),
                Value::Bool(hold),
                Value::string(extra_template),
                Value::Bool(persistent),
            ],
        )
        .await
    }

    /// `one.template.info(id)`: the `<VMTEMPLATE>` document.
    ///
    /// # Errors
    /// As [`Self::call`]; `NotFound` for an unknown id.
    pub async fn template_info(&self, id: i64) -> Result<String> {
        self.call_string("one.template.info", vec![Value::Int(id)])
            .await
    }

    /// `one.templatepool.info(filter, -1, -1)`: the `<VMTEMPLATE_POOL>` document.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn templatepool_info(&self, filter: i32) -> Result<String> {
        self.call_string(
            "one.templatepool.info",
            vec![Value::Int(filter.into()), Value::Int(-1), Value::Int(-1)],
        )
        .await
    }

    /// `one.vmpool.infoextended(filter, -1, -1, state, "")`: every VM with its full
    /// `USER_TEMPLATE` (the short `one.vmpool.info` drops custom attributes). `state`
    /// -1 is every state but DONE, -2 every state.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn vmpool_infoextended(&self, filter: i32, state: i32) -> Result<String> {
        self.call_string(
            "one.vmpool.infoextended",
            vec![
                Value::Int(filter.into()),
                Value::Int(-1),
                Value::Int(-1),
                Value::Int(state.into()),
                Value::string(""),
            ],
        )
        .await
    }

    /// `one.user.info(-1)`: the caller's `<USER>` document with quotas.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn user_info(&self) -> Result<String> {
        self.call_string("one.user.info", vec![Value::Int(-1)])
            .await
    }

    /// `one.hostpool.info()`: the `<HOST_POOL>` document.
    ///
    /// # Errors
    /// As [`Self::call`]; `PermissionDenied` for users who may not list hosts.
    pub async fn hostpool_info(&self) -> Result<String> {
        self.call_string("one.hostpool.info", vec![]).await
    }
}

/// Reads OpenNebula's answer array: `[true, value, …]` gives the value,
/// `[false, message, code, …]` the mapped error; a fault maps as a fault.
pub(crate) fn unpack(method: &str, response: Response) -> Result<Value> {
    let items = match response {
        Response::Fault { code, message } => return Err(error::from_fault(method, code, &message)),
        Response::Success(Value::Array(items)) => items,
        Response::Success(other) => {
            return Err(Error::protocol(format!(
                "{method}: expected OpenNebula's result array, got {}",
                other.type_name()
            )))
        }
    };
    let mut items = items.into_iter();
    match (items.next(), items.next(), items.next()) {
        (Some(Value::Bool(true)), Some(value), _) => Ok(value),
        (Some(Value::Bool(false)), Some(Value::String(message)), Some(Value::Int(code))) => {
            Err(error::from_one(method, code, &message))
        }
        (Some(Value::Bool(false)), message, code) => Err(Error::protocol(format!(
            "{method}: failure array without string message and int code (got {} and {})",
            message.as_ref().map_or("nothing", Value::type_name),
            code.as_ref().map_or("nothing", Value::type_name)
        ))),
        (first, second, _) => Err(Error::protocol(format!(
            "{method}: result array must start with a boolean and a value (got {} and {})",
            first.as_ref().map_or("nothing", Value::type_name),
            second.as_ref().map_or("nothing", Value::type_name)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercloud_core::ErrorKind;

    fn arr(items: Vec<Value>) -> Response {
        Response::Success(Value::Array(items))
    }

    #[test]
    fn success_and_failure_arrays() {
        assert_eq!(
            unpack(
                "m",
                arr(vec![Value::Bool(true), Value::Int(5), Value::Int(0)])
            )
            .unwrap(),
            Value::Int(5)
        );
        let e = unpack(
            "one.vm.info",
            arr(vec![
                Value::Bool(false),
                Value::string("[one.vm.info] Error getting virtual machine [9]."),
                Value::Int(0x400),
                Value::Int(9),
                Value::Int(-1),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // The docs' 3-element failure array reads the same.
        let e3 = unpack(
            "m",
            arr(vec![
                Value::Bool(false),
                Value::string("x"),
                Value::Int(0x100),
            ]),
        )
        .unwrap_err();
        assert_eq!(e3.kind(), ErrorKind::Unauthenticated);
    }

    #[test]
    fn malformed_arrays_are_protocol_errors() {
        for r in [
            Response::Success(Value::string("x")),
            arr(vec![]),
            arr(vec![Value::Int(1), Value::Int(2)]),
            arr(vec![Value::Bool(true)]),
            arr(vec![Value::Bool(false), Value::Int(1), Value::Int(2)]),
            arr(vec![Value::Bool(false), Value::string("m")]),
        ] {
            assert_eq!(unpack("m", r).unwrap_err().kind(), ErrorKind::Protocol);
        }
    }
}
