//! The plaintext inside a vault file: a JSON document of every user's credentials.
//!
//! A private serialisable mirror of [`Credentials`] carries the secrets as plain
//! `String`s only as long as (de)serialisation needs them and zeroizes them on drop;
//! the JSON bytes live in a `Zeroizing` buffer sized before writing, so no copy is
//! left behind by a growing `Vec`. (serde_json's scratch buffer for strings with
//! escapes is not zeroized: best effort, as with any safe-Rust secret handling.)

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::entries::Entries;
use crate::credentials::Credentials;
use crate::model::SiteId;
use secrecy::ExposeSecret;

/// The version of the JSON document inside (independent of the file format).
const DOCUMENT_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Document {
    format: u32,
    users: BTreeMap<String, BTreeMap<String, Stored>>,
}

/// Mirror of [`Credentials`] for serde; its strings are zeroized on drop.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Stored {
    CloudStack {
        api_key: String,
        secret_key: String,
    },
    OpenNebula {
        user: String,
        password: String,
    },
    Ec2 {
        access_key_id: String,
        secret_access_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
    },
}

impl Drop for Stored {
    fn drop(&mut self) {
        match self {
            Self::CloudStack {
                api_key,
                secret_key,
            } => {
                api_key.zeroize();
                secret_key.zeroize();
            }
            Self::OpenNebula { user, password } => {
                user.zeroize();
                password.zeroize();
            }
            Self::Ec2 {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                access_key_id.zeroize();
                secret_access_key.zeroize();
                session_token.zeroize();
            }
        }
    }
}

impl Stored {
    fn from_credentials(c: &Credentials) -> Self {
        match c {
            Credentials::CloudStack {
                api_key,
                secret_key,
            } => Self::CloudStack {
                api_key: api_key.clone(),
                secret_key: secret_key.expose_secret().to_owned(),
            },
            Credentials::OpenNebula { user, password } => Self::OpenNebula {
                user: user.clone(),
                password: password.expose_secret().to_owned(),
            },
            Credentials::Ec2 {
                access_key_id,
                secret_access_key,
                session_token,
            } => Self::Ec2 {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.expose_secret().to_owned(),
                session_token: session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            },
        }
    }

    /// Moves the strings out (leaving empty ones behind for the zeroizing drop).
    fn take_credentials(&mut self) -> Credentials {
        let take = std::mem::take::<String>;
        match self {
            Self::CloudStack {
                api_key,
                secret_key,
            } => Credentials::CloudStack {
                api_key: take(api_key),
                secret_key: take(secret_key).into(),
            },
            Self::OpenNebula { user, password } => Credentials::OpenNebula {
                user: take(user),
                password: take(password).into(),
            },
            Self::Ec2 {
                access_key_id,
                secret_access_key,
                session_token,
            } => Credentials::Ec2 {
                access_key_id: take(access_key_id),
                secret_access_key: take(secret_access_key).into(),
                session_token: session_token.take().map(Into::into),
            },
        }
    }
}

/// Counts bytes without keeping them (to size the real buffer exactly).
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serialises every entry to JSON in a zeroizing buffer with `spare` extra bytes of
/// capacity (room for the AEAD tag, so encrypting in place never reallocates).
pub(crate) fn to_json(entries: &Entries, spare: usize) -> Zeroizing<Vec<u8>> {
    let mut users: BTreeMap<String, BTreeMap<String, Stored>> = BTreeMap::new();
    for (user, site, creds) in entries.iter() {
        users
            .entry(user.to_owned())
            .or_default()
            .insert(site.as_str().to_owned(), Stored::from_credentials(creds));
    }
    let doc = Document {
        format: DOCUMENT_FORMAT,
        users,
    };
    // Serialising maps of strings cannot fail; an empty document is the fallback.
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, &doc);
    let mut out = Zeroizing::new(Vec::with_capacity(counter.0 + spare));
    if serde_json::to_writer(&mut *out, &doc).is_err() {
        out.clear();
    }
    out
}

/// Why decrypted bytes are not a vault document: a position, never the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotADocument {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Parses a decrypted document.
pub(crate) fn from_json(bytes: &[u8]) -> Result<Entries, NotADocument> {
    let mut doc: Document = serde_json::from_slice(bytes).map_err(|e| NotADocument {
        line: e.line(),
        column: e.column(),
    })?;
    if doc.format != DOCUMENT_FORMAT {
        return Err(NotADocument { line: 1, column: 1 });
    }
    let mut entries = Entries::default();
    for (user, sites) in &mut doc.users {
        for (site, stored) in sites.iter_mut() {
            entries.put(user, &SiteId::new(site.clone()), stored.take_credentials());
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_round_trips_every_kind() {
        let mut e = Entries::default();
        let s = SiteId::new("s1");
        e.put("alice", &s, Credentials::cloudstack("k", "sec\"ret\\"));
        e.put(
            "alice",
            &SiteId::new("s2"),
            Credentials::ec2("a", "b", None),
        );
        e.put("bob", &s, Credentials::ec2("a", "b", Some("t".into())));
        e.put(
            "bob",
            &SiteId::new("s3"),
            Credentials::opennebula("u", "p:w"),
        );
        let json = to_json(&e, 16);
        assert!(json.capacity() >= json.len() + 16);
        let back = from_json(&json).unwrap();
        assert_eq!(back.len(), 4);
        for (user, site, creds) in e.iter() {
            assert!(back.get(user, site).unwrap().same_as(creds));
        }
        let text = String::from_utf8(json.to_vec()).unwrap();
        assert!(!text.contains("session_token\":null"), "{text}");
    }

    #[test]
    fn parse_errors_give_a_position_not_the_content() {
        let bad = br#"{"format":1,"users":{"a":{"s":{"cloudstack":{"api_key":5}}}}}"#;
        let e = from_json(bad).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(from_json(br#"{"format":2,"users":{}}"#).is_err());
    }
}
