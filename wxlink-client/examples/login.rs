//! Logs a bot in by QR code and saves the account record.
//!
//! ```text
//! cargo run -p wxlink-client --example login -- --out account.json
//! cargo run -p wxlink-client --example login -- --sim-url http://127.0.0.1:PORT --out /tmp/a.json
//! ```
//!
//! Against the real service it prints the URL to open as a QR code in
//! WeChat, and reads a pairing code from standard input if the phone shows
//! one. With `--account FILE` it passes that account's token, so a bot that
//! is already bound is reported as "already connected".

mod util;

use std::io::BufRead;

use wxlink_client::{AccountRecord, LoginCallbacks, LoginOptions, LoginOutcome, LoginState};

struct Terminal;

impl LoginCallbacks for Terminal {
    fn on_qr(&mut self, url: &str) {
        println!("open this in WeChat (or render it as a QR code): {url}");
    }

    fn on_status(&mut self, state: &LoginState) {
        match state {
            LoginState::Scanned => println!("scanned; confirm on the phone"),
            LoginState::Refreshed { .. } => println!("the code expired; here is a new one"),
            _ => {}
        }
    }

    fn verify_code(&mut self, retry: bool) -> impl Future<Output = Option<String>> + Send {
        let prompt = if retry {
            "wrong code, try again"
        } else {
            "enter the code shown on the phone"
        };
        println!("{prompt}:");
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).is_ok();
        std::future::ready(read.then(|| line.trim().to_owned()))
    }
}

#[tokio::main]
async fn main() -> Result<(), util::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let out = util::flag(&args, "--out").unwrap_or_else(|| "account.json".into());
    let mut options = LoginOptions::new();
    if let Some(url) = util::sim_url(&args) {
        options = options.base_url(url);
    }
    if let Some(path) = util::flag(&args, "--account") {
        options = options.local_tokens([AccountRecord::load(path)?.token]);
    }
    match wxlink_client::login_with_qr(options, Terminal).await? {
        LoginOutcome::Confirmed(result) => {
            result.to_account().save(&out)?;
            println!("logged in as {}; saved {out}", result.account_id);
        }
        LoginOutcome::AlreadyConnected => println!("already connected; keep your account file"),
        _ => println!("login ended"),
    }
    Ok(())
}
