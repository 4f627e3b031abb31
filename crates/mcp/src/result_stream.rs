//! Streaming pass-through of a JSON-RPC response's `result`.
//!
//! An upstream answers a request with a body such as
//! `{"jsonrpc":"2.0","id":7,"result":{"content":[...]}}` that may be very large. The gateway
//! feeds that body chunk by chunk into a [`ResultScanner`], which validates the whole document
//! as strict JSON while it goes and writes out the bytes of the `result` member's value (minus
//! its closing brace). The gateway sends its own head (`{"jsonrpc":"2.0","id":<id>,"result":`),
//! those bytes, and its own tail, so the body is never held whole.
//!
//! The scanner is a byte-level state machine: a `State`, a stack of open container kinds, and
//! a few small buffers (a partial escape or UTF-8 sequence carried between chunks, a decoded
//! member name, the raw `id`). Its memory does not grow with the document, only with nesting.
//!
//! Acceptance matches `serde_json::from_slice::<serde_json::Value>` (without the
//! `arbitrary_precision` and `float_roundtrip` features): the same grammar, the same rejection of
//! unpaired surrogate escapes, and the same "number out of range" rule for numbers that would
//! overflow an `f64`. serde_json also refuses nesting of 128 or more; give `max_depth` below 128
//! for identical acceptance.

use std::str;

/// Longest raw `id` text kept; a longer id makes the body [`ScanError::NotAResult`].
const MAX_ID_LEN: usize = 128;
/// Longest decoded member name compared against known names; longer names match none.
const MAX_NAME_LEN: usize = 32;
/// Longest escape (`\uD83D\uDE00`); a UTF-8 sequence is at most 4 bytes.
const UNIT_MAX: usize = 12;
/// Top-level members of the result whose string values are filtered for hidden characters.
const FILTERED_MEMBERS: [&str; 4] = ["content", "contents", "messages", "structuredContent"];

/// Streaming reader of one JSON-RPC response body that passes its `result` through.
///
/// Feed the body with [`feed`](ResultScanner::feed) in chunks split anywhere, then call
/// [`finish`](ResultScanner::finish). The first error is sticky: every later call returns it.
pub struct ResultScanner {
    max_depth: usize,
    hidden: fn(char) -> bool,
    /// Offset of the current chunk's first byte from the start of the body.
    base: u64,
    state: State,
    /// Kinds of the open containers, outermost first; its length is the current depth.
    stack: Vec<Kind>,
    failed: Option<ScanError>,

    /// How the string being read is handled (valid while `state` is [`State::Str`]).
    string: StrCtx,
    /// The first bytes of an escape or UTF-8 sequence that a chunk ended inside.
    unit: [u8; UNIT_MAX],
    unit_len: usize,
    /// The number being read (valid while `state` is [`State::Number`]).
    number: Number,
    /// The bytes still expected of `true`, `false` or `null`.
    literal: &'static [u8],
    /// Decoded text of an envelope key, a result key or the `jsonrpc` value, up to
    /// [`MAX_NAME_LEN`] bytes; `text_long` says it was longer.
    text: String,
    text_long: bool,

    /// The envelope member whose value is being read (set when a top-level key ends).
    member: Member,
    seen_result: bool,
    seen_id: bool,
    seen_jsonrpc: bool,
    /// Raw text of the `id` value; `capturing_id` while it is being read.
    id: Vec<u8>,
    capturing_id: bool,

    /// The result's `{` has been read.
    result_started: bool,
    /// Inside the result object: its bytes are written to the output.
    result_open: bool,
    /// The result member being read is one of [`FILTERED_MEMBERS`].
    filter_member: bool,
    /// The result member being read holds links (`content` or `contents`).
    link_member: LinkMember,
    /// The key of the member being read in a `content`/`contents` item.
    item_key: ItemKey,
    /// The member being read in a `content` item's `resource` is `uri`.
    resource_uri: bool,
    /// Written in front of each link's text (empty: links pass unchanged).
    link_prefix: Vec<u8>,
    /// The result member being read is `resultType`.
    in_result_type: bool,
    result_type: Option<String>,
    /// The result object has a member.
    result_members: bool,
    removed: u64,
    written: u64,
}

/// Why a body cannot be streamed as a response with an object `result`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// Not JSON (grammar, invalid UTF-8, a raw control character in a string, trailing data ...); `offset` counts bytes from the body's start.
    #[error("not JSON at byte {offset}: {what}")]
    Syntax { offset: u64, what: &'static str },
    /// Arrays and objects nested deeper than the scanner's `max_depth`.
    #[error("nested deeper than {0}")]
    TooDeep(usize),
    /// The body is JSON but not a response whose `result` is an object: an `error` member, a result that is not an object, a top level that is not an object, no result member, both `result` and `error`, a duplicate `result`/`id`/`jsonrpc` member, `jsonrpc` not exactly "2.0".
    ///
    /// Also: an `id` that is not a string, number or null, or whose text is longer than 128
    /// bytes. This error can come before the rest of the body has been validated.
    #[error("not a response with an object result: {0}")]
    NotAResult(&'static str),
}

/// What the end of the body showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The envelope's `id` member as its raw JSON text (`7`, `"a"`, `null`), if present and at most 128 bytes; `None` when absent (longer ids: NotAResult error).
    pub id: Option<String>,
    /// The result object's top-level `resultType`: its decoded text when it is a string of at
    /// most 32 bytes, otherwise empty; `None` when the result has no such member.
    pub result_type: Option<String>,
    /// The result object has at least one member (a caller appending one needs a comma).
    pub members: bool,
    /// Hidden characters removed from strings (see `hidden` below).
    pub removed: u64,
    /// Bytes of the result value written to `out` in all (not counting the closing brace, which is never written).
    pub written: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
}

/// Where the scanner is in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between tokens: whitespace, then what [`Expect`] says.
    Between(Expect),
    /// Inside a string (key or value), after its opening quote.
    Str,
    /// Inside a number, after its first byte.
    Number,
    /// Inside `true`, `false` or `null`, after its first byte.
    Literal,
}

/// The token expected next when between tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The top-level value (which must be an object).
    Start,
    /// A value: after `:`, or after `,` in an array.
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After an array element: `,` or `]`.
    ArrayNext,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a member's value: `,` or `}`.
    ObjectNext,
    /// After the top-level value: only whitespace.
    Done,
}

/// A result member whose items carry links ([`ResultScanner::with_link_prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkMember {
    None,
    /// `content`: items' `uri`, and the `uri` of an item's `resource`.
    Content,
    /// `contents`: items' `uri`.
    Contents,
}

/// The key of a member of a `content` or `contents` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKey {
    Other,
    Uri,
    Resource,
}

/// The envelope member whose value is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Other,
    Result,
    Id,
    Jsonrpc,
}

/// How the current string is handled.
#[derive(Debug, Clone, Copy, Default)]
struct StrCtx {
    /// The string is an object key.
    key: bool,
    /// Its decoded text goes to `text` (envelope keys, result keys, keys of link items, the
    /// `jsonrpc` and `resultType` values).
    decode: bool,
    /// Hidden characters are removed from it (values under a filtered result member).
    filter: bool,
}

/// Progress through a number, with the magnitude serde_json would compute for it.
///
/// serde_json (without `float_roundtrip`) keeps a `u64` significand and an `i32` power of ten
/// and rejects a number whose `f64` would be infinite; this mirrors its arithmetic step for step
/// so that the same numbers are rejected.
#[derive(Debug, Clone, Copy)]
struct Number {
    phase: NumPhase,
    significand: u64,
    /// Power of ten applied to `significand` before the exponent part: +1 for each integer
    /// digit that did not fit, -1 for each fraction digit that did.
    exponent: i32,
    int_overflow: bool,
    frac_overflow: bool,
    exp_negative: bool,
    exp: i32,
    /// The exponent part overflowed an `i32` with a zero significand or a negative sign (the
    /// value is zero; the other case is rejected at once).
    exp_overflow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumPhase {
    /// After `-`.
    Minus,
    /// The integer part is `0`.
    Zero,
    /// In the integer part (starting 1-9).
    Int,
    /// After `.`.
    Dot,
    /// In the fraction digits.
    Frac,
    /// After `e`/`E`.
    E,
    /// After the exponent's sign.
    ESign,
    /// In the exponent digits.
    Exp,
}

/// `1e289` to `1e308`, the powers of ten with which a `u64` significand can overflow an `f64`
/// (the same literals as serde_json's table).
const POW10_HIGH: [f64; 20] = [
    1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, 1e300, 1e301,
    1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];

impl Number {
    fn new(first: u8) -> Number {
        let (phase, significand) = match first {
            b'-' => (NumPhase::Minus, 0),
            b'0' => (NumPhase::Zero, 0),
            d => (NumPhase::Int, u64::from(d.wrapping_sub(b'0'))),
        };
        Number {
            phase,
            significand,
            exponent: 0,
            int_overflow: false,
            frac_overflow: false,
            exp_negative: false,
            exp: 0,
            exp_overflow: false,
        }
    }

    /// Takes the next byte: `Ok(true)` when it belongs to the number, `Ok(false)` when the
    /// number ended before it (the byte is left for the caller).
    fn step(&mut self, b: u8) -> Result<bool, &'static str> {
        use NumPhase::*;
        self.phase = match (self.phase, b) {
            (Minus, b'0') => Zero,
            (Minus, b'1'..=b'9') => {
                self.significand = u64::from(b - b'0');
                Int
            }
            (Zero, b'0'..=b'9') => return Err("leading zero in number"),
            (Int, b'0'..=b'9') => {
                self.int_digit(b - b'0');
                Int
            }
            (Zero | Int, b'.') => Dot,
            (Dot | Frac, b'0'..=b'9') => {
                self.frac_digit(b - b'0');
                Frac
            }
            (Zero | Int | Frac, b'e' | b'E') => E,
            (E, b'+') => ESign,
            (E, b'-') => {
                self.exp_negative = true;
                ESign
            }
            (E | ESign | Exp, b'0'..=b'9') => {
                self.exp_digit(b - b'0')?;
                Exp
            }
            (Minus | Dot | E | ESign, _) => return Err("invalid number"),
            (Zero | Int | Frac | Exp, _) => return Ok(false),
        };
        Ok(true)
    }

    /// The significand with the digit `d` appended, if it fits.
    fn shifted(&self, d: u8) -> Option<u64> {
        self.significand
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d)))
    }

    fn int_digit(&mut self, d: u8) {
        if !self.int_overflow {
            match self.shifted(d) {
                Some(v) => {
                    self.significand = v;
                    return;
                }
                // From here on serde_json only counts the digits (this one included).
                None => self.int_overflow = true,
            }
        }
        self.exponent = self.exponent.saturating_add(1);
    }

    fn frac_digit(&mut self, d: u8) {
        if self.frac_overflow {
            return;
        }
        match self.shifted(d) {
            Some(v) => {
                self.significand = v;
                self.exponent = self.exponent.saturating_sub(1);
            }
            // serde_json ignores this digit and all later fraction digits.
            None => self.frac_overflow = true,
        }
    }

    fn exp_digit(&mut self, d: u8) -> Result<(), &'static str> {
        if self.exp_overflow {
            return Ok(());
        }
        if self.phase != NumPhase::Exp {
            self.exp = i32::from(d);
            return Ok(());
        }
        match self
            .exp
            .checked_mul(10)
            .and_then(|v| v.checked_add(i32::from(d)))
        {
            Some(v) => self.exp = v,
            None if self.significand != 0 && !self.exp_negative => {
                return Err("number out of range");
            }
            None => self.exp_overflow = true,
        }
        Ok(())
    }

    /// The number may end here.
    fn complete(&self) -> bool {
        matches!(
            self.phase,
            NumPhase::Zero | NumPhase::Int | NumPhase::Frac | NumPhase::Exp
        )
    }

    /// serde_json would not reject the finished number as out of range.
    fn in_range(&self) -> bool {
        let integer = matches!(self.phase, NumPhase::Zero | NumPhase::Int) && !self.int_overflow;
        if integer || self.exp_overflow {
            return true;
        }
        let exponent = match (self.phase, self.exp_negative) {
            (NumPhase::Exp, false) => self.exponent.saturating_add(self.exp),
            (NumPhase::Exp, true) => self.exponent.saturating_sub(self.exp),
            _ => self.exponent,
        };
        // serde_json multiplies the significand by 10^exponent and fails on infinity; dividing
        // (a negative exponent) never overflows, and below 10^289 a u64 cannot reach f64::MAX.
        if self.significand == 0 || exponent < 289 {
            return true;
        }
        usize::try_from(exponent - 289)
            .ok()
            .and_then(|k| POW10_HIGH.get(k))
            .is_some_and(|pow| (self.significand as f64 * pow).is_finite())
    }
}

/// One chunk being fed, with where output and id capture started in it.
struct Feed<'a> {
    chunk: &'a [u8],
    out: &'a mut Vec<u8>,
    /// Bytes of `chunk` from here on are pending copy to `out` (None: not writing).
    copy_from: Option<usize>,
    /// Bytes of `chunk` from here on belong to the `id` value.
    id_from: Option<usize>,
}

impl Feed<'_> {
    fn copy(&mut self, from: usize, to: usize) {
        if let Some(bytes) = self.chunk.get(from..to) {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Leaves `chunk[from..to]` out of the output.
    fn cut(&mut self, from: usize, to: usize) {
        if let Some(start) = self.copy_from {
            self.copy(start, from);
            self.copy_from = Some(to);
        }
    }

    /// Writes `bytes` into the output just before `chunk[at]`.
    fn insert(&mut self, at: usize, bytes: &[u8]) {
        if let Some(start) = self.copy_from {
            self.copy(start, at);
            self.out.extend_from_slice(bytes);
            self.copy_from = Some(at);
        }
    }

    /// Writes the pending bytes before `at` and stops writing for the rest of the chunk.
    fn stop(&mut self, at: usize) {
        if let Some(start) = self.copy_from.take() {
            self.copy(start, at);
        }
    }
}

impl ResultScanner {
    /// `max_depth`: most nested arrays/objects allowed in the whole document (the envelope object counts as depth 1). `hidden`: characters to remove from the string VALUES (never keys) found inside the result under its top-level members `content`, `contents`, `messages` and `structuredContent` (at any depth below them); strings elsewhere (e.g. `_meta`, `isError`) pass unchanged.
    ///
    /// `hidden` is asked about every character of those strings except raw (unescaped)
    /// printable ASCII, U+0020 to U+007E, which is always kept.
    pub fn new(max_depth: usize, hidden: fn(char) -> bool) -> ResultScanner {
        ResultScanner {
            max_depth,
            hidden,
            base: 0,
            state: State::Between(Expect::Start),
            stack: Vec::new(),
            failed: None,
            string: StrCtx::default(),
            unit: [0; UNIT_MAX],
            unit_len: 0,
            number: Number::new(b'0'),
            literal: &[],
            text: String::new(),
            text_long: false,
            member: Member::Other,
            seen_result: false,
            seen_id: false,
            seen_jsonrpc: false,
            id: Vec::new(),
            capturing_id: false,
            result_started: false,
            result_open: false,
            filter_member: false,
            link_member: LinkMember::None,
            item_key: ItemKey::Other,
            resource_uri: false,
            link_prefix: Vec::new(),
            in_result_type: false,
            result_type: None,
            result_members: false,
            removed: 0,
            written: 0,
        }
    }

    /// Writes `prefix` in front of the text of every link in the result: the `uri` string of
    /// each object in its `content` or `contents` array, and of the `resource` object of a
    /// `content` item. (Held results prefix only `resource_link` and `resource` items; other
    /// MCP content types carry no `uri`.) `prefix` is written as JSON string text, escaped.
    pub fn with_link_prefix(mut self, prefix: &str) -> ResultScanner {
        let quoted = serde_json::to_string(prefix).unwrap_or_default();
        self.link_prefix = quoted
            .as_bytes()
            .get(1..quoted.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec();
        self
    }

    /// Feeds the next chunk of the body. Appends to `out` the bytes of the `result` member's value that this chunk completes, exactly as the upstream wrote them (whitespace, escapes, member order and number text unchanged) EXCEPT: hidden characters removed (see below), and the result object's final closing `}` is never written (the caller writes its own tail). Bytes before the result value (the envelope's other members) and after it are never written.
    ///
    /// An escape or UTF-8 sequence that the chunk ends inside is written once a later chunk
    /// completes it. When an error is returned, `out` may hold part of the chunk's output.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), ScanError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let before = out.len();
        let mut feed = Feed {
            chunk,
            copy_from: self.result_open.then_some(0),
            id_from: self.capturing_id.then_some(0),
            out,
        };
        let outcome = self.run(&mut feed);
        self.written += feed.out.len().saturating_sub(before) as u64;
        match outcome {
            Ok(()) => {
                self.base += chunk.len() as u64;
                Ok(())
            }
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// True once the result value's opening `{` has been seen (from then on `feed` may write).
    pub fn in_result(&self) -> bool {
        self.result_started
    }

    /// Ends the body: an error if the document is incomplete (`Syntax` with what = "unexpected end"), has no result, or any rule above fails.
    pub fn finish(self) -> Result<End, ScanError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.state != State::Between(Expect::Done) {
            return Err(ScanError::Syntax {
                offset: self.base,
                what: "unexpected end",
            });
        }
        // The envelope rules were checked when the top-level object closed.
        Ok(End {
            id: self
                .seen_id
                .then(|| String::from_utf8_lossy(&self.id).into_owned()),
            result_type: self.result_type,
            members: self.result_members,
            removed: self.removed,
            written: self.written,
        })
    }

    fn syntax(&self, at: usize, what: &'static str) -> ScanError {
        ScanError::Syntax {
            offset: self.base + at as u64,
            what,
        }
    }

    fn run(&mut self, f: &mut Feed<'_>) -> Result<(), ScanError> {
        let len = f.chunk.len();
        let mut i = 0;
        if self.unit_len > 0 {
            i = self.resume_unit(f)?;
        }
        while i < len {
            i = match self.state {
                State::Between(expect) => self.between(f, i, expect)?,
                State::Str => self.scan_string(f, i)?,
                State::Number => self.scan_number(f, i)?,
                State::Literal => self.scan_literal(f, i)?,
            };
        }
        f.stop(len);
        if let Some(from) = f.id_from {
            self.append_id(f.chunk.get(from..).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Skips whitespace from `i` and takes one structural token; returns where to go on.
    fn between(&mut self, f: &mut Feed<'_>, i: usize, expect: Expect) -> Result<usize, ScanError> {
        let chunk = f.chunk;
        let Some(at) = chunk
            .get(i..)
            .and_then(|rest| {
                rest.iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            })
            .map(|k| i + k)
        else {
            return Ok(chunk.len());
        };
        let Some(&b) = chunk.get(at) else {
            return Ok(chunk.len());
        };
        let next = match (expect, b) {
            (Expect::Start | Expect::Value, _) => return self.value_start(f, at, b),
            (Expect::ArrayFirst | Expect::ArrayNext, b']') => return self.close(f, at),
            (Expect::ArrayFirst, _) => return self.value_start(f, at, b),
            (Expect::ArrayNext, b',') => Expect::Value,
            (Expect::ArrayNext, _) => return Err(self.syntax(at, "expected `,` or `]`")),
            (Expect::ObjectFirst | Expect::ObjectNext, b'}') => return self.close(f, at),
            (Expect::ObjectFirst | Expect::Key, b'"') => {
                self.start_string(true);
                return Ok(at + 1);
            }
            (Expect::ObjectFirst | Expect::Key, _) => return Err(self.syntax(at, "expected a key")),
            (Expect::Colon, b':') => Expect::Value,
            (Expect::Colon, _) => return Err(self.syntax(at, "expected `:`")),
            (Expect::ObjectNext, b',') => Expect::Key,
            (Expect::ObjectNext, _) => return Err(self.syntax(at, "expected `,` or `}`")),
            (Expect::Done, _) => return Err(self.syntax(at, "trailing data")),
        };
        self.state = State::Between(next);
        Ok(at + 1)
    }

    /// Takes the first byte `b` (at `at`) of a value, checking the envelope rules first.
    fn value_start(&mut self, f: &mut Feed<'_>, at: usize, b: u8) -> Result<usize, ScanError> {
        if !matches!(
            b,
            b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
        ) {
            return Err(self.syntax(at, "expected a value"));
        }
        match (self.stack.len(), self.member) {
            (0, _) if b != b'{' => return Err(ScanError::NotAResult("top level is not an object")),
            (1, Member::Result) if b != b'{' => {
                return Err(ScanError::NotAResult("result is not an object"));
            }
            (1, Member::Jsonrpc) if b != b'"' => {
                return Err(ScanError::NotAResult("jsonrpc is not a string"));
            }
            (1, Member::Id) => {
                if !matches!(b, b'"' | b'-' | b'0'..=b'9' | b'n') {
                    return Err(ScanError::NotAResult("id is not a string, number or null"));
                }
                f.id_from = Some(at);
                self.capturing_id = true;
            }
            _ => {}
        }
        match b {
            b'{' => {
                self.push(Kind::Object)?;
                self.state = State::Between(Expect::ObjectFirst);
                // An object directly under the envelope is the value of `self.member`.
                if self.stack.len() == 2 && self.member == Member::Result {
                    self.result_started = true;
                    self.result_open = true;
                    self.filter_member = false;
                    f.copy_from = Some(at);
                }
            }
            b'[' => {
                self.push(Kind::Array)?;
                self.state = State::Between(Expect::ArrayFirst);
            }
            b'"' => {
                self.start_string(false);
                if self.at_link() {
                    f.insert(at + 1, &self.link_prefix);
                }
            }
            b't' | b'f' | b'n' => {
                self.literal = match b {
                    b't' => b"rue",
                    b'f' => b"alse",
                    _ => b"ull",
                };
                self.state = State::Literal;
            }
            _ => {
                self.number = Number::new(b);
                self.state = State::Number;
            }
        }
        Ok(at + 1)
    }

    fn push(&mut self, kind: Kind) -> Result<(), ScanError> {
        if self.stack.len() >= self.max_depth {
            return Err(ScanError::TooDeep(self.max_depth));
        }
        self.stack.push(kind);
        Ok(())
    }

    /// Closes the innermost container with the `]` or `}` at `at` (the caller matched the kind).
    fn close(&mut self, f: &mut Feed<'_>, at: usize) -> Result<usize, ScanError> {
        if self.result_open && self.stack.len() == 2 {
            // The result's own closing brace: write what precedes it, never the brace.
            f.stop(at);
            self.result_open = false;
        }
        self.stack.pop();
        self.value_done(f, at + 1)?;
        Ok(at + 1)
    }

    /// A value ended just before `end`: moves on in the enclosing container and applies the
    /// envelope rules to the envelope's member values and to the envelope itself.
    fn value_done(&mut self, f: &mut Feed<'_>, end: usize) -> Result<(), ScanError> {
        match self.stack.last() {
            None => {
                self.state = State::Between(Expect::Done);
                if !self.seen_result {
                    return Err(ScanError::NotAResult("no result member"));
                }
                if !self.seen_jsonrpc {
                    return Err(ScanError::NotAResult("no jsonrpc member"));
                }
            }
            Some(Kind::Array) => self.state = State::Between(Expect::ArrayNext),
            Some(Kind::Object) => {
                self.state = State::Between(Expect::ObjectNext);
                if self.stack.len() == 1 {
                    match self.member {
                        Member::Id => {
                            if let Some(from) = f.id_from.take() {
                                self.append_id(f.chunk.get(from..end).unwrap_or_default())?;
                            }
                            self.capturing_id = false;
                        }
                        Member::Jsonrpc if self.text_long || self.text != "2.0" => {
                            return Err(ScanError::NotAResult("jsonrpc is not \"2.0\""));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn append_id(&mut self, bytes: &[u8]) -> Result<(), ScanError> {
        if self.id.len() + bytes.len() > MAX_ID_LEN {
            return Err(ScanError::NotAResult("id longer than 128 bytes"));
        }
        self.id.extend_from_slice(bytes);
        Ok(())
    }

    /// Whether a string value starting now is a link's text that gets the prefix: a `uri` of
    /// an object in the result's `content`/`contents` array, or of a `content` item's
    /// `resource` object.
    fn at_link(&self) -> bool {
        use Kind::{Array, Object};
        if self.link_prefix.is_empty() || !self.result_open {
            return false;
        }
        match self.stack.as_slice() {
            [Object, Object, Array, Object] => {
                self.link_member != LinkMember::None && self.item_key == ItemKey::Uri
            }
            [Object, Object, Array, Object, Object] => {
                self.link_member == LinkMember::Content
                    && self.item_key == ItemKey::Resource
                    && self.resource_uri
            }
            _ => false,
        }
    }

    fn start_string(&mut self, key: bool) {
        let depth = self.stack.len();
        let links = self.result_open
            && !self.link_prefix.is_empty()
            && self.link_member != LinkMember::None;
        let decode = if key {
            depth == 1 || (self.result_open && depth == 2) || (links && (depth == 4 || depth == 5))
        } else {
            (depth == 1 && self.member == Member::Jsonrpc)
                || (self.result_open && depth == 2 && self.in_result_type)
        };
        if decode {
            self.text.clear();
            self.text_long = false;
        }
        self.string = StrCtx {
            key,
            decode,
            filter: !key && self.result_open && self.filter_member,
        };
        self.state = State::Str;
    }

    /// A key's closing quote was read: records what the key means at the envelope or result
    /// level.
    fn key_done(&mut self) -> Result<(), ScanError> {
        self.state = State::Between(Expect::Colon);
        if !self.string.decode {
            return Ok(());
        }
        let name = if self.text_long {
            ""
        } else {
            self.text.as_str()
        };
        if self.stack.len() == 1 {
            let (seen, member) = match name {
                "error" => return Err(ScanError::NotAResult("error member")),
                "result" => (&mut self.seen_result, Member::Result),
                "id" => (&mut self.seen_id, Member::Id),
                "jsonrpc" => (&mut self.seen_jsonrpc, Member::Jsonrpc),
                _ => {
                    self.member = Member::Other;
                    return Ok(());
                }
            };
            if *seen {
                return Err(ScanError::NotAResult(
                    "duplicate result, id or jsonrpc member",
                ));
            }
            *seen = true;
            self.member = member;
        } else if self.stack.len() == 2 {
            self.result_members = true;
            self.filter_member = FILTERED_MEMBERS.contains(&name);
            self.link_member = match name {
                "content" => LinkMember::Content,
                "contents" => LinkMember::Contents,
                _ => LinkMember::None,
            };
            self.in_result_type = name == "resultType";
            if self.in_result_type {
                self.result_type = Some(String::new());
            }
        } else if self.stack.len() == 4 {
            self.item_key = match name {
                "uri" => ItemKey::Uri,
                "resource" if self.link_member == LinkMember::Content => ItemKey::Resource,
                _ => ItemKey::Other,
            };
        } else {
            self.resource_uri = name == "uri";
        }
        Ok(())
    }

    fn push_text(&mut self, s: &str) {
        if self.text_long {
            return;
        }
        if self.text.len() + s.len() <= MAX_NAME_LEN {
            self.text.push_str(s);
        } else {
            self.text_long = true;
        }
    }

    /// Reads string content from `i`: runs of plain bytes in bulk, escapes and multi-byte
    /// characters one at a time where they must be decoded or filtered.
    fn scan_string(&mut self, f: &mut Feed<'_>, mut i: usize) -> Result<usize, ScanError> {
        let chunk = f.chunk;
        loop {
            let rest = chunk.get(i..).unwrap_or_default();
            let run_len = plain_run(rest);
            let run = rest.get(..run_len).unwrap_or_default();
            match str::from_utf8(run) {
                Ok(text) => self.plain(f, text, i),
                Err(err) => {
                    let good = err.valid_up_to();
                    let text =
                        str::from_utf8(run.get(..good).unwrap_or_default()).unwrap_or_default();
                    self.plain(f, text, i);
                    // A sequence cut off by the chunk's end is completed by the next chunk.
                    if err.error_len().is_none() && run_len == rest.len() {
                        return self.hold(f, i + good);
                    }
                    return Err(self.syntax(i + good, "invalid UTF-8"));
                }
            }
            i += run_len;
            let Some(&b) = chunk.get(i) else {
                return Ok(i);
            };
            match b {
                b'"' => {
                    if self.string.key {
                        self.key_done()?;
                    } else {
                        if self.string.decode && self.stack.len() == 2 && !self.text_long {
                            // The result's `resultType`.
                            self.result_type = Some(self.text.clone());
                        }
                        self.value_done(f, i + 1)?;
                    }
                    return Ok(i + 1);
                }
                b'\\' => {
                    let escape = chunk.get(i..).unwrap_or_default();
                    match escape_len(escape).map_err(|what| self.syntax(i, what))? {
                        None => return self.hold(f, i),
                        Some(n) => {
                            let bytes = escape.get(..n).unwrap_or_default();
                            if self.unit(bytes).map_err(|what| self.syntax(i, what))? {
                                f.cut(i, i + n);
                            }
                            i += n;
                        }
                    }
                }
                _ => return Err(self.syntax(i, "control character in string")),
            }
        }
    }

    /// Handles validated string text that holds no quote, backslash or control byte and
    /// starts at `at` in the chunk.
    fn plain(&mut self, f: &mut Feed<'_>, text: &str, at: usize) {
        if self.string.decode {
            self.push_text(text);
        }
        if !self.string.filter {
            return;
        }
        let bytes = text.as_bytes();
        let mut k = 0;
        while let Some(skip) = bytes
            .get(k..)
            .and_then(|b| b.iter().position(|&b| b >= 0x7f))
        {
            // Bytes below 0x7f here are printable ASCII: kept without asking `hidden`.
            k += skip;
            let Some(c) = text.get(k..).and_then(|t| t.chars().next()) else {
                return;
            };
            let n = c.len_utf8();
            if (self.hidden)(c) {
                self.removed += 1;
                f.cut(at + k, at + k + n);
            }
            k += n;
        }
    }

    /// Decides one escape or multi-byte character: records it in `text` when decoding and
    /// returns whether to drop it.
    fn unit(&mut self, bytes: &[u8]) -> Result<bool, &'static str> {
        let c = if bytes.first() == Some(&b'\\') {
            escape_char(bytes)
        } else {
            str::from_utf8(bytes).ok().and_then(|s| s.chars().next())
        }
        .ok_or("invalid character")?;
        if self.string.decode {
            self.push_text(c.encode_utf8(&mut [0; 4]));
        }
        let drop = self.string.filter && (self.hidden)(c);
        if drop {
            self.removed += 1;
        }
        Ok(drop)
    }

    /// Keeps `chunk[at..]`, the start of an escape or UTF-8 sequence, for the next chunk; it is
    /// written (or dropped) once complete.
    fn hold(&mut self, f: &mut Feed<'_>, at: usize) -> Result<usize, ScanError> {
        let bytes = f.chunk.get(at..).unwrap_or_default();
        let Some(slot) = self.unit.get_mut(..bytes.len()) else {
            return Err(self.syntax(at, "invalid string"));
        };
        slot.copy_from_slice(bytes);
        self.unit_len = bytes.len();
        f.stop(at);
        Ok(f.chunk.len())
    }

    /// Completes the escape or UTF-8 sequence that the previous chunk ended inside; returns how
    /// many bytes of this chunk it took.
    fn resume_unit(&mut self, f: &mut Feed<'_>) -> Result<usize, ScanError> {
        let have = self.unit_len;
        let mut joined = self.unit;
        let take = (UNIT_MAX - have).min(f.chunk.len());
        if let (Some(dst), Some(src)) = (joined.get_mut(have..have + take), f.chunk.get(..take)) {
            dst.copy_from_slice(src);
        }
        let bytes = joined.get(..have + take).unwrap_or_default();
        let len = if bytes.first() == Some(&b'\\') {
            escape_len(bytes)
        } else {
            utf8_len(bytes)
        };
        // Errors point at the first byte of the sequence, as when it lies within one chunk.
        let start = self.base.saturating_sub(have as u64);
        let at_start = |what| ScanError::Syntax {
            offset: start,
            what,
        };
        match len.map_err(at_start)? {
            None => {
                // Still incomplete: the whole chunk (at most 11 bytes) joins the carried bytes.
                self.unit = joined;
                self.unit_len = have + take;
                f.copy_from = None;
                Ok(f.chunk.len())
            }
            Some(n) => {
                let drop = self
                    .unit(joined.get(..n).unwrap_or_default())
                    .map_err(at_start)?;
                let taken = n.saturating_sub(have);
                if f.copy_from.is_some() {
                    if drop {
                        f.copy_from = Some(taken);
                    } else {
                        f.out
                            .extend_from_slice(self.unit.get(..have).unwrap_or_default());
                    }
                }
                self.unit_len = 0;
                Ok(taken)
            }
        }
    }

    fn scan_number(&mut self, f: &mut Feed<'_>, mut i: usize) -> Result<usize, ScanError> {
        while let Some(&b) = f.chunk.get(i) {
            if self.number.step(b).map_err(|what| self.syntax(i, what))? {
                i += 1;
                continue;
            }
            if !self.number.complete() {
                return Err(self.syntax(i, "invalid number"));
            }
            if !self.number.in_range() {
                return Err(self.syntax(i, "number out of range"));
            }
            self.value_done(f, i)?;
            return Ok(i);
        }
        Ok(i)
    }

    fn scan_literal(&mut self, f: &mut Feed<'_>, mut i: usize) -> Result<usize, ScanError> {
        while let (Some(&b), Some((&want, rest))) = (f.chunk.get(i), self.literal.split_first()) {
            if b != want {
                return Err(self.syntax(i, "invalid literal"));
            }
            self.literal = rest;
            i += 1;
            if rest.is_empty() {
                self.value_done(f, i)?;
                return Ok(i);
            }
        }
        Ok(i)
    }
}

/// Length of the leading run of `bytes` that holds no `"`, `\` or byte below 0x20.
fn plain_run(bytes: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let mut i = 0;
    // Whole blocks first: a fold without early exit over a fixed-size array compiles to
    // vector compares.
    while let Some(block) = bytes
        .get(i..i + BLOCK)
        .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    {
        let special = block.iter().fold(0u8, |any, &b| {
            any | u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b < 0x20)
        });
        if special != 0 {
            break;
        }
        i += BLOCK;
    }
    let rest = bytes.get(i..).unwrap_or_default();
    i + rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(rest.len())
}

/// Length of the escape at the start of `bytes` (which starts with `\`): `Some` when complete,
/// `None` when `bytes` ends first, an error when invalid. Like serde_json, a `\u` escape of a
/// surrogate must be a leading surrogate directly followed by a `\u` escape of a trailing one.
fn escape_len(bytes: &[u8]) -> Result<Option<usize>, &'static str> {
    match bytes.get(1) {
        None => return Ok(None),
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => return Ok(Some(2)),
        Some(b'u') => {}
        Some(_) => return Err("invalid escape"),
    }
    let Some(first) = hex4(bytes, 2)? else {
        return Ok(None);
    };
    match first {
        0xDC00..=0xDFFF => Err("lone surrogate escape"),
        0xD800..=0xDBFF => {
            for (at, want) in [(6, b'\\'), (7, b'u')] {
                match bytes.get(at) {
                    None => return Ok(None),
                    Some(&b) if b == want => {}
                    Some(_) => return Err("lone surrogate escape"),
                }
            }
            match hex4(bytes, 8)? {
                None => Ok(None),
                Some(0xDC00..=0xDFFF) => Ok(Some(12)),
                Some(_) => Err("lone surrogate escape"),
            }
        }
        _ => Ok(Some(6)),
    }
}

/// The four hex digits at `bytes[at..]`: `None` when `bytes` ends first.
fn hex4(bytes: &[u8], at: usize) -> Result<Option<u32>, &'static str> {
    let mut value = 0;
    for k in at..at + 4 {
        let Some(&b) = bytes.get(k) else {
            return Ok(None);
        };
        let digit = char::from(b).to_digit(16).ok_or("invalid \\u escape")?;
        value = value * 16 + digit;
    }
    Ok(Some(value))
}

/// The character a complete escape stands for.
fn escape_char(bytes: &[u8]) -> Option<char> {
    Some(match bytes.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let first = hex4(bytes, 2).ok()??;
            if (0xD800..=0xDBFF).contains(&first) {
                let second = hex4(bytes, 8).ok()??;
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second.checked_sub(0xDC00)?))?
            } else {
                char::from_u32(first)?
            }
        }
        _ => return None,
    })
}

/// Length of the UTF-8 sequence at the start of `bytes` (a lead byte of 2 to 4): `Some` when
/// complete and valid, `None` when `bytes` ends first, an error when invalid (overlong,
/// surrogate, above U+10FFFF, bad continuation).
fn utf8_len(bytes: &[u8]) -> Result<Option<usize>, &'static str> {
    let need = match bytes.first() {
        Some(0xC2..=0xDF) => 2,
        Some(0xE0..=0xEF) => 3,
        Some(0xF0..=0xF4) => 4,
        _ => return Err("invalid UTF-8"),
    };
    match bytes.get(..need) {
        Some(seq) if str::from_utf8(seq).is_ok() => Ok(Some(need)),
        Some(_) => Err("invalid UTF-8"),
        None => match str::from_utf8(bytes) {
            Err(err) if err.error_len().is_none() => Ok(None),
            _ => Err("invalid UTF-8"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
    use serde_json::value::RawValue;

    fn hidden(c: char) -> bool {
        matches!(
            c,
            '\u{200B}'
                | '\u{202E}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{0}'..='\u{8}'
                | '\u{b}'
                | '\u{c}'
                | '\u{e}'..='\u{1f}'
                | '\u{7f}'
        )
    }

    type Scan = (Vec<u8>, Result<End, ScanError>);

    /// Feeds `chunks` in order, then finishes; stops at the first error.
    fn scan_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max_depth: usize) -> Scan {
        let mut scanner = ResultScanner::new(max_depth, hidden);
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(err) = scanner.feed(chunk, &mut out) {
                return (out, Err(err));
            }
        }
        (out, scanner.finish())
    }

    fn scan(doc: &[u8]) -> Scan {
        scan_chunks([doc], 64)
    }

    /// Feeds `doc` in pieces whose sizes cycle through `sizes`.
    fn scan_sized(doc: &[u8], sizes: &[usize]) -> Scan {
        let mut chunks = Vec::new();
        let mut rest = doc;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(size.clamp(1, rest.len()));
            chunks.push(head);
            rest = tail;
        }
        scan_chunks(chunks, 64)
    }

    fn strip_strings(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(s.chars().filter(|&c| !hidden(c)).collect()),
            Value::Array(items) => Value::Array(items.iter().map(strip_strings).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), strip_strings(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn count_hidden(v: &Value) -> u64 {
        match v {
            Value::String(s) => s.chars().filter(|&c| hidden(c)).count() as u64,
            Value::Array(items) => items.iter().map(count_hidden).sum(),
            Value::Object(map) => map.values().map(count_hidden).sum(),
            _ => 0,
        }
    }

    /// The reference: the result with hidden characters removed under the filtered members,
    /// and how many were removed.
    fn expected(result: &Value) -> (Value, u64) {
        let Value::Object(map) = result else {
            return (result.clone(), 0);
        };
        let mut removed = 0;
        let stripped = map
            .iter()
            .map(|(k, v)| {
                if FILTERED_MEMBERS.contains(&k.as_str()) {
                    removed += count_hidden(v);
                    (k.clone(), strip_strings(v))
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        (Value::Object(stripped), removed)
    }

    #[derive(serde::Deserialize)]
    struct Envelope {
        result: Box<RawValue>,
    }

    /// Checks a valid document's output against serde_json and the reference walker.
    fn check_output(doc: &str, (out, end): &Scan) {
        let end = match end {
            Ok(end) => end,
            Err(err) => panic!("rejected {doc:?}: {err}"),
        };
        let whole: Value = serde_json::from_str(doc).unwrap();
        let (want, removed) = expected(&whole["result"]);
        let mut closed = out.clone();
        closed.push(b'}');
        let got: Value = serde_json::from_slice(&closed).unwrap();
        assert_eq!(got, want, "doc {doc:?}");
        assert_eq!(end.removed, removed, "doc {doc:?}");
        assert_eq!(end.written, out.len() as u64);
        if removed == 0 {
            let raw: Envelope = serde_json::from_str(doc).unwrap();
            assert_eq!(
                String::from_utf8(closed).unwrap(),
                raw.result.get(),
                "doc {doc:?}"
            );
        }
    }

    /// Every two-chunk split and byte-at-a-time feeding agree with feeding whole.
    /// (The output before an error depends on where the chunks end, so only the error is
    /// compared then.)
    fn check_splits(doc: &[u8]) {
        let whole = same_on_error(scan(doc));
        for k in 0..=doc.len() {
            let (a, b) = doc.split_at(k);
            assert_eq!(
                same_on_error(scan_chunks([a, b], 64)),
                whole,
                "split at {k}"
            );
        }
        assert_eq!(
            same_on_error(scan_chunks(doc.chunks(1), 64)),
            whole,
            "byte at a time"
        );
    }

    fn same_on_error((out, end): Scan) -> Scan {
        match end {
            Ok(end) => (out, Ok(end)),
            Err(err) => (Vec::new(), Err(err)),
        }
    }

    const DOCS: &[&str] = &[
        // Escapes, surrogate pairs, multibyte UTF-8, hidden characters raw and escaped.
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"h\u{e9}llo \\u00e9 \\ud83d\\ude00 \u{1F600} zero\\u200bwidth raw\u{200B}! \\u202E bidi \u{202E} \\t\\n\\\"q\\\" \\\\ \\/ \\b\\f tag\u{E0041}\\udb40\\udc41 del\u{7f}\\u007f \\u0001\"}],\"_meta\":{\"note\":\"keep \\u200b and \u{200B}\",\"n\":[0,-0,1.5,-2.5e10,3E+2,4e-3,12345678901234567890,0.0,1e-400,-0.0e-0]},\"isError\":false}}",
        // Whitespace everywhere, id before result, jsonrpc after, resultType.
        "  {\n\t\"id\" : \"a\\\"b\" ,\r\n \"result\" :  {  \"structuredContent\" : { \"k\" : [ \"\\u0001x\" , null , true , false , { } , [ ] , -12.5E-3 ] } , \"resultType\" : \"complete\" } , \"jsonrpc\" : \"2.0\" }  \n",
        // Nested result, envelope members after it, null id.
        "{\"result\":{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"a\\u0007b\\u007fc\u{7f}\"}}],\"contents\":\"top\\u000bstring\",\"other\":\"\u{200B} stays\"},\"jsonrpc\":\"2.0\",\"id\":null}",
        // Empty result.
        "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":\"x\"}",
        // Escaped member names; keys never filtered.
        "{\"j\\u0073onrpc\":\"2\\u002e0\",\"id\":1,\"res\\u0075lt\":{\"cont\\u0065nt\":[\"\\u200b\"],\"\\u0063ontents\":{\"a\u{200B}b\":\"c\u{200B}d\"},\"mess\u{e4}ges\":\"\u{200B}\"}}",
        // Plain multibyte text with nothing hidden.
        "{\"jsonrpc\":\"2.0\",\"id\":-3,\"result\":{\"content\":[\"\u{65e5}\u{672c}\u{8a9e} \u{710} \u{1D11E}\",\"\\ud834\\udd1e\"], \"x\" : [ 1 , [ 2 , { \"y\" : 3.25e+2 } ] ] }}",
    ];

    #[test]
    fn every_split_gives_the_same_output() {
        for doc in DOCS {
            check_splits(doc.as_bytes());
        }
    }

    #[test]
    fn output_matches_the_reference() {
        for doc in DOCS {
            check_output(doc, &scan(doc.as_bytes()));
        }
        // Raw and escaped hidden characters were both counted.
        let (_, end) = scan(DOCS[0].as_bytes());
        assert!(end.unwrap().removed >= 10);
    }

    #[test]
    fn hidden_characters_are_cut_byte_exactly() {
        let doc = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":\"a\u{200B}b\\u200Bc\\uDB40\\uDC41d\\be\",\"_meta\":\"\u{200B}\"}}";
        let (out, end) = scan(doc.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"content\":\"abcde\",\"_meta\":\"\u{200B}\""
        );
        assert_eq!(end.unwrap().removed, 4);
    }

    #[test]
    fn error_member_is_refused_right_after_its_key() {
        let doc = br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#;
        let mut scanner = ResultScanner::new(64, hidden);
        let mut out = Vec::new();
        let key_end = doc.windows(7).position(|w| w == b"\"error\"").unwrap() + 7;
        for piece in doc[..key_end - 1].chunks(5) {
            scanner.feed(piece, &mut out).unwrap();
        }
        assert_eq!(
            scanner.feed(&doc[key_end - 1..key_end], &mut out),
            Err(ScanError::NotAResult("error member"))
        );
        assert!(!scanner.in_result());
        assert!(out.is_empty());
    }

    #[test]
    fn non_object_result_is_refused_at_its_first_byte() {
        let doc = br#"{"id":1,"jsonrpc":"2.0","result":[1]}"#;
        let at = doc.iter().position(|&b| b == b'[').unwrap();
        let mut scanner = ResultScanner::new(64, hidden);
        let mut out = Vec::new();
        scanner.feed(&doc[..at], &mut out).unwrap();
        assert_eq!(
            scanner.feed(&doc[at..=at], &mut out),
            Err(ScanError::NotAResult("result is not an object"))
        );
        assert!(!scanner.in_result());
        assert!(out.is_empty());

        for top in [&b"[1]"[..], b" \"x\"", b"3", b"null"] {
            let mut scanner = ResultScanner::new(64, hidden);
            assert!(matches!(
                scanner.feed(top, &mut out),
                Err(ScanError::NotAResult(_))
            ));
        }
        assert!(out.is_empty());
    }

    /// Links get the prefix (escaped as JSON text) wherever the document is split; other `uri`
    /// strings do not.
    #[test]
    fn links_get_the_prefix() {
        let doc = concat!(
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"resource_link","uri":"file:///a","name":"a"},"#,
            r#"{"type":"resource","resource":{"text":"t","uri":"mem://b"}},{"type":"text","text":"uri","n":{"uri":"no"}}],"#,
            r#""contents":[{"uri":"x:1","blob":""}],"structuredContent":{"uri":"no","l":[{"uri":"no"}]},"#,
            r#""_meta":{"content":[{"uri":"no"}]},"resultType":"input_required"}}"#
        )
        .as_bytes();
        let expected = serde_json::json!({
            "content": [
                {"type": "resource_link", "uri": "p\"_file:///a", "name": "a"},
                {"type": "resource", "resource": {"text": "t", "uri": "p\"_mem://b"}},
                {"type": "text", "text": "uri", "n": {"uri": "no"}},
            ],
            "contents": [{"uri": "p\"_x:1", "blob": ""}],
            "structuredContent": {"uri": "no", "l": [{"uri": "no"}]},
            "_meta": {"content": [{"uri": "no"}]},
            "resultType": "input_required",
        });
        let run = |chunks: Vec<&[u8]>| {
            let mut scanner = ResultScanner::new(64, hidden).with_link_prefix("p\"_");
            let mut out = Vec::new();
            for chunk in chunks {
                scanner.feed(chunk, &mut out).unwrap();
            }
            let end = scanner.finish().unwrap();
            out.push(b'}');
            (serde_json::from_slice::<Value>(&out).unwrap(), end)
        };
        let (whole, end) = run(vec![doc]);
        assert_eq!(whole, expected);
        assert_eq!(end.result_type.as_deref(), Some("input_required"));
        for at in 0..=doc.len() {
            let (head, tail) = doc.split_at(at);
            assert_eq!(
                run(vec![head, tail]),
                (whole.clone(), end.clone()),
                "split at {at}"
            );
        }
    }

    #[test]
    fn end_reports_id_result_type_removed_and_written() {
        let (out, end) =
            scan(br#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"x","content":"a\u200b"}}"#);
        let end = end.unwrap();
        assert_eq!(end.id.as_deref(), Some("7"));
        assert_eq!(end.result_type.as_deref(), Some("x"));
        assert!(end.members);
        assert_eq!(end.removed, 1);
        assert_eq!(end.written, out.len() as u64);
        assert_eq!(out, br#"{"resultType":"x","content":"a""#);

        let (_, end) =
            scan(br#"{"jsonrpc":"2.0","result":{"content":[],"meta":{"resultType":1}},"id":"x"}"#);
        let end = end.unwrap();
        assert_eq!(end.id.as_deref(), Some("\"x\""));
        assert_eq!(end.result_type, None);
        assert_eq!(end.removed, 0);

        let (_, end) = scan(br#"{"jsonrpc":"2.0","result":{ }}"#);
        let end = end.unwrap();
        assert_eq!(end.id, None);
        assert!(!end.members);
        let (_, end) = scan(br#"{"jsonrpc":"2.0","result":{},"id":  -1.5e3 }"#);
        assert_eq!(end.unwrap().id.as_deref(), Some("-1.5e3"));
    }

    #[test]
    fn envelope_rules_give_not_a_result() {
        let long_id = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","result":{{}}}}"#,
            "a".repeat(127)
        );
        let cases: &[&[u8]] = &[
            br#"{"id":1,"result":{}}"#,
            br#"{"jsonrpc":"1.0","id":1,"result":{}}"#,
            br#"{"jsonrpc":2.0,"id":1,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{},"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"id":2,"result":{}}"#,
            br#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
            br#"{"jsonrpc":"2.0","id":true,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":[1],"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":"x"}"#,
            long_id.as_bytes(),
        ];
        for doc in cases {
            let (out, end) = scan(doc);
            assert!(
                matches!(end, Err(ScanError::NotAResult(_))),
                "{}: {end:?}",
                String::from_utf8_lossy(doc)
            );
            check_splits(doc);
            let _ = out;
        }
        // An id of exactly 128 bytes is kept.
        let ok_id = format!(
            r#"{{"jsonrpc":"2.0","id":"{}","result":{{}}}}"#,
            "a".repeat(126)
        );
        let (_, end) = scan(ok_id.as_bytes());
        assert_eq!(end.unwrap().id.map(|id| id.len()), Some(128));
    }

    #[test]
    fn depth_limit_counts_the_envelope() {
        let mut out = Vec::new();
        let ok = br#"{"jsonrpc":"2.0","id":1,"result":{"a":[1]}}"#;
        assert!(scan_chunks([&ok[..]], 3).1.is_ok());
        let deep = br#"{"jsonrpc":"2.0","id":1,"result":{"a":[[1]]}}"#;
        assert_eq!(scan_chunks([&deep[..]], 3).1, Err(ScanError::TooDeep(3)));
        let mut scanner = ResultScanner::new(0, hidden);
        assert_eq!(scanner.feed(b"{", &mut out), Err(ScanError::TooDeep(0)));
    }

    #[test]
    fn errors_are_sticky_and_truncation_is_unexpected_end() {
        let mut scanner = ResultScanner::new(64, hidden);
        let mut out = Vec::new();
        let err = scanner.feed(b"{\"jsonrpc\":x", &mut out).unwrap_err();
        assert!(matches!(err, ScanError::Syntax { offset: 11, .. }));
        assert_eq!(scanner.feed(b"\"2.0\"}", &mut out), Err(err.clone()));
        assert_eq!(scanner.finish(), Err(err));

        let doc = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":\"\u{1F600}\\ud83d\\ude00 1\",\"n\":12.5}}";
        for cut in 0..doc.len() {
            let (_, end) = scan(&doc.as_bytes()[..cut]);
            match end {
                Err(ScanError::Syntax { what, offset }) => {
                    assert_eq!(what, "unexpected end", "cut {cut}");
                    assert_eq!(offset, cut as u64);
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    /// The scanner rejects as a syntax error exactly what serde_json rejects.
    fn same_verdict(doc: &[u8]) {
        let ours = scan(doc).1;
        let theirs = serde_json::from_slice::<Value>(doc);
        let syntax = matches!(ours, Err(ScanError::Syntax { .. } | ScanError::TooDeep(_)));
        assert_eq!(
            syntax,
            theirs.is_err(),
            "{}: ours {ours:?}, serde_json {theirs:?}",
            String::from_utf8_lossy(doc)
        );
    }

    #[test]
    fn validation_matches_serde_json() {
        let values: &[&[u8]] = &[
            b"0",
            b"-0",
            b"01",
            b"-01",
            b"1.",
            b".5",
            b"-",
            b"+1",
            b"1e",
            b"1e+",
            b"1E-2",
            b"1.5e3",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"0e999999999999",
            b"1e99999999999",
            b"1e-99999999999",
            b"1.7976931348623157e308",
            b"1.7976931348623159e308",
            b"1.8e308",
            b"17976931348623157e292",
            b"0.000000000000000000000000000000000000001e330",
            b"18446744073709551615",
            b"18446744073709551616",
            b"18446744073709551616.5",
            b"-9223372036854775809",
            b"1e308",
            b"10e307",
            b"100000000000000000000e288",
            b"tru",
            b"true",
            b"nul",
            b"falsey",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"\\ud800\\n\"",
            b"\"\\ud800x\"",
            b"\"\\ud83d\\ude00\"",
            b"\"\\u12g4\"",
            b"\"\\x\"",
            b"\"\x01\"",
            b"\"\x7f\"",
            b"\"\t\"",
            b"\"\xc0\x80\"",
            b"\"\xed\xa0\x80\"",
            b"\"\xf4\x90\x80\x80\"",
            b"\"\xe2\x82\"",
            b"\"\xff\"",
            b"\"\xf0\x9f\x98\x80\"",
            b"[1,]",
            b"[,1]",
            b"{\"a\":1,}",
            b"[1 2]",
            b"\"a\" \"b\"",
            b"\x0c1",
            b"1\x0c",
            b"[]",
            b"{}",
            b"\"\\u0000\"",
        ];
        let long_int = format!("1{}", "0".repeat(320));
        let long_frac = format!("0.{}1", "0".repeat(400));
        let long_float = format!("{}e-300", "9".repeat(330));
        for value in values.iter().copied().chain([
            long_int.as_bytes(),
            long_frac.as_bytes(),
            long_float.as_bytes(),
        ]) {
            let mut doc = br#"{"jsonrpc":"2.0","id":1,"result":{"v":"#.to_vec();
            doc.extend_from_slice(value);
            doc.extend_from_slice(b"}}");
            same_verdict(&doc);
            check_splits(&doc);
        }
        for doc in [
            &b""[..],
            b"   ",
            b"{",
            b"{\"jsonrpc\":\"2.0\",\"result\":{}} x",
            b"{\"a\" 1}",
            b"{1:2}",
        ] {
            same_verdict(doc);
        }
        assert_eq!(
            scan(br#"{"jsonrpc":"2.0","id":1,"result":{"v":1e400}}"#).1,
            Err(ScanError::Syntax {
                offset: 43,
                what: "number out of range"
            })
        );
    }

    #[test]
    fn twenty_megabytes_in_64_kib_chunks() {
        // Per line: a raw U+200B (3 bytes) and an escaped one (6 bytes) are removed.
        let line =
            "The quick brown fox \u{2014} jumps \u{65e5}\u{672c} \\\"q\\\" \u{200B}\\u200b end.\\n";
        let reps = 20 * 1024 * 1024 / line.len();
        let head = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":""#;
        let tail = r#""}],"isError":false}}"#;
        let mut doc = String::with_capacity(head.len() + line.len() * reps + tail.len());
        doc.push_str(head);
        for _ in 0..reps {
            doc.push_str(line);
        }
        doc.push_str(tail);

        let (out, end) = scan_chunks(doc.as_bytes().chunks(64 * 1024), 64);
        let end = end.unwrap();
        let result_len = doc.len() - r#"{"jsonrpc":"2.0","id":1,"result":"#.len() - 1;
        let want = result_len - 1 - reps * 9;
        assert_eq!(out.len(), want);
        assert_eq!(end.written, want as u64);
        assert_eq!(end.removed, 2 * reps as u64);
        assert!(out.windows(3).all(|w| w != "\u{200B}".as_bytes()));
        assert!(out.ends_with(br#""}],"isError":false"#));
    }

    fn arb_char() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => proptest::char::range('a', 'z'),
            1 => Just(' '),
            1 => Just('"'),
            1 => Just('\\'),
            1 => Just('/'),
            1 => proptest::char::range('\u{0}', '\u{1f}'),
            1 => Just('\u{7f}'),
            1 => Just('\u{200B}'),
            1 => Just('\u{202E}'),
            1 => proptest::char::range('\u{E0000}', '\u{E007F}'),
            1 => Just('\u{e9}'),
            1 => Just('\u{65e5}'),
            1 => Just('\u{1F600}'),
            1 => any::<char>(),
        ]
    }

    fn arb_string() -> impl Strategy<Value = String> {
        proptest::collection::vec(arb_char(), 0..12).prop_map(String::from_iter)
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            arb_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((arb_string(), inner), 0..5)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    fn arb_result() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("content".to_owned()),
            Just("contents".to_owned()),
            Just("messages".to_owned()),
            Just("structuredContent".to_owned()),
            Just("_meta".to_owned()),
            Just("isError".to_owned()),
            Just("resultType".to_owned()),
            arb_string(),
        ];
        proptest::collection::vec((key, arb_value()), 0..6)
            .prop_map(|members| Value::Object(members.into_iter().collect()))
    }

    /// A response with `result`, laid out compactly or pretty, members in one of three orders.
    fn arb_document() -> impl Strategy<Value = String> {
        (arb_result(), any::<u32>(), any::<bool>(), 0..3usize).prop_map(
            |(result, id, pretty, order)| {
                let result = if pretty {
                    serde_json::to_string_pretty(&result)
                } else {
                    serde_json::to_string(&result)
                }
                .unwrap_or_default();
                match order {
                    0 => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#),
                    1 => format!(
                        "{{\n  \"result\": {result},\n  \"id\": {id},\n  \"jsonrpc\": \"2.0\"\n}}\n"
                    ),
                    _ => format!(r#"{{"id":{id},"result":{result},"jsonrpc":"2.0"}}"#),
                }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn accepts_what_serde_json_writes(
            doc in arb_document(),
            sizes in proptest::collection::vec(1usize..64, 1..6),
        ) {
            let whole = scan(doc.as_bytes());
            match serde_json::from_str::<Value>(&doc) {
                // serde_json can write floats near f64::MAX that it cannot read back.
                Err(_) => {
                    let syntax = matches!(whole.1, Err(ScanError::Syntax { .. }));
                    prop_assert!(syntax, "accepted {:?}", doc);
                }
                Ok(_) => check_output(&doc, &whole),
            }
            prop_assert_eq!(scan_sized(doc.as_bytes(), &sizes), whole);
        }

        #[test]
        fn rejects_what_serde_json_rejects(
            doc in arb_document(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
            sizes in proptest::collection::vec(1usize..64, 1..6),
        ) {
            let mut doc = doc.into_bytes();
            let at = at.index(doc.len());
            doc[at] = byte;

            let mut scanner = ResultScanner::new(64, hidden);
            let mut out = Vec::new();
            let fed = scanner.feed(&doc, &mut out);
            let early = fed.is_err();
            let ours = fed.and_then(|()| scanner.finish());
            let theirs = serde_json::from_slice::<Value>(&doc);
            match &ours {
                Ok(_) => prop_assert!(theirs.is_ok()),
                Err(ScanError::Syntax { .. } | ScanError::TooDeep(_)) => prop_assert!(theirs.is_err()),
                // Refused before the rest was read: serde_json may reject that rest.
                Err(ScanError::NotAResult(_)) if early => {}
                // Refused at the end: the whole document was valid JSON.
                Err(ScanError::NotAResult(_)) => prop_assert!(theirs.is_ok()),
            }
            prop_assert_eq!(scan_sized(&doc, &sizes).1, scan(&doc).1);
        }
    }
}
