//! The server listens on loopback only, with a password, as an unprivileged
//! user, and is gone (process and directory) once its owner is.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wxlink_pgtest::{PgServer, find_binaries};

/// Runs `sql` through `psql` over TCP with `password`; returns stdout, or
/// the error text when psql fails.
fn psql(port: u16, database: &str, password: &str, sql: &str) -> Result<String, String> {
    let bin = find_binaries().map_err(|e| e.to_string())?;
    let out = Command::new(bin.join("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", wxlink_pgtest::SUPERUSER, "-d", database, "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The password inside a `postgres://user:password@host:port/db` URL.
fn password_of(url: &str) -> String {
    let rest = url
        .strip_prefix("postgres://wxlink:")
        .expect("our URL shape");
    rest.split('@').next().expect("a password").to_owned()
}

/// The data directory the server reports.
fn data_directory(port: u16, password: &str) -> PathBuf {
    PathBuf::from(
        psql(port, "postgres", password, "SHOW data_directory").expect("the server answers"),
    )
}

/// True while some process still has `dir` as its data directory.
fn postmaster_running(dir: &std::path::Path) -> bool {
    dir.join("postmaster.pid").exists()
}

/// Waits up to `limit` for `done`.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn fresh_databases_answer_over_loopback_with_the_password_only() {
    let Some(pg) = wxlink_pgtest::shared_or_skip(
        "fresh_databases_answer_over_loopback_with_the_password_only",
    ) else {
        return;
    };
    let a = pg.create_database().expect("a database");
    let b = pg.create_database().expect("another database");
    assert_ne!(a.name(), b.name());
    let password = password_of(a.url().expose());
    psql(
        pg.port(),
        a.name(),
        &password,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (7)",
    )
    .expect("create a table");
    assert_eq!(
        psql(pg.port(), a.name(), &password, "SELECT x FROM t").as_deref(),
        Ok("7")
    );
    // Each database is its own: the table is not in the other one.
    assert!(psql(pg.port(), b.name(), &password, "SELECT x FROM t").is_err());
    // A wrong password is refused over TCP.
    let refused = psql(pg.port(), a.name(), "wrong", "SELECT 1").expect_err("refused");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    assert_eq!(
        psql(pg.port(), "postgres", &password, "SHOW listen_addresses").as_deref(),
        Ok("127.0.0.1")
    );
}

#[test]
fn urls_and_the_server_hide_the_password_in_debug() {
    let Some(pg) = wxlink_pgtest::shared_or_skip("urls_and_the_server_hide_the_password_in_debug")
    else {
        return;
    };
    let db = pg.create_database().expect("a database");
    let password = password_of(db.url().expose());
    assert!(password.len() >= 20);
    let printed = format!("{pg:?} {db:?} {}", db.url());
    assert!(!printed.contains(&password), "{printed}");
}

#[test]
fn the_server_runs_unprivileged_and_is_gone_after_drop() {
    if find_binaries().is_err() {
        let _ =
            wxlink_pgtest::shared_or_skip("the_server_runs_unprivileged_and_is_gone_after_drop");
        return;
    }
    let pg = PgServer::start().expect("a server");
    let password = password_of(pg.url_for("postgres").expose());
    let data = data_directory(pg.port(), &password);
    let run_dir = data
        .parent()
        .expect("data sits in the run directory")
        .to_owned();
    assert!(postmaster_running(&data));
    // The server's files belong to a user other than root.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).expect("stat"));
    assert_ne!(owner, 0, "the server must not run as root");
    let port = pg.port();
    drop(pg);
    assert!(!run_dir.exists(), "{} is left behind", run_dir.display());
    assert!(psql(port, "postgres", &password, "SELECT 1").is_err());
}

/// Run as a child by the test below: starts a server, prints its run
/// directory and port, and sleeps until killed.
#[test]
fn child_holds_a_server_until_killed() {
    if std::env::var_os("WXLINK_PGTEST_CHILD").is_none() {
        return;
    }
    let pg = PgServer::start().expect("a server");
    let password = password_of(pg.url_for("postgres").expose());
    let data = data_directory(pg.port(), &password);
    println!(
        "RUN {} {}",
        pg.port(),
        data.parent().expect("run dir").display()
    );
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_sigkilled_owner_leaves_no_server_behind() {
    if find_binaries().is_err() {
        let _ = wxlink_pgtest::shared_or_skip("a_sigkilled_owner_leaves_no_server_behind");
        return;
    }
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "server::child_holds_a_server_until_killed",
            "--nocapture",
        ])
        .env("WXLINK_PGTEST_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stdout);
    while !line.starts_with("RUN ") {
        line.clear();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "child ended early"
        );
    }
    let mut fields = line.split_whitespace().skip(1);
    let port: u16 = fields.next().expect("port").parse().expect("a port");
    let run_dir = PathBuf::from(fields.next().expect("dir"));
    assert!(run_dir.join("data/postmaster.pid").exists());
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap");
    assert!(
        wait_until(Duration::from_secs(20), || !run_dir.exists()),
        "{} is left behind",
        run_dir.display()
    );
    let probe = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    );
    assert!(probe.is_err(), "the server still listens on {port}");
}

/// Run as a child by the test below: asks for the shared server.
#[test]
fn child_asks_for_the_shared_server() {
    if std::env::var_os("WXLINK_PGTEST_CHILD").is_none() {
        return;
    }
    assert!(wxlink_pgtest::shared_or_skip("child_asks_for_the_shared_server").is_none());
}

#[test]
fn without_binaries_a_test_is_skipped_loudly_unless_required() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let skipped = dir.path().join("skipped.txt");
    let child = |require: bool| {
        let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
        cmd.args([
            "--exact",
            "server::child_asks_for_the_shared_server",
            "--nocapture",
        ])
        .env("WXLINK_PGTEST_CHILD", "1")
        .env(wxlink_pgtest::BIN_ENV, dir.path().join("no-such-bin"))
        .env(wxlink_pgtest::SKIPPED_FILE_ENV, &skipped)
        .env_remove(wxlink_pgtest::REQUIRE_ENV);
        if require {
            cmd.env(wxlink_pgtest::REQUIRE_ENV, "1");
        }
        cmd.stdin(Stdio::null()).output().expect("run the child")
    };
    let out = child(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("SKIPPED child_asks_for_the_shared_server"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&skipped)
            .expect("the skip list")
            .trim(),
        "child_asks_for_the_shared_server"
    );
    let out = child(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a required PostgreSQL must not be skipped"
    );
    assert!(stderr.contains("no PostgreSQL server binaries"), "{stderr}");
}
