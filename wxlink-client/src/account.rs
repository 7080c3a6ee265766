//! The saved credentials of one bot account, as users store them.
//!
//! A QR login ends in an [`AccountRecord`];
//! [`WxLinkClient::from_account`](crate::WxLinkClient::from_account) builds
//! a client from one. The record is
//! plain JSON so that it can live in a file, a database column or a secret
//! store:
//!
//! ```json
//! {
//!   "token": "…",
//!   "base_url": "https://ilinkai.weixin.qq.com",
//!   "cdn_base_url": null,
//!   "account_id": "b0f5860fdecb@im.bot",
//!   "user_id": "o9cq80EXAMPLEuserAlice01@im.wechat"
//! }
//! ```
//!
//! [`AccountRecord::save`] writes the file atomically (a temporary file in the
//! same directory, then a rename) and, on Unix, with mode 0600 because it
//! holds the bot token, as the official client does (docs/protocol.md, "QR login").

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use wxlink_proto::BotToken;

use crate::Error;

/// The credentials and endpoints of one bot account.
///
/// `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountRecord {
    /// The bearer token from the QR login (`bot_token`).
    pub token: BotToken,
    /// The API base URL the login returned (`baseurl`, docs/protocol.md, "Hosts and URL joining").
    pub base_url: String,
    /// The CDN base URL, when it differs from the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn_base_url: Option<String>,
    /// The bot id (`ilink_bot_id`, `…@im.bot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The WeChat user who scanned the QR code (`ilink_user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl AccountRecord {
    /// A record with a token and an API base URL and nothing else.
    pub fn new(token: BotToken, base_url: impl Into<String>) -> Self {
        Self {
            token,
            base_url: base_url.into(),
            cdn_base_url: None,
            account_id: None,
            user_id: None,
        }
    }

    /// Sets the CDN base URL.
    #[must_use]
    pub fn with_cdn_base_url(mut self, url: impl Into<String>) -> Self {
        self.cdn_base_url = Some(url.into());
        self
    }

    /// Sets the bot id.
    #[must_use]
    pub fn with_account_id(mut self, id: impl Into<String>) -> Self {
        self.account_id = Some(id.into());
        self
    }

    /// Sets the id of the WeChat user who scanned the code.
    #[must_use]
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Reads a record from a JSON file. Fails with an error whose
    /// [`Error::is_account_file`] is true when the file cannot be read or
    /// is not a record ([`Error::is_account_file_invalid`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::account_io("read", source))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::account_json("read", source))
    }

    /// Writes the record as JSON, atomically: the text goes to a temporary
    /// file beside `path`, which is flushed to disk and renamed over `path`.
    /// On Unix the file is created with mode 0600.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self)
            .map_err(|source| Error::account_json("encode", source))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "account.json".to_owned());
        let tmp = dir.join(format!(".{name}.{:08x}.tmp", rand::random::<u32>()));
        let io = |op| move |source| Error::account_io(op, source);

        let result = (|| {
            let mut file = create_private(&tmp).map_err(io("create"))?;
            file.write_all(&json).map_err(io("write"))?;
            file.write_all(b"\n").map_err(io("write"))?;
            file.sync_all().map_err(io("sync"))?;
            drop(file);
            std::fs::rename(&tmp, path).map_err(io("rename"))
        })();
        if result.is_err() {
            // Best effort: do not leave a token behind in a stray file.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Creates a new file that only the owner can read and write.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountRecord")
            .field("token", &self.token)
            .field("base_url", &self.base_url)
            .field("cdn_base_url", &self.cdn_base_url)
            .field("account_id", &self.account_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AccountRecord {
        AccountRecord::new(BotToken::new("sekret-token-value"), "https://h.example")
            .with_account_id("b0f5860fdecb@im.bot")
            .with_user_id("alice@im.wechat")
    }

    #[test]
    fn json_field_names_are_stable() {
        let json =
            serde_json::to_value(record().with_cdn_base_url("https://cdn.example/c2c")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "token": "sekret-token-value",
                "base_url": "https://h.example",
                "cdn_base_url": "https://cdn.example/c2c",
                "account_id": "b0f5860fdecb@im.bot",
                "user_id": "alice@im.wechat",
            })
        );
        let minimal: AccountRecord =
            serde_json::from_str(r#"{"token":"t","base_url":"https://x"}"#).unwrap();
        assert_eq!(minimal.token.expose_secret(), "t");
        assert_eq!(minimal.account_id, None);
    }

    #[test]
    fn debug_hides_the_token() {
        let out = format!("{:?}", record());
        assert!(!out.contains("sekret"), "{out}");
        assert!(out.contains("redacted"), "{out}");
        assert!(out.contains("b0f5860fdecb@im.bot"), "{out}");
    }

    #[test]
    fn save_then_load_round_trips_atomically_and_privately() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.json");
        record().save(&path).unwrap();
        // Overwriting works and leaves no temporary file behind.
        let newer = record().with_cdn_base_url("https://cdn.example");
        newer.save(&path).unwrap();
        assert_eq!(AccountRecord::load(&path).unwrap(), newer);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["account.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn load_reports_missing_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = AccountRecord::load(&missing).unwrap_err();
        assert!(
            err.is_account_file() && !err.is_account_file_invalid(),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "account file read failed");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"base_url\": 1}").unwrap();
        let err = AccountRecord::load(&bad).unwrap_err();
        assert!(err.is_account_file_invalid(), "{err:?}");
    }
}
