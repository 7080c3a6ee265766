//! A throwaway PostgreSQL server for tests, started from the distribution's
//! own binaries.
//!
//! [`PgServer::start`] finds `initdb`, `pg_ctl`, `postgres`, `psql` and
//! `createdb` (see [`find_binaries`]), copies a cached `initdb` cluster into
//! a fresh temporary directory, and starts a server that listens on
//! `127.0.0.1` only, on a free port, with its Unix socket inside that
//! directory. When the tests run as root the server runs as the `postgres`
//! user (or `nobody` where there is none), because PostgreSQL refuses to run
//! as root; the directory is owned by that user.
//!
//! The server is stopped and its directory removed when the [`PgServer`] is
//! dropped, and also when the test process ends in any other way (a panic,
//! an exit with the server in a `static`, even `SIGKILL`): a small watchdog
//! shell holds the server and stops it as soon as the pipe from the test
//! process closes.
//!
//! Most tests want [`shared_or_skip`]: one server per test process, a fresh
//! database per test ([`PgServer::create_database`]). Where no PostgreSQL
//! binaries exist the test is skipped, loudly, unless `WXLINK_REQUIRE_PG` is
//! set, in which case it fails. Skipped test names are appended to the file
//! named by `WXLINK_PG_SKIPPED_FILE`, which `cargo xtask test` prints.
//!
//! ```no_run
//! let Some(pg) = wxlink_pgtest::shared_or_skip("stores_a_row") else {
//!     return;
//! };
//! let db = pg.create_database().expect("a fresh database");
//! println!("connect to {}", db.url().expose());
//! ```

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use rand::RngExt;
use rand::distr::Alphanumeric;

/// The superuser role of every throwaway cluster.
pub const SUPERUSER: &str = "wxlink";

/// The environment variable that turns a missing PostgreSQL into a failure.
pub const REQUIRE_ENV: &str = "WXLINK_REQUIRE_PG";

/// The environment variable naming a file that skipped tests are listed in.
pub const SKIPPED_FILE_ENV: &str = "WXLINK_PG_SKIPPED_FILE";

/// The environment variable naming the directory of the server binaries,
/// when they are not where [`find_binaries`] looks.
pub const BIN_ENV: &str = "WXLINK_PG_BIN";

/// Why a throwaway server could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgTestError {
    /// No directory with the PostgreSQL server binaries was found.
    #[error("no PostgreSQL server binaries found (looked in {looked})")]
    NoBinaries {
        /// Where the search looked, for the message.
        looked: String,
    },
    /// The tests run as root and there is no unprivileged user to run the
    /// server as.
    #[error("running as root and no `postgres` or `nobody` user to run the server as")]
    NoUser,
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A PostgreSQL program failed; `output` is what it printed.
    #[error("{program} failed: {output}")]
    Command {
        /// The program that failed.
        program: String,
        /// Its standard error and, for the server, its log.
        output: String,
    },
}

/// Wraps an I/O error with what was being done.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgTestError {
    let what = what.into();
    move |source| PgTestError::Io { what, source }
}

/// A connection URL that holds a password; `Debug` and `Display` hide it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL with its password, for a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl(** redacted **)")
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// The unprivileged account the server runs as when the tests run as root.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// Reads `name`'s uid and gid from `/etc/passwd`.
fn lookup_user(name: &str) -> Option<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(RunAs {
            name: name.to_owned(),
            uid,
            gid,
        })
    })
}

/// The effective uid of this process, read from a directory it created.
fn own_uid(dir: &Path) -> Result<u32, PgTestError> {
    let meta = fs::metadata(dir).map_err(io(format!("read {}", dir.display())))?;
    Ok(meta.uid())
}

/// The directory holding `initdb`, `pg_ctl`, `postgres`, `psql` and
/// `createdb`: `$WXLINK_PG_BIN` when set (and then only there), else the newest
/// `/usr/lib/postgresql/<major>/bin` (Debian and Ubuntu), else
/// `pg_config --bindir`, else the first directory on `PATH` with `initdb`.
pub fn find_binaries() -> Result<PathBuf, PgTestError> {
    const NEEDED: [&str; 5] = ["initdb", "pg_ctl", "postgres", "psql", "createdb"];
    let complete = |dir: &Path| NEEDED.iter().all(|b| dir.join(b).is_file());
    let mut looked: Vec<String> = Vec::new();
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        // An explicit directory is the only place looked: a wrong one is
        // reported, not papered over by another installation.
        if complete(&dir) {
            return Ok(dir);
        }
        return Err(PgTestError::NoBinaries {
            looked: format!("${BIN_ENV}={}", dir.display()),
        });
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.into_iter().rev().find(|(_, dir)| complete(dir)) {
        return Ok(dir);
    }
    looked.push("/usr/lib/postgresql/*/bin".into());
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Ok(dir);
        }
    }
    looked.push("pg_config --bindir".into());
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| complete(d))
    {
        return Ok(dir);
    }
    looked.push("PATH".into());
    Err(PgTestError::NoBinaries {
        looked: looked.join(", "),
    })
}

/// A running throwaway server. Dropping it stops the server and removes its
/// directory.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    watchdog: Child,
    /// The write end of the watchdog's stdin; closing it stops the server.
    keepalive: Option<ChildStdin>,
    next_db: AtomicU32,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("password", &"** redacted **")
            .finish_non_exhaustive()
    }
}

/// One database on a [`PgServer`].
#[derive(Debug, Clone)]
pub struct PgDatabase {
    name: String,
    url: SecretUrl,
}

impl PgDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `postgres://wxlink:<password>@127.0.0.1:<port>/<name>`.
    pub fn url(&self) -> &SecretUrl {
        &self.url
    }
}

/// The watchdog: copies the template cluster, starts the server, says
/// `ready`, then waits for its stdin to close and stops the server and
/// removes the directory. Parameters come in the environment, so no path
/// is ever quoted into the script.
const WATCHDOG: &str = r#"
set -u
log="$PGT_DIR/server.log"
fail() { cat "$log" >&2 2>/dev/null; rm -rf "$PGT_DIR"; exit 1; }
cp -a "$PGT_TEMPLATE" "$PGT_DIR/data" || fail
chmod 700 "$PGT_DIR/data" || fail
"$PGT_BIN/pg_ctl" start -w -t 60 -s -D "$PGT_DIR/data" -l "$log" -o "$PGT_OPTS" >&2 || fail
if ! "$PGT_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGT_DIR" -p "$PGT_PORT" -U wxlink -d postgres -f "$PGT_DIR/init.sql" >&2; then
  "$PGT_BIN/pg_ctl" stop -s -D "$PGT_DIR/data" -m immediate -w
  fail
fi
rm -f "$PGT_DIR/init.sql"
echo ready
exec >/dev/null 2>/dev/null
cat >/dev/null
"$PGT_BIN/pg_ctl" stop -s -D "$PGT_DIR/data" -m immediate -w
rm -rf "$PGT_DIR"
"#;

/// A random alphanumeric string of `len` characters.
fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, PgTestError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("find a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(io("find a free loopback port"))?
        .port();
    Ok(port)
}

/// Runs `cmd`, as `user` when given, and fails with its output when it
/// does not succeed.
fn run(mut cmd: Command, user: Option<&RunAs>, program: &str) -> Result<(), PgTestError> {
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("run {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PgTestError::Command {
            program: program.into(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// Creates `dir` (mode 0700) owned by `user` when given, and checks that it
/// is owned by whoever will run the server.
fn private_dir(dir: &Path, user: Option<&RunAs>, me: u32) -> Result<(), PgTestError> {
    let what = || format!("prepare {}", dir.display());
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(what())(e)),
    }
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io(what()))?;
    }
    let owner = fs::metadata(dir).map_err(io(what()))?.uid();
    let expected = user.map_or(me, |u| u.uid);
    if owner != expected {
        return Err(PgTestError::Io {
            what: what(),
            source: std::io::Error::other(format!("owned by uid {owner}, not {expected}")),
        });
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(what()))
}

/// The major version the binaries in `bin` report, for the template's name.
fn server_version(bin: &Path) -> Result<String, PgTestError> {
    let out = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map_err(io("run postgres --version"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .last()
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    Ok(version)
}

/// Makes sure `base/template-<version>` holds an `initdb` cluster, creating
/// it once (atomically, by renaming a finished one into place).
fn ensure_template(bin: &Path, base: &Path, user: Option<&RunAs>) -> Result<PathBuf, PgTestError> {
    let template = base.join(format!("template-{}", server_version(bin)?));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    let scratch = base.join(format!(
        "template.tmp-{}-{}",
        std::process::id(),
        random_token(6)
    ));
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&scratch)
        .args(["-U", SUPERUSER])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .args(["-E", "UTF8", "--locale=C", "--no-sync", "--wal-segsize=1"])
        .current_dir(base)
        .env("LC_ALL", "C");
    run(initdb, user, "initdb")?;
    if fs::rename(&scratch, &template).is_err() {
        // Another process finished first; its template is as good.
        let _ = fs::remove_dir_all(&scratch);
    }
    if template.join("PG_VERSION").is_file() {
        Ok(template)
    } else {
        Err(PgTestError::Command {
            program: "initdb".into(),
            output: format!("no cluster at {}", template.display()),
        })
    }
}

impl PgServer {
    /// Starts a new server. Takes a second or two the first time (for
    /// `initdb`) and a fraction of that afterwards.
    pub fn start() -> Result<Self, PgTestError> {
        Self::start_inner(false)
    }

    /// Starts a server that syncs every commit to disk (`fsync`,
    /// `synchronous_commit` and full-page writes on, as in production),
    /// for benchmarks; [`start`](Self::start) turns them off for speed.
    pub fn start_durable() -> Result<Self, PgTestError> {
        Self::start_inner(true)
    }

    /// Starts a server, durable or not.
    fn start_inner(durable: bool) -> Result<Self, PgTestError> {
        let bin = find_binaries()?;
        let probe = std::env::temp_dir().join(format!(
            "wxlink-pgtest-probe-{}-{}",
            std::process::id(),
            random_token(6)
        ));
        fs::create_dir(&probe).map_err(io("create a probe directory"))?;
        let me = own_uid(&probe);
        let _ = fs::remove_dir(&probe);
        let me = me?;
        let user = if me == 0 {
            Some(
                lookup_user("postgres")
                    .or_else(|| lookup_user("nobody"))
                    .ok_or(PgTestError::NoUser)?,
            )
        } else {
            None
        };
        let owner = user.as_ref().map_or(me, |u| u.uid);
        let base = std::env::temp_dir().join(format!("wxlink-pgtest-{owner}"));
        private_dir(&base, user.as_ref(), me)?;
        let template = ensure_template(&bin, &base, user.as_ref())?;
        let mut last = None;
        // A free port may be taken between the probe and the server's bind;
        // a few fresh tries make that race harmless.
        for _ in 0..5 {
            match Self::launch(&bin, &base, &template, user.as_ref(), me, durable) {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(PgTestError::NoUser))
    }

    /// One attempt to start a server on a fresh port and directory.
    fn launch(
        bin: &Path,
        base: &Path,
        template: &Path,
        user: Option<&RunAs>,
        me: u32,
        durable: bool,
    ) -> Result<Self, PgTestError> {
        let dir = base.join(format!("run-{}-{}", std::process::id(), random_token(8)));
        private_dir(&dir, user, me)?;
        let password = random_token(24);
        let init = dir.join("init.sql");
        {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&init)
                .map_err(io("write init.sql"))?;
            writeln!(file, "ALTER ROLE {SUPERUSER} PASSWORD '{password}';")
                .map_err(io("write init.sql"))?;
        }
        if let Some(user) = user {
            std::os::unix::fs::chown(&init, Some(user.uid), Some(user.gid))
                .map_err(io("chown init.sql"))?;
        }
        let port = free_port()?;
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} \
             -c max_connections=300 -c shared_buffers=32MB{speed}",
            dir.display()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .env("PGT_BIN", bin)
            .env("PGT_DIR", &dir)
            .env("PGT_TEMPLATE", template)
            .env("PGT_PORT", port.to_string())
            .env("PGT_OPTS", options)
            .env("LC_ALL", "C")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal ends the
            // tests, and the closed pipe then stops the server cleanly.
            .process_group(0);
        if let Some(user) = user {
            cmd.uid(user.uid).gid(user.gid);
        }
        let mut watchdog = cmd.spawn().map_err(io("start the watchdog shell"))?;
        let keepalive = watchdog.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = watchdog.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        if line.trim() != "ready" {
            drop(keepalive);
            let mut output = String::new();
            if let Some(mut stderr) = watchdog.stderr.take() {
                let _ = stderr.read_to_string(&mut output);
            }
            let _ = watchdog.wait();
            let _ = fs::remove_dir_all(&dir);
            return Err(PgTestError::Command {
                program: "postgres".into(),
                output,
            });
        }
        Ok(Self {
            bin: bin.to_path_buf(),
            dir,
            port,
            password,
            watchdog,
            keepalive,
            next_db: AtomicU32::new(0),
        })
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> SecretUrl {
        SecretUrl(format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        ))
    }

    /// Creates a new, empty database with a name unique on this server.
    pub fn create_database(&self) -> Result<PgDatabase, PgTestError> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}_{}", random_token(6).to_lowercase());
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, &name]);
        run(cmd, None, "createdb")?;
        Ok(PgDatabase {
            url: self.url_for(&name),
            name,
        })
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop the server and remove
        // the directory; waiting makes that finished when drop returns.
        drop(self.keepalive.take());
        let _ = self.watchdog.wait();
    }
}

/// `OpenOptions` with mode 0600, spelled once.
trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// True when `WXLINK_REQUIRE_PG` is set to anything but empty or `0`.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The server shared by every test of this process, started on first use.
///
/// Returns `None` (after printing a loud line and recording `test` in
/// `$WXLINK_PG_SKIPPED_FILE`) when no PostgreSQL binaries exist and
/// `WXLINK_REQUIRE_PG` is unset.
///
/// # Panics
///
/// When the binaries exist but the server does not start, or when they are
/// missing and `WXLINK_REQUIRE_PG` is set: a test must never pass silently
/// without its database.
pub fn shared_or_skip(test: &str) -> Option<&'static PgServer> {
    static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| match PgServer::start() {
        Ok(server) => Ok(server),
        Err(PgTestError::NoBinaries { looked }) if !required() => Err(looked),
        Err(e) => panic!("could not start a throwaway PostgreSQL server: {e}"),
    });
    match shared {
        Ok(server) => Some(server),
        Err(looked) => {
            skip(test, looked);
            None
        }
    }
}

/// Reports `test` as skipped for want of PostgreSQL.
fn skip(test: &str, looked: &str) {
    eprintln!(
        "\n*** SKIPPED {test}: no PostgreSQL server binaries (looked in {looked}); \
         install `postgresql` or set {BIN_ENV}, and set {REQUIRE_ENV}=1 to make this a failure ***\n"
    );
    if let Some(path) = std::env::var_os(SKIPPED_FILE_ENV)
        && let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "{test}");
    }
}
