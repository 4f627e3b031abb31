//! The `pii` rule set: personal data, each shape confirmed by its check digits where it has them
//! (Luhn for card numbers, ISO 7064 mod 97 for IBANs, the control letter of Spanish DNI/NIE), so
//! ordinary numbers are not mistaken for them.

use super::Rule;

pub(super) fn rules() -> Result<Vec<Rule>, regex::Error> {
    Ok(vec![
        // Not after `/` so a URL's user name (`postgres://app@db.internal`) is not an address.
        Rule::new(
            "email",
            r"(?:^|[^A-Za-z0-9._%+/-])([A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})\b",
            &["@"],
        )?
        .group(1),
        // International (E.164 with separators) and North American numbers.
        Rule::new("phone", r"(?:^|[^\w+])(\+[1-9][0-9 ().-]{6,22}[0-9])\b", &["+"])?
            .group(1)
            .validate(e164),
        Rule::new(
            "phone",
            r"(?:\(\b[2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b",
            &[],
        )?,
        Rule::new("card_number", r"\b[2-6](?:[ -]?[0-9]){12,18}\b", &[])?.validate(card),
        Rule::new("iban", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,34}", &[])?.validate(iban),
        Rule::new("us_ssn", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", &[])?.validate(ssn),
        Rule::new(
            "uk_nino",
            r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
            &[],
        )?
        .validate(nino),
        Rule::new("es_dni", r"\b[0-9XYZ][0-9]{7}-?[A-Z]\b", &[])?.validate(dni),
    ])
}

fn digits(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// 8–15 digits, separators never doubled.
fn e164(text: &str) -> Option<usize> {
    let n = digits(text).len();
    let doubled = text
        .as_bytes()
        .windows(2)
        .any(|w| matches!(w, [b' ' | b'.' | b'-', b' ' | b'.' | b'-']));
    ((8..=15).contains(&n) && !doubled).then_some(text.len())
}

pub(super) fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// 13–19 digits, one kind of separator, a card network's prefix and a valid Luhn check digit.
fn card(text: &str) -> Option<usize> {
    let d = digits(text);
    let seps: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    let prefix = |n: usize| d.iter().take(n).fold(0, |acc, &x| acc * 10 + x);
    let network = match d.first()? {
        4 => true,                                                  // Visa
        5 => (50..=58).contains(&prefix(2)),                        // Mastercard, Maestro
        2 => (2221..=2720).contains(&prefix(4)),                    // Mastercard 2-series
        3 => matches!(prefix(2), 34 | 37 | 36 | 38 | 39 | 30 | 35), // Amex, Diners, JCB
        6 => true,                                                  // Discover, UnionPay, Maestro
        _ => false,
    };
    (network && (13..=19).contains(&d.len()) && luhn(&d)).then_some(text.len())
}

/// IBAN lengths by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// The country's exact length taken from the match (the regex may run on into the next word),
/// then the mod-97 check.
fn iban(text: &str) -> Option<usize> {
    let want = IBAN_LENGTHS
        .iter()
        .find(|(cc, _)| text.starts_with(cc))
        .map(|(_, n)| *n)?;
    let mut chars = Vec::with_capacity(want);
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' {
            continue;
        }
        chars.push(c);
        end = i + c.len_utf8();
        if chars.len() == want {
            break;
        }
    }
    if chars.len() != want {
        return None;
    }
    // The account part must not run into a following word: the next character, if any, is a
    // space or a non-alphanumeric.
    if text[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let rearranged = chars[4..].iter().chain(&chars[..4]);
    let mut rem: u64 = 0;
    for c in rearranged {
        let v = c.to_digit(36)? as u64;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some(end)
}

fn ssn(text: &str) -> Option<usize> {
    let area = &text[0..3];
    let group = &text[4..6];
    let serial = &text[7..11];
    let bad = area == "000"
        || area == "666"
        || area.starts_with('9')
        || group == "00"
        || serial == "0000";
    (!bad).then_some(text.len())
}

fn nino(text: &str) -> Option<usize> {
    const INVALID_PREFIXES: [&str; 7] = ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"];
    (!INVALID_PREFIXES.contains(&&text[0..2])).then_some(text.len())
}

fn dni(text: &str) -> Option<usize> {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let bytes = text.as_bytes();
    let letter = *bytes.last()?;
    let lead = match bytes.first()? {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        d => u64::from(d - b'0'),
    };
    let rest: u64 = text.get(1..8)?.parse().ok()?;
    let n = lead * 10_000_000 + rest;
    (LETTERS[(n % 23) as usize] == letter).then_some(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_validators() {
        assert!(card("4111111111111111").is_some());
        assert!(card("4111 1111 1111 1111").is_some());
        assert!(card("4111-1111 1111-1111").is_none());
        assert!(card("4111111111111112").is_none());
        assert!(card("378282246310005").is_some());
        assert!(card("5555555555554444").is_some());
        assert!(card("2223003122003222").is_some());
        assert!(card("6011111111111117").is_some());
        assert_eq!(iban("DE89 3704 0044 0532 0130 00"), Some(27));
        assert_eq!(iban("DE89370400440532013000 and"), Some(22));
        assert_eq!(iban("GB82WEST12345698765432"), Some(22));
        assert!(iban("GB82WEST12345698765433").is_none());
        assert!(iban("DE89370400440532013000X").is_none());
        assert!(iban("QQ89370400440532013000").is_none());
        assert!(ssn("123-45-6789").is_some());
        assert!(ssn("000-45-6789").is_none());
        assert!(ssn("666-45-6789").is_none());
        assert!(ssn("900-45-6789").is_none());
        assert!(ssn("123-00-6789").is_none());
        assert!(nino("AB 12 34 56 C").is_some());
        assert!(nino("GB123456A").is_none());
        assert!(dni("12345678Z").is_some());
        assert!(dni("12345678A").is_none());
        assert!(dni("X1234567L").is_some());
        assert!(e164("+1 415 555 2671").is_some());
        assert!(e164("+44 20 7946 0958").is_some());
        assert!(e164("+1 2").is_none());
        assert!(e164("+1234567890123456").is_none());
    }
}
