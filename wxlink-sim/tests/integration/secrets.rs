//! Secret audit of what the simulator records: the records a test reads
//! keep context tokens and typing tickets in their redacting types, and the
//! request log never holds the `Authorization` header.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{api, base_info, sim, text_reply};

const CTX: &str = "CTX-MARKER-SIM-4411";
const TICKET: &str = "TICKET-MARKER-SIM-9e";

#[tokio::test]
async fn records_and_request_log_never_show_secrets() {
    let sim = sim().await;
    let user = sim.user_id();
    let token = sim.token().expose_secret().to_owned();
    let reply = api(&sim, "sendmessage", text_reply(&user, "hi", Some(CTX))).await;
    assert_eq!(reply.status, 200);
    let reply = api(
        &sim,
        "sendtyping",
        serde_json::json!({"ilink_user_id": user, "typing_ticket": TICKET, "status": 1, "base_info": base_info()}),
    )
    .await;
    assert_eq!(reply.status, 200);

    assert_eq!(sim.sent_messages().len(), 1);
    let shown = format!(
        "{:?} {:?} {:?}",
        sim.sent_messages(),
        sim.typing_calls(),
        sim.request_log()
    );
    for secret in [token.as_str(), CTX, TICKET] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    sim.shutdown().await;
}
