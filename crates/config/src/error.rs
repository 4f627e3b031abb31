//! Configuration errors: every one names the file, where in it (a key path or a line and column)
//! and the reason. [`ConfigErrors`] holds all of them; its `Display` prints one per line.

use std::fmt;

/// Where in the file an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The whole file (it could not be read).
    File,
    /// A position in the text (1-based), for TOML syntax, unknown-key and type errors.
    Position { line: usize, column: usize },
    /// A key path such as `upstream[1].command` or `limits.call_timeout`.
    Key(String),
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the caller named it (or `<string>` for text without a source).
    pub file: String,
    pub location: Location,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File => write!(f, "{}: {}", self.file, self.message),
            Location::Position { line, column } => {
                write!(f, "{}:{line}:{column}: {}", self.file, self.message)
            }
            Location::Key(key) => write!(f, "{}: {key}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(errors: Vec<ConfigError>) -> Self {
        Self { errors }
    }

    pub(crate) fn single(file: &str, location: Location, message: impl Into<String>) -> Self {
        Self::new(vec![ConfigError {
            file: file.to_owned(),
            location,
            message: message.into(),
        }])
    }

    /// A TOML syntax or type error from the deserializer, placed at its line and
    /// column when the parser reported a span.
    pub(crate) fn from_toml(file: &str, text: &str, error: &toml::de::Error) -> Self {
        let message = error.message().trim_end().replace('\n', "; ");
        let location = match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                Location::Position { line, column }
            }
            None => Location::File,
        };
        Self::single(file, location, message)
    }

    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and column (in characters) of a byte offset. Offsets past the end or inside a
/// multi-byte character are clamped to the nearest character boundary before them.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_table() {
        let text = "a = 1\nbé = 2\n\nx";
        let rows = [
            (0, (1, 1)),
            (4, (1, 5)),
            (5, (1, 6)),
            (6, (2, 1)),
            (8, (2, 2)), // inside `é`: clamped back to its start
            (9, (2, 3)),
            (14, (3, 1)),
            (15, (4, 1)),
            (999, (4, 2)),
        ];
        for (offset, expected) in rows {
            assert_eq!(line_column(text, offset), expected, "offset {offset}");
        }
        assert_eq!(line_column("", 3), (1, 1));
    }

    #[test]
    fn display_one_error_per_line() {
        let errors = ConfigErrors::new(vec![
            ConfigError {
                file: "p.toml".into(),
                location: Location::Key("limits.call_timeout".into()),
                message: "bad".into(),
            },
            ConfigError {
                file: "p.toml".into(),
                location: Location::Position { line: 3, column: 7 },
                message: "unknown field `x`".into(),
            },
            ConfigError {
                file: "p.toml".into(),
                location: Location::File,
                message: "gone".into(),
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "p.toml: limits.call_timeout: bad\np.toml:3:7: unknown field `x`\np.toml: gone"
        );
    }
}
