//! RFC 8785 JSON Canonicalization Scheme (JCS): the bytes that are hashed and signed.
//!
//! - Objects: members sorted by their names compared as UTF-16 code units; no whitespace.
//! - Strings: only `"`, `\` and control characters below U+0020 are escaped (`\b \t \n \f \r`
//!   short forms, the rest as `\u00xx` in lower case); everything else is written as UTF-8.
//! - Numbers: the IEEE 754 double nearest the value, written as ECMAScript's
//!   `Number.prototype.toString` does (`ryu-js`), so `1.0` → `1`, `1e21` → `1e+21`,
//!   `-0` → `0`. Integers beyond 2^53 lose precision exactly as they would in JavaScript.

use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The canonical form of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// Hex SHA-256 of the canonical form of `value`: how arguments and results are digested. The
/// form is hashed as it is written, never held whole.
pub fn digest(value: &Value) -> String {
    digest_keeping(value, Some(0)).0
}

/// [`digest`] of a value already in canonical form.
pub fn digest_text(canonical: &str) -> String {
    hex_of(&Sha256::digest(canonical.as_bytes()))
}

/// Lowercase hex of a digest. (`hex::encode` collects `char`s one at a time, several times
/// slower; every record takes three of these.)
pub(crate) fn hex_of(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    // Neither can fail: `out` is exactly twice as long as `bytes`, and hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The digest of `value`'s canonical form, and the form itself when it is at most `keep` bytes
/// (`None`: any length). A longer form is hashed as it is written and never held whole, so a
/// 100 MB result costs a digest, not another 100 MB. The form is plaintext: every buffer that
/// held it is cleared.
pub fn digest_keeping(value: &Value, keep: Option<u64>) -> (String, Option<Zeroizing<String>>) {
    let mut out = Digesting {
        hasher: Sha256::new(),
        text: Zeroizing::new(String::new()),
        keep: keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        spilled: false,
    };
    write_value(value, &mut out);
    out.hasher.update(out.text.as_bytes());
    let digest = hex_of(&out.hasher.finalize());
    (digest, (!out.spilled).then_some(out.text))
}

/// Where canonical text is written.
trait Out {
    fn put(&mut self, s: &str);
}

impl Out for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Once the text would pass `keep` bytes it is no longer kept: what was kept and everything
/// after it go to the hasher, through a buffer of at most [`Digesting::CHUNK`] bytes.
struct Digesting {
    hasher: Sha256,
    text: Zeroizing<String>,
    keep: Option<usize>,
    spilled: bool,
}

impl Digesting {
    const CHUNK: usize = 64 * 1024;

    fn hash_through(&mut self, s: &str) {
        self.hasher.update(self.text.as_bytes());
        self.text.zeroize();
        self.hasher.update(s.as_bytes());
    }
}

impl Out for Digesting {
    fn put(&mut self, s: &str) {
        let limit = if self.spilled {
            Some(Self::CHUNK)
        } else {
            self.keep
        };
        if limit.is_some_and(|limit| self.text.len() + s.len() > limit) {
            self.hash_through(s);
            self.spilled = true;
        } else {
            self.text.push_str(s);
        }
    }
}

fn write_value(value: &Value, out: &mut impl Out) {
    match value {
        Value::Null => out.put("null"),
        Value::Bool(true) => out.put("true"),
        Value::Bool(false) => out.put("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => write_array(items, out, write_value),
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| utf16_order(a.0, b.0));
            out.put("{");
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write_string(k, out);
                out.put(":");
                write_value(v, out);
            }
            out.put("}");
        }
    }
}

/// RFC 8785's order of member names: by their UTF-16 code units. For ASCII names that is byte
/// order, compared without encoding either.
fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Writes one JSON object member by member, for types whose fields are known, without building
/// a [`Value`] first. The caller gives the members in canonical order (checked in debug
/// builds; keys are ASCII, so byte order is UTF-16 order).
pub(crate) struct Object<'a> {
    out: &'a mut String,
    last: Option<&'static str>,
}

impl<'a> Object<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, last: None }
    }

    /// Starts the member `key`; its value is written to the returned string.
    pub(crate) fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(
            key.is_ascii() && self.last.is_none_or(|last| last < key),
            "{key} after {:?}",
            self.last
        );
        if self.last.is_some() {
            self.out.push(',');
        }
        self.last = Some(key);
        write_string(key, self.out);
        self.out.push(':');
        self.out
    }

    pub(crate) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        write_string(value, self.key(key));
        self
    }

    /// `null` for `None`.
    pub(crate) fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => write_string(v, self.key(key)),
            None => self.key(key).push_str("null"),
        }
        self
    }

    pub(crate) fn uint(&mut self, key: &'static str, value: u64) -> &mut Self {
        write_number(&serde_json::Number::from(value), self.key(key));
        self
    }

    pub(crate) fn value(&mut self, key: &'static str, value: &Value) -> &mut Self {
        write_value(value, self.key(key));
        self
    }

    pub(crate) fn strs(&mut self, key: &'static str, values: &[String]) -> &mut Self {
        write_array(values, self.key(key), |v, out| write_string(v, out));
        self
    }

    pub(crate) fn end(&mut self) {
        self.out.push('}');
    }
}

fn write_array<T, O: Out>(items: &[T], out: &mut O, write: impl Fn(&T, &mut O)) {
    out.put("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put(",");
        }
        write(item, out);
    }
    out.put("]");
}

fn write_number(n: &serde_json::Number, out: &mut impl Out) {
    // Without serde_json's `arbitrary_precision`, every number has an f64 view; integers are
    // converted the way JavaScript would read them.
    let float = n
        .as_f64()
        .or_else(|| n.as_i64().map(|i| i as f64))
        .or_else(|| n.as_u64().map(|u| u as f64))
        .unwrap_or(0.0);
    if float == 0.0 {
        // Both +0 and -0 are written "0".
        out.put("0");
        return;
    }
    let mut buffer = ryu_js::Buffer::new();
    out.put(buffer.format_finite(float));
}

/// Runs of characters that need no escape are written as one slice (every escaped character
/// is ASCII, so the run boundaries are character boundaries). Text is looked at [`CHUNK`] bytes
/// at a time: a chunk without a byte to escape is passed over whole (a fold without early exit,
/// which compiles to vector compares), one with an escape is walked byte by byte. 16 bytes, not
/// 64: text with a line break every few dozen bytes (JSON or logs inside a result) has one in
/// most 64-byte chunks (the 1 MB digest benchmark: 1.99 → 1.73 ms).
fn write_string(s: &str, out: &mut impl Out) {
    const CHUNK: usize = 16;
    out.put("\"");
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut start = 0;
    while start < bytes.len() {
        let end = (start + CHUNK).min(bytes.len());
        let chunk = bytes.get(start..end).unwrap_or_default();
        if chunk.iter().fold(false, |any, &b| any | needs_escape(b)) {
            for (i, &b) in chunk.iter().enumerate().filter(|(_, b)| needs_escape(**b)) {
                let at = start + i;
                out.put(&s[run..at]);
                match b {
                    b'"' => out.put("\\\""),
                    b'\\' => out.put("\\\\"),
                    0x08 => out.put("\\b"),
                    b'\t' => out.put("\\t"),
                    b'\n' => out.put("\\n"),
                    0x0C => out.put("\\f"),
                    b'\r' => out.put("\\r"),
                    _ => out.put(&format!("\\u{b:04x}")),
                }
                run = at + 1;
            }
        }
        start = end;
    }
    out.put(&s[run..]);
    out.put("\"");
}

fn needs_escape(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hex_of_is_lowercase_hex() {
        assert_eq!(hex_of(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex_of(&[]), "");
        let digest = Sha256::digest(b"abc");
        assert_eq!(hex_of(&digest), hex::encode(digest));
    }

    /// RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text (the finite ones).
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let rows: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in rows {
            let value = serde_json::Number::from_f64(f64::from_bits(bits))
                .map(Value::Number)
                .unwrap();
            assert_eq!(to_string(&value), expected, "bits {bits:#018x}");
        }
    }

    /// RFC 8785 §3.2.2 example ("Sample Input" → "Canonical Output").
    #[test]
    fn rfc8785_section_3_2_2_example() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            to_string(&value),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
             \"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    /// RFC 8785 §3.2.3: member names sorted by UTF-16 code units, not by UTF-8 bytes or
    /// code points (U+1F600 sorts before U+FB33 in UTF-16).
    #[test]
    fn rfc8785_section_3_2_3_sorting() {
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let canonical = to_string(&value);
        let order: Vec<String> = canonical
            .trim_matches(['{', '}'])
            .split(',')
            .map(|member| member.split_once(':').unwrap().1.to_owned())
            .collect();
        assert_eq!(
            order,
            [
                "\"Carriage Return\"",
                "\"One\"",
                "\"Control\"",
                "\"Latin Small Letter O With Diaeresis\"",
                "\"Euro Sign\"",
                "\"Emoji: Grinning Face\"",
                "\"Hebrew Letter Dalet With Dagesh\"",
            ]
        );
    }

    #[test]
    fn integers_and_nesting() {
        let value = json!({"b": [1, -2, 3.0, 1e21], "a": {"z": null, "y": "x\u{1}\u{7f}"}});
        assert_eq!(
            to_string(&value),
            "{\"a\":{\"y\":\"x\\u0001\u{7f}\",\"z\":null},\"b\":[1,-2,3,1e+21]}"
        );
        // u64 beyond 2^53 is read the way JavaScript would.
        assert_eq!(to_string(&json!(u64::MAX)), "18446744073709552000");
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// What the store holds is JSON text: parsing it back must give the same canonical
        /// form, or a stored record would no longer match its hash.
        #[test]
        fn canonical_form_survives_a_text_round_trip(value in json_value()) {
            let text = serde_json::to_string(&value).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            proptest::prop_assert_eq!(to_string(&back), to_string(&value));
            // The canonical form is itself JSON that parses to an equal canonical form.
            let canonical: Value = serde_json::from_str(&to_string(&value)).unwrap();
            proptest::prop_assert_eq!(to_string(&canonical), to_string(&value));
        }
    }

    proptest::proptest! {
        /// The streamed digest is the digest of the whole text, and the text is kept exactly
        /// when it fits, whatever the limit and however the text is split into writes.
        #[test]
        fn digest_keeping_matches_the_whole_text(value in json_value(), keep in proptest::option::of(0u64..80)) {
            let text = to_string(&value);
            let (digest, kept) = digest_keeping(&value, keep);
            proptest::prop_assert_eq!(&digest, &digest_text(&text));
            let fits = keep.is_none_or(|k| text.len() as u64 <= k);
            proptest::prop_assert_eq!(kept.as_deref().map(String::as_str), fits.then_some(text.as_str()));
        }
    }

    proptest::proptest! {
        /// JCS escapes strings exactly as serde_json does (the short forms, `\u00xx` in lower
        /// case for the other controls, nothing else); runs of plain text cross the 16-byte
        /// chunks the writer looks at.
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(
            runs in proptest::collection::vec(
                (proptest::sample::select(vec!['x', 'é', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '😀']), 1usize..100),
                0..12,
            )
        ) {
            let text: String = runs.iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n)).collect();
            let mut out = String::new();
            write_string(&text, &mut out);
            proptest::prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }
    }

    #[test]
    fn long_text_is_digested_past_the_chunk_size_without_being_kept() {
        // Strings longer than the hasher's buffer, escapes on both sides of its boundary.
        let long = format!(
            "{}\n\u{1}\"{}",
            "a".repeat(Digesting::CHUNK - 3),
            "é".repeat(Digesting::CHUNK)
        );
        let value =
            json!({"content": [{"type": "text", "text": long}, {"type": "text", "text": long}]});
        let text = to_string(&value);
        assert!(text.len() > 4 * Digesting::CHUNK);
        let expected = digest_text(&text);
        let (streamed, kept) = digest_keeping(&value, Some(1000));
        assert_eq!(streamed, expected);
        assert!(kept.is_none());
        assert_eq!(digest(&value), expected);
        let (whole, kept) = digest_keeping(&value, None);
        assert_eq!(whole, expected);
        assert_eq!(kept.as_deref().map(String::as_str), Some(text.as_str()));
    }

    #[test]
    fn digest_is_over_the_canonical_bytes() {
        let a = json!({"path": "/tmp/x", "n": 1});
        let b: Value = serde_json::from_str("{ \"n\" : 1.0, \"path\":\"/tmp/x\" }").unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_eq!(
            digest(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
