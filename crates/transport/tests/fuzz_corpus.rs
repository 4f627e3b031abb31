//! Replays tests/corpus/fuzz/sse_framing (the `sse_framing` fuzz target's property): the first
//! byte sets the chunk size; decoding never panics and never yields an event over the bound,
//! and the incremental reader the upstream client uses gives the same events' data.

use std::path::PathBuf;

use portcullis_transport::sse::{SseDecoder, SsePieces};

#[test]
fn sse_framing_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/fuzz/sse_framing");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let Some((&split, rest)) = data.split_first() else {
            continue;
        };
        let mut decoder = SseDecoder::new(4096);
        let mut reader = SsePieces::new();
        let (mut decoded, mut read, mut current) = (Vec::new(), Vec::new(), Vec::new());
        let mut whole = true;
        for chunk in rest.chunks(usize::from(split).max(1)) {
            match decoder.feed(chunk) {
                Ok(events) => {
                    assert!(events.iter().all(|e| e.data.len() <= 4096));
                    decoded.extend(events.into_iter().map(|e| e.data.into_bytes()));
                }
                Err(_) => {
                    whole = false;
                    break;
                }
            }
            reader.feed_events(chunk, &mut current, &mut read);
        }
        if whole {
            assert_eq!(read, decoded);
        }
        seen += 1;
    }
    assert!(seen >= 3);
}
