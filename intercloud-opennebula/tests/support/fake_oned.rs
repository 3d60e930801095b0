//! A small stateful stand-in for oned on a wiremock server, answering the methods the
//! provider uses with oned's wire shapes (5-element failure arrays, faults for wrong
//! parameter types, entity-escaped documents with CDATA values). It is test scaffolding,
//! not the simulator: just enough for the conformance suite to exercise the backend.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use intercloud_opennebula::xmlrpc::{decode_call, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use super::{failure, ok_int, ok_string, xml};

/// Attribute (name, value) pairs.
pub type Pairs = Vec<(String, String)>;
/// A parsed template: (name, pairs, whether it was a vector).
pub type ParsedTemplate = Vec<(String, Pairs, bool)>;

/// The session the fake accepts.
pub const SESSION: &str = "oneadmin:opennebula";

#[derive(Debug, Clone)]
struct FakeVm {
    name: String,
    state: i64,
    lcm: i64,
    template_id: i64,
    context: Vec<(String, String)>,
    user_template: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct State {
    vms: BTreeMap<i64, FakeVm>,
    next_id: i64,
    max_vms: Option<usize>,
    methods: Vec<String>,
}

/// The fake oned. Clone it to keep a handle for assertions after mounting.
#[derive(Debug, Clone)]
pub struct FakeOned {
    state: Arc<Mutex<State>>,
}

impl FakeOned {
    /// An empty cloud with template 7 "small" (CONTEXT NETWORK, SSH_PUBLIC_KEY).
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                next_id: 100,
                ..State::default()
            })),
        }
    }

    /// Limits alive VMs, answering AUTHORIZATION "limit … reached for VMS quota" beyond.
    pub fn with_vm_quota(self, max: usize) -> Self {
        self.state.lock().unwrap().max_vms = Some(max);
        self
    }

    /// The methods called so far, in order.
    pub fn methods(&self) -> Vec<String> {
        self.state.lock().unwrap().methods.clone()
    }

    /// The USER_TEMPLATE and CONTEXT of VM `id`.
    pub fn vm_templates(&self, id: i64) -> (Pairs, Pairs) {
        let st = self.state.lock().unwrap();
        let vm = &st.vms[&id];
        (vm.user_template.clone(), vm.context.clone())
    }
}

fn fault(code: i64, msg: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>\r\n<value><struct>\r\n\
         <member><name>faultCode</name>\r\n<value><i4>{code}</i4></value></member>\r\n\
         <member><name>faultString</name>\r\n<value><string>{msg}</string></value></member>\r\n\
         </struct></value>\r\n</fault>\r\n</methodResponse>\r\n"
    )
}

fn cdata(v: &str) -> String {
    format!("<![CDATA[{}]]>", v.replace("]]>", "]]]]><![CDATA[>"))
}

fn vm_doc(id: i64, vm: &FakeVm) -> String {
    let ctx: String = vm
        .context
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", cdata(v)))
        .collect();
    let user: String = vm
        .user_template
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", cdata(v)))
        .collect();
    format!(
        "<VM><ID>{id}</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>\
         <NAME>{}</NAME><LAST_POLL>0</LAST_POLL><STATE>{}</STATE><LCM_STATE>{}</LCM_STATE>\
         <PREV_STATE>1</PREV_STATE><PREV_LCM_STATE>0</PREV_LCM_STATE><RESCHED>0</RESCHED>\
         <STIME>1727952499</STIME><ETIME>0</ETIME><DEPLOY_ID></DEPLOY_ID><MONITORING/>\
         <SCHED_ACTIONS></SCHED_ACTIONS><TEMPLATE><CONTEXT>{ctx}</CONTEXT><CPU>{}</CPU>\
         <MEMORY>{}</MEMORY><NIC><IP>{}</IP><NETWORK_ID>{}</NETWORK_ID></NIC>\
         <TEMPLATE_ID>{}</TEMPLATE_ID><VMID>{}</VMID></TEMPLATE>\
         <USER_TEMPLATE>{user}</USER_TEMPLATE><HISTORY_RECORDS/></VM>",
        vm.name,
        vm.state,
        vm.lcm,
        cdata("1"),
        cdata("1024"),
        cdata(&format!("10.1.{}.{}", id / 250, id % 250 + 2)),
        cdata("0"),
        cdata(&vm.template_id.to_string()),
        cdata(&id.to_string()),
    )
}

const TEMPLATE_7: &str = "<VMTEMPLATE><ID>7</ID><UID>0</UID><NAME>small</NAME><TEMPLATE>\
    <CONTEXT><NETWORK><![CDATA[YES]]></NETWORK><SSH_PUBLIC_KEY><![CDATA[$USER[SSH_PUBLIC_KEY]]]></SSH_PUBLIC_KEY></CONTEXT>\
    <CPU><![CDATA[1]]></CPU><VCPU><![CDATA[2]]></VCPU><MEMORY><![CDATA[1024]]></MEMORY></TEMPLATE></VMTEMPLATE>";

/// Reads template text the way oned's lexer does (quoted values, `\"` escapes, one
/// level of vectors); `Err` for what oned's parser rejects.
pub fn parse_template(text: &str) -> Result<ParsedTemplate, String> {
    if text.contains("]]>") {
        return Err("syntax error, unexpected CCDATA".into());
    }
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_whitespace() {
            *i += 1;
        }
    };
    let name = |i: &mut usize| -> Result<String, String> {
        let s = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == '_') {
            *i += 1;
        }
        if s == *i {
            return Err(format!("expected a name at {s}"));
        }
        Ok(b[s..*i].iter().collect::<String>().to_uppercase())
    };
    let expect = |i: &mut usize, c: char| -> Result<(), String> {
        if b.get(*i) == Some(&c) {
            *i += 1;
            Ok(())
        } else {
            Err(format!("expected {c:?} at {i}"))
        }
    };
    let quoted = |i: &mut usize| -> Result<String, String> {
        expect(i, '"')?;
        let mut raw = String::new();
        loop {
            match b.get(*i) {
                None => return Err("unterminated string".into()),
                Some('\\') if b.get(*i + 1) == Some(&'"') => {
                    raw.push_str("\\\"");
                    *i += 2;
                }
                Some('"') => {
                    *i += 1;
                    break;
                }
                Some(c) => {
                    raw.push(*c);
                    *i += 1;
                }
            }
        }
        Ok(raw.replace("\\\"", "\""))
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let n = name(&mut i)?;
        expect(&mut i, '=')?;
        if b.get(i) == Some(&'[') {
            i += 1;
            let mut pairs = Vec::new();
            while b.get(i) != Some(&']') {
                if !pairs.is_empty() {
                    expect(&mut i, ',')?;
                }
                let k = name(&mut i)?;
                expect(&mut i, '=')?;
                pairs.push((k, quoted(&mut i)?));
            }
            i += 1;
            out.push((n, pairs, true));
        } else {
            let v = quoted(&mut i)?;
            out.push((n.clone(), vec![(n, v)], false));
        }
    }
    Ok(out)
}

impl State {
    fn advance(&mut self) {
        for vm in self.vms.values_mut() {
            (vm.state, vm.lcm) = match (vm.state, vm.lcm) {
                (1, _) => (3, 0),
                (3, 0) => (3, 1),
                (3, 1) => (3, 2),
                (3, 2) => (3, 3),
                (3, 12) => (6, 0),
                other => other,
            };
        }
    }

    fn handle(&mut self, method: &str, p: &[Value]) -> String {
        use Value::{Bool, Int, String as S};
        self.methods.push(method.to_owned());
        match p.first() {
            Some(S(s)) if s == SESSION => {}
            Some(S(_)) => {
                return failure(
                    &format!("[{method}] User couldn't be authenticated, aborting call."),
                    256,
                    -1,
                )
            }
            _ => return fault(-501, "Parameter that is supposed to be string is not"),
        }
        let p = &p[1..];
        match (method, p) {
            ("one.system.version", []) => ok_string("7.0.0"),
            ("one.templatepool.info", [Int(_), Int(_), Int(_)]) => {
                ok_string(&format!("<VMTEMPLATE_POOL>{TEMPLATE_7}</VMTEMPLATE_POOL>"))
            }
            ("one.template.info", [Int(7), ..]) => ok_string(TEMPLATE_7),
            ("one.template.info", [Int(id), ..]) => failure(
                &format!("[one.template.info] Error getting virtual machine template [{id}]."),
                1024,
                *id,
            ),
            ("one.vmpool.infoextended", [Int(_), Int(-1), Int(-1), Int(state), S(_)]) => {
                self.advance();
                let vms: String = self
                    .vms
                    .iter()
                    .filter(|(_, vm)| *state == -2 || vm.state != 6)
                    .map(|(id, vm)| vm_doc(*id, vm))
                    .collect();
                ok_string(&format!("<VM_POOL>{vms}</VM_POOL>"))
            }
            ("one.template.instantiate", [Int(tid), S(name), Bool(_), S(extra), Bool(_)]) => {
                if *tid != 7 {
                    return failure(
                        &format!(
                            "[one.template.instantiate] Error getting virtual machine template [{tid}]."
                        ),
                        1024,
                        *tid,
                    );
                }
                let alive = self.vms.values().filter(|v| v.state != 6).count();
                if self.max_vms.is_some_and(|m| alive >= m) {
                    return failure(
                        &format!(
                            "[one.template.instantiate] User [2] : user [2] limit of {} reached for VMS quota in VM.",
                            self.max_vms.unwrap_or(0)
                        ),
                        512,
                        -1,
                    );
                }
                let attrs = match parse_template(extra) {
                    Ok(a) => a,
                    Err(e) => {
                        return failure(
                            &format!("[one.template.instantiate] Parse error: {e}"),
                            16384,
                            -1,
                        )
                    }
                };
                let mut context = vec![
                    ("NETWORK".to_owned(), "YES".to_owned()),
                    (
                        "SSH_PUBLIC_KEY".to_owned(),
                        "$USER[SSH_PUBLIC_KEY]".to_owned(),
                    ),
                ];
                let mut user_template = Vec::new();
                for (n, pairs, vector) in attrs {
                    if n == "CONTEXT" && vector {
                        context = pairs; // oned replaces the whole attribute
                    } else if !vector {
                        user_template.extend(pairs);
                    }
                }
                let id = self.next_id;
                self.next_id += 1;
                self.vms.insert(
                    id,
                    FakeVm {
                        name: name.clone(),
                        state: 1,
                        lcm: 0,
                        template_id: *tid,
                        context,
                        user_template,
                    },
                );
                ok_int(id)
            }
            ("one.vm.action", [S(action), Int(id)]) => {
                if action != "terminate-hard" {
                    return failure(
                        &format!("[one.vm.action] Action \"{action}\" is not supported"),
                        2048,
                        -1,
                    );
                }
                match self.vms.get_mut(id) {
                    None => failure(
                        &format!("[one.vm.action] Error getting virtual machine [{id}]."),
                        1024,
                        *id,
                    ),
                    Some(vm) if vm.state == 3 && vm.lcm == 12 => failure(
                        "[one.vm.action] Error performing action \"terminate-hard\": This action is not available for state SHUTDOWN",
                        2048,
                        *id,
                    ),
                    Some(vm) => {
                        if vm.state != 6 {
                            (vm.state, vm.lcm) = (3, 12);
                        }
                        ok_int(*id)
                    }
                }
            }
            ("one.vm.info", [Int(id), ..]) => match self.vms.get(id) {
                Some(vm) => ok_string(&vm_doc(*id, vm)),
                None => failure(
                    &format!("[one.vm.info] Error getting virtual machine [{id}]."),
                    1024,
                    *id,
                ),
            },
            (
                "one.system.version"
                | "one.templatepool.info"
                | "one.template.info"
                | "one.vmpool.infoextended"
                | "one.template.instantiate"
                | "one.vm.action"
                | "one.vm.info",
                _,
            ) => fault(-501, "Parameter that is supposed to be integer is not"),
            (other, _) => fault(-506, &format!("Method '{other}' not defined")),
        }
    }
}

impl Respond for FakeOned {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.url.path() != "/RPC2" {
            return ResponseTemplate::new(404);
        }
        let Ok(body) = std::str::from_utf8(&request.body) else {
            return xml(fault(-503, "Call XML not a proper XML-RPC call"));
        };
        match decode_call(body) {
            Ok((method, params)) => xml(self.state.lock().unwrap().handle(&method, &params)),
            Err(e) => xml(fault(
                -503,
                &format!("Call XML not a proper XML-RPC call. {e}"),
            )),
        }
    }
}
