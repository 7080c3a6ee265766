//! `wxlink send`: a text (chunked when long) or a media file or URL.

use std::process::ExitCode;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use wxlink_client::{WxLinkClient, chunk_text};
use wxlink_media::{Phase, Progress};
use wxlink_proto::ContextToken;

use crate::cli::SendArgs;
use crate::ui::{ProgressBar, human_bytes};

/// Sends what the arguments say and prints each message id on its own line.
pub async fn run(client: &WxLinkClient, args: &SendArgs) -> Result<ExitCode> {
    let ctx = args.context_token.clone().map(ContextToken::new);
    if let Some(text) = &args.text {
        return send_text(client, &args.to, text, ctx, args.chunk as usize).await;
    }
    let (request, label) = if let Some(path) = &args.file {
        if !path.is_file() {
            bail!("{} is not a readable file", path.display());
        }
        (
            client.send_media_from_path(&args.to, path),
            path.display().to_string(),
        )
    } else if let Some(url) = &args.url {
        let mut request = client.send_media_from_url(&args.to, url);
        if args.url_allow_loopback {
            request = request.fetch_options(
                wxlink_client::media::FetchOptions::default()
                    .policy(wxlink_client::media::AddressPolicy::AllowLoopback),
            );
        }
        (request, url.clone())
    } else {
        bail!("nothing to send: give --text, --file or --url")
    };
    let mut request = request.context_token(ctx);
    if let Some(caption) = args.caption.clone().filter(|c| !c.is_empty()) {
        request = request.caption(caption);
    }
    // One bar per phase (hashing, fetching, uploading), each shown once
    // its total is known and large enough.
    let bars: Arc<Mutex<Option<PhaseBar>>> = Arc::new(Mutex::new(None));
    let hook_bars = bars.clone();
    let name = short_label(&label);
    request = request.progress(move |p: Progress| {
        let Ok(mut current) = hook_bars.lock() else {
            return;
        };
        if current.as_ref().is_none_or(|(phase, _)| *phase != p.phase) {
            if let Some((_, Some(old))) = current.take() {
                old.finish();
            }
            let bar = p.total.and_then(|t| {
                ProgressBar::for_upload(&format!("{} {name}", phase_label(p.phase)), t)
            });
            *current = Some((p.phase, bar));
        }
        if let Some((_, Some(bar))) = current.as_ref() {
            bar.update(p.done);
        }
    });
    let result = request.await;
    if let Some((_, Some(bar))) = bars.lock().ok().and_then(|mut current| current.take()) {
        bar.finish();
    }
    let sent = result.with_context(|| format!("sending {label} to {} failed", args.to))?;
    if let Some(caption) = &sent.caption {
        println!("{}", caption.id());
    }
    println!("{}", sent.id());
    eprintln!(
        "sent {label} as {} ({}, md5 {})",
        sent.kind.as_str(),
        human_bytes(sent.size),
        sent.md5
    );
    Ok(ExitCode::SUCCESS)
}

/// The phase being shown and its bar (none when the phase is small or
/// stderr is not a terminal).
type PhaseBar = (Phase, Option<ProgressBar>);

/// The word shown before a progress bar.
fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Hashing => "hashing",
        Phase::Fetching => "fetching",
        Phase::Uploading => "uploading",
        Phase::Downloading => "downloading",
        _ => "working on",
    }
}

/// The last path or URL segment, for the progress bar's label.
fn short_label(label: &str) -> String {
    let trimmed = label.split(['?', '#']).next().unwrap_or(label);
    trimmed
        .rsplit(['/', '\\'])
        .find(|s| !s.is_empty())
        .unwrap_or(trimmed)
        .to_owned()
}

/// Sends `text` in chunks of at most `max_chars` characters, printing each
/// id as soon as its message is accepted.
async fn send_text(
    client: &WxLinkClient,
    to: &str,
    text: &str,
    ctx: Option<ContextToken>,
    max_chars: usize,
) -> Result<ExitCode> {
    let chunks = chunk_text(text, max_chars);
    if chunks.is_empty() {
        bail!("the text is empty; the server does not accept empty messages");
    }
    let total = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let sent = client
            .send_text(to, chunk)
            .context_token(ctx.clone())
            .await
            .with_context(|| {
                if total == 1 {
                    format!("sending the text to {to} failed")
                } else {
                    format!(
                        "sending part {} of {total} to {to} failed ({i} sent)",
                        i + 1
                    )
                }
            })?;
        println!("{}", sent.id());
    }
    if total > 1 {
        eprintln!("sent {total} messages");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_last_segment() {
        assert_eq!(short_label("dir/sub/photo.jpg"), "photo.jpg");
        assert_eq!(short_label("https://h/a/report.pdf?x=1"), "report.pdf");
        assert_eq!(short_label("plain"), "plain");
    }
}
