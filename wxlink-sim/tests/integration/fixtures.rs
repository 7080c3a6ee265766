//! The protocol reference's example requests, sent verbatim, are accepted,
//! and the simulator's answers have the shapes of the example responses.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeSet;

use common::{api, poll};
use serde_json::{Value, json};

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!(
            "../../../wxlink-proto/tests/fixtures/",
            $name
        )))
        .unwrap()
    };
}

/// The user the fixtures talk to.
const ALICE: &str = "o9cq80EXAMPLEuserAlice01@im.wechat";

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn example_requests_are_accepted_as_sent() {
    let sim = common::sim().await;
    sim.inject_text(ALICE, "hello");

    let updates = api(&sim, "getupdates", fixture!("getupdates.req.first.json"))
        .await
        .json();
    let resp = fixture!("getupdates.resp.text-and-image.json");
    let resp_keys: BTreeSet<_> = keys(&resp)
        .into_iter()
        .filter(|k| k != "longpolling_timeout_ms")
        .collect();
    assert!(resp_keys.is_subset(&keys(&updates)), "{updates}");
    let msg_keys: BTreeSet<_> = keys(&resp["msgs"][0])
        .into_iter()
        .filter(|k| k != "session_id")
        .collect();
    assert!(msg_keys.is_subset(&keys(&updates["msgs"][0])), "{updates}");

    let r = api(&sim, "sendmessage", fixture!("sendmessage.req.text.json")).await;
    assert_eq!(r.json(), fixture!("sendmessage.resp.ok.json"));
    assert_eq!(sim.sent_messages()[0].to_user_id(), ALICE);

    let config = api(&sim, "getconfig", fixture!("getconfig.req.json"))
        .await
        .json();
    assert_eq!(keys(&config), keys(&fixture!("getconfig.resp.json")));
    assert_eq!(config["ret"], 0);

    // The typing fixtures carry an example ticket; use the one just issued.
    for name in ["start", "cancel"] {
        let mut req = match name {
            "start" => fixture!("sendtyping.req.start.json"),
            _ => fixture!("sendtyping.req.cancel.json"),
        };
        req["typing_ticket"] = config["typing_ticket"].clone();
        let r = api(&sim, "sendtyping", req).await;
        assert_eq!(r.json(), fixture!("sendtyping.resp.json"));
    }

    let r = api(
        &sim,
        "getuploadurl",
        fixture!("getuploadurl.req.image.json"),
    )
    .await;
    assert_eq!(
        keys(&r.json()),
        keys(&fixture!("getuploadurl.resp.upload-param.json"))
    );

    for (path, req, resp) in [
        (
            "msg/notifystart",
            fixture!("notifystart.req.json"),
            fixture!("notifystart.resp.json"),
        ),
        (
            "msg/notifystop",
            fixture!("notifystop.req.json"),
            fixture!("notifystop.resp.json"),
        ),
    ] {
        assert_eq!(api(&sim, path, req).await.json(), resp);
    }
    assert_eq!(sim.typing_calls().len(), 2);
    assert_eq!(sim.notify_calls().len(), 2);
}

#[tokio::test]
async fn example_login_request_and_error_shapes_match() {
    let sim = common::sim().await;
    let url = format!("{}/ilink/bot/get_bot_qrcode?bot_type=3", sim.base_url());
    let body = fixture!("get_bot_qrcode.req.json").to_string();
    let r = common::send(http::Method::POST, &url, &[], body)
        .await
        .unwrap();
    assert_eq!(keys(&r.json()), keys(&fixture!("get_bot_qrcode.resp.json")));
    let q = r.json()["qrcode"].as_str().unwrap().to_owned();
    let status = format!("{}/ilink/bot/get_qrcode_status?qrcode={q}", sim.base_url());
    assert_eq!(
        common::get(&status).await.json(),
        fixture!("get_qrcode_status.resp.wait.json")
    );
    assert_eq!(
        common::get(&status).await.json(),
        fixture!("get_qrcode_status.resp.scaned.json")
    );
    let confirmed = common::get(&status).await.json();
    assert_eq!(
        keys(&confirmed),
        keys(&fixture!("get_qrcode_status.resp.confirmed.json"))
    );

    let r = common::api_with(
        &sim,
        "getupdates",
        None,
        fixture!("getupdates.req.resume.json"),
    )
    .await;
    assert_eq!(r.json(), fixture!("error.session-expired.json"));
    let r = api(&sim, "getconfig", json!({"context_token": "x"})).await;
    assert_eq!(r.json(), fixture!("getconfig.resp.missing-user.json"));
    // An empty poll keeps the cursor field and the documented shape.
    let empty = poll(&sim, "").await;
    assert!(
        keys(&fixture!("getupdates.resp.empty-synthetic-timeout.json")).is_subset(&keys(&empty))
    );
}
