//! L2TP/IPsec client: the seed's path, a VM (on a site without a VPN gateway of its
//! own) joining CloudStack's remote-access VPN with the user and PSK the CloudStack
//! backend created (`addVpnUser`, `createRemoteAccessVpn` → `presharedkey`).
//!
//! Three files: `xl2tpd.conf` (the L2TP access concentrator section), the pppd
//! options file (user and password: mode 0600), and a strongSwan IKEv1
//! transport-mode connection protecting UDP 1701 with the PSK. A `ppp` `ip-up`
//! hook routes the cluster's remote networks into the tunnel.
//!
//! PPTP is refused: see [`remote_access_protocol`].

use std::fmt::{self, Write as _};

use secrecy::{ExposeSecret, SecretString};

use intercloud_core::{BootFile, Bootstrap, Error, Result};

/// IKE proposals offered to the remote-access server, strongest first; the last ones
/// cover CloudStack virtual routers of older releases.
pub const DEFAULT_IKE_PROPOSALS: &str =
    "aes256-sha1-modp2048,aes128-sha1-modp2048,aes256-sha1-modp1024,aes128-sha1-modp1024,3des-sha1-modp1024";
/// ESP proposals offered (no PFS: CloudStack's remote-access VPN uses none).
pub const DEFAULT_ESP_PROPOSALS: &str = "aes256-sha1,aes128-sha1,3des-sha1";

/// Remote-access VPN protocols a site may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAccessProtocol {
    /// L2TP over IPsec (IKEv1, transport mode, PSK).
    L2tpIpsec,
}

/// Parses the name of a remote-access protocol (`l2tp`, `l2tp/ipsec`, `l2tp-ipsec`).
///
/// # Errors
/// `Unsupported` for PPTP, saying why it is refused and what to use instead;
/// `Invalid` for an unknown name.
pub fn remote_access_protocol(name: &str) -> Result<RemoteAccessProtocol> {
    match name.trim().to_ascii_lowercase().as_str() {
        "l2tp" | "l2tp/ipsec" | "l2tp-ipsec" | "l2tp_ipsec" => Ok(RemoteAccessProtocol::L2tpIpsec),
        "pptp" => Err(Error::unsupported(
            "PPTP is refused because it is insecure: its MS-CHAPv2 authentication can be cracked \
             offline and MPPE encryption has no integrity protection. Use L2TP/IPsec or WireGuard instead.",
        )),
        other => Err(Error::invalid(format!(
            "unknown remote-access VPN protocol {other:?} (use l2tp/ipsec, or WireGuard)"
        ))),
    }
}

/// One L2TP/IPsec client connection.
#[derive(Clone)]
pub struct L2tpClient {
    /// Connection name (letters, digits, `-`, `_`): the xl2tpd `lac`, the strongSwan
    /// connection and the files are named after it.
    pub name: String,
    /// The remote-access server's public address (CloudStack `remoteaccessvpn.publicip`).
    pub server: String,
    /// The VPN user (`addVpnUser` `username`).
    pub username: String,
    /// The VPN user's password.
    pub password: SecretString,
    /// The IPsec pre-shared key (`remoteaccessvpn.presharedkey`).
    pub psk: SecretString,
    /// Networks (CIDR) reached through the tunnel once PPP is up.
    pub routes: Vec<String>,
    /// IKE proposals (strongSwan syntax, comma-separated).
    pub ike_proposals: String,
    /// ESP proposals (strongSwan syntax, comma-separated).
    pub esp_proposals: String,
}

impl fmt::Debug for L2tpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("L2tpClient")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("psk", &"[redacted]")
            .field("routes", &self.routes)
            .finish()
    }
}

fn token(what: &str, v: &str, extra: &[char]) -> Result<()> {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "L2TP client {what} {v:?} may hold only letters, digits and {extra:?}"
        )))
    }
}

impl L2tpClient {
    /// A client with the default proposals.
    pub fn new(
        name: impl Into<String>,
        server: impl Into<String>,
        username: impl Into<String>,
        password: SecretString,
        psk: SecretString,
        routes: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            server: server.into(),
            username: username.into(),
            password,
            psk,
            routes,
            ike_proposals: DEFAULT_IKE_PROPOSALS.into(),
            esp_proposals: DEFAULT_ESP_PROPOSALS.into(),
        }
    }

    /// Checks every value that goes into a file, so none can break its syntax.
    ///
    /// # Errors
    /// `Invalid` naming the field (never its secret value).
    pub fn validate(&self) -> Result<()> {
        token("name", &self.name, &['-', '_'])?;
        token("server", &self.server, &['.', ':', '-'])?;
        token("username", &self.username, &['.', '-', '_', '@'])?;
        for r in &self.routes {
            token("route", r, &['.', ':', '/'])?;
        }
        token("IKE proposals", &self.ike_proposals, &['-', ','])?;
        token("ESP proposals", &self.esp_proposals, &['-', ','])?;
        let pw = self.password.expose_secret();
        if pw.is_empty() || pw.chars().any(char::is_control) {
            return Err(Error::invalid(
                "L2TP client password is empty or holds control characters",
            ));
        }
        if self.psk.expose_secret().is_empty() {
            return Err(Error::invalid("L2TP client pre-shared key is empty"));
        }
        Ok(())
    }

    /// Path of the pppd options file on the VM.
    pub fn ppp_options_path(&self) -> String {
        format!("/etc/ppp/options.l2tpd.{}", self.name)
    }

    /// `xl2tpd.conf` with one `lac` section dialling the server; `ppp_options` is the
    /// path of the file [`L2tpClient::ppp_options`] renders.
    ///
    /// # Errors
    /// `Invalid` from [`L2tpClient::validate`].
    pub fn xl2tpd_conf(&self, ppp_options: &str) -> Result<String> {
        self.validate()?;
        let mut o = String::new();
        let _ = writeln!(o, "[lac {}]", self.name);
        let _ = writeln!(o, "lns = {}", self.server);
        let _ = writeln!(o, "pppoptfile = {ppp_options}");
        let _ = writeln!(o, "length bit = yes");
        let _ = writeln!(o, "require authentication = no");
        let _ = writeln!(o, "refuse pap = yes");
        let _ = writeln!(o, "autodial = yes");
        let _ = writeln!(o, "redial = yes");
        let _ = writeln!(o, "redial timeout = 15");
        let _ = writeln!(o, "max redials = 10");
        let _ = writeln!(o, "ppp debug = no");
        Ok(o)
    }

    /// The pppd options file (mode 0600: it holds the password). MS-CHAPv2 (the only
    /// method left) inside IPsec, no default route (only the cluster's networks go through the tunnel,
    /// see [`L2tpClient::ip_up_script`]).
    ///
    /// # Errors
    /// `Invalid` from [`L2tpClient::validate`].
    pub fn ppp_options(&self) -> Result<String> {
        self.validate()?;
        let mut o = String::new();
        for line in [
            "ipcp-accept-local",
            "ipcp-accept-remote",
            "noauth",
            "refuse-pap",
            "refuse-chap",
            "refuse-mschap",
            "refuse-eap",
            "noccp",
            "nodefaultroute",
            "noipdefault",
            "mtu 1280",
            "mru 1280",
            "lcp-echo-interval 30",
            "lcp-echo-failure 4",
        ] {
            o.push_str(line);
            o.push('\n');
        }
        let _ = writeln!(o, "ipparam {}", self.name);
        let _ = writeln!(o, "name {}", self.username);
        let _ = writeln!(o, "password {}", ppp_quote(self.password.expose_secret()));
        Ok(o)
    }

    /// The `/etc/ppp/ip-up.d/` hook routing [`L2tpClient::routes`] into the PPP
    /// interface when this connection comes up (pppd passes `ipparam` as `$6`).
    ///
    /// # Errors
    /// `Invalid` from [`L2tpClient::validate`].
    pub fn ip_up_script(&self) -> Result<String> {
        self.validate()?;
        let mut o = String::from(
            "#!/bin/sh\n# intercloud: route the cluster's networks into the L2TP tunnel\n",
        );
        let _ = writeln!(o, "[ \"$6\" = \"{}\" ] || exit 0", self.name);
        for r in &self.routes {
            let _ = writeln!(o, "ip route replace {r} dev \"$1\"");
        }
        Ok(o)
    }

    /// strongSwan `swanctl.conf`: IKEv1 main mode with the PSK, a transport-mode child
    /// for L2TP (UDP 1701) started at once. The PSK is only in `secrets`, hex-encoded.
    ///
    /// # Errors
    /// `Invalid` from [`L2tpClient::validate`].
    pub fn swanctl_conf(&self) -> Result<String> {
        self.validate()?;
        let n = &self.name;
        let mut o = String::from("connections {\n");
        let _ = writeln!(o, "    {n} {{");
        let _ = writeln!(o, "        version = 1");
        let _ = writeln!(o, "        remote_addrs = {}", self.server);
        let _ = writeln!(o, "        proposals = {}", self.ike_proposals);
        let _ = writeln!(o, "        encap = yes");
        let _ = writeln!(o, "        local {{\n            auth = psk\n        }}");
        let _ = writeln!(
            o,
            "        remote {{\n            auth = psk\n            id = %any\n        }}"
        );
        let _ = writeln!(o, "        children {{");
        let _ = writeln!(o, "            {n} {{");
        let _ = writeln!(o, "                mode = transport");
        let _ = writeln!(o, "                local_ts = dynamic[udp/1701]");
        let _ = writeln!(o, "                remote_ts = dynamic[udp/1701]");
        let _ = writeln!(o, "                esp_proposals = {}", self.esp_proposals);
        let _ = writeln!(o, "                start_action = start");
        let _ = writeln!(o, "            }}");
        let _ = writeln!(o, "        }}");
        let _ = writeln!(o, "    }}");
        o.push_str("}\n\nsecrets {\n");
        let _ = writeln!(o, "    ike-{n} {{");
        let _ = writeln!(o, "        id-1 = {}", self.server);
        let hex: String = self
            .psk
            .expose_secret()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let _ = writeln!(o, "        secret = 0x{hex}");
        let _ = writeln!(o, "    }}");
        o.push_str("}\n");
        Ok(o)
    }

    /// Everything the VM needs at boot: packages, the four files and the commands that
    /// bring IPsec up, then dial L2TP.
    ///
    /// # Errors
    /// `Invalid` from [`L2tpClient::validate`].
    pub fn bootstrap(&self) -> Result<Bootstrap> {
        let opts = self.ppp_options_path();
        let file = |path: String, mode: &str, content: String| BootFile {
            path,
            mode: mode.into(),
            content,
        };
        Ok(Bootstrap {
            packages: vec![
                "xl2tpd".into(),
                "strongswan-swanctl".into(),
                "charon-systemd".into(),
            ],
            files: vec![
                file(
                    "/etc/xl2tpd/xl2tpd.conf".into(),
                    "0644",
                    self.xl2tpd_conf(&opts)?,
                ),
                file(opts.clone(), "0600", self.ppp_options()?),
                file(
                    format!("/etc/ppp/ip-up.d/intercloud-{}", self.name),
                    "0755",
                    self.ip_up_script()?,
                ),
                file(
                    format!("/etc/swanctl/conf.d/intercloud-{}.conf", self.name),
                    "0600",
                    self.swanctl_conf()?,
                ),
            ],
            commands: vec![
                "systemctl enable --now strongswan".into(),
                "swanctl --load-all".into(),
                "systemctl restart xl2tpd".into(),
            ],
        })
    }
}

/// A pppd option word: double-quoted, with `\` and `"` escaped (pppd's parser reads
/// these escapes inside quotes).
fn ppp_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        if c == '\\' || c == '"' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> L2tpClient {
        L2tpClient::new(
            "icv-cs1",
            "203.0.113.10",
            "intercloud",
            SecretString::from("pa\"ss\\word 1"),
            SecretString::from("cloudstack-psk-42"),
            vec!["10.77.0.0/24".into(), "10.1.0.0/16".into()],
        )
    }

    #[test]
    fn golden_files() {
        let c = client();
        let g = |f: &str| {
            std::fs::read_to_string(format!(
                "{}/tests/fixtures/golden/{f}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        assert_eq!(
            c.xl2tpd_conf(&c.ppp_options_path()).unwrap(),
            g("xl2tpd.conf")
        );
        assert_eq!(c.ppp_options().unwrap(), g("options.l2tpd"));
        assert_eq!(c.swanctl_conf().unwrap(), g("swanctl-l2tp.conf"));
        assert_eq!(c.ip_up_script().unwrap(), g("ip-up"));
    }

    #[test]
    fn secrets_stay_in_their_files_and_out_of_debug() {
        let c = client();
        let boot = c.bootstrap().unwrap();
        let holding = |needle: &str| {
            boot.files
                .iter()
                .filter(|f| f.content.contains(needle))
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            holding("pa\\\"ss\\\\word 1"),
            ["/etc/ppp/options.l2tpd.icv-cs1"]
        );
        assert!(
            holding("cloudstack-psk-42").is_empty(),
            "PSK only hex-encoded"
        );
        for f in &boot.files {
            if f.content.contains("password") || f.content.contains("secret") {
                assert_eq!(f.mode, "0600", "{}", f.path);
            }
        }
        let dbg = format!("{c:?} {boot:?}");
        assert!(
            !dbg.contains("pa\"ss") && !dbg.contains("cloudstack-psk"),
            "{dbg}"
        );
    }

    #[test]
    fn bad_values_are_refused_without_echoing_secrets() {
        let mut c = client();
        c.server = "1.2.3.4\n[lac evil]".into();
        assert!(c
            .xl2tpd_conf("/x")
            .unwrap_err()
            .to_string()
            .contains("server"));
        let mut c = client();
        c.password = SecretString::from("line\nbreak");
        let e = c.ppp_options().unwrap_err().to_string();
        assert!(e.contains("password") && !e.contains("line"), "{e}");
    }

    #[test]
    fn pptp_is_refused_with_the_reason_and_the_alternatives() {
        let e = remote_access_protocol("PPTP").unwrap_err();
        assert_eq!(e.kind(), intercloud_core::ErrorKind::Unsupported);
        let m = e.to_string();
        assert!(
            m.contains("insecure") && m.contains("L2TP/IPsec") && m.contains("WireGuard"),
            "{m}"
        );
        assert_eq!(
            remote_access_protocol("l2tp/ipsec").unwrap(),
            RemoteAccessProtocol::L2tpIpsec
        );
        assert!(remote_access_protocol("sstp").is_err());
    }
}
