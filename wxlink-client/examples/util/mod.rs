//! Argument handling shared by the examples: connect to a running simulator
//! (`--sim-url URL`, or `WXLINK_SIM_URL`) or to the real service with a
//! saved account (`--account FILE`). Each example uses only part of it.

#![allow(dead_code)]

use tower::ServiceExt;
use wxlink_client::{AccountRecord, WxLinkClient};
use wxlink_proto::BotToken;
use wxlink_transport::{Body, HttpsTransport};

/// A boxed error for `main`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the command line chose.
pub struct Target {
    /// The client to use.
    pub client: WxLinkClient,
    /// The simulator's default user, when running against one.
    pub sim_user: Option<String>,
}

/// The value after `--name`, if given.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The simulator URL from `--sim-url` or `WXLINK_SIM_URL`.
pub fn sim_url(args: &[String]) -> Option<String> {
    flag(args, "--sim-url").or_else(|| std::env::var("WXLINK_SIM_URL").ok())
}

/// Reads the simulator's `/_sim/info` (its token, CDN URL and default user).
pub async fn sim_info(url: &str) -> Result<serde_json::Value, BoxError> {
    let req = http::Request::get(format!("{}/_sim/info", url.trim_end_matches('/')))
        .body(Body::empty())?;
    let resp = HttpsTransport::new().oneshot(req).await?;
    let bytes = resp.into_body().collect_limited(1 << 20).await?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Builds the client the command line asks for.
pub async fn connect(args: &[String]) -> Result<Target, BoxError> {
    if let Some(url) = sim_url(args) {
        let info = sim_info(&url).await?;
        let text = |k: &str| info[k].as_str().unwrap_or_default().to_owned();
        let client = WxLinkClient::builder()
            .base_url(text("base_url"))
            .cdn_base_url(text("cdn_base_url"))
            .token(BotToken::new(text("token")))
            .bot_agent("WxLinkExample/0.1")
            .build()?;
        return Ok(Target {
            client,
            sim_user: Some(text("user_id")),
        });
    }
    let Some(path) = flag(args, "--account") else {
        return Err("give --sim-url URL (or WXLINK_SIM_URL) or --account FILE".into());
    };
    let client = WxLinkClient::from_account(&AccountRecord::load(path)?)?;
    Ok(Target {
        client,
        sim_user: None,
    })
}
