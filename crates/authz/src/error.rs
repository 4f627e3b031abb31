//! Why a policy set could not be loaded. Every error names the file and, where there is one,
//! the line and column (`policies/rbac.cedar:3:7: unexpected token`).

use std::fmt;
use std::path::PathBuf;

/// A place in a policy file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text).
    pub fn of(path: PathBuf, text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() + 1;
        Location { path, line, col }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("authz.policies: {pattern}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("authz.policies: {pattern} matches no file")]
    NoMatch { pattern: String },
    #[error("{}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    /// The file is not valid Cedar.
    #[error("{at}: {reason}")]
    Syntax { at: Location, reason: String },
    /// The policy does not fit the schema (unknown action, attribute, wrong type).
    #[error("{at}: {reason}")]
    Invalid { at: Location, reason: String },
    #[error("{at}: policy id {id:?} is already used at {first}")]
    DuplicateId {
        at: Location,
        id: String,
        first: Location,
    },
    #[error("{at}: policy {id}: {reason}")]
    Annotation {
        at: Location,
        id: String,
        reason: String,
    },
    #[error("{}: policy templates (?principal, ?resource slots) are not supported", path.display())]
    Template { path: PathBuf },
    #[error("{0}")]
    Schema(String),
}

/// Every problem found in one load: reading and parsing problems in file order, then schema
/// problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per problem.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let text = "ab\ncdé\nf";
        let rows = [
            (0, 1, 1),
            (2, 1, 3),
            (3, 2, 1),
            (5, 2, 3),
            (7, 2, 4),
            (8, 3, 1),
            (99, 3, 2),
        ];
        for (offset, line, col) in rows {
            let l = Location::of("p.cedar".into(), text, offset);
            assert_eq!((l.line, l.col), (line, col), "offset {offset}");
        }
        assert_eq!(
            Location::of("p.cedar".into(), text, 3).to_string(),
            "p.cedar:2:1"
        );
    }
}
