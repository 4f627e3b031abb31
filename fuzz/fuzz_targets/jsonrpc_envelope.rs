//! Untrusted bytes of a POST /mcp body: the JSON-RPC envelope parser must never panic, and a
//! message it accepts must serialize back to JSON that parses to the same kind of message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_mcp::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = portcullis_mcp::parse(data, 64) {
        let bytes = message.to_bytes();
        let again = portcullis_mcp::parse(&bytes, 64).expect("re-encoded message parses");
        assert_eq!(
            std::mem::discriminant(&message),
            std::mem::discriminant(&again)
        );
        if let (Message::Request(a), Message::Request(b)) = (&message, &again) {
            assert_eq!(a.method, b.method);
            assert_eq!(a.id, b.id);
        }
    }
});
