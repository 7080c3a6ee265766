//! An echo bot: replies to every text message with the same text, showing
//! "typing…" meanwhile, and reports the size of inbound media.
//!
//! ```text
//! cargo run -p wxlink-sim --bin wxlink-sim            # prints its URL
//! cargo run -p wxlink-client --example echo_bot -- --sim-url http://127.0.0.1:PORT
//! curl -XPOST 'http://127.0.0.1:PORT/_sim/inject/text' -d '{"text":"hi"}'
//!
//! cargo run -p wxlink-client --example echo_bot -- --account account.json
//! ```
//!
//! `--max-messages N` stops after N replies.

mod util;

use wxlink_proto::{MessageItemType, MessageType};

#[tokio::main]
async fn main() -> Result<(), util::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let max: Option<usize> = util::flag(&args, "--max-messages").and_then(|n| n.parse().ok());
    let client = util::connect(&args).await?.client;

    client.notify_start().await?;
    let mut cursor = String::new();
    let mut replies = 0;
    while max.is_none_or(|m| replies < m) {
        let updates = tokio::select! {
            r = client.poll(&cursor) => r?,
            _ = tokio::signal::ctrl_c() => break,
        };
        cursor = updates.next_cursor.clone();
        for msg in updates.messages() {
            // Skip our own messages; reply to users only.
            if msg.message_type == Some(MessageType::Bot) {
                continue;
            }
            let Some(user) = msg.from_user_id.clone() else {
                continue;
            };
            let ctx = msg.context_token.clone();
            for item in &msg.item_list {
                if item.item_type == Some(MessageItemType::Text) {
                    let text = item.text_item.as_ref().and_then(|t| t.text.clone());
                    let Some(text) = text.filter(|t| !t.is_empty()) else {
                        continue;
                    };
                    // Typing is best effort: a user without a ticket is fine.
                    let _ = client.send_typing(&user).context_token(ctx.clone()).await;
                    client
                        .send_text(&user, text)
                        .context_token(ctx.clone())
                        .await?;
                    let _ = client.cancel_typing(&user).context_token(ctx.clone()).await;
                } else if client.resolve_media(item).is_ok() {
                    let media = client.download_media(item).await?;
                    let reply = format!("got {} bytes of {}", media.bytes.len(), media.mime);
                    client
                        .send_text(&user, reply)
                        .context_token(ctx.clone())
                        .await?;
                }
                replies += 1;
            }
        }
    }
    client.notify_stop().await?;
    println!("replied {replies} times");
    Ok(())
}
