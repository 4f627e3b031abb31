//! Characters a person does not see but a model reads: the raw material of "ASCII smuggling"
//! (Unicode tag characters), bidirectional-text tricks and terminal escape sequences.
//!
//! Shared by the poisoning scan (which flags them in tool descriptions) and result sanitization
//! (which removes them from text a tool returns).

/// Why a character is considered hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hidden {
    /// U+E0000–U+E007F: invisible copies of ASCII that models read as text.
    Tag,
    /// U+E0100–U+E01EF: variation selectors used to smuggle bytes after a visible character.
    VariationSelector,
    /// Zero-width space, joiners, word joiner, BOM and other invisible formatting characters.
    ZeroWidth,
    /// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
    Bidi,
    /// C0 and C1 control characters other than tab, line feed and carriage return (ESC starts
    /// terminal escape sequences that can hide text from a person reading a terminal).
    Control,
}

impl Hidden {
    pub fn as_str(self) -> &'static str {
        match self {
            Hidden::Tag => "tag character",
            Hidden::VariationSelector => "variation selector",
            Hidden::ZeroWidth => "zero-width character",
            Hidden::Bidi => "bidirectional override",
            Hidden::Control => "control character",
        }
    }
}

/// Classifies `c`; `None` for characters a person sees (or ordinary whitespace).
pub fn classify(c: char) -> Option<Hidden> {
    match c {
        '\u{E0000}'..='\u{E007F}' => Some(Hidden::Tag),
        '\u{E0100}'..='\u{E01EF}' => Some(Hidden::VariationSelector),
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{180E}'
        | '\u{00AD}'
        | '\u{034F}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{3164}'
        | '\u{FFA0}' => Some(Hidden::ZeroWidth),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => {
            Some(Hidden::Bidi)
        }
        '\t' | '\n' | '\r' => None,
        c if c.is_control() => Some(Hidden::Control),
        _ => None,
    }
}

/// Zero-width joiner and non-joiner are invisible but also part of ordinary writing (emoji
/// sequences, Persian and Indic scripts). Sanitization keeps them; the scan still reports them in
/// tool descriptions, where they have no business.
pub fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// `text` with every hidden character written as `\u{XXXX}`, for excerpts shown to people.
pub fn escape_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if classify(c).is_some() {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let rows = [
            ('a', None),
            (' ', None),
            ('\n', None),
            ('\t', None),
            ('é', None),
            ('字', None),
            ('\u{E0041}', Some(Hidden::Tag)),
            ('\u{E007F}', Some(Hidden::Tag)),
            ('\u{E0101}', Some(Hidden::VariationSelector)),
            ('\u{200B}', Some(Hidden::ZeroWidth)),
            ('\u{200D}', Some(Hidden::ZeroWidth)),
            ('\u{2060}', Some(Hidden::ZeroWidth)),
            ('\u{FEFF}', Some(Hidden::ZeroWidth)),
            ('\u{202E}', Some(Hidden::Bidi)),
            ('\u{2067}', Some(Hidden::Bidi)),
            ('\u{1B}', Some(Hidden::Control)),
            ('\u{0}', Some(Hidden::Control)),
            ('\u{85}', Some(Hidden::Control)),
            ('\u{7F}', Some(Hidden::Control)),
        ];
        for (c, want) in rows {
            assert_eq!(classify(c), want, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn escapes_for_display() {
        assert_eq!(
            escape_hidden("a\u{E0041}b\u{1B}[2K"),
            "a\\u{E0041}b\\u{001B}[2K"
        );
    }
}
