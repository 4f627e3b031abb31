//! Stage 1 without stopping at unknown keys: the raw structs accept any key, `serde_ignored`
//! collects every key they ignore, and each becomes a [`ConfigError`] placed at the key's line and
//! column (or, failing that, named by its key path), so stage 2 still runs and `portcullis check`
//! reports unknown keys together with every validation error.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, ConfigErrors, Location, line_column};
use crate::raw;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Deserializes the raw structs. Syntax and type errors still stop at the first one; unknown
/// keys are returned as errors alongside the value.
pub(crate) fn parse(
    file: &str,
    text: &str,
) -> Result<(raw::RawConfig, Vec<ConfigError>), ConfigErrors> {
    let to_errors = |err: &toml::de::Error| ConfigErrors::from_toml(file, text, err);
    let deserializer = toml::Deserializer::parse(text).map_err(|err| to_errors(&err))?;
    let mut unknown: Vec<Vec<Segment>> = Vec::new();
    let config: raw::RawConfig =
        serde_ignored::deserialize(deserializer, |path| unknown.push(segments(&path)))
            .map_err(|err| to_errors(&err))?;
    if unknown.is_empty() {
        return Ok((config, Vec::new()));
    }
    let root = DeTable::parse(text).ok();
    let mut errors: Vec<ConfigError> = unknown
        .iter()
        .map(|path| unknown_key(file, text, root.as_ref().map(|r| r.get_ref()), path))
        .collect();
    errors.sort_by_key(|error| match error.location {
        Location::Position { line, column } => (line, column),
        _ => (usize::MAX, usize::MAX),
    });
    Ok((config, errors))
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut current = path;
    loop {
        current = match current {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                out.push(Segment::Index(*index));
                parent
            }
            serde_ignored::Path::Map { parent, key } => {
                out.push(Segment::Key(key.clone()));
                parent
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => parent,
        };
    }
    out.reverse();
    out
}

fn unknown_key(
    file: &str,
    text: &str,
    root: Option<&DeTable<'_>>,
    path: &[Segment],
) -> ConfigError {
    let (parent, key) = match path.split_last() {
        Some((Segment::Key(key), parent)) => (parent, key.as_str()),
        _ => (path, ""),
    };
    let mut message = format!("unknown key `{key}`");
    let expected = expected_fields(parent);
    if !expected.is_empty() {
        message.push_str(&format!(" (expected one of: {})", expected.join(", ")));
    }
    let location = match root.and_then(|root| key_offset(root, path)) {
        Some(offset) => {
            let (line, column) = line_column(text, offset);
            Location::Position { line, column }
        }
        None => Location::Key(dotted(path)),
    };
    ConfigError {
        file: file.to_owned(),
        location,
        message,
    }
}

/// Byte offset of the last key of `path` in the document.
fn key_offset(root: &DeTable<'_>, path: &[Segment]) -> Option<usize> {
    let (last, parents) = path.split_last()?;
    let mut table = root;
    let mut value: Option<&DeValue<'_>> = None;
    for segment in parents {
        let next = match (segment, value) {
            (Segment::Key(key), None) => lookup(table, key)?.1,
            (Segment::Key(key), Some(DeValue::Table(t))) => lookup(t, key)?.1,
            (Segment::Index(i), Some(DeValue::Array(items))) => items.get(*i)?.get_ref(),
            _ => return None,
        };
        value = Some(next);
        if let DeValue::Table(t) = next {
            table = t;
        }
    }
    let table = match value {
        None => table,
        Some(DeValue::Table(t)) => t,
        Some(_) => return None,
    };
    match last {
        Segment::Key(key) => Some(lookup(table, key)?.0),
        Segment::Index(_) => None,
    }
}

fn lookup<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<(usize, &'t DeValue<'i>)> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, v)| (k.span().start, v.get_ref()))
}

/// `upstream[1].sandbox.netwrok`, as stage 2 names keys.
fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The keys the table at `parent` accepts (empty when unknown).
fn expected_fields(parent: &[Segment]) -> &'static [&'static str] {
    let keys: Vec<&str> = parent
        .iter()
        .filter_map(|segment| match segment {
            Segment::Key(key) => Some(key.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    match keys.as_slice() {
        [] => fields::<raw::RawConfig>(),
        ["listen"] => fields::<raw::RawListen>(),
        ["listen", "tls"] => fields::<raw::RawTls>(),
        ["storage"] => fields::<raw::RawStorage>(),
        ["limits"] => fields::<raw::RawLimits>(),
        ["federation"] => fields::<raw::RawFederation>(),
        ["rate_limit"] => fields::<raw::RawRateLimit>(),
        ["rate_limit", "rule"] => fields::<raw::RawRateRule>(),
        ["auth"] => fields::<raw::RawAuth>(),
        ["auth", "jwt"] => fields::<raw::RawJwt>(),
        ["auth", "introspection"] => fields::<raw::RawIntrospection>(),
        ["auth", "mtls"] => fields::<raw::RawMtls>(),
        ["authz"] => fields::<raw::RawAuthz>(),
        ["upstream"] => fields::<raw::RawUpstream>(),
        ["upstream", "auth"] => fields::<raw::RawUpstreamAuth>(),
        ["upstream", "sandbox"] => fields::<raw::RawSandbox>(),
        ["upstream", "tool"] => fields::<raw::RawTool>(),
        ["upstream", "tool", "args", _] | ["upstream", "resources"] => fields::<raw::RawArgRule>(),
        ["guard"] => fields::<raw::RawGuard>(),
        ["guard", "redact_pattern"] => fields::<raw::RawRedactPattern>(),
        ["audit"] => fields::<raw::RawAudit>(),
        ["audit", "sink"] | ["anomaly", "alert"] => fields::<raw::RawSink>(),
        ["approval"] => fields::<raw::RawApproval>(),
        ["anomaly"] => fields::<raw::RawAnomaly>(),
        _ => &[],
    }
}

/// The field names serde derived for `T`, read from its `deserialize_struct` call.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(FieldCatcher) {
        Err(Caught(fields)) => fields,
        Ok(_) => &[],
    }
}

struct FieldCatcher;

#[derive(Debug)]
struct Caught(&'static [&'static str]);

impl fmt::Display for Caught {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field list")
    }
}

impl std::error::Error for Caught {}

impl de::Error for Caught {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Caught(&[])
    }
}

impl<'de> Deserializer<'de> for FieldCatcher {
    type Error = Caught;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Caught> {
        Err(Caught(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Caught> {
        Err(Caught(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_serde() {
        assert_eq!(
            expected_fields(&[Segment::Key("listen".into())]),
            ["addr", "allowed_origins", "tls", "max_connections"]
        );
        assert!(expected_fields(&[Segment::Key("nowhere".into())]).is_empty());
    }

    #[test]
    fn unknown_keys_are_placed_and_named() {
        let text = "[listen]\naddr = \"127.0.0.1:1\"\nbogus = 1\n\n[[upstream]]\nname = \"a\"\n[[upstream]]\nname = \"b\"\n[upstream.sandbox]\nnetwrok = \"none\"\n";
        let (_, errors) = parse("p.toml", text)
            .map_err(|e| e.to_string())
            .unwrap_or_default();
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "p.toml:3:1: unknown key `bogus` (expected one of: addr, allowed_origins, tls, max_connections)",
                "p.toml:10:1: unknown key `netwrok` (expected one of: fs_read, fs_write, network, memory, cpu_time, processes, storage_quota, dangerous_allow_weaker_sandbox)",
            ]
        );
    }

    #[test]
    fn unplaced_keys_fall_back_to_the_key_path() {
        let path = [
            Segment::Key("upstream".into()),
            Segment::Index(1),
            Segment::Key("bogus".into()),
        ];
        let error = unknown_key("p.toml", "", None, &path);
        assert_eq!(error.location, Location::Key("upstream[1].bogus".into()));
    }
}
