//! `portcullis.toml` → validated [`Config`].
//!
//! Two stages (parse, don't validate):
//! 1. `raw`: serde structs mirroring the file; TOML syntax and type errors stop here and are
//!    reported with `file:line:column`. Unknown keys do not stop: `unknown` collects each one
//!    (at its `file:line:column`) and they are reported together with stage 2's errors.
//! 2. `validate`: raw → [`Config`]; defaults applied, durations/sizes/secrets/paths resolved,
//!    every problem collected and reported as `file: key.path: reason`.
//!
//! Relative paths in the file resolve against the file's directory.

mod error;
mod model;
mod net;
mod raw;
mod secret;
mod units;
mod unknown;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::Path;

pub use error::{ConfigError, ConfigErrors, Location};
pub use model::*;
pub use secret::Secret;
pub use units::{parse_duration, parse_rate, parse_size};

/// Name used in messages for text that has no source file.
pub const NO_SOURCE: &str = "<string>";

/// Reads environment variables for `env:NAME` secrets (tests pass a map).
pub trait Env {
    /// The variable's value; `None` when unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads and validates the configuration file at `path`, with secrets from the process
/// environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => from_str(&text, Some(path), &ProcessEnv),
        Err(err) => Err(ConfigErrors::single(
            &path.display().to_string(),
            Location::File,
            format!("cannot read configuration: {err}"),
        )),
    }
}

/// Validates configuration text. `source` names the file in messages and anchors relative
/// paths (its directory); without it they resolve against the current directory.
pub fn from_str(text: &str, source: Option<&Path>, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let file = source.map_or_else(|| NO_SOURCE.to_owned(), |path| path.display().to_string());
    let cwd = std::env::current_dir().map_err(|err| {
        ConfigErrors::single(
            &file,
            Location::File,
            format!("cannot determine the current directory: {err}"),
        )
    })?;
    let source = source.map(|path| validate::normalize(&cwd.join(path)));
    let base = match source.as_deref().and_then(Path::parent) {
        Some(dir) => dir.to_path_buf(),
        None => cwd,
    };
    let (raw, unknown_keys) = unknown::parse(&file, text)?;
    let mut ctx = validate::Ctx::new(file, base, env);
    ctx.extend_errors(unknown_keys);
    let config = validate::config(raw, source, &mut ctx);
    let (mut config, warnings) = ctx.finish(config)?;
    config.warnings = warnings;
    Ok(config)
}
