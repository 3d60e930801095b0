//! Instances: RunInstances (MinCount/MaxCount, ClientToken), DescribeInstances (filters,
//! MaxResults/NextToken), TerminateInstances, StartInstances, StopInstances, CreateTags,
//! DescribeInstanceStatus.

use base64::Engine as _;
use tokio::time::Instant;

use super::catalog::default_vpc;
use super::subnets;
use super::xml::{el, state, tag_set};
use super::{key_values, region, Ec2Error, Ec2Result, Params, OWNER_ID};
use crate::engine::{Engine, Phase, State, VmRec};

/// How long a terminated instance stays visible, in simulated seconds (AWS: about an hour).
const TERMINATED_VISIBLE_S: f64 = 3600.0;
/// How long `shutting-down` lasts, in simulated seconds.
const SHUTTING_DOWN_S: f64 = 2.0;

/// The EC2 state of an instance at `now`, or `None` once it is no longer shown.
pub(super) fn state_name(e: &Engine, st: &State, v: &VmRec, now: Instant) -> Option<&'static str> {
    match (v.deleted, v.phase(now)) {
        (Some(d), Phase::Deleted) => {
            let since = now.saturating_duration_since(d);
            if !v.fails && since < e.delay(st, SHUTTING_DOWN_S) {
                Some("shutting-down")
            } else if since < e.delay(st, TERMINATED_VISIBLE_S) {
                Some("terminated")
            } else {
                None
            }
        }
        _ if v.power().is_some() => Some("stopped"),
        (_, Phase::Booting) => Some("pending"),
        _ => Some("running"),
    }
}

fn launch_time(e: &Engine, t: Instant) -> String {
    let ago = e.now().saturating_duration_since(t);
    let wall = time::OffsetDateTime::now_utc() - ago;
    let fmt =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    wall.format(&fmt).unwrap_or_default()
}

fn instance_xml(e: &Engine, v: &VmRec, st_name: &str) -> String {
    let itype = e
        .cfg
        .offerings
        .get(v.offering)
        .map(|o| o.name.as_str())
        .unwrap_or("");
    let subnet = subnets::subnet_of(e, v);
    let zone = subnet
        .as_ref()
        .map_or_else(|| format!("{}a", region(e)), |s| s.zone.clone());
    let reason = if v.fails && st_name == "terminated" {
        "<stateReason><code>Server.InternalError</code><message>Server.InternalError: Internal error on launch</message></stateReason>"
    } else {
        ""
    };
    let public = if st_name == "running" {
        format!("<ipAddress>{}</ipAddress>", public_ip(v))
    } else {
        String::new()
    };
    let private = if st_name == "terminated" {
        String::new()
    } else {
        let net = subnet
            .map(|s| format!("{}{}", el("subnetId", &s.id), el("vpcId", &default_vpc(e))))
            .unwrap_or_default();
        format!("{}{net}", el("privateIpAddress", &v.ip.to_string()))
    };
    format!(
        "<item>{}{}{}{}{}<launchTime>{}</launchTime><placement><availabilityZone>{zone}</availabilityZone><tenancy>default</tenancy></placement>{private}{public}{}<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><virtualizationType>hvm</virtualizationType>{}{reason}<groupSet/></item>",
        el("instanceId", &v.id),
        el("imageId", &v.image),
        state("instanceState", st_name),
        el("instanceType", itype),
        el("amiLaunchIndex", v.extra("launch_index").unwrap_or("0")),
        launch_time(e, v.created),
        el("clientToken", v.extra("client_token").unwrap_or("")),
        tag_set(&v.tags),
    )
}

fn public_ip(v: &VmRec) -> String {
    let o = v.ip.octets();
    format!("198.51.{}.{}", o[2], o[3])
}

fn fingerprint(p: &Params) -> String {
    let mut v: Vec<String> = p
        .all
        .iter()
        .filter(|(k, _)| k != "ClientToken" && k != "Version" && !k.starts_with("Placement"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    v.sort();
    v.join("&")
}

fn reservation_xml(e: &Engine, rid: &str, items: &str) -> String {
    let _ = e;
    format!(
        "{}{}<groupSet/><instancesSet>{items}</instancesSet>",
        el("reservationId", rid),
        el("ownerId", OWNER_ID)
    )
}

pub(super) fn run(e: &Engine, p: &Params) -> Ec2Result {
    let image = p.required("ImageId")?.to_owned();
    let min: u32 = p
        .required("MinCount")?
        .parse()
        .map_err(|_| Ec2Error::invalid(p.get("MinCount").unwrap_or(""), "MinCount"))?;
    let max: u32 = p
        .required("MaxCount")?
        .parse()
        .map_err(|_| Ec2Error::invalid(p.get("MaxCount").unwrap_or(""), "MaxCount"))?;
    if min == 0 || max == 0 {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            "The MinCount and MaxCount must be greater than 0",
        ));
    }
    if min > max {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            "MinCount must be less than or equal to MaxCount",
        ));
    }
    if !e.cfg.images.contains(&image) {
        return Err(Ec2Error::client(
            "InvalidAMIID.NotFound",
            format!("The image id '[{image}]' does not exist"),
        ));
    }
    let itype = p.get("InstanceType").unwrap_or("m1.small");
    let offering = e
        .cfg
        .offerings
        .iter()
        .position(|o| o.name == itype)
        .ok_or_else(|| Ec2Error::invalid(itype, "InstanceType"))?;
    let user_data = match p.get("UserData") {
        Some(u) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(u)
                .map_err(|_| {
                    Ec2Error::client(
                        "InvalidParameterValue",
                        "Invalid BASE64 encoding of user data.",
                    )
                })?;
            if raw.len() > 16 * 1024 {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    "User data is limited to 16384 bytes",
                ));
            }
            Some(u)
        }
        None => None,
    };
    let token = p
        .get("ClientToken")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if token.as_ref().is_some_and(|t| t.len() > 64) {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            "ClientToken is longer than 64 characters",
        ));
    }
    let fp = fingerprint(p);
    let mut st = e.lock();
    if let Some(t) = &token {
        if let Some((old_fp, rid, idx)) = st.client_tokens.get(t) {
            if *old_fp != fp {
                return Err(Ec2Error::client(
                    "IdempotentParameterMismatch",
                    "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
                ));
            }
            let now = e.now();
            let items: String = idx
                .iter()
                .map(|i| {
                    let v = &st.vms[*i];
                    instance_xml(e, v, state_name(e, &st, v, now).unwrap_or("terminated"))
                })
                .collect();
            return Ok(reservation_xml(e, rid, &items));
        }
    }
    let available = e.available(&st, offering);
    if available < min {
        return Err(Ec2Error {
            status: 500,
            code: "InsufficientInstanceCapacity",
            message: format!(
                "We currently do not have sufficient {itype} capacity in the Availability Zone you requested ({}a). Our system will be working on provisioning additional capacity.",
                region(e)
            ),
        });
    }
    let count = max.min(available);
    let (subnet, ips) = subnets::addresses_for(e, &st, p, count)?;
    let tags = p.tag_specs("instance");
    let idx = e
        .create_vms(
            &mut st,
            offering,
            count,
            &|_| String::new(),
            &image,
            &tags,
            user_data,
        )
        .map_err(|_| Ec2Error {
            status: 500,
            code: "InsufficientInstanceCapacity",
            message: "Insufficient capacity.".into(),
        })?;
    let rid = Engine::ec2_id(&mut st, "r");
    for (n, i) in idx.iter().enumerate() {
        let v = &mut st.vms[*i];
        if let Some(ip) = ips.get(n) {
            v.ip = *ip;
        }
        v.extra.push(("subnet", subnet.id.clone()));
        v.extra.push(("reservation", rid.clone()));
        v.extra.push(("launch_index", n.to_string()));
        if let Some(t) = &token {
            v.extra.push(("client_token", t.clone()));
        }
        if let Some((_, name)) = tags.iter().find(|(k, _)| k == "Name") {
            v.name = name.clone();
        }
    }
    if let Some(t) = token {
        st.client_tokens.insert(t, (fp, rid.clone(), idx.clone()));
    }
    let items: String = idx
        .iter()
        .map(|i| instance_xml(e, &st.vms[*i], "pending"))
        .collect();
    Ok(reservation_xml(e, &rid, &items))
}

fn valid_instance_id(id: &str) -> bool {
    id.strip_prefix("i-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks ids are well formed and known; returns their indexes.
fn lookup(
    e: &Engine,
    st: &crate::engine::State,
    ids: &[String],
    now: Instant,
) -> Result<Vec<usize>, Ec2Error> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        if !valid_instance_id(id) {
            return Err(Ec2Error::client(
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\""),
            ));
        }
        match st.vm_index.get(id.as_str()) {
            Some(i) if state_name(e, st, &st.vms[*i], now).is_some() => out.push(*i),
            _ => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        let list = missing.join(", ");
        let msg = if missing.len() == 1 {
            format!("The instance ID '{list}' does not exist")
        } else {
            format!("The instance IDs '{list}' do not exist")
        };
        return Err(Ec2Error::client("InvalidInstanceID.NotFound", msg));
    }
    Ok(out)
}

fn matches(
    e: &Engine,
    v: &VmRec,
    st_name: &str,
    filters: &[(String, Vec<String>)],
) -> Result<bool, Ec2Error> {
    for (name, values) in filters {
        let ok = if let Some(key) = name.strip_prefix("tag:") {
            v.tag(key).is_some_and(|t| values.iter().any(|x| x == t))
        } else {
            let field = match name.as_str() {
                "instance-state-name" => st_name.to_owned(),
                "instance-id" => v.id.clone(),
                "image-id" => v.image.clone(),
                "instance-type" => e
                    .cfg
                    .offerings
                    .get(v.offering)
                    .map(|o| o.name.clone())
                    .unwrap_or_default(),
                "reservation-id" => v.extra("reservation").unwrap_or("").to_owned(),
                "client-token" => v.extra("client_token").unwrap_or("").to_owned(),
                "private-ip-address" => v.ip.to_string(),
                "availability-zone" => {
                    subnets::subnet_of(e, v).map_or_else(|| format!("{}a", region(e)), |s| s.zone)
                }
                "subnet-id" => subnets::subnet_of(e, v).map(|s| s.id).unwrap_or_default(),
                "vpc-id" => default_vpc(e),
                "tag-key" => {
                    if v.tags.iter().any(|(k, _)| values.contains(k)) {
                        continue;
                    }
                    return Ok(false);
                }
                other => {
                    return Err(Ec2Error::client(
                        "InvalidParameterValue",
                        format!("The filter '{other}' is invalid"),
                    ))
                }
            };
            values.contains(&field)
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) fn describe(e: &Engine, p: &Params) -> Ec2Result {
    let ids = p.list("InstanceId");
    let filters = p.filters();
    let max = match p.get("MaxResults") {
        Some(m) => {
            if !ids.is_empty() {
                return Err(Ec2Error::client(
                    "InvalidParameterCombination",
                    "The parameter instancesSet cannot be used with the parameter maxResults",
                ));
            }
            let n: usize = m.parse().map_err(|_| Ec2Error::invalid(m, "MaxResults"))?;
            if !(5..=1000).contains(&n) {
                return Err(Ec2Error::client(
                    "InvalidParameterValue",
                    format!("Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."),
                ));
            }
            Some(n)
        }
        None => None,
    };
    let offset = match p.get("NextToken") {
        Some(t) => t
            .strip_prefix("icnt-")
            .and_then(|n| usize::from_str_radix(n, 16).ok())
            .ok_or_else(|| {
                Ec2Error::client("InvalidParameterValue", format!("Invalid NextToken: {t}"))
            })?,
        None => 0,
    };
    let now = e.now();
    let st = e.lock();
    let candidates: Vec<usize> = if ids.is_empty() {
        (0..st.vms.len()).collect()
    } else {
        lookup(e, &st, &ids, now)?
    };
    let mut selected = Vec::new();
    for i in candidates {
        let v = &st.vms[i];
        let Some(s) = state_name(e, &st, v, now) else {
            continue;
        };
        if matches(e, v, s, &filters)? {
            selected.push((i, s));
        }
    }
    let total = selected.len();
    let page: Vec<(usize, &str)> = selected
        .into_iter()
        .skip(offset)
        .take(max.unwrap_or(usize::MAX))
        .collect();
    let next = max
        .filter(|m| offset + m < total)
        .map(|m| format!("icnt-{:x}", offset + m));
    let mut groups: Vec<(String, String)> = Vec::new();
    for (i, s) in page {
        let v = &st.vms[i];
        let rid = v.extra("reservation").unwrap_or("r-0").to_owned();
        let xml = instance_xml(e, v, s);
        match groups.iter_mut().find(|(r, _)| *r == rid) {
            Some(g) => g.1.push_str(&xml),
            None => groups.push((rid, xml)),
        }
    }
    let res: String = groups
        .iter()
        .map(|(r, items)| format!("<item>{}</item>", reservation_xml(e, r, items)))
        .collect();
    let next = next.map(|n| el("nextToken", &n)).unwrap_or_default();
    Ok(format!("<reservationSet>{res}</reservationSet>{next}"))
}

pub(super) fn terminate(e: &Engine, p: &Params) -> Ec2Result {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(Ec2Error::missing("InstanceId"));
    }
    let now = e.now();
    let mut st = e.lock();
    let idx = lookup(e, &st, &ids, now)?;
    let mut items = String::new();
    for i in idx {
        let prev = state_name(e, &st, &st.vms[i], now).unwrap_or("terminated");
        if st.vms[i].phase(now) != Phase::Deleted {
            st.vms[i].deleted = Some(now);
        }
        let cur = state_name(e, &st, &st.vms[i], now).unwrap_or("terminated");
        items.push_str(&format!(
            "<item>{}{}{}</item>",
            el("instanceId", &st.vms[i].id),
            state("currentState", cur),
            state("previousState", prev)
        ));
    }
    Ok(format!("<instancesSet>{items}</instancesSet>"))
}

/// `StartInstances` / `StopInstances` (AWS API reference): every id is checked first
/// (`InvalidInstanceID.*`), and one in a state the action cannot leave from refuses
/// the whole call with `IncorrectInstanceState`. Start: `stopped` → `pending`, then
/// `running` after the boot time (same id, disk and address); `pending`/`running` are
/// left as they are. Stop: `running` → `stopping` (listed `stopped` at once, as moto
/// does); `stopped` stays.
pub(super) fn power(e: &Engine, p: &Params, on: bool) -> Ec2Result {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(Ec2Error::missing("InstanceId"));
    }
    let now = e.now();
    let mut st = e.lock();
    let idx = lookup(e, &st, &ids, now)?;
    let allowed: &[&str] = if on {
        &["stopped", "pending", "running"]
    } else {
        &["running", "stopped"]
    };
    for &i in &idx {
        let s = state_name(e, &st, &st.vms[i], now).unwrap_or("terminated");
        if !allowed.contains(&s) {
            return Err(Ec2Error::client(
                "IncorrectInstanceState",
                format!(
                    "The instance '{}' is not in a state from which it can be {}.",
                    st.vms[i].id,
                    if on { "started" } else { "stopped" }
                ),
            ));
        }
    }
    let mut items = String::new();
    for i in idx {
        let prev = state_name(e, &st, &st.vms[i], now).unwrap_or("terminated");
        let cur = match (on, prev) {
            (true, "stopped") => {
                e.power_on(&mut st, i);
                "pending"
            }
            (false, "running") => {
                st.vms[i].power_off("stopped");
                "stopping"
            }
            (_, same) => same,
        };
        items.push_str(&format!(
            "<item>{}{}{}</item>",
            el("instanceId", &st.vms[i].id),
            state("currentState", cur),
            state("previousState", prev)
        ));
    }
    Ok(format!("<instancesSet>{items}</instancesSet>"))
}

pub(super) fn create_tags(e: &Engine, p: &Params) -> Ec2Result {
    let ids = p.list("ResourceId");
    if ids.is_empty() {
        return Err(Ec2Error::missing("ResourceId"));
    }
    let tags = key_values(&p.structs("Tag"));
    if tags.is_empty() {
        return Err(Ec2Error::missing("Tag"));
    }
    if let Some((k, _)) = tags.iter().find(|(k, _)| k.starts_with("aws:")) {
        return Err(Ec2Error::client(
            "InvalidParameterValue",
            format!("Tag keys starting with 'aws:' are reserved for internal use: {k}"),
        ));
    }
    let now = e.now();
    let mut st = e.lock();
    for id in &ids {
        let known = st
            .vm_index
            .get(id.as_str())
            .is_some_and(|i| state_name(e, &st, &st.vms[*i], now).is_some())
            || st
                .obj_index
                .get(id.as_str())
                .is_some_and(|i| st.objects[*i].alive(now));
        if !known {
            let code = if id.starts_with("i-") {
                "InvalidInstanceID.NotFound"
            } else {
                "InvalidID"
            };
            return Err(Ec2Error::client(
                code,
                format!("The ID '{id}' is not valid"),
            ));
        }
    }
    for id in &ids {
        if let Some(&i) = st.vm_index.get(id.as_str()) {
            for (k, v) in &tags {
                st.vms[i].set_tag(k, v);
            }
        } else if let Some(&i) = st.obj_index.get(id.as_str()) {
            let o = &mut st.objects[i];
            for (k, v) in &tags {
                o.tags.retain(|(tk, _)| tk != k);
                o.tags.push((k.clone(), v.clone()));
            }
        }
    }
    Ok("<return>true</return>".into())
}

pub(super) fn status(e: &Engine, p: &Params) -> Ec2Result {
    let ids = p.list("InstanceId");
    let all = p.get("IncludeAllInstances") == Some("true");
    let now = e.now();
    let st = e.lock();
    let candidates: Vec<usize> = if ids.is_empty() {
        (0..st.vms.len()).collect()
    } else {
        lookup(e, &st, &ids, now)?
    };
    let mut items = String::new();
    for i in candidates {
        let v = &st.vms[i];
        let Some(s) = state_name(e, &st, v, now) else {
            continue;
        };
        if s != "running" && !all {
            continue;
        }
        let ok = if s == "running" {
            "ok"
        } else {
            "not-applicable"
        };
        items.push_str(&format!(
            "<item>{}<availabilityZone>{}a</availabilityZone>{}<systemStatus><status>{ok}</status></systemStatus><instanceStatus><status>{ok}</status></instanceStatus></item>",
            el("instanceId", &v.id),
            region(e),
            state("instanceState", s)
        ));
    }
    Ok(format!("<instanceStatusSet>{items}</instanceStatusSet>"))
}
