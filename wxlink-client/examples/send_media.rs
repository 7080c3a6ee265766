//! Sends a file as an image, a video or a file attachment, chosen from its
//! content and name, with an optional caption.
//!
//! ```text
//! cargo run -p wxlink-client --example send_media -- --sim-url http://127.0.0.1:PORT ./photo.jpg
//! cargo run -p wxlink-client --example send_media -- --account account.json \
//!     --to o9cq80...@im.wechat --caption "the chart" ./chart.png
//! ```
//!
//! Against the real service, `--to` must be a user who wrote to the bot
//! recently; pass `--context TOKEN` with their latest context token.

mod util;

use wxlink_proto::ContextToken;

#[tokio::main]
async fn main() -> Result<(), util::BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let target = util::connect(&args).await?;
    let to = util::flag(&args, "--to")
        .or(target.sim_user)
        .ok_or("give --to USER")?;
    let path = args
        .last()
        .filter(|a| !a.starts_with("--"))
        .ok_or("give a file path")?;

    let mut request = target
        .client
        .send_media_from_path(&to, path)
        .progress(|p| eprint!("\r{:?} {} of {:?} bytes   ", p.phase, p.done, p.total));
    if let Some(caption) = util::flag(&args, "--caption") {
        request = request.caption(caption);
    }
    if let Some(ctx) = util::flag(&args, "--context") {
        request = request.context_token(ContextToken::new(ctx));
    }
    let sent = request.await?;
    eprintln!();
    println!(
        "sent {} bytes as {:?} (md5 {}), message id {}",
        sent.size,
        sent.kind,
        sent.md5,
        sent.id()
    );
    Ok(())
}
