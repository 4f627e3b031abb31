//! The sanitizer's and the redactor's reports count every change they make: a result whose
//! reports are all zero is the result as it came, so the gateway sends it back unchanged
//! without keeping a copy to compare against.

use portcullis_config::RedactSet;
use portcullis_guard::redact::Redactor;
use portcullis_guard::sanitize::{SanitizeOptions, sanitize_result};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text made of pieces that are plain, hidden (tags, bidi, zero-width, controls, joiners),
/// or secrets and personal data.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z ]{0,12}",
        Just("\u{E0041}".to_owned()),
        Just("\u{202E}".to_owned()),
        Just("\u{200B}".to_owned()),
        Just("\u{200D}".to_owned()),
        Just("\u{1b}".to_owned()),
        Just("\r\n\t".to_owned()),
        Just("é👨".to_owned()),
        Just("ghp_0123456789abcdefghijABCDEFGHIJ012345".to_owned()),
        Just("alice@example.com".to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat())
}

/// A result with text in every place the sanitizer looks (and one it does not).
fn result() -> impl Strategy<Value = Value> {
    (text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e)| {
        json!({
            "content": [
                {"type": "text", "text": a},
                {"type": "resource", "resource": {"uri": "file:///x", "text": b}},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "mystery", "text": c}
            ],
            "structuredContent": {"note": d, "list": [e.clone(), 3, null]},
            "messages": [{"role": "user", "content": {"type": "text", "text": e}}]
        })
    })
}

#[cfg(test)]
static REDACTOR: std::sync::LazyLock<Redactor> =
    std::sync::LazyLock::new(|| Redactor::new(&[RedactSet::Secrets, RedactSet::Pii], &[]).unwrap());

#[test]
fn the_sample_secrets_and_hidden_characters_are_caught() {
    let mut value = json!({"content": [{"type": "text",
        "text": "ghp_0123456789abcdefghijABCDEFGHIJ012345 alice@example.com"}]});
    assert_eq!(REDACTOR.redact_json(&mut value).count, 2, "{value}");
    let mut value =
        json!({"content": [{"type": "text", "text": "a\u{E0041}\u{202E}\u{200B}\u{1b}b"}]});
    let report = sanitize_result(&mut value, &SanitizeOptions { max_text_bytes: 64 });
    assert_eq!(report.removed_total(), 4, "{value}");
}

proptest! {
    #[test]
    fn sanitizer_reports_every_change(mut value in result(), budget in 0usize..64) {
        let before = value.clone();
        let report = sanitize_result(&mut value, &SanitizeOptions { max_text_bytes: budget });
        let counted = report.removed_total() > 0 || report.truncated_bytes > 0;
        prop_assert_eq!(counted, value != before, "{:?}", report);
    }

    #[test]
    fn redactor_reports_every_change(mut value in result()) {
        let before = value.clone();
        let report = REDACTOR.redact_json(&mut value);
        prop_assert_eq!(report.count > 0, value != before, "{:?}", report);
    }
}
