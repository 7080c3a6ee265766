//! Worked examples of the wire rules: sanitised `bot_agent` values
//! (docs/protocol.md, "`base_info` and `bot_agent`"), client versions and the
//! `X-WECHAT-UIN` example (docs/protocol.md, "Request headers"), and the
//! redaction of every secret type.

use wxlink_proto::*;

const FALLBACK: &str = "OpenClaw";

fn agent(input: Option<&str>) -> String {
    sanitize_bot_agent(input, FALLBACK)
}

#[test]
fn bot_agent_fallbacks() {
    for input in [None, Some(""), Some("   "), Some("\t\n")] {
        assert_eq!(agent(input), FALLBACK, "{input:?}");
    }
    assert_eq!(agent(Some("garbage no slashes here")), FALLBACK);
    assert_eq!(agent(Some(&format!("{}/1.0", "a".repeat(33)))), FALLBACK);
    // The fallback is whatever the caller passes, e.g. WxLink's default.
    assert_eq!(
        sanitize_bot_agent(None, DEFAULT_BOT_AGENT),
        DEFAULT_BOT_AGENT
    );
}

#[test]
fn bot_agent_table_rows() {
    let unchanged = [
        "MyBot/1.2.0",
        "MyBot/1.2.0 LangChain/0.3.5",
        "MyBot/1.2.0 (region=cn;env=prod)",
        "MyBot/1.2.0-rc.1+build.5",
    ];
    for input in unchanged {
        assert_eq!(agent(Some(input)), input);
    }
    let rows = [
        (
            "MyBot/1.2.0 (built   on linux)",
            "MyBot/1.2.0 (built on linux)",
        ),
        ("My Bot ValidApp/1.0", "ValidApp/1.0"),
        ("中文/1.0 MyBot/1.2.0", "MyBot/1.2.0"),
        ("(orphan) MyBot/1.0", "MyBot/1.0"),
        ("MyBot/1.0 (中文)", "MyBot/1.0"),
        ("(x) A/1 (c1) (c2)", "A/1 (c1)"),
        ("A/1 (a(b)c)", "A/1"),
    ];
    for (input, want) in rows {
        assert_eq!(agent(Some(input)), want, "{input}");
    }
}

#[test]
fn bot_agent_grammar_limits() {
    // Name and version may each be 32 characters, not 33.
    let name32 = format!("{}/1", "n".repeat(32));
    assert_eq!(agent(Some(&name32)), name32);
    let version32 = format!("A/{}", "9".repeat(32));
    assert_eq!(agent(Some(&version32)), version32);
    assert_eq!(agent(Some(&format!("A/{}", "9".repeat(33)))), FALLBACK);
    // `+` is allowed in versions only.
    assert_eq!(agent(Some("A+B/1 C/1+2")), "C/1+2");
    // A comment may be 64 characters, not 65.
    let c64 = format!("A/1 ({})", "c".repeat(64));
    assert_eq!(agent(Some(&c64)), c64);
    assert_eq!(agent(Some(&format!("A/1 ({})", "c".repeat(65)))), "A/1");
    // Surrounding whitespace goes; separators collapse to one space.
    assert_eq!(agent(Some("  A/1 \t\n B/2  ")), "A/1 B/2");
}

#[test]
fn bot_agent_length_cap_keeps_whole_leading_tokens() {
    let input: Vec<String> = (0..50).map(|i| format!("App{i}/1.0")).collect();
    let input = input.join(" ");
    let out = agent(Some(&input));
    assert!(out.len() <= 256, "{} bytes", out.len());
    assert!(out.starts_with("App0/1.0 App1/1.0"));
    // Whole tokens only, in order, and as many as fit.
    let tokens: Vec<&str> = out.split(' ').collect();
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(*t, format!("App{i}/1.0"));
    }
    let next = format!(" App{}/1.0", tokens.len());
    assert!(
        out.len() + next.len() > 256,
        "one more token would have fit"
    );

    // A comment travels with its product, so the cut never splits them.
    let with_comments: Vec<String> = (0..20)
        .map(|i| format!("P{i}/1 (comment number {i})"))
        .collect();
    let out = agent(Some(&with_comments.join(" ")));
    assert!(out.len() <= 256);
    assert!(out.ends_with(')'), "{out}");
}

#[test]
fn client_version_table() {
    let rows = [
        ("1.0.11", 65_547, 0x0001_000B),
        ("1.0.3", 65_539, 0x0001_0003),
        ("2.2.0", 131_584, 0x0002_0200),
        ("2.4.3", 132_099, 0x0002_0403),
        ("wx-link/0.2.0", 512, 0x0000_0200),
    ];
    for (version, decimal, hex) in rows {
        assert_eq!(encode_client_version(version), decimal, "{version}");
        assert_eq!(decimal, hex);
    }
    // Our own version encodes without panicking and keeps the top byte 0.
    assert_eq!(encode_client_version(DEFAULT_CHANNEL_VERSION) >> 24, 0);
}

#[test]
fn wechat_uin_example() {
    assert_eq!(wechat_uin(3_141_592_653), "MzE0MTU5MjY1Mw==");
    assert_eq!(wechat_uin(0), "MA==");
    assert_ne!(random_wechat_uin(), random_wechat_uin());
}

#[test]
fn secrets_never_print() {
    let raw = "tok-SECRET-abc123XYZ";
    let outputs = [
        (
            format!("{:?}", BotToken::new(raw)),
            format!("{}", BotToken::new(raw)),
        ),
        (
            format!("{:?}", ContextToken::new(raw)),
            format!("{}", ContextToken::new(raw)),
        ),
        (
            format!("{:?}", TypingTicket::new(raw)),
            format!("{}", TypingTicket::new(raw)),
        ),
        (
            format!("{:?}", AesKeyText::new(raw)),
            format!("{}", AesKeyText::new(raw)),
        ),
    ];
    for (debug, display) in outputs {
        for out in [debug, display] {
            assert!(out.contains("** redacted **"), "{out}");
            for part in ["tok", "SECRET", "abc123", "XYZ"] {
                assert!(!out.contains(part), "{out} shows {part}");
            }
        }
    }
    // The whole message that carries them is safe to log too.
    let msg = WeixinMessage {
        context_token: Some(ContextToken::new(raw)),
        item_list: vec![MessageItem {
            image_item: Some(ImageItem {
                aeskey: Some(AesKeyText::new(raw)),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(!format!("{msg:?}").contains("SECRET"));
    // Serialising is where the secret belongs.
    assert!(serde_json::to_string(&msg).unwrap().contains(raw));
}

#[test]
fn endpoint_table_matches_the_reference() {
    let rows: Vec<_> = ENDPOINTS
        .iter()
        .map(|e| {
            (
                e.name,
                e.method,
                e.path,
                e.auth,
                e.timeout,
                e.retry,
                e.base_info,
            )
        })
        .collect();
    use Auth::{Bearer, None as NoAuth};
    use HttpMethod::{Get, Post};
    use RetrySafety::{Always, BeforeSend};
    use TimeoutClass::{Api, Config, LongPoll};
    assert_eq!(
        rows,
        vec![
            (
                "get_bot_qrcode",
                Post,
                "ilink/bot/get_bot_qrcode",
                NoAuth,
                Api,
                Always,
                false
            ),
            (
                "get_qrcode_status",
                Get,
                "ilink/bot/get_qrcode_status",
                NoAuth,
                LongPoll,
                Always,
                false
            ),
            (
                "getupdates",
                Post,
                "ilink/bot/getupdates",
                Bearer,
                LongPoll,
                BeforeSend,
                true
            ),
            (
                "sendmessage",
                Post,
                "ilink/bot/sendmessage",
                Bearer,
                Api,
                BeforeSend,
                true
            ),
            (
                "getconfig",
                Post,
                "ilink/bot/getconfig",
                Bearer,
                Config,
                Always,
                true
            ),
            (
                "sendtyping",
                Post,
                "ilink/bot/sendtyping",
                Bearer,
                Config,
                Always,
                true
            ),
            (
                "getuploadurl",
                Post,
                "ilink/bot/getuploadurl",
                Bearer,
                Api,
                Always,
                true
            ),
            (
                "notifystart",
                Post,
                "ilink/bot/msg/notifystart",
                Bearer,
                Config,
                Always,
                true
            ),
            (
                "notifystop",
                Post,
                "ilink/bot/msg/notifystop",
                Bearer,
                Config,
                Always,
                true
            ),
        ]
    );
    assert_eq!(
        EndpointInfo::by_path("ilink/bot/sendmessage").map(|e| e.name),
        Some("sendmessage")
    );
    assert_eq!(
        EndpointInfo::by_name("getupdates").map(|e| e.request),
        Some("GetUpdatesRequest")
    );
    assert_eq!(
        TimeoutClass::LongPoll.default_timeout(),
        Some(std::time::Duration::from_secs(35))
    );
    assert_eq!(TimeoutClass::Cdn.default_timeout(), None);
}

#[test]
fn query_parameters_of_the_login_calls() {
    let req = GetBotQrcodeRequest::default();
    assert_eq!(
        GetBotQrcode::query(&req),
        vec![("bot_type", "3".to_owned())]
    );
    // docs/protocol.md, "QR login": the body always carries the list, `[]` when
    // empty.
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"local_token_list":[]}"#
    );
    let req = GetBotQrcodeRequest {
        bot_type: Some("7".into()),
        local_token_list: vec![BotToken::new("t1")],
    };
    assert_eq!(
        GetBotQrcode::query(&req),
        vec![("bot_type", "7".to_owned())]
    );
    assert_eq!(
        serde_json::to_string(&req).unwrap(),
        r#"{"local_token_list":["t1"]}"#
    );

    let poll = GetQrcodeStatusRequest {
        qrcode: Some("q&1".into()),
        ..Default::default()
    };
    assert_eq!(
        GetQrcodeStatus::query(&poll),
        vec![("qrcode", "q&1".to_owned())]
    );
    let poll = GetQrcodeStatusRequest {
        qrcode: Some("q".into()),
        verify_code: Some("42".into()),
    };
    assert_eq!(
        GetQrcodeStatus::query(&poll),
        vec![("qrcode", "q".to_owned()), ("verify_code", "42".to_owned())]
    );
    assert!(GetUpdates::query(&GetUpdatesRequest::default()).is_empty());
}
