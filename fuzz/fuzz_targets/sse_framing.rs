//! Untrusted bytes of an upstream's SSE stream, split into arbitrary chunks: the decoder must
//! never panic and never return an event larger than its bound, and the incremental reader
//! the upstream client uses (`SsePieces`) must give the same events' data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_transport::sse::{SseDecoder, SsePieces};

const MAX_EVENT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = SseDecoder::new(MAX_EVENT);
    let mut reader = SsePieces::new();
    let (mut decoded, mut read, mut current) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in rest.chunks(usize::from(split).max(1)) {
        match decoder.feed(chunk) {
            Ok(events) => {
                for e in events {
                    assert!(e.data.len() <= MAX_EVENT);
                    decoded.push(e.data.into_bytes());
                }
            }
            Err(_) => return,
        }
        reader.feed_events(chunk, &mut current, &mut read);
    }
    assert_eq!(read, decoded);
});
