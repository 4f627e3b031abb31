//! Untrusted `Mcp-Name` / `Mcp-Param-*` header values: decoding never panics, and what encodes
//! decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_mcp::headers;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = headers::decode_value(text);
    let encoded = headers::encode_value(text);
    assert_eq!(headers::decode_value(&encoded).ok().as_deref(), Some(text));
});
