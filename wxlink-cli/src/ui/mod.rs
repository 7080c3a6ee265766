//! What the tool shows a person, below every command: QR codes, login
//! status lines and transfer progress.
//!
//! Commands and the demo both draw through this module; it knows nothing
//! of either, so the layers stay one-way.

mod progress;
mod qr;

use std::io::Write;

use wxlink_client::LoginState;

pub use progress::{ProgressBar, human_bytes};

/// Draws `url` as a QR code on stdout, followed by the URL itself.
pub fn print_qr(url: &str) {
    let mut out = std::io::stdout().lock();
    match qr::render(url) {
        Ok(code) => {
            let _ = writeln!(out, "Scan this QR code with WeChat:\n");
            let _ = write!(out, "{code}");
        }
        Err(e) => {
            let _ = writeln!(out, "(the QR code cannot be drawn: {e})");
        }
    }
    let _ = writeln!(out, "\nOr open this link in WeChat: {url}");
    let _ = out.flush();
}

/// A one-line description of a login state change.
pub fn login_status(state: &LoginState) -> Option<&'static str> {
    match state {
        LoginState::Waiting => Some("waiting for the scan…"),
        LoginState::Scanned => Some("scanned; confirm the login on the phone…"),
        LoginState::NeedVerifyCode { retry: false } => {
            Some("the server asks for the pairing code shown on the phone")
        }
        LoginState::NeedVerifyCode { retry: true } => Some("that pairing code was wrong"),
        LoginState::Refreshed { .. } => Some("the QR code expired; here is a new one"),
        LoginState::Confirmed(_) => Some("confirmed"),
        LoginState::AlreadyConnected => Some("already connected"),
        LoginState::Failed(_) => Some("failed"),
        _ => None,
    }
}
