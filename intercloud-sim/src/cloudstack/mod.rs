//! The CloudStack JSON API (`/client/api`), as a 4.x management server answers it.
//!
//! Requests are verified exactly as `ApiServer.verifyRequest` does (see [`sign`]); a
//! wrongly signed request, an unknown key or an unknown command gets HTTP 401 with
//! `unable to verify user credentials and/or request signature`. Errors carry the
//! HTTP status equal to `errorcode`. Empty lists are `{}`. Creates and deletes are async
//! jobs polled with `queryAsyncJobResult`.

mod catalog;
mod network;
pub(crate) mod sign;
mod vms;
mod vpn;

use serde_json::{json, Map, Value};

use crate::config::SimCredentials;
use crate::engine::{Engine, Refusal};
use crate::server::{parse_form, HttpRequest, HttpResponse};

const JSON: &str = "application/json; charset=UTF-8";
/// `cserrorcode` of `ServerApiException`.
const CS_SERVER_API: u32 = 9999;
/// `cserrorcode` of `InvalidParameterValueException`.
const CS_INVALID_PARAM: u32 = 4350;

/// A CloudStack error: HTTP status = `errorcode`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CsError {
    pub(crate) code: u16,
    pub(crate) cs: Option<u32>,
    pub(crate) text: String,
}

impl CsError {
    pub(crate) fn param(text: impl Into<String>) -> Self {
        Self {
            code: 431,
            cs: Some(CS_INVALID_PARAM),
            text: text.into(),
        }
    }
    pub(crate) fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            cs: Some(CS_SERVER_API),
            text: text.into(),
        }
    }
    fn unauthorized() -> Self {
        Self {
            code: 401,
            cs: None,
            text: "unable to verify user credentials and/or request signature".into(),
        }
    }
}

pub(crate) type CsResult = Result<Value, CsError>;

/// The decoded parameters of one call.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) all: Vec<(String, String)>,
}

impl Params {
    /// The first value of the exact (lowercase) parameter name, as the dispatcher reads it.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, cmd: &str, name: &str) -> Result<&str, CsError> {
        self.get(name).ok_or_else(|| {
            CsError::param(format!(
                "Unable to execute API command {} due to missing parameter {name}",
                cmd.to_lowercase()
            ))
        })
    }

    /// `tags[N].key` / `tags[N].value` pairs (any N, in index order).
    pub(crate) fn map_list(&self, prefix: &str, key: &str, value: &str) -> Vec<(String, String)> {
        let mut found: std::collections::BTreeMap<u32, (String, String)> = Default::default();
        for (k, v) in &self.all {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((n, field)) = rest.split_once("].") else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else {
                continue;
            };
            let e = found.entry(n).or_default();
            if field == key {
                e.0 = v.clone();
            } else if field == value {
                e.1 = v.clone();
            }
        }
        found.into_values().filter(|(k, _)| !k.is_empty()).collect()
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The commands this simulator knows; any other name is answered like a bad signature.
const COMMANDS: &[&str] = &[
    "deployVirtualMachine",
    "destroyVirtualMachine",
    "startVirtualMachine",
    "stopVirtualMachine",
    "listVirtualMachines",
    "queryAsyncJobResult",
    "listAsyncJobs",
    "createTags",
    "deleteTags",
    "listTags",
    "listZones",
    "listServiceOfferings",
    "listTemplates",
    "listResourceLimits",
    "listCapacity",
    "listPublicIpAddresses",
    "listVPCs",
    "listNetworks",
    "createVpnGateway",
    "listVpnGateways",
    "deleteVpnGateway",
    "createVpnCustomerGateway",
    "listVpnCustomerGateways",
    "deleteVpnCustomerGateway",
    "createVpnConnection",
    "listVpnConnections",
    "deleteVpnConnection",
    "createRemoteAccessVpn",
    "listRemoteAccessVpns",
    "deleteRemoteAccessVpn",
    "addVpnUser",
    "removeVpnUser",
    "listVpnUsers",
];

/// The parameters of a request: query string, then a form body.
pub(crate) fn request_params(req: &HttpRequest) -> Vec<(String, String)> {
    let mut all = parse_form(&req.query);
    let form = req
        .header("content-type")
        .is_none_or(|c| c.contains("x-www-form-urlencoded"));
    if req.method == "POST" && form && !req.body.is_empty() {
        all.extend(parse_form(&String::from_utf8_lossy(&req.body)));
    }
    all
}

/// Answers one HTTP request.
pub(crate) fn handle(engine: &Engine, req: &HttpRequest) -> HttpResponse {
    if req.path != "/client/api" && req.path != "/client/api/" {
        return HttpResponse::new(
            404,
            "text/html",
            "<html><body><h1>404 Not Found</h1></body></html>",
        );
    }
    let all = request_params(req);
    let cmd = sign::param_ci(&all, "command").unwrap_or("").to_owned();
    let SimCredentials::Cloudstack {
        api_key,
        secret_key,
    } = &engine.cfg.credentials
    else {
        return render(&cmd, Err(CsError::unauthorized()));
    };
    let known = COMMANDS.contains(&cmd.as_str());
    if !known || !sign::verify(&all, api_key, secret_key, time::OffsetDateTime::now_utc()) {
        return render(if known { &cmd } else { "" }, Err(CsError::unauthorized()));
    }
    match engine.admit(&cmd) {
        Err(Refusal::Throttled) => {
            let text =
                "The given user has reached his/her account api limit, please retry after 1000 ms.";
            return render(
                &cmd,
                Err(CsError {
                    code: 429,
                    cs: Some(CS_SERVER_API),
                    text: text.into(),
                }),
            );
        }
        Err(Refusal::Injected) => {
            let text = "Internal error executing command, please contact your system administrator";
            return render(&cmd, Err(CsError::new(530, text)));
        }
        Ok(()) => {}
    }
    let p = Params { all };
    let out = run(engine, &cmd, &p);
    render(&cmd, out)
}

fn run(e: &Engine, cmd: &str, p: &Params) -> CsResult {
    match cmd {
        "deployVirtualMachine" => vms::deploy(e, p),
        "destroyVirtualMachine" => vms::destroy(e, p),
        "startVirtualMachine" => vms::start(e, p),
        "stopVirtualMachine" => vms::stop(e, p),
        "listVirtualMachines" => vms::list(e, p),
        "queryAsyncJobResult" => vms::query_job(e, p),
        "listAsyncJobs" => vms::list_jobs(e, p),
        "createTags" => vms::create_tags(e, p, true),
        "deleteTags" => vms::create_tags(e, p, false),
        "listTags" => vms::list_tags(e, p),
        "listZones" => catalog::zones(e, p),
        "listServiceOfferings" => catalog::offerings(e, p),
        "listTemplates" => catalog::templates(e, p),
        "listResourceLimits" => catalog::limits(e, p),
        "listCapacity" => catalog::capacity(e, p),
        "listPublicIpAddresses" => catalog::public_ips(e, p),
        "listVPCs" => catalog::vpcs(e, p),
        "listNetworks" => network::list(e, p),
        other => vpn::run(e, other, p),
    }
}

/// Wraps a payload (or an error) in `{"<cmd>response": …}` with the right status.
pub(crate) fn render(cmd: &str, out: CsResult) -> HttpResponse {
    let key = if cmd.is_empty() {
        "errorresponse".to_owned()
    } else {
        format!("{}response", cmd.to_lowercase())
    };
    match out {
        Ok(payload) => HttpResponse::new(200, JSON, json!({ key: payload }).to_string()),
        Err(e) => {
            let mut body = Map::new();
            body.insert("uuidList".into(), json!([]));
            body.insert("errorcode".into(), json!(e.code));
            if let Some(cs) = e.cs {
                body.insert("cserrorcode".into(), json!(cs));
            }
            body.insert("errortext".into(), json!(e.text));
            let mut r = HttpResponse::new(e.code, JSON, json!({ key: body }).to_string());
            r.extra_headers.push(("x-description", e.text));
            r
        }
    }
}

/// A list payload: `{}` when empty, else `{"count": total, name: items}`.
pub(crate) fn list_payload(name: &str, items: Vec<Value>, total: usize) -> Value {
    if items.is_empty() {
        return json!({});
    }
    json!({ "count": total, name: items })
}

/// Applies `page`/`pagesize` as `BaseListCmd` does.
pub(crate) fn paginate<T>(p: &Params, items: Vec<T>) -> Result<(Vec<T>, usize), CsError> {
    let total = items.len();
    let page = p.get("page");
    let size = p.get("pagesize");
    let (page, size): (usize, i64) = match (page, size) {
        (None, None) => return Ok((items, total)),
        (None, Some("-1")) => return Ok((items, total)),
        (Some(pg), Some(s)) => {
            let pg = pg
                .parse()
                .map_err(|_| CsError::param(format!("Unable to parse page {pg}")))?;
            let s = s
                .parse()
                .map_err(|_| CsError::param(format!("Unable to parse pagesize {s}")))?;
            (pg, s)
        }
        _ => {
            return Err(CsError::param(
                "\"page\" and \"pagesize\" parameters must be specified together",
            ))
        }
    };
    if size == -1 {
        return Ok((items, total));
    }
    if !(1..=500).contains(&size) {
        return Err(CsError::param(
            "Page size can't exceed max allowed page size value: 500",
        ));
    }
    if page < 1 {
        return Err(CsError::param("Page value must be greater than 0"));
    }
    let size = size as usize;
    let out = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Ok((out, total))
}

/// `2011-06-23T05:48:31+0000` for an engine instant.
pub(crate) fn date(e: &Engine, t: tokio::time::Instant) -> String {
    let ago = e.now().saturating_duration_since(t);
    let wall = time::OffsetDateTime::now_utc() - ago;
    let fmt =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    wall.format(&fmt).unwrap_or_default()
}

/// The deterministic UUID of a fixed catalog object (zone, offering, template, network).
pub(crate) fn fixed_id(e: &Engine, kind: u16, n: usize) -> String {
    let site = e
        .cfg
        .id
        .as_str()
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{site:08x}-{kind:04x}-4000-8000-{:012x}", n + 1)
}

pub(crate) const KIND_ZONE: u16 = 1;
pub(crate) const KIND_OFFERING: u16 = 2;
pub(crate) const KIND_TEMPLATE: u16 = 3;
pub(crate) const KIND_NETWORK: u16 = 4;
pub(crate) const KIND_PUBLIC_IP: u16 = 5;
pub(crate) const KIND_VPC: u16 = 6;
pub(crate) const KIND_ACCOUNT: u16 = 7;

/// Account fields every owned object carries.
pub(crate) fn owner(e: &Engine, m: &mut Map<String, Value>) {
    m.insert("account".into(), json!("admin"));
    m.insert("domainid".into(), json!(fixed_id(e, KIND_ACCOUNT, 1)));
    m.insert("domain".into(), json!("ROOT"));
}

#[cfg(test)]
mod tests;
