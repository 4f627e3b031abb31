//! Replays the fuzz seeds in tests/corpus/fuzz/ (the same properties as the `cargo fuzz`
//! targets in fuzz/), so every `cargo test` run covers them.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "the seed reader is a test helper outside #[test] functions"
)]

use std::path::PathBuf;

use portcullis_mcp::{Message, headers};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/fuzz")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn jsonrpc_envelope_seeds() {
    let mut accepted = Vec::new();
    for (path, data) in seeds("jsonrpc_envelope") {
        if let Ok(message) = portcullis_mcp::parse(&data, 64) {
            accepted.push(path.file_name().unwrap().to_string_lossy().into_owned());
            let again = portcullis_mcp::parse(&message.to_bytes(), 64)
                .unwrap_or_else(|e| panic!("{}: re-encoded message fails: {e}", path.display()));
            assert_eq!(
                std::mem::discriminant(&message),
                std::mem::discriminant(&again)
            );
            if let (Message::Request(a), Message::Request(b)) = (&message, &again) {
                assert_eq!((&a.method, &a.id), (&b.method, &b.id));
            }
        }
    }
    // Batches, duplicate keys, too-deep nesting, bad ids and non-UTF-8 are refused.
    assert_eq!(accepted, ["notification", "request", "response"]);
}

#[test]
fn mcp_header_seeds() {
    for (path, data) in seeds("mcp_headers") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let _ = headers::decode_value(text);
        let encoded = headers::encode_value(text);
        assert_eq!(
            headers::decode_value(&encoded).ok().as_deref(),
            Some(text),
            "{}",
            path.display()
        );
    }
}
