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

/// Incremental decoder: feed chunks, take complete events. The upstream client reads with
/// [`SsePieces`], which never collects an event; this decoder is the whole-event reference it
/// is checked against (tests, the `sse_framing` fuzz target). Bounded: an event (or a line) larger
/// than `max_event` is an error, so a hostile upstream cannot make us buffer without limit.
#[derive(Debug)]
pub struct SseDecoder {
    buf: BytesMut,
    current: SseEvent,
    has_data: bool,
    max_event: usize,
    event_bytes: usize,
    /// Bytes at the start of `buf` already searched for a line end (none there): a long line
    /// arriving in many chunks is searched once, not once per chunk.
    scanned: usize,
    /// The last line ended with `\r` at the end of a chunk: a `\n` starting the next one
    /// belongs to it.
    after_cr: bool,
}

impl SseDecoder {
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            current: SseEvent::default(),
            has_data: false,
            max_event,
            event_bytes: 0,
            scanned: 0,
            after_cr: false,
        }
    }

    /// Adds bytes and returns every event they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let chunk = match chunk.split_first() {
            Some((b'\n', rest)) if self.after_cr => rest,
            _ => chunk,
        };
        if !chunk.is_empty() {
            self.after_cr = false;
        }
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self
            .buf
            .get(self.scanned..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n' || b == b'\r'))
            .map(|k| self.scanned + k)
        {
            self.scanned = 0;
            let line = self.buf.split_to(pos);
            // Swallow the terminator (\n, \r, or \r\n). A \r at the end of the buffer may be
            // followed by \n in the next chunk, which then belongs to this terminator.
            let term = self.buf.split_to(1);
            if term.first() == Some(&b'\r') {
                if self.buf.first() == Some(&b'\n') {
                    let _ = self.buf.split_to(1);
                } else if self.buf.is_empty() {
                    self.after_cr = true;
                }
            }
            self.line(&line, &mut out)?;
        }
        self.scanned = self.buf.len();
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

/// A piece of an SSE stream as [`SsePieces`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsePiece<'a> {
    /// More of the current event's data (`\n` between two `data` lines included).
    Data(&'a [u8]),
    /// The current event ended (a blank line after at least one `data` line).
    End,
}

/// Where [`SsePieces`] is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    LineStart,
    /// Reading a field name (its bytes so far in `name`).
    Name,
    /// After `data:`, where one space may follow.
    DataStart,
    DataValue,
    /// A comment or a field other than `data`: skipped to the end of the line.
    Skip,
}

/// Incremental SSE reader that hands out each event's data as it arrives, without collecting
/// it: what a caller that may pass a long event on needs ([`SseDecoder`] returns whole events).
/// Only `data` matters to it; other fields and comments are skipped. It keeps nothing but a
/// field name of at most 16 bytes.
#[derive(Debug)]
pub struct SsePieces {
    at: At,
    name: [u8; 16],
    name_len: usize,
    has_data: bool,
    after_cr: bool,
}

impl Default for SsePieces {
    fn default() -> Self {
        Self::new()
    }
}

impl SsePieces {
    pub fn new() -> Self {
        Self {
            at: At::LineStart,
            name: [0; 16],
            name_len: 0,
            has_data: false,
            after_cr: false,
        }
    }

    /// Reads `chunk`, appending its pieces to `out` (borrowed from `chunk`).
    pub fn feed<'a>(&mut self, chunk: &'a [u8], out: &mut Vec<SsePiece<'a>>) {
        let mut i = 0;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            i = 1;
        }
        if !chunk.is_empty() {
            self.after_cr = false;
        }
        while i < chunk.len() {
            let rest = chunk.get(i..).unwrap_or_default();
            let eol = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let line_end = eol.map_or(chunk.len(), |k| i + k);
            match self.at {
                At::LineStart if line_end == i => {
                    // A blank line ends the event.
                    if self.has_data {
                        out.push(SsePiece::End);
                    }
                    self.has_data = false;
                }
                At::LineStart if rest.first() == Some(&b':') => self.at = At::Skip,
                At::LineStart => {
                    self.at = At::Name;
                    self.name_len = 0;
                    continue;
                }
                At::Name => {
                    let line = chunk.get(i..line_end).unwrap_or_default();
                    let colon = line.iter().position(|&b| b == b':');
                    let part = line.get(..colon.unwrap_or(line.len())).unwrap_or_default();
                    let end = self.name_len + part.len();
                    match self.name.get_mut(self.name_len..end) {
                        Some(slot) => {
                            slot.copy_from_slice(part);
                            self.name_len = end;
                        }
                        // Longer than any field name that matters.
                        None => self.name_len = self.name.len() + 1,
                    }
                    let is_data = self.name.get(..self.name_len) == Some(b"data".as_slice());
                    match colon {
                        Some(k) => {
                            self.at = if is_data { At::DataStart } else { At::Skip };
                            i += k + 1;
                            if is_data {
                                self.data_line(out);
                            }
                            continue;
                        }
                        // A field without a value: `data` alone is an empty data line.
                        None if line_end < chunk.len() && is_data => self.data_line(out),
                        None => {}
                    }
                }
                At::DataStart => {
                    self.at = At::DataValue;
                    if rest.first() == Some(&b' ') {
                        i += 1;
                    }
                    continue;
                }
                At::DataValue => {
                    if let Some(value) = chunk.get(i..line_end).filter(|v| !v.is_empty()) {
                        out.push(SsePiece::Data(value));
                    }
                }
                At::Skip => {}
            }
            // Past the line's end, if this chunk holds it.
            let Some(&terminator) = chunk.get(line_end) else {
                return;
            };
            self.at = At::LineStart;
            i = line_end + 1;
            if terminator == b'\r' {
                match chunk.get(i) {
                    Some(b'\n') => i += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
    }

    /// Reads `chunk` and appends to `events` the whole data of each event it ends; the data of
    /// an event still open is kept in `open` for the next chunk. What [`SseDecoder`] would
    /// return for the same bytes (the tests and the fuzz target hold the two together).
    pub fn feed_events(&mut self, chunk: &[u8], open: &mut Vec<u8>, events: &mut Vec<Vec<u8>>) {
        let mut out = Vec::new();
        self.feed(chunk, &mut out);
        for piece in out {
            match piece {
                SsePiece::Data(d) => open.extend_from_slice(d),
                SsePiece::End => events.push(std::mem::take(open)),
            }
        }
    }

    /// A `data` line begins: a line break joins it to the event's earlier data.
    fn data_line<'a>(&mut self, out: &mut Vec<SsePiece<'a>>) {
        if self.has_data {
            out.push(SsePiece::Data(b"\n"));
        }
        self.has_data = true;
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
    fn a_cr_that_ends_a_chunk_takes_the_lf_that_starts_the_next() {
        let mut d = SseDecoder::new(1024);
        let mut got = d.feed(b"data: a\r").unwrap();
        got.extend(d.feed(b"\ndata: b\r").unwrap());
        got.extend(d.feed(b"\n").unwrap());
        got.extend(d.feed(b"\r\n").unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, "a\nb");
    }

    #[test]
    fn a_long_line_in_many_chunks_is_one_line() {
        let mut d = SseDecoder::new(1 << 20);
        assert!(d.feed(b"data: ").unwrap().is_empty());
        for _ in 0..1000 {
            assert!(d.feed(&[b'x'; 100]).unwrap().is_empty());
        }
        let got = d.feed(b"\n\n").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), 100_000);
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

    /// Reads `chunks` with [`SsePieces`], joining the data of each event.
    fn pieces(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut reader = SsePieces::new();
        let (mut events, mut open) = (Vec::new(), Vec::new());
        for chunk in chunks {
            reader.feed_events(chunk, &mut open, &mut events);
        }
        events
    }

    #[test]
    fn pieces_give_each_events_data() {
        let stream: &[u8] = b"event: message\nid: 3\ndata: {\"a\":\ndata:1}\n\n: note\ndata\ndata: x\r\n\r\nretry: 5\n\n";
        let whole = pieces(&[stream]);
        assert_eq!(whole, vec![b"{\"a\":\n1}".to_vec(), b"\nx".to_vec()]);
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(pieces(&[a, b]), whole, "split at {at}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(pieces(&bytes), whole);
    }

    proptest! {
        /// Whatever the stream and however it is split, the pieces give each event's data
        /// exactly as the whole-event decoder does.
        #[test]
        fn pieces_agree_with_the_decoder(
            lines in proptest::collection::vec(
                prop_oneof![
                    "data(: ?)?[a-z{}\":, ]{0,12}",
                    ": ?[a-z]{0,5}",
                    "(event|id|retry|dat|datax): ?[a-z0-9]{0,5}",
                    Just(String::new()),
                ],
                0..24,
            ),
            breaks in proptest::collection::vec(prop_oneof!["\n", "\r", "\r\n"], 24),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let mut stream = Vec::new();
            for (line, br) in lines.iter().zip(breaks.iter()) {
                stream.extend_from_slice(line.as_bytes());
                stream.extend_from_slice(br.as_bytes());
            }
            let mut decoder = SseDecoder::new(1 << 20);
            let expected: Vec<Vec<u8>> = decoder
                .feed(&stream)
                .unwrap()
                .into_iter()
                .map(|e| e.data.into_bytes())
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for c in cuts {
                chunks.push(&stream[from..c]);
                from = c;
            }
            chunks.push(&stream[from..]);
            prop_assert_eq!(pieces(&chunks), expected);
        }

        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut d = SseDecoder::new(256);
            for c in chunks {
                if d.feed(&c).is_err() { break; }
            }
        }
    }
}
