//! The demo's echo bot: a plain long-poll loop on `WxLinkClient`.
//!
//! For each inbound message it shows "typing…", echoes the message back and
//! cancels "typing…". A text comes back as `echo: <text>`, split into
//! several messages when it is long; an image or a file is downloaded,
//! decrypted and sent back through a fresh encrypted upload. It reports
//! each message it handled on a channel, so the demo knows when to check.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc::UnboundedSender;
use wxlink_client::WxLinkClient;
use wxlink_proto::{MessageItemType, WeixinMessage};

/// What the bot reports to the demo.
#[derive(Debug)]
pub enum BotEvent {
    /// A message was handled; `result` says whether every reply went out.
    Handled {
        /// The inbound message's id.
        message_id: u64,
        /// `Err` with the reason when a reply failed.
        result: std::result::Result<(), String>,
    },
    /// A poll failed (the bot retries after a short pause).
    PollFailed(String),
}

/// Polls and echoes until the task is aborted.
pub async fn run(client: WxLinkClient, events: UnboundedSender<BotEvent>, workdir: PathBuf) {
    if let Err(e) = client.notify_start().await {
        tracing::warn!("notifystart failed: {e}");
    }
    let mut cursor = String::new();
    loop {
        let batch = match client.poll(cursor.clone()).await {
            Ok(batch) => batch,
            Err(e) => {
                let _ = events.send(BotEvent::PollFailed(format!("{:#}", anyhow::Error::new(e))));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        cursor = batch.next_cursor.clone();
        for msg in batch.messages() {
            let result = echo(&client, msg, &workdir)
                .await
                .map_err(|e| format!("{e:#}"));
            let _ = events.send(BotEvent::Handled {
                message_id: msg.message_id.unwrap_or_default(),
                result,
            });
        }
    }
}

/// Answers one message: typing, echo, cancel typing.
async fn echo(client: &WxLinkClient, msg: &WeixinMessage, workdir: &std::path::Path) -> Result<()> {
    let user = msg
        .from_user_id
        .clone()
        .filter(|u| !u.is_empty())
        .context("the message has no sender")?;
    let ctx = msg.context_token.clone();
    client
        .send_typing(&user)
        .context_token(ctx.clone())
        .await
        .context("showing \"typing…\" failed")?;
    let reply = reply(client, msg, &user, workdir).await;
    // Cancel "typing…" whatever happened to the reply.
    let cancel = client.cancel_typing(&user).context_token(ctx).await;
    reply?;
    cancel.context("cancelling \"typing…\" failed")?;
    Ok(())
}

/// Sends the echo of `msg` to `user`.
async fn reply(
    client: &WxLinkClient,
    msg: &WeixinMessage,
    user: &str,
    workdir: &std::path::Path,
) -> Result<()> {
    let ctx = msg.context_token.clone();
    let item = msg.item_list.first().context("the message has no item")?;
    match item.item_type {
        Some(MessageItemType::Text) => {
            let text = item
                .text_item
                .as_ref()
                .and_then(|t| t.text.as_deref())
                .unwrap_or_default();
            client
                .send_text_chunked(user, format!("echo: {text}"))
                .context_token(ctx)
                .await
                .context("sending the echo failed")?;
        }
        Some(MessageItemType::Image | MessageItemType::File | MessageItemType::Video) => {
            let name = item
                .file_item
                .as_ref()
                .and_then(|f| f.file_name.clone())
                .filter(|n| !n.is_empty());
            let path = workdir.join(format!("inbound-{}", msg.message_id.unwrap_or_default()));
            client
                .download_media_to(item, &path)
                .await
                .context("downloading the user's media failed")?;
            let mut send = client.send_media_from_path(user, &path).context_token(ctx);
            if let Some(name) = name {
                send = send.file_name(name);
            }
            send.await.context("sending the media back failed")?;
        }
        _ => bail!("the demo bot only echoes text, images and files"),
    }
    Ok(())
}
