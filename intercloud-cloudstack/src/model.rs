//! Serde types of CloudStack's JSON responses, as lenient as the wire requires.
//!
//! - Ids and job ids are UUID strings on current servers and JSON numbers on pre-4.0
//!   ones (libcloud's recordings): [`flex_id`] accepts both.
//! - Empty fields are omitted and an empty list is `{}` with neither `count` nor the
//!   array: every list and optional field defaults.
//! - Numbers sometimes arrive as strings, limits as `"Unlimited"`.
//!
//! A field we cannot do without (a VM's `id` and `state`, a job's `jobstatus`) is
//! required: its absence is a protocol error naming the command.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use intercloud_core::VmState;

/// Deserializes an id that may be a string or a number into a `String`.
pub(crate) fn flex_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "an id must be a string or a number, not {}",
            kind_of(&other)
        ))),
    }
}

/// Like [`flex_id`] for optional ids (absent, `null` and `""` are `None`).
pub(crate) fn flex_id_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "an id must be a string or a number, not {}",
            kind_of(&other)
        ))),
    }
}

/// A count that may be a number or a numeric string; anything else (`"Unlimited"`,
/// `-1`) is `None`.
pub(crate) fn flex_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "an empty string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The immediate reply of an async command: `{"jobid": …, "id": …}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AsyncReply {
    /// The job to poll.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) jobid: String,
    /// The new object's id (create commands only).
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) id: Option<String>,
}

/// `queryAsyncJobResult`'s payload.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobResult {
    /// 0 pending, 1 succeeded, 2 failed, 3 cancelled (`JobInfo.Status` ordinal).
    pub(crate) jobstatus: i64,
    /// 0, or 530 around a failure.
    #[serde(default)]
    pub(crate) jobresultcode: Option<i64>,
    /// `{"<object>": {…}}`, `{"success": true}` or `{"errorcode", "errortext"}`.
    #[serde(default)]
    pub(crate) jobresult: Option<Value>,
}

/// One entry of a VM's `tags`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Tag {
    /// Tag key.
    pub(crate) key: String,
    /// Tag value.
    #[serde(default)]
    pub(crate) value: String,
}

/// One NIC of a VM.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Nic {
    /// Its address; absent on some networks.
    #[serde(default)]
    pub(crate) ipaddress: Option<String>,
    /// Whether it is the default NIC.
    #[serde(default)]
    pub(crate) isdefault: Option<bool>,
    /// The network it is on.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) networkid: Option<String>,
}

/// A `virtualmachine` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VirtualMachine {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Host name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Display name (intercloud puts `{key}-{index}` here).
    #[serde(default)]
    pub(crate) displayname: Option<String>,
    /// `VirtualMachine.State` name.
    pub(crate) state: String,
    /// Service offering id.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) serviceofferingid: Option<String>,
    /// Service offering name.
    #[serde(default)]
    pub(crate) serviceofferingname: Option<String>,
    /// NICs.
    #[serde(default)]
    pub(crate) nic: Vec<Nic>,
    /// Tags.
    #[serde(default)]
    pub(crate) tags: Vec<Tag>,
    /// Static-NAT public address.
    #[serde(default)]
    pub(crate) publicip: Option<String>,
}

/// Maps CloudStack's `VirtualMachine.State` (apache/cloudstack
/// `api/src/main/java/com/cloud/vm/VirtualMachine.java`) to intercloud's; `None` for a
/// name CloudStack does not define.
pub(crate) fn vm_state(raw: &str) -> Option<VmState> {
    Some(match raw {
        "Starting" | "Restoring" => VmState::Pending,
        "Running" | "Migrating" => VmState::Running,
        "Stopping" | "Stopped" | "Shutdown" => VmState::Stopped,
        "Error" => VmState::Failed,
        "Destroyed" | "Expunging" => VmState::Terminated,
        "Unknown" => VmState::Unknown(raw.to_owned()),
        _ => return None,
    })
}

/// A guest network (`listNetworks`): a VPC tier when `vpcid` is set.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Network {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Its IPv4 CIDR (absent on L2 and some shared networks).
    #[serde(default)]
    pub(crate) cidr: Option<String>,
    /// Its gateway address.
    #[serde(default)]
    pub(crate) gateway: Option<String>,
    /// The VPC it is a tier of.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) vpcid: Option<String>,
}

/// A `zone` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Zone {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// A `serviceoffering` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServiceOffering {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// vCPUs.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) cpunumber: Option<u64>,
    /// Memory in MiB.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) memory: Option<u64>,
}

/// A `template` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Template {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Whether it is ready to deploy from.
    #[serde(default)]
    pub(crate) isready: Option<bool>,
}

/// An `account` object: usage and limits (`listAccounts`; limits are numbers,
/// numeric strings or `"Unlimited"`).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Account {
    /// VMs in use.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) vmtotal: Option<u64>,
    /// VM limit.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) vmlimit: Option<u64>,
    /// vCPUs in use.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) cputotal: Option<u64>,
    /// vCPU limit.
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) cpulimit: Option<u64>,
    /// Memory in use (MiB).
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) memorytotal: Option<u64>,
    /// Memory limit (MiB).
    #[serde(default, deserialize_with = "flex_count")]
    pub(crate) memorylimit: Option<u64>,
}

/// A `vpngateway` object (site-to-site gateway of a VPC).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VpnGateway {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its public address.
    #[serde(default)]
    pub(crate) publicip: Option<String>,
    /// The VPC.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) vpcid: Option<String>,
}

/// A `vpncustomergateway` object (the peer as this site sees it).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VpnCustomerGateway {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Its name.
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// A `vpnconnection` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VpnConnection {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// `Pending`, `Connecting`, `Connected`, `Disconnected`, `Error`.
    #[serde(default)]
    pub(crate) state: Option<String>,
    /// The customer gateway.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) s2scustomergatewayid: Option<String>,
}

/// A `remoteaccessvpn` object (L2TP/IPsec on a public IP).
#[derive(Debug, Deserialize)]
pub(crate) struct RemoteAccessVpn {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// The public IP's id.
    #[serde(default, deserialize_with = "flex_id_opt")]
    pub(crate) publicipid: Option<String>,
    /// The public address clients dial.
    #[serde(default)]
    pub(crate) publicip: Option<String>,
    /// Addresses handed to clients.
    #[serde(default)]
    pub(crate) iprange: Option<String>,
    /// The IPsec pre-shared key (a secret).
    #[serde(default)]
    pub(crate) presharedkey: Option<SecretString>,
}

/// A `vpnuser` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VpnUser {
    /// The user name.
    #[serde(default)]
    pub(crate) username: Option<String>,
    /// `Add`, `Active`, `Revoke`.
    #[serde(default)]
    pub(crate) state: Option<String>,
}

/// A `publicipaddress` object.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PublicIpAddress {
    /// Its id.
    #[serde(deserialize_with = "flex_id")]
    pub(crate) id: String,
    /// Whether it is the network's source-NAT address.
    #[serde(default)]
    pub(crate) issourcenat: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_numbers_and_strings() {
        let r: AsyncReply = serde_json::from_str(r#"{"jobid":17164,"id":2602}"#).unwrap();
        assert_eq!((r.jobid.as_str(), r.id.as_deref()), ("17164", Some("2602")));
        let r: AsyncReply = serde_json::from_str(r#"{"jobid":"a-b"}"#).unwrap();
        assert_eq!((r.jobid.as_str(), r.id), ("a-b", None));
        assert!(serde_json::from_str::<AsyncReply>(r#"{"jobid":true}"#).is_err());
        assert!(serde_json::from_str::<AsyncReply>(r#"{"id":"x"}"#).is_err());
    }

    #[test]
    fn limits_accept_numbers_strings_and_unlimited() {
        let a: Account = serde_json::from_str(
            r#"{"vmtotal":3,"vmlimit":"20","cpulimit":"Unlimited","memorylimit":-1}"#,
        )
        .unwrap();
        assert_eq!(
            (a.vmtotal, a.vmlimit, a.cpulimit, a.memorylimit),
            (Some(3), Some(20), None, None)
        );
    }

    #[test]
    fn every_documented_state_maps() {
        for s in [
            "Starting",
            "Running",
            "Stopping",
            "Stopped",
            "Destroyed",
            "Expunging",
            "Migrating",
            "Error",
            "Unknown",
            "Shutdown",
            "Restoring",
        ] {
            assert!(vm_state(s).is_some(), "{s}");
        }
        assert_eq!(vm_state("Error"), Some(VmState::Failed));
        assert_eq!(vm_state("Expunging"), Some(VmState::Terminated));
        assert_eq!(vm_state("Frobnicating"), None);
    }
}
