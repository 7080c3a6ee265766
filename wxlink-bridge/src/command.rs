//! An agent that is a local program.
//!
//! Two ways to run it ([`CommandMode`]):
//!
//! - **per turn**: the program is started for each turn, reads the turn as
//!   one JSON object on stdin (then end of file) and writes the reply as one
//!   JSON object on stdout before it exits with status 0;
//! - **long-lived**: the program is started once and speaks NDJSON: the
//!   bridge writes one turn per line, with an added `"id"` string, and the
//!   program answers each with one reply line carrying the same `"id"`, in
//!   any order. If it exits, the turns waiting on it fail and the next turn
//!   starts it again.
//!
//! Either way the turn has [`CommandConfig::timeout`] (a per-turn program
//! that overruns is killed), and every line the program writes on stderr is
//! logged as a warning. The JSON shapes are those of [`Turn`] and
//! [`Reply`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use crate::agent::{Agent, BoxFuture};
use crate::error::{Error, Kind};
use crate::http::MAX_ANSWER_BYTES;
use crate::turn::{Reply, Turn};

/// How the program is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CommandMode {
    /// Started for each turn: JSON in on stdin, JSON out on stdout.
    #[default]
    PerTurn,
    /// Started once: NDJSON over stdin and stdout, matched by `"id"`.
    LongLived,
}

/// Settings of a [`CommandAgent`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommandConfig {
    /// The program to run (looked up in `PATH` when it has no slash).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Per turn or long-lived.
    pub mode: CommandMode,
    /// How long one turn may take (default 120 s).
    pub timeout: Duration,
    /// The working directory; the bridge's own by default.
    pub current_dir: Option<PathBuf>,
}

impl CommandConfig {
    /// Runs `program` per turn, with no arguments.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            mode: CommandMode::PerTurn,
            timeout: Duration::from_secs(120),
            current_dir: None,
        }
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: CommandMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the time one turn may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }
}

/// An [`Agent`] that is a local program; see the [module docs](self).
///
/// ```no_run
/// use wxlink_bridge::{CommandAgent, CommandConfig, CommandMode};
///
/// let agent = CommandAgent::new(
///     CommandConfig::new("python3").args(["agent.py"]).mode(CommandMode::LongLived),
/// );
/// # drop(agent);
/// ```
pub struct CommandAgent {
    config: CommandConfig,
    running: tokio::sync::Mutex<Option<Arc<Running>>>,
    next_id: AtomicU64,
}

impl fmt::Debug for CommandAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandAgent")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CommandAgent {
    /// An agent running `config`.
    pub fn new(config: CommandConfig) -> Self {
        Self {
            config,
            running: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CommandConfig {
        &self.config
    }

    fn spawn_error(&self, err: std::io::Error) -> Error {
        Error::with_source(
            Kind::Process,
            format!("cannot start {}", self.config.program.display()),
            err,
        )
    }

    async fn per_turn(&self, turn: &Turn) -> Result<Reply, Error> {
        let mut input = serde_json::to_vec(turn)
            .map_err(|err| Error::with_source(Kind::Config, "cannot encode a turn", err))?;
        input.push(b'\n');
        let mut child = self
            .config
            .command()
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::new(Kind::Process, "the agent's pipes are missing"));
        };
        tokio::spawn(log_stderr(stderr, self.config.program.clone()));
        let run = async {
            // A program that exits without reading its input closes the
            // pipe; its answer still counts.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
            let mut out = Vec::new();
            let read = stdout
                .take(MAX_ANSWER_BYTES + 1)
                .read_to_end(&mut out)
                .await;
            read.map_err(|err| {
                Error::with_source(Kind::Process, "cannot read the agent's output", err)
            })?;
            if out.len() as u64 > MAX_ANSWER_BYTES {
                return Err(Error::unreadable(format!(
                    "the agent wrote more than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            let status = child.wait().await.map_err(|err| {
                Error::with_source(Kind::Process, "cannot wait for the agent", err)
            })?;
            if !status.success() {
                return Err(Error::new(
                    Kind::Process,
                    format!("the agent exited with {status}"),
                ));
            }
            parse_reply(&out)
        };
        match tokio::time::timeout(self.config.timeout, run).await {
            Ok(result) => result,
            // Dropping the child kills it (kill_on_drop).
            Err(_) => Err(Error::timeout(self.config.timeout)),
        }
    }

    async fn running(&self) -> Result<Arc<Running>, Error> {
        let mut slot = self.running.lock().await;
        if let Some(running) = slot.as_ref().filter(|r| r.alive.load(Ordering::Acquire)) {
            return Ok(running.clone());
        }
        let mut child = self
            .config
            .command()
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::new(Kind::Process, "the agent's pipes are missing"));
        };
        tokio::spawn(log_stderr(stderr, self.config.program.clone()));
        let running = Arc::new(Running {
            stdin: tokio::sync::Mutex::new(stdin),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            _child: Mutex::new(child),
        });
        tokio::spawn(read_replies(stdout, Arc::downgrade(&running)));
        *slot = Some(running.clone());
        Ok(running)
    }

    async fn long_lived(&self, turn: &Turn) -> Result<Reply, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let mut line = serde_json::to_value(turn)
            .map_err(|err| Error::with_source(Kind::Config, "cannot encode a turn", err))?;
        if let Value::Object(map) = &mut line {
            map.insert("id".into(), Value::String(id.clone()));
        }
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let timeout = self.config.timeout;
        let run = async {
            let running = self.running().await?;
            let (tx, rx) = oneshot::channel();
            running.pending_map()?.insert(id.clone(), tx);
            let write = {
                let mut stdin = running.stdin.lock().await;
                match stdin.write_all(&bytes).await {
                    Ok(()) => stdin.flush().await,
                    Err(err) => Err(err),
                }
            };
            if let Err(err) = write {
                running.alive.store(false, Ordering::Release);
                running.pending_map()?.remove(&id);
                return Err(Error::with_source(
                    Kind::Process,
                    "cannot write to the agent",
                    err,
                ));
            }
            let reply = rx
                .await
                .map_err(|_| Error::new(Kind::Process, "the agent exited before it answered"))?;
            Ok::<_, Error>((reply, running))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok((reply, _))) => reply,
            Ok(Err(err)) => Err(err),
            Err(_) => {
                // A late answer to this id is dropped.
                if let Some(running) = self.running.lock().await.as_ref()
                    && let Ok(mut map) = running.pending_map()
                {
                    map.remove(&id);
                }
                Err(Error::timeout(timeout))
            }
        }
    }
}

impl Agent for CommandAgent {
    fn respond<'a>(&'a self, turn: &'a Turn) -> BoxFuture<'a, Result<Reply, Error>> {
        Box::pin(async move {
            match self.config.mode {
                CommandMode::PerTurn => self.per_turn(turn).await,
                CommandMode::LongLived => self.long_lived(turn).await,
            }
        })
    }

    fn name(&self) -> &str {
        "command"
    }
}

type Pending = HashMap<String, oneshot::Sender<Result<Reply, Error>>>;

/// A long-lived agent process and the turns waiting on it.
struct Running {
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Mutex<Pending>,
    alive: AtomicBool,
    /// Held so that the process is killed when the agent is dropped.
    _child: Mutex<Child>,
}

impl Running {
    fn pending_map(&self) -> Result<std::sync::MutexGuard<'_, Pending>, Error> {
        self.pending
            .lock()
            .map_err(|_| Error::new(Kind::Process, "the agent's lock is poisoned"))
    }
}

/// Reads reply lines and hands each to the turn with its id; at the end
/// of the output, fails every turn still waiting.
async fn read_replies(stdout: tokio::process::ChildStdout, running: std::sync::Weak<Running>) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next_line().await;
        let Some(running) = running.upgrade() else {
            return;
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => {
                running.alive.store(false, Ordering::Release);
                if let Ok(mut map) = running.pending_map() {
                    for (_, tx) in map.drain() {
                        let _ = tx.send(Err(Error::new(
                            Kind::Process,
                            "the agent exited before it answered",
                        )));
                    }
                }
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(mut map) = running.pending_map() else {
            return;
        };
        let parsed: Option<(String, Result<Reply, Error>)> =
            serde_json::from_str::<Value>(&line).ok().and_then(|value| {
                let id = value.get("id").and_then(Value::as_str)?.to_owned();
                let reply = serde_json::from_value::<Reply>(value)
                    .map_err(|_| Error::unreadable("the agent's reply line has the wrong shape"));
                Some((id, reply))
            });
        match parsed {
            Some((id, reply)) => match map.remove(&id) {
                Some(tx) => {
                    let _ = tx.send(reply.and_then(non_empty));
                }
                None => tracing::warn!(%id, "the agent answered a turn nobody waits for"),
            },
            None if map.len() == 1 => {
                // One turn is waiting, so this garbage can only be its answer.
                if let Some(key) = map.keys().next().cloned()
                    && let Some(tx) = map.remove(&key)
                {
                    let _ = tx.send(Err(Error::unreadable(
                        "the agent wrote a line that is not a reply",
                    )));
                }
            }
            None => tracing::warn!("the agent wrote a line that is not a reply; ignored"),
        }
    }
}

fn non_empty(reply: Reply) -> Result<Reply, Error> {
    if reply.is_empty() && !reply.deferred {
        Err(Error::unreadable("the agent's reply is empty"))
    } else {
        Ok(reply)
    }
}

fn parse_reply(out: &[u8]) -> Result<Reply, Error> {
    let reply: Reply = serde_json::from_slice(out.trim_ascii())
        .map_err(|_| Error::unreadable("the agent's output is not a JSON reply"))?;
    non_empty(reply)
}

/// Logs each stderr line of the agent as a warning.
async fn log_stderr(stderr: impl AsyncRead + Unpin, program: PathBuf) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(1000).collect();
        tracing::warn!(program = %program.display(), "agent stderr: {line}");
    }
}
