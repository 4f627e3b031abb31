//! Value syntaxes: durations (`"30s"`), sizes (`"1MiB"`) and rates (`"10/min"`).
//!
//! Each parser returns the reason as text; the caller adds the file and key.

use std::time::Duration;

use crate::model::Rate;

const DURATION_UNITS: &str = "expected a number followed by ms, s, m, h or d";
const SIZE_UNITS: &str =
    "expected a number of bytes, optionally followed by KiB, MiB, GiB, TiB, KB, MB, GB or TB";
const RATE_UNITS: &str = "expected COUNT/UNIT with UNIT one of s, min, h or d (e.g. \"10/min\")";

/// `"250ms"`, `"30s"`, `"10m"`, `"1h"`, `"365d"`: one whole number, one unit (a space between
/// them is allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: {DURATION_UNITS}");
    let (digits, unit) = split_number(text.trim()).ok_or_else(invalid)?;
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: too large"))?;
    let millis_per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

/// `"512"`, `"1KiB"`, `"10MiB"`, `"1GiB"` (binary) or `"1KB"`, `"1MB"` (decimal), in bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size {text:?}: {SIZE_UNITS}");
    let (digits, unit) = split_number(text.trim()).ok_or_else(invalid)?;
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: too large"))?;
    let multiplier: u64 = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// `"10/min"`, `"5/s"`, `"100/h"`, `"1000/d"`. The count must be at least 1.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let invalid = || format!("invalid rate {text:?}: {RATE_UNITS}");
    let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let count: u32 = count
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: too large"))?;
    if count == 0 {
        return Err(format!(
            "invalid rate {text:?}: the count must be at least 1"
        ));
    }
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3_600,
        "d" | "day" => 86_400,
        _ => return Err(invalid()),
    };
    Ok(Rate {
        count,
        per: Duration::from_secs(secs),
    })
}

/// Splits `"30s"` into `("30", "s")`. `None` unless it starts with at least one ASCII digit.
fn split_number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    (end > 0).then(|| text.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why a row is rejected; the full expected message is built from it.
    #[derive(Debug, Clone, Copy)]
    enum Bad {
        Syntax,
        TooLarge,
        ZeroCount,
    }
    use Bad::*;

    fn message(kind: &str, text: &str, bad: Bad, units: &str) -> String {
        match bad {
            Syntax => format!("invalid {kind} {text:?}: {units}"),
            TooLarge => format!("invalid {kind} {text:?}: too large"),
            ZeroCount => format!("invalid {kind} {text:?}: the count must be at least 1"),
        }
    }

    #[test]
    fn durations() {
        const S: u64 = 1_000;
        let rows: &[(&str, Result<u64, Bad>)] = &[
            ("250ms", Ok(250)),
            ("30s", Ok(30 * S)),
            ("10m", Ok(600 * S)),
            ("1h", Ok(3_600 * S)),
            ("365d", Ok(365 * 86_400 * S)),
            ("0s", Ok(0)),
            (" 5s ", Ok(5 * S)),
            ("30 s", Ok(30 * S)),
            ("007s", Ok(7 * S)),
            ("", Err(Syntax)),
            ("30", Err(Syntax)),
            ("30x", Err(Syntax)),
            ("-1s", Err(Syntax)),
            ("+1s", Err(Syntax)),
            ("s", Err(Syntax)),
            ("1.5s", Err(Syntax)),
            ("1h30m", Err(Syntax)),
            ("30S", Err(Syntax)),
            ("30sec", Err(Syntax)),
            ("99999999999999999999s", Err(TooLarge)),
            ("18446744073709551615d", Err(TooLarge)),
        ];
        for (text, expected) in rows {
            let got = parse_duration(text).map(|d| u64::try_from(d.as_millis()).unwrap());
            let expected = expected.map_err(|bad| message("duration", text, bad, DURATION_UNITS));
            assert_eq!(got, expected, "{text:?}");
        }
        assert_eq!(
            parse_duration("30x").unwrap_err(),
            "invalid duration \"30x\": expected a number followed by ms, s, m, h or d"
        );
    }

    #[test]
    fn sizes() {
        let rows: &[(&str, Result<u64, Bad>)] = &[
            ("512", Ok(512)),
            ("0", Ok(0)),
            ("512B", Ok(512)),
            ("1KiB", Ok(1024)),
            ("1MiB", Ok(1 << 20)),
            ("10MiB", Ok(10 << 20)),
            ("1GiB", Ok(1 << 30)),
            ("2TiB", Ok(2 << 40)),
            ("1KB", Ok(1_000)),
            ("1kB", Ok(1_000)),
            ("1MB", Ok(1_000_000)),
            ("3GB", Ok(3_000_000_000)),
            ("10 MiB", Ok(10 << 20)),
            ("18446744073709551615", Ok(u64::MAX)),
            ("", Err(Syntax)),
            ("-1", Err(Syntax)),
            ("1XB", Err(Syntax)),
            ("1mib", Err(Syntax)),
            ("1.5MiB", Err(Syntax)),
            ("MiB", Err(Syntax)),
            ("18446744073709551616", Err(TooLarge)),
            ("16777216TiB", Err(TooLarge)),
        ];
        for (text, expected) in rows {
            let expected = expected.map_err(|bad| message("size", text, bad, SIZE_UNITS));
            assert_eq!(parse_size(text), expected, "{text:?}");
        }
    }

    #[test]
    fn rates() {
        type Row = (&'static str, Result<(u32, u64), Bad>);
        let rows: &[Row] = &[
            ("10/min", Ok((10, 60))),
            ("5/s", Ok((5, 1))),
            ("100/h", Ok((100, 3_600))),
            ("1000/d", Ok((1_000, 86_400))),
            ("120 / minute", Ok((120, 60))),
            ("0/s", Err(ZeroCount)),
            ("10", Err(Syntax)),
            ("10/week", Err(Syntax)),
            ("-1/s", Err(Syntax)),
            ("/s", Err(Syntax)),
            ("", Err(Syntax)),
            ("99999999999/s", Err(TooLarge)),
        ];
        for (text, expected) in rows {
            let got = parse_rate(text).map(|r| (r.count, r.per.as_secs()));
            let expected = expected.map_err(|bad| message("rate", text, bad, RATE_UNITS));
            assert_eq!(got, expected, "{text:?}");
        }
    }
}
