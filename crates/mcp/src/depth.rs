//! Nesting-depth check that runs before any allocation-heavy parse.

/// Returns the deepest nesting of arrays/objects in `bytes`, stopping early once `limit` is
/// exceeded. Strings (with escapes) are skipped, so brackets inside strings do not count.
/// Works on any bytes; invalid JSON is left for the real parser to reject.
pub fn exceeds(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => i = string_end(bytes, i),
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Where the string whose content starts at `i` ends (just past its closing quote, or the end
/// of `bytes`). Long text is skipped [`CHUNK`] bytes at a time when a chunk holds neither a quote
/// nor a backslash: a fold without early exit over a fixed-size array compiles to vector
/// compares (a `bool` fold over `bytes.get(i..i + CHUNK)` here stayed a byte loop).
fn string_end(bytes: &[u8], mut i: usize) -> usize {
    const CHUNK: usize = 64;
    while let Some(chunk) = bytes
        .get(i..i + CHUNK)
        .and_then(|c| <&[u8; CHUNK]>::try_from(c).ok())
    {
        let special = chunk.iter().fold(0u8, |any, &b| {
            any | u8::from(b == b'"') | u8::from(b == b'\\')
        });
        if special != 0 {
            break;
        }
        i += CHUNK;
    }
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::exceeds;

    #[test]
    fn table() {
        let rows: &[(&str, usize, bool)] = &[
            ("{}", 1, false),
            ("{}", 0, true),
            ("[[[]]]", 3, false),
            ("[[[]]]", 2, true),
            (r#"{"a":"[[[[[[["}"#, 1, false),
            (r#"{"a":"\"[[[[["}"#, 1, false),
            (r#"[{"a":[1,{"b":[]}]}]"#, 5, false),
            (r#"[{"a":[1,{"b":[]}]}]"#, 4, true),
        ];
        for (input, limit, want) in rows {
            assert_eq!(
                exceeds(input.as_bytes(), *limit),
                *want,
                "{input} limit {limit}"
            );
        }
    }

    /// Strings longer than a chunk, with quotes and escapes on both sides of chunk boundaries.
    #[test]
    fn brackets_in_long_strings_do_not_count() {
        for pad in [0, 1, 62, 63, 64, 65, 127, 128, 200] {
            let text = format!("{}\\\"[[[{}\\\\", "x".repeat(pad), "[".repeat(pad));
            let doc = format!(r#"{{"a":"{text}","b":[[]]}}"#);
            assert!(!exceeds(doc.as_bytes(), 3), "pad {pad}: {doc}");
            assert!(exceeds(doc.as_bytes(), 2), "pad {pad}: {doc}");
        }
    }

    /// The byte-at-a-time scan the chunked one replaced, as the reference.
    fn reference(bytes: &[u8], limit: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in bytes {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return true;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        false
    }

    proptest::proptest! {
        #[test]
        /// Runs of one byte (so long quote-free stretches cross chunk boundaries too).
        fn chunked_scan_agrees_with_the_reference(
            runs in proptest::collection::vec(
                (proptest::sample::select(b"[]{}\"\\x".to_vec()), 1usize..150),
                0..24,
            ),
            limit in 0usize..6,
        ) {
            let text: Vec<u8> = runs.iter().flat_map(|&(b, n)| std::iter::repeat_n(b, n)).collect();
            proptest::prop_assert_eq!(exceeds(&text, limit), reference(&text, limit));
        }
    }

    #[test]
    fn very_deep_input_is_cheap_and_detected() {
        let deep = "[".repeat(100_000);
        assert!(exceeds(deep.as_bytes(), 64));
    }
}
