//! The EC2 Query API (`Action=…&Version=2016-11-15`, POST form or GET query), with SigV4
//! verification, responses in the `http://ec2.amazonaws.com/doc/2016-11-15/` namespace and
//! errors as `<Response><Errors><Error><Code>…`.

mod catalog;
mod instances;
mod routes;
pub(crate) mod sigv4;
mod subnets;
mod vpn;
mod xml;

use crate::config::SimCredentials;
use crate::engine::{Engine, Refusal};
use crate::server::{parse_form, HttpRequest, HttpResponse};

pub(crate) use xml::esc;

const XML: &str = "text/xml;charset=UTF-8";
pub(crate) const OWNER_ID: &str = "123456789012";

/// An EC2 error: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ec2Error {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Ec2Error {
    pub(crate) fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn missing(name: &str) -> Self {
        Self::client(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }
    pub(crate) fn invalid(value: &str, name: &str) -> Self {
        Self::client(
            "InvalidParameterValue",
            format!("Invalid value '{value}' for {name}"),
        )
    }
}

pub(crate) type Ec2Result = Result<String, Ec2Error>;

/// Decoded request parameters.
#[derive(Debug)]
pub(crate) struct Params {
    pub(crate) all: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, Ec2Error> {
        self.get(name).ok_or_else(|| Ec2Error::missing(name))
    }

    /// `Prefix.1`, `Prefix.2`, … in index order.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<(u32, String)> = self
            .all
            .iter()
            .filter_map(|(k, val)| {
                k.strip_prefix(prefix)?
                    .strip_prefix('.')?
                    .parse::<u32>()
                    .ok()
                    .map(|n| (n, val.clone()))
            })
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// `Prefix.N.Field` grouped by N: each group's fields (`Field` → value, with nested suffixes kept).
    pub(crate) fn structs(&self, prefix: &str) -> Vec<Vec<(String, String)>> {
        let mut m: std::collections::BTreeMap<u32, Vec<(String, String)>> = Default::default();
        for (k, v) in &self.all {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            if let Ok(n) = n.parse::<u32>() {
                m.entry(n).or_default().push((field.to_owned(), v.clone()));
            }
        }
        m.into_values().collect()
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub(crate) fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.structs("Filter")
            .into_iter()
            .filter_map(|f| {
                let name = f.iter().find(|(k, _)| k == "Name")?.1.clone();
                let mut vals: Vec<(u32, String)> = f
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("Value.")?
                            .parse::<u32>()
                            .ok()
                            .map(|n| (n, v.clone()))
                    })
                    .collect();
                vals.sort_by_key(|(n, _)| *n);
                Some((name, vals.into_iter().map(|(_, v)| v).collect()))
            })
            .collect()
    }

    /// Tags of `TagSpecification.N` whose ResourceType is `rtype`.
    pub(crate) fn tag_specs(&self, rtype: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for spec in self.structs("TagSpecification") {
            if !spec.iter().any(|(k, v)| k == "ResourceType" && v == rtype) {
                continue;
            }
            let tags = Params {
                all: spec
                    .iter()
                    .filter(|(k, _)| k.starts_with("Tag."))
                    .cloned()
                    .collect(),
            };
            out.extend(key_values(&tags.structs("Tag")));
        }
        out
    }
}

/// `Key`/`Value` pairs of structs.
pub(crate) fn key_values(structs: &[Vec<(String, String)>]) -> Vec<(String, String)> {
    structs
        .iter()
        .filter_map(|t| {
            let k = t.iter().find(|(k, _)| k == "Key")?.1.clone();
            let v = t
                .iter()
                .find(|(k, _)| k == "Value")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            Some((k, v))
        })
        .collect()
}

/// The region the site claims.
pub(crate) fn region(e: &Engine) -> String {
    e.cfg.zone.clone().unwrap_or_else(|| "us-east-1".into())
}

/// Answers one HTTP request.
pub(crate) fn handle(e: &Engine, req: &HttpRequest) -> HttpResponse {
    let request_id = {
        let mut st = e.lock();
        Engine::uuid(&mut st)
    };
    let mut all = parse_form(&req.query);
    if req.method == "POST" {
        all.extend(parse_form(&String::from_utf8_lossy(&req.body)));
    }
    let all: Vec<(String, String)> = all
        .into_iter()
        .filter(|(k, _)| !k.starts_with("X-Amz-"))
        .collect();
    let p = Params { all };
    let action = p.get("Action").unwrap_or("").to_owned();
    if let Err(err) = authenticate(e, req) {
        return error(&request_id, err);
    }
    if action.is_empty() {
        return error(
            &request_id,
            Ec2Error::client(
                "MissingAction",
                "The request must contain the parameter Action",
            ),
        );
    }
    match e.admit(&action) {
        Err(Refusal::Throttled) => {
            return error(
                &request_id,
                Ec2Error {
                    status: 503,
                    code: "RequestLimitExceeded",
                    message: "Request limit exceeded.".into(),
                },
            )
        }
        Err(Refusal::Injected) => {
            return error(
                &request_id,
                Ec2Error {
                    status: 500,
                    code: "InternalError",
                    message: "An internal error has occurred".into(),
                },
            )
        }
        Ok(()) => {}
    }
    let out = match action.as_str() {
        "RunInstances" => instances::run(e, &p),
        "DescribeInstances" => instances::describe(e, &p),
        "TerminateInstances" => instances::terminate(e, &p),
        "StartInstances" => instances::power(e, &p, true),
        "StopInstances" => instances::power(e, &p, false),
        "CreateTags" => instances::create_tags(e, &p),
        "DescribeInstanceStatus" => instances::status(e, &p),
        "DescribeInstanceTypes" => catalog::instance_types(e, &p),
        "DescribeImages" => catalog::images(e, &p),
        "DescribeAvailabilityZones" => catalog::zones(e, &p),
        "DescribeRegions" => catalog::regions(e, &p),
        "DescribeAccountAttributes" => catalog::account_attributes(e, &p),
        "DescribeVpcs" => catalog::vpcs(e, &p),
        "DescribeSubnets" => subnets::describe(e, &p),
        "DescribeNetworkInterfaces" => subnets::interfaces(e, &p),
        "DescribeRouteTables" => routes::describe(e, &p),
        "EnableVgwRoutePropagation" => routes::propagation(e, &p, true),
        "DisableVgwRoutePropagation" => routes::propagation(e, &p, false),
        other => vpn::run(e, other, &p),
    };
    match out {
        Ok(inner) => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{request_id}</requestId>{inner}</{action}Response>"
            );
            HttpResponse::new(200, XML, body)
        }
        Err(err) => error(&request_id, err),
    }
}

fn authenticate(e: &Engine, req: &HttpRequest) -> Result<(), Ec2Error> {
    let SimCredentials::Ec2 {
        access_key_id,
        secret_access_key,
    } = &e.cfg.credentials
    else {
        return Err(Ec2Error {
            status: 401,
            code: "AuthFailure",
            message: "AWS was not able to validate the provided access credentials".into(),
        });
    };
    let now = Some(time::OffsetDateTime::now_utc());
    match sigv4::verify(req, access_key_id, secret_access_key, &region(e), "ec2", now) {
        Ok(()) => Ok(()),
        Err(sigv4::SigError::Missing) => Err(Ec2Error {
            status: 401,
            code: "AuthFailure",
            message: "AWS was not able to validate the provided access credentials".into(),
        }),
        Err(sigv4::SigError::UnknownKey) => Err(Ec2Error {
            status: 401,
            code: "AuthFailure",
            message: "AWS was not able to validate the provided access credentials".into(),
        }),
        Err(sigv4::SigError::Malformed(m)) => Err(Ec2Error { status: 400, code: "IncompleteSignature", message: m }),
        Err(sigv4::SigError::Scope(m)) => Err(Ec2Error { status: 403, code: "SignatureDoesNotMatch", message: m }),
        Err(sigv4::SigError::Mismatch) => Err(Ec2Error {
            status: 403,
            code: "SignatureDoesNotMatch",
            message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }),
        Err(sigv4::SigError::Expired) => Err(Ec2Error {
            status: 400,
            code: "RequestExpired",
            message: "Request has expired.".into(),
        }),
    }
}

/// An error document as AWS sends it.
pub(crate) fn error(request_id: &str, err: Ec2Error) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
        err.code,
        esc(&err.message)
    );
    HttpResponse::new(err.status, XML, body)
}

#[cfg(test)]
mod tests;
