//! Shared helpers: a fixed fake source path and a map environment.

use std::collections::BTreeMap;
use std::path::Path;

use portcullis_config::{Config, ConfigErrors, from_str};

/// Never read: it only names the file in messages and anchors relative paths.
pub const SOURCE: &str = "/cfg/portcullis.toml";

pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Parses `text` as if it were `/cfg/portcullis.toml`, with `SEARCH_TOKEN` set.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    from_str(
        text,
        Some(Path::new(SOURCE)),
        &env(&[("SEARCH_TOKEN", "s3cr3t-search")]),
    )
}

/// The error lines of `text`, with the source path shortened to `F`.
pub fn error_lines(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => panic!("expected errors, got a config: {config:#?}\n--- for:\n{text}"),
        Err(errors) => errors
            .to_string()
            .lines()
            .map(|l| l.replace(SOURCE, "F"))
            .collect(),
    }
}
