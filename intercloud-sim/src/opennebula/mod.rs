//! OpenNebula's XML-RPC API on `/RPC2`, as oned (xmlrpc-c Abyss) answers it.
//!
//! Success is `[true, value, 0]`; an OpenNebula error is the 5-element
//! `[false, "[method] message", code, resp_id, <i8>-1</i8>]`; a call that is not proper
//! XML-RPC (bad XML, wrong parameter type, missing parameter, unknown method) is a
//! `<fault>`. OpenNebula itself has no API rate limit: a throttled call gets what a
//! rate-limiting front proxy answers, HTTP 503.

mod api;
mod doc;
mod template;
pub(crate) mod xmlrpc;

use xmlrpc::{Fault, XVal};

use crate::config::SimCredentials;
use crate::engine::{Engine, Refusal};
use crate::server::{HttpRequest, HttpResponse};

const XML: &str = "text/xml; charset=utf-8";

/// OpenNebula error codes (`include/Request.h`).
pub(crate) const AUTHENTICATION: i64 = 0x0100;
pub(crate) const AUTHORIZATION: i64 = 0x0200;
pub(crate) const NO_EXISTS: i64 = 0x0400;
pub(crate) const ACTION: i64 = 0x0800;
pub(crate) const RPC_API: i64 = 0x1000;
pub(crate) const INTERNAL: i64 = 0x2000;

/// An OpenNebula error (message without the `[method]` prefix).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OneError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) resp_id: i64,
}

impl OneError {
    pub(crate) fn new(code: i64, message: impl Into<String>, resp_id: i64) -> Self {
        Self {
            code,
            message: message.into(),
            resp_id,
        }
    }
}

/// What a method handler returns.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ok(XVal),
    Err(OneError),
    Fault(Fault),
}

/// Positional parameters after the session string, typed as xmlrpc-c checks them.
#[derive(Debug)]
pub(crate) struct Args<'a> {
    pub(crate) v: &'a [XVal],
}

fn not_enough() -> Fault {
    Fault {
        code: -501,
        text: "Not enough parameters".into(),
    }
}

impl Args<'_> {
    pub(crate) fn int(&self, i: usize) -> Result<i64, Fault> {
        match self.v.get(i) {
            Some(XVal::Int(n)) => Ok(*n),
            Some(_) => Err(Fault {
                code: -501,
                text: "Parameter that is supposed to be integer is not".into(),
            }),
            None => Err(not_enough()),
        }
    }
    pub(crate) fn string(&self, i: usize) -> Result<&str, Fault> {
        match self.v.get(i) {
            Some(XVal::Str(s)) => Ok(s),
            Some(_) => Err(Fault {
                code: -501,
                text: "Parameter that is supposed to be string is not".into(),
            }),
            None => Err(not_enough()),
        }
    }
    pub(crate) fn opt_bool(&self, i: usize) -> Result<bool, Fault> {
        match self.v.get(i) {
            Some(XVal::Bool(b)) => Ok(*b),
            Some(_) => Err(Fault {
                code: -501,
                text: "Parameter that is supposed to be boolean is not".into(),
            }),
            None => Ok(false),
        }
    }
    pub(crate) fn opt_string(&self, i: usize) -> Result<&str, Fault> {
        if self.v.len() <= i {
            return Ok("");
        }
        self.string(i)
    }
}

/// Answers one HTTP request.
pub(crate) fn handle(e: &Engine, req: &HttpRequest) -> HttpResponse {
    if req.path != "/RPC2" {
        return HttpResponse::new(404, "text/html", "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>");
    }
    if req.method != "POST" {
        return HttpResponse::new(405, "text/html", "<html><head><title>405 Method Not Allowed</title></head><body><h1>405 Method Not Allowed</h1></body></html>");
    }
    let body = String::from_utf8_lossy(&req.body);
    let (method, params) = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(f) => return ok_xml(xmlrpc::render_fault(&f)),
    };
    let out = call(e, &method, &params);
    match out {
        Outcome::Ok(v) => ok_xml(xmlrpc::render_response(&XVal::Array(vec![XVal::Bool(true), v, XVal::Int(0)]))),
        Outcome::Err(err) => ok_xml(xmlrpc::render_response(&XVal::Array(vec![
            XVal::Bool(false),
            XVal::Str(format!("[{method}] {}", err.message)),
            XVal::Int(err.code),
            XVal::Int(err.resp_id),
            XVal::I8(-1),
        ]))),
        Outcome::Fault(f) if f.code == -429 => HttpResponse::new(503, "text/html", "<html><head><title>503 Service Temporarily Unavailable</title></head><body><h1>503 Service Temporarily Unavailable</h1></body></html>"),
        Outcome::Fault(f) => ok_xml(xmlrpc::render_fault(&f)),
    }
}

fn ok_xml(body: String) -> HttpResponse {
    let mut r = HttpResponse::new(200, XML, body);
    r.extra_headers
        .push(("server", "Xmlrpc-c_Abyss/1.33.14".into()));
    r
}

fn call(e: &Engine, method: &str, params: &[XVal]) -> Outcome {
    if !api::METHODS.contains(&method) {
        return Outcome::Fault(Fault {
            code: -506,
            text: format!("Method '{method}' not defined"),
        });
    }
    let session = match params.first() {
        Some(XVal::Str(s)) => s.as_str(),
        Some(_) => {
            return Outcome::Fault(Fault {
                code: -501,
                text: "Parameter that is supposed to be string is not".into(),
            })
        }
        None => return Outcome::Fault(not_enough()),
    };
    let SimCredentials::Opennebula { user, password } = &e.cfg.credentials else {
        return Outcome::Err(OneError::new(
            AUTHENTICATION,
            "User couldn't be authenticated, aborting call.",
            -1,
        ));
    };
    let ok = session.split_once(':').is_some_and(|(u, p)| {
        u == user && crate::cloudstack::sign::constant_time_eq(p.as_bytes(), password.as_bytes())
    });
    if !ok {
        return Outcome::Err(OneError::new(
            AUTHENTICATION,
            "User couldn't be authenticated, aborting call.",
            -1,
        ));
    }
    match e.admit(method) {
        Err(Refusal::Throttled) => {
            return Outcome::Fault(Fault {
                code: -429,
                text: String::new(),
            })
        }
        Err(Refusal::Injected) => {
            return Outcome::Err(OneError::new(
                INTERNAL,
                "Internal error, please try again later.",
                -1,
            ))
        }
        Ok(()) => {}
    }
    let args = Args { v: &params[1..] };
    match api::run(e, method, &args) {
        Ok(Ok(v)) => Outcome::Ok(v),
        Ok(Err(err)) => Outcome::Err(err),
        Err(f) => Outcome::Fault(f),
    }
}

#[cfg(test)]
mod tests;
