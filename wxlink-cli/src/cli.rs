//! The command tree of `wxlink`, declared with clap's derive API.
//!
//! Every command carries a short description, a longer one for `--help`
//! and a few examples, so that `wxlink <command> --help` is enough to use
//! it. Usage errors are reported by clap itself, which exits with code 2.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The parsed command line: global options and one command.
#[derive(Debug, Parser)]
#[command(
    name = "wxlink",
    version,
    about = "Talk to the WeChat iLink bot API (WeChat ClawBot) from the command line.",
    long_about = "Talk to the WeChat iLink bot API (WeChat ClawBot) from the command line.\n\n\
        `wxlink demo` runs a complete echo bot against an embedded simulator: no account and \
        no network needed. The other commands talk to whatever server the account points at: \
        the real service after `wxlink login`, or a simulator started with `wxlink sim`.",
    after_help = "Examples:\n  \
        wxlink demo                                  # an echo bot against the embedded simulator\n  \
        wxlink login --out bot.json                  # QR login, saves the account\n  \
        wxlink --account bot.json send --to USER@im.wechat --text hello\n  \
        wxlink --account bot.json listen --cursor-file bot.cursor\n\n\
        Account: --account FILE (default ./wxlink-account.json when it exists), overridden field \
        by field by WXLINK_TOKEN, WXLINK_BASE_URL and WXLINK_CDN_BASE_URL, which are overridden \
        by --token, --base-url and --cdn-base-url.\n\n\
        Exit codes: 0 success, 1 failure, 2 usage error."
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after any command.
///
/// `Debug` hides the token.
#[derive(Args, Clone, Default)]
pub struct GlobalArgs {
    /// Account file written by `wxlink login` (JSON: token, base_url, cdn_base_url, account_id, user_id).
    #[arg(long, global = true, value_name = "FILE", env = "WXLINK_ACCOUNT")]
    pub account: Option<PathBuf>,

    /// Bot token; overrides WXLINK_TOKEN and the account file.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "WXLINK_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// API base URL; overrides WXLINK_BASE_URL and the account file. For `login`, the server that issues the QR code.
    #[arg(long, global = true, value_name = "URL", env = "WXLINK_BASE_URL")]
    pub base_url: Option<String>,

    /// CDN base URL for media; overrides WXLINK_CDN_BASE_URL and the account file.
    #[arg(long, global = true, value_name = "URL", env = "WXLINK_CDN_BASE_URL")]
    pub cdn_base_url: Option<String>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG is used when absent.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Speak HTTP/2 without TLS to a plain http:// server (h2c, prior knowledge), so every call
    /// shares one connection. Only for servers that support it, such as `wxlink sim`; https://
    /// servers negotiate HTTP/2 by themselves.
    #[arg(long, global = true, env = "WXLINK_H2C")]
    pub h2c: bool,

    /// A CA certificate (PEM or DER file) to trust besides the built-in Mozilla roots: a
    /// corporate TLS proxy's, or the one `wxlink sim` prints as tls_root_der_base64 for its
    /// https login redirect host.
    #[arg(long, global = true, value_name = "FILE", env = "WXLINK_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,

    /// Allow a plain http:// server on another host (a test server on a trusted network). By
    /// default the bot token only travels over https://, or over http:// to this machine.
    #[arg(long, global = true, env = "WXLINK_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
}

/// The commands of `wxlink`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an echo bot against the embedded simulator and show a scripted conversation.
    #[command(
        long_about = "Run an echo bot against the embedded simulator and show a scripted conversation.\n\n\
            Starts the simulator in this process, logs in with the QR flow (the QR code is drawn \
            in the terminal and the simulated phone scans it), starts an echo bot built on \
            WxLinkClient, then plays a user who sends a text, a long text, an image and a file. \
            The bot shows a typing indicator and echoes each one back; media goes back through a \
            real encrypted upload. Every reply is checked against what the simulator received. \
            Needs no account and no network; exits 0 only when every check passed.",
        after_help = "Examples:\n  \
            wxlink demo\n  \
            cargo run --release -p wxlink-cli -- demo\n  \
            wxlink -v demo          # with the client's logs on stderr"
    )]
    Demo(DemoArgs),

    /// Run the simulator standalone and print its URLs and bot token as one JSON line.
    #[command(
        long_about = "Run the simulated iLink API server and CDN on 127.0.0.1 until interrupted.\n\n\
            Prints one JSON line on stdout, {\"base_url\":…,\"cdn_base_url\":…,\"token\":…,\"user_id\":…}, \
            then serves until Ctrl-C. Point other wxlink commands (or any iLink client) at it.",
        after_help = "Examples:\n  \
            wxlink sim\n  \
            wxlink sim --port 8787\n  \
            wxlink sim --hold-ms 1000 --cdn-digest-only     # for `wxlink-bench`\n  \
            eval $(wxlink sim | jq -r '\"export WXLINK_TOKEN=\\(.token) WXLINK_BASE_URL=\\(.base_url) WXLINK_CDN_BASE_URL=\\(.cdn_base_url)\"')"
    )]
    Sim(SimArgs),

    /// Log in by scanning a QR code with WeChat and save the account file.
    #[command(
        long_about = "Log in by scanning a QR code with WeChat and save the account file.\n\n\
            Draws the QR code in the terminal and prints its URL, reports each step (scanned, \
            confirmed), asks for the pairing code when the server wants one, and writes the \
            account as JSON (token, base_url, cdn_base_url when known, account_id, user_id) with \
            file mode 0600. The global --base-url chooses the server that issues the QR code \
            (default: the official iLink host).",
        after_help = "Examples:\n  \
            wxlink login\n  \
            wxlink login --out ~/.config/wxlink/bot.json\n  \
            wxlink login --base-url http://127.0.0.1:8787 --out sim.json   # against `wxlink sim`"
    )]
    Login(LoginArgs),

    /// Send a text, a file or a URL's content to a user.
    #[command(
        long_about = "Send a text, a file or a URL's content to a user.\n\n\
            Text longer than --chunk characters is split on character boundaries (preferring line \
            breaks) and sent as several messages. A file or URL is uploaded encrypted to the CDN \
            and sent as an image, video or file message (kind inferred from its content and \
            name); --caption sends a text first. Prints the id of each message sent, one a line.",
        after_help = "Examples:\n  \
            wxlink send --to USER@im.wechat --text 'hello'\n  \
            wxlink send --to USER@im.wechat --context-token \"$CTX\" --file photo.jpg --caption 'look'\n  \
            wxlink send --to USER@im.wechat --url https://example.com/report.pdf\n  \
            wxlink send --to USER@im.wechat --text \"$(cat long.txt)\" --chunk 2000"
    )]
    Send(SendArgs),

    /// Long-poll for inbound messages and print each as one JSON line.
    #[command(
        long_about = "Long-poll for inbound messages and print each as one JSON line on stdout.\n\n\
            Logs go to stderr, so stdout can be piped into jq or a program. With --cursor-file the \
            poll cursor is saved after every poll (atomically: a crash never loses or rewinds it) \
            and resumed on the next start. With --download-dir inbound media is downloaded and \
            decrypted there, and the line gets a \"downloaded\" field with the paths. Runs until \
            Ctrl-C, or until one batch of messages has arrived with --once.",
        after_help = "Examples:\n  \
            wxlink listen\n  \
            wxlink listen --cursor-file bot.cursor --download-dir inbox/\n  \
            wxlink listen --once | jq -r '.item_list[0].text_item.text'"
    )]
    Listen(ListenArgs),

    /// List or re-queue the messages a bot runtime gave up on.
    #[command(
        name = "dead-letters",
        long_about = "List or re-queue the messages a bot runtime gave up on.\n\n\
            A message whose handler failed too often (3 times by default, counted across restarts) \
            moves from the store's journal to its dead letters and is no longer replayed. `list` \
            prints one JSON line per dead letter (account, key, message id, sender, attempts, last \
            error, text; never the context token); `requeue` moves one back into the journal, and \
            the account's runner handles it again on its next start.",
        after_help = "Examples:\n  \
            wxlink dead-letters list --store bot.db\n  \
            wxlink dead-letters requeue --store bot.db --for BOT@im.bot 17"
    )]
    DeadLetters(DeadLettersArgs),

    /// Add, list or remove the accounts a store keeps for its runners.
    #[command(
        long_about = "Add, list or remove the accounts a store keeps for its runners.\n\n\
            The --store URL decides the backend: postgres://… is a PostgreSQL store that several \
            `wxlink listen --store postgres://…` runners share, each running its fair share of the \
            accounts; a file path is a SQLite store, whose accounts `wxlink listen --store FILE` runs \
            in one process when no account is named. `list` prints \
            one JSON line per account with its lease holder, never a token.",
        after_help = "Examples:\n  \
            wxlink accounts add --store postgres://wxlink@db/wxlink wxlink-account.json\n  \
            wxlink accounts list --store postgres://wxlink@db/wxlink\n  \
            wxlink accounts remove --store postgres://wxlink@db/wxlink BOT@im.bot"
    )]
    Accounts(AccountsArgs),
    /// Answer a bot's users with an AI agent: an OpenAI-compatible endpoint, a webhook or a command.
    #[command(
        long_about = "Answer a bot's users with an AI agent: an OpenAI-compatible endpoint, a webhook \
            or a local command.\n\n\
            Runs one or more accounts on the bot runtime (a durable store, pacing, the server's \
            throttle, reply budgets, dead letters) and turns every inbound message into a turn for \
            the agent. Typing shows while the agent works; answers are chunked at 2 000 characters \
            without splitting a code block; one user's turns run in order, different users' at \
            once; a failing agent gets the user a short notice, retries, then a dead letter. \
            /reset and /help are built in. Secrets come from environment variables only. Ctrl-C \
            lets turns in flight finish (--grace) and leaves the rest journaled for the next start.",
        after_help = "Examples:\n  \
            wxlink --account bot.json bridge --openai-base-url http://127.0.0.1:11434/v1 --model llama3\n  \
            OPENAI_API_KEY=sk-… wxlink --account bot.json bridge --openai-base-url https://api.openai.com/v1 --model gpt-4o-mini\n  \
            wxlink bridge --config bridge.toml --listen 127.0.0.1:9464"
    )]
    Bridge(BridgeArgs),

    /// Show or cancel the "typing…" indicator for a user.
    #[command(
        long_about = "Show or cancel the \"typing…\" indicator for a user.\n\n\
            Fetches the user's typing ticket (getconfig) and sends the typing status. WeChat \
            shows the indicator for a few seconds; send it again to keep it up.",
        after_help = "Examples:\n  \
            wxlink typing --to USER@im.wechat --context-token \"$CTX\"\n  \
            wxlink typing --to USER@im.wechat --cancel"
    )]
    Typing(TypingArgs),
}

/// Options of `wxlink demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Give up on any single step after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub step_timeout: u64,
    /// Demonstrate the agent bridge instead: a built-in local agent answers through the runtime.
    #[arg(long)]
    pub bridge: bool,
}

/// Options of `wxlink sim`.
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Port for the API server on 127.0.0.1 (0 picks a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,

    /// How long a `getupdates` with nothing to deliver is held, in milliseconds (the real server: about 35 000).
    #[arg(long, value_name = "MS", default_value_t = 35_000)]
    pub hold_ms: u64,

    /// Keep only the size and digest of uploads (for load tests: no memory or disk grows; downloads of uploads answer 404).
    #[arg(long)]
    pub cdn_digest_only: bool,

    /// Most entries kept in each record log (sent messages, typing and presence calls, uploads, requests); the oldest go first, `GET /_sim/counts` keeps the all-time totals.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub record_limit: usize,

    /// Bot accounts to start, each with its own token, bot id and owner; the JSON line lists them under `accounts` (`token` is the first one's).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub accounts: u32,

    /// Also write the accounts' tokens to FILE, one a line (readable by its owner only), for load tools.
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
}

/// Options of `wxlink login`.
#[derive(Debug, Args, Clone)]
pub struct LoginArgs {
    /// Where to write the account file (default: --account, else ./wxlink-account.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Give up after this many seconds without a confirmed login.
    #[arg(long, value_name = "SECS", default_value_t = 480)]
    pub timeout: u64,
}

/// Options of `wxlink send`.
///
/// `Debug` hides the context token.
#[derive(Args, Clone)]
#[command(group(clap::ArgGroup::new("content").required(true).args(["text", "file", "url"])))]
pub struct SendArgs {
    /// The recipient's user id (…@im.wechat).
    #[arg(long, value_name = "USER")]
    pub to: String,

    /// The context token of the user's latest message (echoed so that the reply is delivered).
    #[arg(long, value_name = "T")]
    pub context_token: Option<String>,

    /// Send this text.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,

    /// Upload and send this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Download this http(s) URL, then upload and send it. Only public addresses are fetched.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Let --url fetch from this machine's loopback interface (127.0.0.0/8, ::1), for a local
    /// test server. Private networks and metadata addresses stay refused.
    #[arg(long, requires = "url")]
    pub url_allow_loopback: bool,

    /// A text sent before the media (with --file or --url).
    #[arg(long, value_name = "TEXT", conflicts_with = "text")]
    pub caption: Option<String>,

    /// Split texts longer than this many characters into several messages.
    #[arg(long, value_name = "N", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk: u32,
}

/// Options of `wxlink listen`.
#[derive(Debug, Args, Clone)]
pub struct ListenArgs {
    /// Load the poll cursor from this file and save it after every poll.
    #[arg(long, value_name = "F")]
    pub cursor_file: Option<PathBuf>,

    /// Wait for one batch of inbound messages, print it and exit. Empty polls, dropped
    /// connections and 5xx answers are retried with the normal backoff; a session expiry or a
    /// permanent error fails the command.
    #[arg(long)]
    pub once: bool,

    /// Download and decrypt inbound media into this directory.
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,

    /// Run on the bot runtime with this SQLite store: durable, de-duplicated, each message
    /// acknowledged after its line is printed (and replayed after a crash until it was).
    /// A postgres://… URL instead runs this process as one runner of a
    /// scale-out over the accounts that store keeps (`wxlink accounts add`); with no
    /// account named, a SQLite store runs the accounts it keeps.
    #[arg(long, value_name = "FILE|URL", conflicts_with_all = ["cursor_file", "once"])]
    pub store: Option<PathBuf>,

    /// With --store postgres://…: this runner's name in leases (default: unique per process).
    #[arg(long, value_name = "NAME", requires = "store")]
    pub owner: Option<String>,

    /// With --store postgres://…: the lease period in milliseconds (default 30000).
    #[arg(long, value_name = "MS", requires = "store")]
    pub lease_ttl_ms: Option<u64>,
}

/// Options of `wxlink dead-letters`.
#[derive(Debug, Args, Clone)]
pub struct DeadLettersArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DeadLettersAction,
}

/// `wxlink dead-letters list|requeue`.
#[derive(Debug, Subcommand, Clone)]
pub enum DeadLettersAction {
    /// Print the dead letters, one JSON line each.
    List {
        /// The SQLite store file.
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        /// Only this account (default: every account in the store).
        #[arg(long = "for", value_name = "ID")]
        account_id: Option<String>,
        /// At most this many per account.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: usize,
    },
    /// Move one dead letter back into the journal.
    Requeue {
        /// The SQLite store file.
        #[arg(long, value_name = "FILE")]
        store: PathBuf,
        /// The account the dead letter belongs to.
        #[arg(long = "for", value_name = "ID")]
        account_id: String,
        /// The dead letter's key, as `list` prints it.
        key: u64,
    },
}

/// Options of `wxlink typing`.
///
/// `Debug` hides the context token.
#[derive(Args, Clone)]
pub struct TypingArgs {
    /// The user who sees the indicator (…@im.wechat).
    #[arg(long, value_name = "USER")]
    pub to: String,

    /// The context token of the user's latest message.
    #[arg(long, value_name = "T")]
    pub context_token: Option<String>,

    /// Cancel the indicator instead of showing it.
    #[arg(long)]
    pub cancel: bool,
}

/// What a secret option shows in `Debug`: whether it was given, never its
/// value.
fn redacted(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| "** redacted **")
}

impl std::fmt::Debug for GlobalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalArgs")
            .field("account", &self.account)
            .field("token", &redacted(&self.token))
            .field("base_url", &self.base_url)
            .field("cdn_base_url", &self.cdn_base_url)
            .field("verbose", &self.verbose)
            .field("h2c", &self.h2c)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl std::fmt::Debug for SendArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendArgs")
            .field("to", &self.to)
            .field("context_token", &redacted(&self.context_token))
            .field("text", &self.text)
            .field("file", &self.file)
            .field("url", &self.url)
            .field("url_allow_loopback", &self.url_allow_loopback)
            .field("caption", &self.caption)
            .field("chunk", &self.chunk)
            .finish()
    }
}

impl std::fmt::Debug for TypingArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypingArgs")
            .field("to", &self.to)
            .field("context_token", &redacted(&self.context_token))
            .field("cancel", &self.cancel)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn debug_output_hides_the_token_and_context_tokens() {
        let send = Cli::try_parse_from([
            "wxlink",
            "--token",
            "TOKEN-MARKER-1",
            "send",
            "--to",
            "u@im.wechat",
            "--context-token",
            "CTX-MARKER-2",
            "--text",
            "hi",
        ])
        .unwrap();
        let typing = Cli::try_parse_from([
            "wxlink",
            "typing",
            "--to",
            "u@im.wechat",
            "--context-token",
            "CTX-MARKER-3",
            "--token",
            "TOKEN-MARKER-4",
        ])
        .unwrap();
        for shown in [format!("{send:?}"), format!("{typing:?}")] {
            assert!(!shown.contains("MARKER"), "{shown}");
            assert!(shown.contains("u@im.wechat"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn send_requires_exactly_one_content() {
        let none = Cli::try_parse_from(["wxlink", "send", "--to", "u"]);
        assert!(none.is_err());
        let two = Cli::try_parse_from(["wxlink", "send", "--to", "u", "--text", "a", "--url", "b"]);
        assert!(two.is_err());
        let one = Cli::try_parse_from(["wxlink", "send", "--to", "u", "--text", "a"]);
        assert!(one.is_ok());
    }

    #[test]
    fn global_flags_work_after_the_command() {
        let cli = Cli::try_parse_from([
            "wxlink",
            "typing",
            "--to",
            "u",
            "--token",
            "t",
            "--base-url",
            "http://h",
        ])
        .unwrap();
        assert_eq!(cli.global.token.as_deref(), Some("t"));
        assert_eq!(cli.global.base_url.as_deref(), Some("http://h"));
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut cmd = Cli::command();
        for sub in cmd.get_subcommands_mut() {
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Examples:"),
                "`{}` has no examples",
                sub.get_name()
            );
        }
    }
}

/// Options of `wxlink accounts`.
#[derive(Debug, Args, Clone)]
pub struct AccountsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AccountsAction,
}

/// `wxlink accounts add|list|remove`.
#[derive(Debug, Subcommand, Clone)]
pub enum AccountsAction {
    /// Keep an account file (as `wxlink login` writes it) in the store, for
    /// the runners to start.
    Add {
        /// The store: postgres://… or a SQLite file.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The account's id (default: the file's account_id); only with
        /// one file.
        #[arg(long = "id", value_name = "ID")]
        account_id: Option<String>,
        /// The account files, each added in turn.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print one JSON line per account: id, lease holder, epoch, lease
    /// expiry, pending and dead letters (never a token).
    List {
        /// The store: postgres://… or a SQLite file.
        #[arg(long, value_name = "URL")]
        store: String,
    },
    /// Remove an account and everything the store keeps of it; refused
    /// while another runner's lease is live.
    Remove {
        /// The store: postgres://… or a SQLite file.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The account's id.
        account_id: String,
    },
}

/// Options of `wxlink bridge`.
#[derive(Debug, Args, Clone)]
pub struct BridgeArgs {
    /// The configuration file (TOML): agent, accounts, turn settings, endpoints.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Quick start: an OpenAI-compatible endpoint's base URL (e.g. http://127.0.0.1:11434/v1).
    #[arg(long, value_name = "URL", requires = "model")]
    pub openai_base_url: Option<String>,

    /// Quick start: the model name.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Quick start: the environment variable holding the API key (none is sent when unset).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,

    /// Quick start: the system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// The store: a SQLite file (created with mode 0600), or postgres://… to run as one of several
    /// runners sharing the store's accounts.
    #[arg(long, value_name = "FILE|URL")]
    pub store: Option<String>,

    /// Let reply URLs reach loopback, private, link-local and cloud metadata addresses (default:
    /// public addresses only).
    #[arg(long)]
    pub allow_private_reply_urls: bool,

    /// With --store postgres://…: the lease period in milliseconds (default 30000).
    #[arg(long, value_name = "MS")]
    pub lease_ttl_ms: Option<u64>,

    /// Serve /healthz and /metrics on this loopback address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// This runner's name in the store's leases. A bridge restarted under the same name takes its
    /// accounts back at once; under another name it waits until the old lease expires (30 s).
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,

    /// Seconds to let turns in flight finish on Ctrl-C.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
}
