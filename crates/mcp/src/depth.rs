//! Nesting-depth check that runs before any allocation-heavy parse.

/// Returns the deepest nesting of arrays/objects in `bytes`, stopping early once `limit` is
/// exceeded. Strings (with escapes) are skipped, so brackets inside strings do not count.
/// Works on any bytes; invalid JSON is left for the real parser to reject.
pub fn exceeds(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
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

    #[test]
    fn very_deep_input_is_cheap_and_detected() {
        let deep = "[".repeat(100_000);
        assert!(exceeds(deep.as_bytes(), 64));
    }
}
