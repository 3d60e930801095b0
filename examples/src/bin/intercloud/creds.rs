//! `intercloud creds add|list|remove`: the encrypted credential vault.
//!
//! Secrets are read from a prompt (or, when stdin is not a terminal, one per line from
//! stdin), never from arguments, so they stay out of shell history and `ps`.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use intercloud_core::{
    Credentials, EncryptedFileVault, Error, Middleware, Result, SiteId, Vault, VaultError,
};

/// The vault file: `--vault`, else `$INTERCLOUD_VAULT`, else
/// `$XDG_CONFIG_HOME/intercloud/vault` or `~/.config/intercloud/vault`.
pub(crate) fn default_vault_path() -> PathBuf {
    if let Some(p) = std::env::var_os("INTERCLOUD_VAULT") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("intercloud").join("vault")
}

/// The passphrase: `$INTERCLOUD_VAULT_PASSPHRASE`, else a prompt.
pub(crate) fn passphrase() -> Result<SecretString> {
    if let Ok(p) = std::env::var("INTERCLOUD_VAULT_PASSPHRASE") {
        return Ok(SecretString::from(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::config(
            "the vault passphrase is needed: set INTERCLOUD_VAULT_PASSPHRASE or run in a terminal",
        ));
    }
    rpassword::prompt_password("vault passphrase: ")
        .map(SecretString::from)
        .map_err(|e| Error::config(format!("cannot read the passphrase: {e}")))
}

/// Opens (creating when `create`) the vault at `path`.
pub(crate) async fn open_vault(path: &Path, create: bool) -> Result<EncryptedFileVault> {
    EncryptedFileVault::options()
        .create(create)
        .open(path, &passphrase()?)
        .await
        .map_err(|e| match VaultError::of(&e) {
            // The library's hint names its own `create` option, not a command.
            Some(VaultError::Missing { .. }) => Error::not_found(format!(
                "there is no vault at {} yet; `intercloud creds add --site NAME --middleware \
                 MIDDLEWARE --id IDENT` creates it (or pass --vault FILE)",
                path.display()
            )),
            _ => e,
        })
}

/// Reads one secret: a hidden prompt on a terminal, else the next line of stdin.
fn read_secret(prompt: &str, optional: bool) -> Result<Option<String>> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::config(format!("cannot read {prompt}: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::config(format!("cannot read {prompt} from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if value.is_empty() {
        if optional {
            return Ok(None);
        }
        return Err(Error::config(format!(
            "{} must not be empty",
            prompt.trim_end_matches([':', ' '])
        )));
    }
    Ok(Some(value))
}

/// `creds add`: registers credentials for `site`.
pub(crate) async fn add(
    vault: &dyn Vault,
    user: &str,
    site: &SiteId,
    middleware: Middleware,
    id: &str,
) -> Result<()> {
    let creds = match middleware {
        Middleware::CloudStack => {
            Credentials::cloudstack(id, required(read_secret("secret key: ", false)?))
        }
        Middleware::OpenNebula => {
            Credentials::opennebula(id, required(read_secret("password or token: ", false)?))
        }
        Middleware::Ec2 | Middleware::Eucalyptus => Credentials::ec2(
            id,
            required(read_secret("secret access key: ", false)?),
            read_secret("session token (empty for none): ", true)?,
        ),
    };
    vault.put(user, site, creds).await
}

fn required(v: Option<String>) -> String {
    v.unwrap_or_default()
}
