//! AWS Signature Version 2 (Eucalyptus and old EC2-compatible endpoints), pure.
//!
//! ```text
//! StringToSign = METHOD \n lowercase(host[:port]) \n path \n CanonicalQuery
//! Signature    = Base64(HMAC-<alg>(secret, StringToSign))
//! ```
//! CanonicalQuery is every parameter but `Signature`, RFC 3986-encoded (space `%20`),
//! sorted by byte order. Sources: the AWS SigV2 text and Eucalyptus'
//! `Hmacv2LoginModule`; checked on the vectors of `reference/ec2.md` §2.

use base64::Engine;
use hmac::{Hmac, Mac};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::sigv4::{uri_encode, AwsCredentials};

/// The HMAC of a SigV2 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sigv2Method {
    /// `HmacSHA256` (the default).
    HmacSha256,
    /// `HmacSHA1`, for old endpoints.
    HmacSha1,
}

impl Sigv2Method {
    /// The `SignatureMethod` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "HmacSHA256",
            Self::HmacSha1 => "HmacSHA1",
        }
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` of a UTC time (the `Timestamp` parameter).
pub fn timestamp(time: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// The string to sign for `params` (which must already hold the auth parameters).
pub fn string_to_sign(method: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    enc.sort();
    let query = enc
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let path = if path.is_empty() { "/" } else { path };
    format!("{method}\n{}\n{path}\n{query}", host.to_ascii_lowercase())
}

/// Base64 HMAC of `string_to_sign` with the secret.
pub fn signature(creds: &AwsCredentials, alg: Sigv2Method, string_to_sign: &str) -> String {
    let key = creds.secret().as_bytes();
    let bytes: Vec<u8> = match alg {
        Sigv2Method::HmacSha256 => match Hmac::<sha2::Sha256>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(string_to_sign.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        Sigv2Method::HmacSha1 => match Hmac::<sha1::Sha1>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(string_to_sign.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    };
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Adds `AWSAccessKeyId`, `SignatureVersion`, `SignatureMethod`, `Timestamp`, the
/// optional `SecurityToken` and finally `Signature` to `params`.
pub fn sign(
    creds: &AwsCredentials,
    alg: Sigv2Method,
    time: OffsetDateTime,
    method: &str,
    host: &str,
    path: &str,
    params: &mut Vec<(String, String)>,
) {
    params.push(("AWSAccessKeyId".into(), creds.access_key_id().into()));
    params.push(("SignatureMethod".into(), alg.as_str().into()));
    params.push(("SignatureVersion".into(), "2".into()));
    params.push(("Timestamp".into(), timestamp(time)));
    if let Some(token) = creds.session_token() {
        params.push(("SecurityToken".into(), token.into()));
    }
    let sts = string_to_sign(method, host, path, params);
    params.push(("Signature".into(), signature(creds, alg, &sts)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use time::macros::datetime;

    fn params() -> Vec<(String, String)> {
        [
            ("Action", "DescribeInstances"),
            ("Version", "2016-11-15"),
            ("Filter.1.Name", "tag:intercloud:cluster"),
            ("Filter.1.Value.1", "c 1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
    }

    fn creds() -> AwsCredentials {
        AwsCredentials::new(
            "AKIDEXAMPLE",
            SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            None,
        )
    }

    /// The vectors of `reference/ec2.md` §2 (botocore's SigV2Auth agrees).
    #[test]
    fn reference_vectors_sha256_and_sha1() {
        let t = datetime!(2015-08-30 12:36:00 UTC);
        for (alg, want) in [
            (
                Sigv2Method::HmacSha256,
                "4sPSc77Vy7qaz+cAc/6XoQYC4AYlN4EAhdXlWZZd8Js=",
            ),
            (Sigv2Method::HmacSha1, "6i1NlKrDFtoEsYAOXY57kjbPou4="),
        ] {
            let mut p = params();
            sign(
                &creds(),
                alg,
                t,
                "POST",
                "euca.example.com:8773",
                "/services/compute",
                &mut p,
            );
            if alg == Sigv2Method::HmacSha256 {
                assert_eq!(
                    string_to_sign("POST", "euca.example.com:8773", "/services/compute", &p),
                    "POST\neuca.example.com:8773\n/services/compute\nAWSAccessKeyId=AKIDEXAMPLE&Action=DescribeInstances&Filter.1.Name=tag%3Aintercloud%3Acluster&Filter.1.Value.1=c%201&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2015-08-30T12%3A36%3A00Z&Version=2016-11-15"
                );
            }
            let sig = p
                .iter()
                .find(|(k, _)| k == "Signature")
                .map(|(_, v)| v.as_str());
            assert_eq!(sig, Some(want), "{alg:?}");
        }
    }

    #[test]
    fn host_is_lower_cased() {
        let s = string_to_sign("POST", "EUCA.Example.com", "", &[]);
        assert_eq!(s, "POST\neuca.example.com\n/\n");
    }
}
