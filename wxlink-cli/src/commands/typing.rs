//! `wxlink typing`: show or cancel the typing indicator.

use std::process::ExitCode;

use anyhow::{Context, Result};
use wxlink_client::WxLinkClient;
use wxlink_proto::ContextToken;

use crate::cli::TypingArgs;

/// Sends one typing status.
pub async fn run(client: &WxLinkClient, args: &TypingArgs) -> Result<ExitCode> {
    let ctx = args.context_token.clone().map(ContextToken::new);
    if args.cancel {
        client
            .cancel_typing(&args.to)
            .context_token(ctx)
            .await
            .with_context(|| format!("cannot cancel the typing indicator for {}", args.to))?;
        println!("typing indicator cancelled for {}", args.to);
    } else {
        client
            .send_typing(&args.to)
            .context_token(ctx)
            .await
            .with_context(|| format!("cannot show the typing indicator to {}", args.to))?;
        println!("typing indicator shown to {}", args.to);
    }
    Ok(ExitCode::SUCCESS)
}
