//! Path arguments: `within = [ROOT, …]`.
//!
//! A path is accepted only when it is absolute, plainly spelled and — after the real filesystem
//! has resolved every symlink — lies inside one of the roots. Two stages:
//!
//! 1. [`lexical`] (pure): refuses what different programs read differently or what encodes a
//!    traversal: `..` components, NUL and control characters, backslashes, drive letters, UNC and
//!    `//` roots, `~` (home expansion), percent-encoded or double-encoded separators and dots,
//!    overlong UTF-8, look-alike dots and slashes, and relative paths (the upstream would resolve
//!    them against a directory the gateway does not know).
//! 2. [`PathRule::check`] (reads the filesystem): resolves the deepest existing ancestor with
//!    `canonicalize` (so a symlink anywhere on the path is followed to where it really points),
//!    appends the components that do not exist yet, and requires the result to lie under a
//!    canonicalised root. A dangling symlink is refused: writing through it would create its target.
//!
//! The check runs just before the call; the filesystem can change in between (TOCTOU). The
//! upstream's sandbox (`fs_read`/`fs_write`) is the boundary that holds regardless.
//!
//! A root may contain `{principal}`, replaced by the caller's principal id escaped so it is one
//! plain path component (see [`principal_component`]).

use std::path::{Component, Path, PathBuf};

/// A compiled `within` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    pub roots: Vec<PathBuf>,
}

/// Why a path was refused. `Display` is the public message (it never names the roots).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathViolation {
    #[error("must be an absolute path")]
    Relative,
    #[error("must not contain '..'")]
    DotDot,
    #[error("must not contain NUL or control characters")]
    Control,
    #[error("must not use Windows separators, drive letters or UNC paths")]
    Windows,
    #[error("must not start with '~'")]
    Home,
    #[error("must not contain percent-encoded separators, dots or '%' (encoded traversal)")]
    Encoded,
    #[error("must not contain characters that look like '.' or '/'")]
    LookAlike,
    #[error("is a symlink that points nowhere")]
    DanglingSymlink,
    #[error("is outside the allowed directories")]
    Outside,
    #[error("cannot be checked")]
    Unreadable,
}

impl PathRule {
    /// Accepts `text` when it lies inside one of the roots (with `{principal}` expanded).
    pub fn check(&self, text: &str, principal: &str) -> Result<(), PathViolation> {
        let path = lexical(text)?;
        let real = resolve(&path)?;
        let component = principal_component(principal);
        for root in &self.roots {
            let root = expand_root(root, &component);
            let Ok(root) = resolve(&root) else { continue };
            if real.starts_with(&root) {
                return Ok(());
            }
        }
        Err(PathViolation::Outside)
    }
}

/// Stage 1: the pure checks. Returns the path with `.` components and repeated `/` removed.
pub fn lexical(text: &str) -> Result<PathBuf, PathViolation> {
    if text.chars().any(char::is_control) {
        return Err(PathViolation::Control);
    }
    let bytes = text.as_bytes();
    if text.contains('\\')
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
        || text.starts_with("//")
    {
        return Err(PathViolation::Windows);
    }
    if text.starts_with('~') {
        return Err(PathViolation::Home);
    }
    if has_encoded_traversal(text) {
        return Err(PathViolation::Encoded);
    }
    if text.chars().any(is_look_alike) {
        return Err(PathViolation::LookAlike);
    }
    if !text.starts_with('/') {
        return Err(PathViolation::Relative);
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(text).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(PathViolation::DotDot),
            Component::Normal(part) => out.push(part),
            Component::Prefix(_) => return Err(PathViolation::Windows),
        }
    }
    Ok(out)
}

/// `%2e`, `%2f`, `%5c`, `%00`, `%25` (a second encoding layer) and overlong UTF-8 lead bytes
/// (`%c0`, `%c1`, `%e0%80`), in any case. Other escapes (`%20`) are ordinary file-name text.
fn has_encoded_traversal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let hex = |i: usize| -> Option<u8> {
        let h = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
        u8::from_str_radix(h, 16).ok()
    };
    (0..bytes.len()).any(|i| {
        bytes[i] == b'%'
            && match hex(i + 1) {
                Some(b'.' | b'/' | b'\\' | 0 | b'%' | 0xc0 | 0xc1) => true,
                Some(0xe0) => bytes.get(i + 3) == Some(&b'%') && hex(i + 4) == Some(0x80),
                _ => false,
            }
    })
}

/// Characters some programs normalise (NFKC) into `.` or `/`.
fn is_look_alike(c: char) -> bool {
    matches!(
        c,
        '\u{2024}' // one dot leader
            | '\u{2025}' // two dot leader
            | '\u{FE52}' // small full stop
            | '\u{FF0E}' // fullwidth full stop
            | '\u{2215}' // division slash
            | '\u{2044}' // fraction slash
            | '\u{FF0F}' // fullwidth solidus
            | '\u{29F8}' // big solidus
            | '\u{FF3C}' // fullwidth reverse solidus
            | '\u{FE68}' // small reverse solidus
    )
}

/// Stage 2: where `path` really is. The deepest existing ancestor is canonicalised (following
/// every symlink); the components below it do not exist, so they cannot be symlinks.
fn resolve(path: &Path) -> Result<PathBuf, PathViolation> {
    let mut existing = path;
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut real) => {
                for part in rest.iter().rev() {
                    real.push(part);
                }
                return Ok(real);
            }
            Err(_) => {
                if std::fs::symlink_metadata(existing).is_ok() {
                    // Exists but cannot be resolved: a dangling symlink (or a loop).
                    return Err(PathViolation::DanglingSymlink);
                }
                match (existing.parent(), existing.file_name()) {
                    (Some(parent), Some(name)) => {
                        rest.push(name);
                        existing = parent;
                    }
                    _ => return Err(PathViolation::Unreadable),
                }
            }
        }
    }
}

/// `root` with each `{principal}` replaced by `component`.
fn expand_root(root: &Path, component: &str) -> PathBuf {
    let text = root.to_string_lossy();
    if text.contains("{principal}") {
        PathBuf::from(text.replace("{principal}", component))
    } else {
        root.to_path_buf()
    }
}

/// A principal id as one plain path component: ASCII letters, digits, `_`, `-`, `@` and `.` are
/// kept (a leading `.` is escaped), everything else — `/`, `\`, `%`, NUL, non-ASCII — becomes
/// `%XX` per UTF-8 byte. The mapping is injective (two principals never share a directory) and
/// the result is never empty, `.` or `..`.
pub fn principal_component(principal: &str) -> String {
    let mut out = String::with_capacity(principal.len() + 2);
    for (i, b) in principal.bytes().enumerate() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@') || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
