//! Untrusted bytes of an upstream's SSE stream, split into arbitrary chunks: the decoder must
//! never panic and never return an event larger than its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_transport::sse::SseDecoder;

const MAX_EVENT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = SseDecoder::new(MAX_EVENT);
    for chunk in rest.chunks(usize::from(split).max(1)) {
        match decoder.feed(chunk) {
            Ok(events) => {
                for e in events {
                    assert!(e.data.len() <= MAX_EVENT);
                }
            }
            Err(_) => return,
        }
    }
});
