//! The validation context: collects every error and warning, and turns the raw value syntaxes
//! (paths, durations, sizes, counts, secrets, URLs) into typed values.
//!
//! Each helper records its own error under the key it was given and returns `None` (or a
//! default), so validation always runs to the end and reports everything.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::Env;
use crate::error::{ConfigError, ConfigErrors, Location};
use crate::net;
use crate::raw::RawSize;
use crate::secret::Secret;
use crate::units;

/// What to do with plain `http://` to a host that is not loopback.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PlainHttp {
    /// Refuse; the text is a hint appended to the error.
    Refuse(&'static str),
    /// Accept with a warning.
    Warn,
    /// Accept (the operator opted in).
    Allow,
}

pub(crate) struct Ctx<'a> {
    file: String,
    base: PathBuf,
    env: &'a dyn Env,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// `file` names the configuration in messages; relative paths resolve against `base`.
    pub fn new(file: String, base: PathBuf, env: &'a dyn Env) -> Self {
        Self {
            file,
            base,
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            location: Location::Key(key.to_owned()),
            message: message.into(),
        });
    }

    /// Errors found before validation (unknown keys), reported first.
    pub fn extend_errors(&mut self, errors: Vec<ConfigError>) {
        self.errors.extend(errors);
    }

    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// The value and the warnings, or every error found.
    pub fn finish<T>(self, value: T) -> Result<(T, Vec<String>), ConfigErrors> {
        if self.errors.is_empty() {
            Ok((value, self.warnings))
        } else {
            Err(ConfigErrors::new(self.errors))
        }
    }

    /// A required, non-empty string.
    pub fn required(&mut self, key: &str, value: Option<String>) -> Option<String> {
        match value {
            None => {
                self.error(key, "required key is missing");
                None
            }
            Some(text) => self.non_empty(key, text),
        }
    }

    pub fn non_empty(&mut self, key: &str, text: String) -> Option<String> {
        if text.trim().is_empty() {
            self.error(key, "must not be empty");
            None
        } else {
            Some(text)
        }
    }

    /// A path made absolute against the config directory and normalised (`.`, `..` removed).
    pub fn path(&mut self, key: &str, text: &str) -> Option<PathBuf> {
        if text.is_empty() {
            self.error(key, "must not be empty");
            return None;
        }
        if text == "~" || text.starts_with("~/") {
            self.error(
                key,
                format!("{text:?}: `~` is not expanded; use an absolute path"),
            );
            return None;
        }
        Some(normalize(&self.base.join(text)))
    }

    /// A path that must name an existing regular file.
    pub fn existing_file(&mut self, key: &str, text: &str) -> Option<PathBuf> {
        let path = self.path(key, text)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Some(path),
            Ok(_) => {
                self.error(key, format!("{} is not a file", path.display()));
                None
            }
            Err(err) => {
                self.error(
                    key,
                    format!("cannot read {}: {}", path.display(), io_reason(&err)),
                );
                None
            }
        }
    }

    /// A path that must name an existing directory.
    pub fn existing_dir(&mut self, key: &str, text: &str) -> Option<PathBuf> {
        let path = self.path(key, text)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Some(path),
            Ok(_) => self.fail(key, format!("{} is not a directory", path.display())),
            Err(err) => self.fail(
                key,
                format!("cannot read {}: {}", path.display(), io_reason(&err)),
            ),
        }
    }

    /// A duration greater than zero.
    pub fn duration(&mut self, key: &str, text: Option<&str>) -> Option<Duration> {
        match units::parse_duration(text?) {
            Ok(d) if d.is_zero() => self.fail(key, "must be greater than 0"),
            Ok(d) => Some(d),
            Err(reason) => self.fail(key, reason),
        }
    }

    /// A size in bytes greater than zero.
    pub fn size(&mut self, key: &str, value: Option<&RawSize>) -> Option<u64> {
        let parsed = match value? {
            RawSize::Bytes(n) => {
                u64::try_from(*n).map_err(|_| format!("invalid size {n}: negative"))
            }
            RawSize::Text(text) => units::parse_size(text),
        };
        match parsed {
            Ok(0) => self.fail(key, "must be greater than 0"),
            Ok(n) => Some(n),
            Err(reason) => self.fail(key, reason),
        }
    }

    /// An integer of at least `min` that fits `T`.
    pub fn count<T: TryFrom<i64>>(&mut self, key: &str, value: Option<i64>, min: i64) -> Option<T> {
        let n = value?;
        if n < min {
            return self.fail(key, format!("must be at least {min}, not {n}"));
        }
        match T::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => self.fail(key, format!("{n} is too large")),
        }
    }

    /// `env:NAME`, `file:PATH` or inline text. Inline text warns when `warn_inline` is set.
    pub fn secret(&mut self, key: &str, text: &str, warn_inline: bool) -> Option<Secret> {
        if let Some(name) = text.strip_prefix("env:") {
            if !is_env_name(name) {
                return self.fail(key, format!("invalid environment variable name {name:?}"));
            }
            return match self.env.var(name) {
                None => self.fail(key, format!("environment variable {name} is not set")),
                Some(value) if value.is_empty() => {
                    self.fail(key, format!("environment variable {name} is empty"))
                }
                Some(value) => Some(Secret::new(text, value)),
            };
        }
        if let Some(file) = text.strip_prefix("file:") {
            let path = self.path(key, file)?;
            return match std::fs::read_to_string(&path) {
                Err(err) => self.fail(
                    key,
                    format!(
                        "cannot read secret file {}: {}",
                        path.display(),
                        io_reason(&err)
                    ),
                ),
                Ok(value) => match value.trim_end_matches(['\n', '\r']) {
                    "" => self.fail(key, format!("secret file {} is empty", path.display())),
                    value => Some(Secret::new(format!("file:{}", path.display()), value)),
                },
            };
        }
        if text.is_empty() {
            return self.fail(key, "must not be empty");
        }
        if warn_inline {
            self.warn(format!("inline secret at {key}; use env: or file:"));
        }
        Some(Secret::new("inline", text))
    }

    /// An `http(s)://` URL without credentials in it.
    pub fn http_url(&mut self, key: &str, text: &str, plain: PlainHttp) -> Option<String> {
        let url = match net::parse_http_url(text) {
            Ok(url) => url,
            Err(reason) => return self.fail(key, reason),
        };
        if url.userinfo {
            return self.fail(
                key,
                "credentials in the URL are not allowed; configure them as a secret",
            );
        }
        if !url.https && !url.is_loopback() {
            let host = url.host.to_owned();
            match plain {
                PlainHttp::Refuse(hint) => {
                    return self.fail(
                        key,
                        format!("plain http to non-loopback host {host:?} is not allowed; use https{hint}"),
                    );
                }
                PlainHttp::Warn => self.warn(format!(
                    "{key}: plain http to {host:?} sends data unencrypted"
                )),
                PlainHttp::Allow => {}
            }
        }
        Some(text.to_owned())
    }

    fn fail<T>(&mut self, key: &str, message: impl Into<String>) -> Option<T> {
        self.error(key, message);
        None
    }
}

/// `prefix.name`, quoting `name` as TOML would when it is not a bare key (`headers."Bad Name"`).
pub(crate) fn subkey(prefix: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        format!("{prefix}.{name}")
    } else {
        format!("{prefix}.{name:?}")
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Lexical normalisation of an absolute path: drops `.`, applies `..` (never above the root).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The OS reason without the `(os error N)` suffix noise.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let rows = [
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b"),
            ("/../../x", "/x"),
            ("/a/b/c/../../d", "/a/d"),
        ];
        for (input, expected) in rows {
            assert_eq!(
                normalize(Path::new(input)),
                PathBuf::from(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_X", "SEARCH_TOKEN", "a1"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
