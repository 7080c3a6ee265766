//! Properties that must hold for every input, not just the worked examples.

use proptest::prelude::*;
use wxlink_proto::*;

/// True when `s` is one product of the `bot_agent` grammar (docs/protocol.md,
/// "`base_info` and `bot_agent`"), with its comment.
fn is_valid_token(token: &str) -> bool {
    let (product, comment) = match token.split_once(" (") {
        Some((p, c)) => (p, Some(c)),
        None => (token, None),
    };
    let Some((name, version)) = product.split_once('/') else {
        return false;
    };
    let name_ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let version_ok = (1..=32).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    let comment_ok = comment.is_none_or(|c| {
        c.strip_suffix(')').is_some_and(|inner| {
            (1..=64).contains(&inner.len())
                && inner
                    .bytes()
                    .all(|b| (0x20..=0x7E).contains(&b) && b != b'(' && b != b')')
        })
    });
    name_ok && version_ok && comment_ok
}

/// Splits a sanitised value back into its products.
fn tokens(out: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut in_comment = false;
    for word in out.split(' ') {
        if in_comment || word.starts_with('(') {
            let last = tokens.last_mut().map(|t| {
                t.push(' ');
                t.push_str(word);
            });
            assert!(last.is_some(), "comment without product in {out:?}");
            in_comment = !word.ends_with(')');
        } else {
            tokens.push(word.to_owned());
        }
    }
    tokens
}

fn agentish() -> impl Strategy<Value = String> {
    // Mostly plausible pieces, with noise, so valid tokens actually occur.
    let piece = prop_oneof![
        "[A-Za-z0-9_.-]{1,34}/[A-Za-z0-9_.+-]{1,34}",
        r"\([ -~]{0,66}\)",
        r"\([a-z ]{1,10}",
        "[a-z)(/ ]{1,6}",
        "[\\PC]{1,5}",
        Just("\t\n".to_owned()),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.join(" "))
}

proptest! {
    #[test]
    fn bot_agent_output_is_valid_bounded_and_stable(input in agentish()) {
        let out = sanitize_bot_agent(Some(&input), "FALLBACK");
        prop_assert!(!out.is_empty());
        if out != "FALLBACK" {
            prop_assert!(out.len() <= 256, "{} bytes", out.len());
            for token in tokens(&out) {
                prop_assert!(is_valid_token(&token), "bad token {token:?} in {out:?}");
            }
            // Sanitising a clean value changes nothing.
            prop_assert_eq!(sanitize_bot_agent(Some(&out), "FALLBACK"), out);
        }
    }

    #[test]
    fn client_version_packs_three_bytes(a in 0u32..=255, b in 0u32..=255, c in 0u32..=255) {
        prop_assert_eq!(encode_client_version(&format!("{a}.{b}.{c}")), (a << 16) | (b << 8) | c);
    }

    #[test]
    fn message_ids_are_exact_as_number_or_string(id: u64) {
        let from_number: WeixinMessage =
            serde_json::from_str(&format!(r#"{{"message_id":{id}}}"#)).unwrap();
        let from_string: WeixinMessage =
            serde_json::from_str(&format!(r#"{{"message_id":"{id}"}}"#)).unwrap();
        prop_assert_eq!(from_number.message_id, Some(id));
        prop_assert_eq!(from_string.message_id, Some(id));
        prop_assert_eq!(
            serde_json::to_string(&from_string).unwrap(),
            format!(r#"{{"message_id":{id}}}"#)
        );
    }

    #[test]
    fn any_integer_enum_value_survives(v: i64) {
        let item: MessageItem = serde_json::from_str(&format!(r#"{{"type":{v}}}"#)).unwrap();
        let kind = item.item_type.unwrap();
        prop_assert_eq!(kind.to_wire(), v);
        prop_assert_eq!(MessageItemType::from_wire(v), kind);
        prop_assert_eq!(serde_json::to_string(&item).unwrap(), format!(r#"{{"type":{v}}}"#));
    }

    #[test]
    fn any_qr_status_string_survives(s in "[a-z_]{0,24}") {
        let status = QrStatus::from_wire(&s);
        prop_assert_eq!(status.as_str(), s.as_str());
        let json = serde_json::to_string(&status).unwrap();
        prop_assert_eq!(serde_json::from_str::<QrStatus>(&json).unwrap(), status);
    }
}
