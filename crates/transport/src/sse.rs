//! Server-Sent Events framing (the subset MCP uses: `id`, `event`, `data`, `retry`, comments).

use bytes::{Bytes, BytesMut};

/// One decoded SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Errors the decoder reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE event larger than {0} bytes")]
    TooLarge(usize),
    #[error("SSE stream is not UTF-8")]
    NotUtf8,
}

/// Incremental decoder: feed chunks, take complete events. Bounded: an event (or a line) larger
/// than `max_event` is an error, so a hostile upstream cannot make us buffer without limit.
#[derive(Debug)]
pub struct SseDecoder {
    buf: BytesMut,
    current: SseEvent,
    has_data: bool,
    max_event: usize,
    event_bytes: usize,
}

impl SseDecoder {
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            current: SseEvent::default(),
            has_data: false,
            max_event,
            event_bytes: 0,
        }
    }

    /// Adds bytes and returns every event they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            let line = self.buf.split_to(pos);
            // Swallow the terminator (\n, \r, or \r\n). A lone \r at the end of the buffer may be
            // followed by \n in the next chunk; treating it as a terminator and then seeing an
            // empty line is harmless only if we skip that \n, so peek.
            let term = self.buf.split_to(1);
            if term.first() == Some(&b'\r') && self.buf.first() == Some(&b'\n') {
                let _ = self.buf.split_to(1);
            }
            self.line(&line, &mut out)?;
        }
        if self.buf.len() > self.max_event {
            return Err(SseError::TooLarge(self.max_event));
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.current));
            } else {
                self.current = SseEvent::default();
            }
            self.has_data = false;
            self.event_bytes = 0;
            return Ok(());
        }
        self.event_bytes += line.len();
        if self.event_bytes > self.max_event {
            return Err(SseError::TooLarge(self.max_event));
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.current.id = Some(value.to_owned()),
            "event" => self.current.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }
}

/// Encodes one event. `data` must be a single line (JSON-RPC messages are serialized compactly).
pub fn encode(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 32);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

/// An event with an id and no data: primes a stream so the client can resume from it.
pub fn encode_prime(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: \n\n"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn decodes_across_chunk_boundaries() {
        let mut d = SseDecoder::new(1024);
        let mut got = d.feed(b"id: 1\nevent: message\nda").unwrap();
        assert!(got.is_empty());
        got.extend(
            d.feed(b"ta: {\"a\":1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n")
                .unwrap(),
        );
        assert_eq!(
            got,
            vec![
                SseEvent {
                    id: Some("1".into()),
                    event: Some("message".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    id: None,
                    event: None,
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn crlf_split_between_chunks_is_one_terminator() {
        let mut d = SseDecoder::new(1024);
        let mut got = d.feed(b"data: a\r").unwrap();
        got.extend(d.feed(b"\n\r\n").unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, "a");
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut d = SseDecoder::new(16);
        assert_eq!(d.feed(&[b'x'; 64]), Err(SseError::TooLarge(16)));
        let mut d = SseDecoder::new(16);
        assert!(d.feed(b"data: 0123456789\ndata: 0123456789\n").is_err());
    }

    #[test]
    fn encode_then_decode() {
        let mut d = SseDecoder::new(1024);
        let got = d.feed(&encode(Some("s-1"), br#"{"x":1}"#)).unwrap();
        assert_eq!(got[0].id.as_deref(), Some("s-1"));
        assert_eq!(got[0].data, r#"{"x":1}"#);
        let primed = d.feed(&encode_prime("s-0")).unwrap();
        assert!(primed.is_empty() || primed[0].data.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut d = SseDecoder::new(256);
            for c in chunks {
                if d.feed(&c).is_err() { break; }
            }
        }
    }
}
