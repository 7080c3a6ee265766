//! The bridge's TOML configuration, as `wxlink bridge --config bridge.toml`
//! reads it.
//!
//! Secrets never sit in the file: it names the environment variables that
//! hold them (`api_key_env`, `token_env`, `send_token_env`). Unknown keys
//! are errors, so a typo does not silently fall back to a default.
//!
//! ```toml
//! store = "bridge.db"                  # a SQLite file, or postgres://…
//!
//! [agent]                              # the default agent of every account
//! kind = "openai"                      # openai | webhook | command
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"
//! system_prompt = "You answer briefly."
//! stream = true
//! images = true
//! history_turns = 20
//! history_chars = 24000
//!
//! [bridge]
//! chunk_chars = 2000
//! markdown_filter = true
//! agent_timeout_secs = 120
//! attempts = 3
//! retry_delay_ms = 2000
//! failure_notice = "Sorry, something went wrong. Trying again…"
//! give_up_notice = "Sorry, I could not answer that."
//! max_concurrent_turns = 64
//! media_dir = "/srv/bridge/out"
//! allow_private_urls = false           # reply URLs: public addresses only
//! more_notice = "(Cut here: {n} more messages. Send /more.)"
//! media_notice = "(A file could not be sent.)"
//!
//! [server]
//! listen = "127.0.0.1:9464"            # /healthz and /metrics
//! send_endpoint = "127.0.0.1:9465"     # for webhooks answering later
//! send_token_env = "WXLINK_BRIDGE_SEND_TOKEN"
//! media_endpoint = "127.0.0.1:9466"    # inbound media as loopback URLs
//! media_token_env = "WXLINK_BRIDGE_MEDIA_TOKEN"
//!
//! [[account]]
//! file = "accounts/bot-1.json"
//! allow = ["alice@im.wechat"]          # optional allow-list
//!
//! [[account]]
//! file = "accounts/bot-2.json"
//! agent = { kind = "command", program = "python3", args = ["agent.py"], mode = "long_lived" }
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::agent::Agent;
use crate::command::{CommandAgent, CommandConfig, CommandMode};
use crate::engine::EngineOptions;
use crate::error::{Error, Kind};
use crate::history::HistoryLimits;
use crate::openai::{OpenAiAgent, OpenAiConfig};
use crate::runtime::BridgeOptions;
use crate::secret::Secret;
use crate::webhook::{WebhookAgent, WebhookConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// The store: a SQLite file path, or a `postgres://` URL.
    #[serde(default)]
    pub store: Option<String>,
    /// The default agent.
    #[serde(default)]
    pub agent: Option<AgentConfig>,
    /// Turn semantics.
    #[serde(default)]
    pub bridge: TurnConfig,
    /// The loopback endpoints.
    #[serde(default)]
    pub server: ServerConfig,
    /// The accounts to run.
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountEntry>,
}

/// One agent's settings, by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AgentConfig {
    /// An OpenAI-compatible chat-completions endpoint.
    Openai {
        /// The API's base URL.
        base_url: String,
        /// The model.
        model: String,
        /// The environment variable holding the API key.
        #[serde(default)]
        api_key_env: Option<String>,
        /// The system prompt.
        #[serde(default)]
        system_prompt: Option<String>,
        /// Stream the answer (default true).
        #[serde(default = "yes")]
        stream: bool,
        /// Pass images as content parts (default false).
        #[serde(default)]
        images: bool,
        /// History turns kept per user (default 20).
        #[serde(default)]
        history_turns: Option<usize>,
        /// History characters kept per user (default 24 000).
        #[serde(default)]
        history_chars: Option<usize>,
    },
    /// An HTTP webhook.
    Webhook {
        /// Where turns are POSTed.
        url: String,
        /// The environment variable holding its bearer token.
        #[serde(default)]
        token_env: Option<String>,
    },
    /// A local program.
    Command {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        #[serde(default)]
        args: Vec<String>,
        /// `per_turn` (default) or `long_lived`.
        #[serde(default)]
        mode: ModeName,
        /// Seconds one turn may take (default 120).
        #[serde(default)]
        timeout_secs: Option<u64>,
    },
}

/// How a command agent runs, as written in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModeName {
    /// Started per turn.
    #[default]
    PerTurn,
    /// Started once, NDJSON.
    LongLived,
}

fn yes() -> bool {
    true
}

/// The `[bridge]` table: turn semantics.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TurnConfig {
    /// Characters per message.
    pub chunk_chars: Option<usize>,
    /// Apply the official markdown filter.
    pub markdown_filter: Option<bool>,
    /// Seconds one agent call may take.
    pub agent_timeout_secs: Option<u64>,
    /// Attempts per message before it is dead-lettered.
    pub attempts: Option<u32>,
    /// Milliseconds between attempts.
    pub retry_delay_ms: Option<u64>,
    /// The notice at a turn's first failure; `""` sends none.
    pub failure_notice: Option<String>,
    /// The notice when a turn is given up; `""` sends none.
    pub give_up_notice: Option<String>,
    /// The answer to `/help`.
    pub help_text: Option<String>,
    /// Turns answered at once.
    pub max_concurrent_turns: Option<usize>,
    /// Where reply files may come from.
    pub media_dir: Option<PathBuf>,
    /// Let reply URLs reach loopback, private, link-local and cloud
    /// metadata addresses (default false: public addresses only).
    pub allow_private_urls: Option<bool>,
    /// The last message of an answer cut at the reply budget; `{n}` is the
    /// number of messages waiting for `/more`.
    pub more_notice: Option<String>,
    /// Sent in place of a refused reply file or URL; `""` sends none.
    pub media_notice: Option<String>,
}

/// The `[server]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where `/healthz` and `/metrics` are served (a loopback address).
    pub listen: Option<SocketAddr>,
    /// Where the webhook send endpoint is served (a loopback address).
    pub send_endpoint: Option<SocketAddr>,
    /// The environment variable holding the send endpoint's token.
    pub send_token_env: Option<String>,
    /// Where a turn's inbound media are served to agents (a loopback
    /// address); absent, agents get local paths only.
    pub media_endpoint: Option<SocketAddr>,
    /// The environment variable holding the media endpoint's token
    /// (default `WXLINK_BRIDGE_MEDIA_TOKEN`).
    pub media_token_env: Option<String>,
}

/// One `[[account]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AccountEntry {
    /// The account file written by `wxlink login`.
    pub file: PathBuf,
    /// Only these users get answers; absent, everyone does.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// This account's own agent, instead of the default.
    #[serde(default)]
    pub agent: Option<AgentConfig>,
}

impl BridgeConfig {
    /// Parses a configuration; relative paths stay relative (see
    /// [`BridgeConfig::load`]).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|err| {
            Error::new(
                Kind::Config,
                format!("the configuration is not valid: {}", err.message()),
            )
        })
    }

    /// Reads and parses a file; relative paths in it are taken from the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::with_source(Kind::Io, format!("cannot read {}", path.display()), err)
        })?;
        let mut config = Self::from_toml(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for account in &mut config.accounts {
            if account.file.is_relative() {
                account.file = base.join(&account.file);
            }
        }
        if let Some(dir) = &mut config.bridge.media_dir
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        if let Some(store) = &mut config.store
            && !store.contains("://")
            && Path::new(store.as_str()).is_relative()
        {
            *store = base.join(&*store).display().to_string();
        }
        Ok(config)
    }

    /// The engine options the `[bridge]` table and the allow-lists give;
    /// `account_ids[i]` is the id of `accounts[i]`.
    pub fn engine_options(&self, account_ids: &[String]) -> EngineOptions {
        let mut o = EngineOptions::default();
        let b = &self.bridge;
        if let Some(n) = b.chunk_chars {
            o.chunk_chars = n.max(1);
        }
        if let Some(on) = b.markdown_filter {
            o.markdown_filter = on;
        }
        if let Some(s) = b.agent_timeout_secs {
            o.agent_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = b.attempts {
            o.attempts = n.max(1);
        }
        if let Some(ms) = b.retry_delay_ms {
            o.retry_delay = Duration::from_millis(ms);
        }
        if let Some(text) = &b.failure_notice {
            o.failure_notice = (!text.is_empty()).then(|| text.clone());
        }
        if let Some(text) = &b.give_up_notice {
            o.give_up_notice = (!text.is_empty()).then(|| text.clone());
        }
        if let Some(text) = &b.help_text {
            o.help_text = text.clone();
        }
        if let Some(n) = b.max_concurrent_turns {
            o.max_concurrent_turns = n.max(1);
        }
        o.media_dir = b.media_dir.clone();
        if let Some(text) = &b.more_notice {
            o.more_notice = text.clone();
        }
        if let Some(text) = &b.media_notice {
            o.media_notice = (!text.is_empty()).then(|| text.clone());
        }
        let mut allow = HashMap::new();
        for (entry, id) in self.accounts.iter().zip(account_ids) {
            if let Some(users) = &entry.allow {
                allow.insert(id.clone(), users.iter().cloned().collect::<HashSet<_>>());
            }
        }
        o.allow = allow;
        o
    }

    /// The runtime options the configuration gives: `engine` semantics,
    /// inbound media in `inbound_dir`, and the reply URL policy of
    /// `[bridge] allow_private_urls` (or `allow_private_urls` when the
    /// caller's own switch, such as a command-line flag, is on).
    pub fn bridge_options(
        &self,
        engine: EngineOptions,
        inbound_dir: &Path,
        allow_private_urls: bool,
    ) -> BridgeOptions {
        BridgeOptions::new(engine, inbound_dir).allow_private_urls(
            allow_private_urls || self.bridge.allow_private_urls.unwrap_or(false),
        )
    }
}

impl AgentConfig {
    /// Builds the agent, reading secrets through `env` (the process
    /// environment in `wxlink bridge`).
    pub fn build(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn Agent>, Error> {
        let secret = |name: &Option<String>| -> Result<Option<Secret>, Error> {
            match name {
                None => Ok(None),
                Some(var) => match env(var) {
                    Some(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
                    _ => Err(Error::new(
                        Kind::Config,
                        format!("the environment variable {var} is not set"),
                    )),
                },
            }
        };
        Ok(match self {
            Self::Openai {
                base_url,
                model,
                api_key_env,
                system_prompt,
                stream,
                images,
                history_turns,
                history_chars,
            } => {
                let defaults = HistoryLimits::default();
                let mut config = OpenAiConfig::new(base_url.clone(), model.clone())
                    .stream(*stream)
                    .images(*images)
                    .history(HistoryLimits::new(
                        history_turns.unwrap_or(defaults.max_turns),
                        history_chars.unwrap_or(defaults.max_chars),
                    ));
                if let Some(key) = secret(api_key_env)? {
                    config = config.api_key(key);
                }
                if let Some(prompt) = system_prompt {
                    config = config.system_prompt(prompt.clone());
                }
                Arc::new(OpenAiAgent::new(config))
            }
            Self::Webhook { url, token_env } => {
                let mut config = WebhookConfig::new(url.clone());
                if let Some(token) = secret(token_env)? {
                    config = config.token(token);
                }
                Arc::new(WebhookAgent::new(config))
            }
            Self::Command {
                program,
                args,
                mode,
                timeout_secs,
            } => {
                let mut config = CommandConfig::new(program.clone())
                    .args(args.iter().cloned())
                    .mode(match mode {
                        ModeName::PerTurn => CommandMode::PerTurn,
                        ModeName::LongLived => CommandMode::LongLived,
                    });
                if let Some(s) = timeout_secs {
                    config = config.timeout(Duration::from_secs((*s).max(1)));
                }
                Arc::new(CommandAgent::new(config))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FULL: &str = r#"
store = "bridge.db"

[agent]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
model = "m"
api_key_env = "KEY_VAR"
system_prompt = "be brief"

[bridge]
chunk_chars = 1500
markdown_filter = true
attempts = 5
failure_notice = ""
media_dir = "out"

[server]
listen = "127.0.0.1:9464"

[[account]]
file = "a.json"
allow = ["alice@im.wechat"]

[[account]]
file = "/abs/b.json"
agent = { kind = "command", program = "python3", args = ["x.py"], mode = "long_lived" }
"#;

    #[test]
    fn a_full_file_parses_into_options_and_agents() {
        let config = BridgeConfig::from_toml(FULL).unwrap();
        assert_eq!(config.accounts.len(), 2);
        let o = config.engine_options(&["bot-a".into(), "bot-b".into()]);
        assert_eq!(o.chunk_chars, 1500);
        assert!(o.markdown_filter);
        assert_eq!(o.attempts, 5);
        assert_eq!(o.failure_notice, None);
        assert!(o.give_up_notice.is_some());
        assert_eq!(o.allow.len(), 1);
        assert!(o.allow["bot-a"].contains("alice@im.wechat"));

        let env = |name: &str| (name == "KEY_VAR").then(|| "sk-from-env".to_owned());
        let agent = config.agent.as_ref().unwrap().build(&env).unwrap();
        assert_eq!(agent.name(), "openai");
        let second = config.accounts[1]
            .agent
            .as_ref()
            .unwrap()
            .build(&env)
            .unwrap();
        assert_eq!(second.name(), "command");
        // A missing secret names its variable.
        let err = config
            .agent
            .unwrap()
            .build(&|_| None)
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.is_config() && err.to_string().contains("KEY_VAR"),
            "{err}"
        );
    }

    #[test]
    fn reply_urls_reach_only_public_addresses_unless_the_file_or_the_flag_allows_more() {
        use wxlink_client::media::AddressPolicy;
        let dir = Path::new("/tmp/in");
        let default = BridgeConfig::from_toml("").unwrap();
        let o = default.bridge_options(EngineOptions::default(), dir, false);
        assert_eq!(o.fetch.policy, AddressPolicy::PublicOnly);
        // The command-line switch alone allows them.
        let o = default.bridge_options(EngineOptions::default(), dir, true);
        assert_eq!(o.fetch.policy, AddressPolicy::AllowAll);
        // So does the file.
        let allowing = BridgeConfig::from_toml("[bridge]\nallow_private_urls = true\n").unwrap();
        let o = allowing.bridge_options(EngineOptions::default(), dir, false);
        assert_eq!(o.fetch.policy, AddressPolicy::AllowAll);
        let denying = BridgeConfig::from_toml("[bridge]\nallow_private_urls = false\n").unwrap();
        let o = denying.bridge_options(EngineOptions::default(), dir, false);
        assert_eq!(o.fetch.policy, AddressPolicy::PublicOnly);
    }

    #[test]
    fn the_cut_and_media_notices_are_configurable() {
        let config = BridgeConfig::from_toml(
            "[bridge]\nmore_notice = \"{n} more: /more\"\nmedia_notice = \"\"\n",
        )
        .unwrap();
        let o = config.engine_options(&[]);
        assert_eq!(o.more_notice, "{n} more: /more");
        assert_eq!(o.media_notice, None);
        let o = BridgeConfig::default().engine_options(&[]);
        assert!(o.more_notice.contains("{n}") && o.more_notice.contains("/more"));
        assert!(o.media_notice.is_some());
    }

    #[test]
    fn typos_and_unknown_kinds_are_errors() {
        let err = BridgeConfig::from_toml("[bridge]\nchunk_char = 5\n").unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("chunk_char"), "{err}");
        assert!(BridgeConfig::from_toml("[agent]\nkind = \"magic\"\n").is_err());
        assert!(BridgeConfig::from_toml("[server]\nlisten = \"nope\"\n").is_err());
    }

    #[test]
    fn relative_paths_are_taken_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, FULL).unwrap();
        let config = BridgeConfig::load(&path).unwrap();
        assert_eq!(config.accounts[0].file, dir.path().join("a.json"));
        assert_eq!(config.accounts[1].file, PathBuf::from("/abs/b.json"));
        assert_eq!(config.bridge.media_dir, Some(dir.path().join("out")));
        assert_eq!(
            config.store,
            Some(dir.path().join("bridge.db").display().to_string())
        );
    }
}
