//! Where a command's account comes from: file, environment and flags.
//!
//! Precedence, field by field, highest first: the flags `--token`,
//! `--base-url`, `--cdn-base-url`; the variables `WXLINK_TOKEN`,
//! `WXLINK_BASE_URL`, `WXLINK_CDN_BASE_URL` (clap merges these two levels); the
//! account file (`--account FILE`, else `./wxlink-account.json` when it
//! exists). A base URL that is still unknown falls back to the official host
//! (docs/protocol.md, "Hosts and URL joining"); a missing token is an error
//! that says how to get one.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cli::GlobalArgs;

/// The account file used when `--account` is not given.
pub const DEFAULT_ACCOUNT_FILE: &str = "wxlink-account.json";

/// The JSON shape of an account file, as `wxlink login` writes it
/// (`wxlink_client::AccountRecord`), read leniently so that every missing
/// field can be reported by name.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct AccountFile {
    /// The bot token (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The API base URL returned by the login (`baseurl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The CDN base URL, when known (the server never sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn_base_url: Option<String>,
    /// The bot's id (`ilink_bot_id`, …@im.bot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The WeChat user who scanned the QR code (`ilink_user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl fmt::Debug for AccountFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountFile")
            .field("token", &self.token.as_ref().map(|_| "** redacted **"))
            .field("base_url", &self.base_url)
            .field("cdn_base_url", &self.cdn_base_url)
            .field("account_id", &self.account_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// The account a command runs with, after merging every source.
#[derive(Clone)]
pub struct Account {
    /// The bot token (secret).
    pub token: String,
    /// The API base URL.
    pub base_url: String,
    /// The CDN base URL.
    pub cdn_base_url: String,
    /// The bot's id, when known.
    pub account_id: Option<String>,
    /// The user who logged the bot in, when known.
    pub user_id: Option<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("token", &"** redacted **")
            .field("base_url", &self.base_url)
            .field("cdn_base_url", &self.cdn_base_url)
            .field("account_id", &self.account_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Reads an account file, with an error that names the file and the fix.
pub fn read_file(path: &Path) -> Result<AccountFile> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the account file {}; run `wxlink login --out {}` to create it, \
             or pass --token and --base-url (or set WXLINK_TOKEN and WXLINK_BASE_URL)",
            path.display(),
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "the account file {} is not valid account JSON; run `wxlink login --out {}` to write a new one",
            path.display(),
            path.display()
        )
    })
}

/// The account file a command should read: `--account`, else the default
/// file when it exists, else none.
pub fn file_path(global: &GlobalArgs) -> Option<PathBuf> {
    match &global.account {
        Some(p) => Some(p.clone()),
        None => {
            let p = PathBuf::from(DEFAULT_ACCOUNT_FILE);
            p.exists().then_some(p)
        }
    }
}

/// Merges the account file, the environment and the flags into the account
/// a command runs with.
pub fn resolve(global: &GlobalArgs) -> Result<Account> {
    let path = file_path(global);
    let file = match &path {
        // A token from the flags or environment makes the file optional
        // only when the user did not name one explicitly.
        Some(p) if global.account.is_some() || global.token.is_none() => read_file(p)?,
        Some(p) => read_file(p).unwrap_or_default(),
        None => AccountFile::default(),
    };
    let token = global
        .token
        .clone()
        .or(file.token)
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        match &path {
            Some(p) => bail!(
                "the account file {} has no `token`; run `wxlink login --out {}` to log in again, \
                 or pass --token TOKEN (or set WXLINK_TOKEN)",
                p.display(),
                p.display()
            ),
            None => bail!(
                "no account: no bot token was given. Run `wxlink login` to log in and create \
                 ./{DEFAULT_ACCOUNT_FILE}, or pass --account FILE, or pass --token TOKEN and \
                 --base-url URL (or set WXLINK_TOKEN and WXLINK_BASE_URL). To try wxlink without \
                 an account, run `wxlink demo`, or start `wxlink sim` and use the URLs and token it prints."
            ),
        }
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Ok(Account {
        token,
        base_url: non_empty(global.base_url.clone())
            .or(non_empty(file.base_url))
            .unwrap_or_else(|| wxlink_proto::consts::DEFAULT_BASE_URL.to_owned()),
        cdn_base_url: non_empty(global.cdn_base_url.clone())
            .or(non_empty(file.cdn_base_url))
            .unwrap_or_else(|| wxlink_proto::consts::DEFAULT_CDN_BASE_URL.to_owned()),
        account_id: file.account_id,
        user_id: file.user_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(account: Option<&Path>) -> GlobalArgs {
        GlobalArgs {
            account: account.map(Path::to_path_buf),
            ..GlobalArgs::default()
        }
    }

    fn sample() -> AccountFile {
        AccountFile {
            token: Some("file-token".into()),
            base_url: Some("http://file".into()),
            cdn_base_url: Some("http://file/c2c".into()),
            account_id: Some("b@im.bot".into()),
            user_id: Some("u@im.wechat".into()),
        }
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, serde_json::to_vec(&sample()).unwrap()).unwrap();
        let mut g = global(Some(&path));
        g.base_url = Some("http://flag".into());
        let a = resolve(&g).unwrap();
        assert_eq!(a.token, "file-token");
        assert_eq!(a.base_url, "http://flag");
        assert_eq!(a.cdn_base_url, "http://file/c2c");
        assert_eq!(a.user_id.as_deref(), Some("u@im.wechat"));
    }

    #[test]
    fn a_named_missing_file_is_an_error_that_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let err = format!("{:#}", resolve(&global(Some(&path))).unwrap_err());
        assert!(err.contains("nope.json"), "{err}");
        assert!(err.contains("wxlink login"), "{err}");
    }

    #[test]
    fn a_token_alone_uses_the_official_hosts() {
        let mut g = global(None);
        g.token = Some(" t ".into());
        let a = resolve(&g).unwrap();
        assert_eq!(a.token, "t");
        assert_eq!(a.base_url, wxlink_proto::consts::DEFAULT_BASE_URL);
        assert_eq!(a.cdn_base_url, wxlink_proto::consts::DEFAULT_CDN_BASE_URL);
    }

    #[test]
    fn debug_hides_the_token() {
        assert!(!format!("{:?}", sample()).contains("file-token"));
        let mut g = global(None);
        g.token = Some("flag-token".into());
        assert!(!format!("{:?}", resolve(&g).unwrap()).contains("flag-token"));
    }
}
