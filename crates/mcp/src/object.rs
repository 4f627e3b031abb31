//! A JSON object whose values stay raw: read or replace a few keys, keep the rest byte for byte
//! ([`RawObject`]), only read a few keys without copying anything ([`RawFields`]), or change a
//! few keys of an object read that way ([`RawEdit`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// An ordered JSON object with raw values. Duplicate keys are rejected when parsing (a
/// smuggling vector: two components could read different values).
#[derive(Debug, Clone, Default)]
pub struct RawObject {
    entries: Vec<(String, Box<RawValue>)>,
}

impl RawObject {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses raw JSON that must be an object.
    pub fn from_raw(raw: &RawValue) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw.get())
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Reads a key as a typed value; `None` when absent, `Err` when present but mistyped.
    pub fn get_as<'a, T: Deserialize<'a>>(
        &'a self,
        key: &str,
    ) -> Option<Result<T, serde_json::Error>> {
        self.get(key).map(|raw| serde_json::from_str(raw.get()))
    }

    /// The value of `key` when it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self.get_as::<String>(key) {
            Some(Ok(s)) => Some(s),
            _ => None,
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces `key`, keeping its position when it existed.
    pub fn set_raw(&mut self, key: &str, value: Box<RawValue>) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key.to_owned(), value)),
        }
    }

    pub fn set<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        self.set_raw(key, raw);
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let idx = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(idx).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn to_raw(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(self)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Members(PhantomData))
            .map(|entries| RawObject { entries })
    }
}

/// The members of a JSON object, borrowed from its text: for reading a few keys of `params` or
/// `_meta` without allocating a copy of each key and value ([`RawObject`] owns them, to be
/// changed and written back). Duplicate keys are rejected as by [`RawObject`].
#[derive(Debug, Clone, Default)]
pub struct RawFields<'a> {
    entries: Vec<(Key<'a>, &'a RawValue)>,
}

impl<'a> RawFields<'a> {
    /// Parses raw JSON that must be an object.
    pub fn parse(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw.get())
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .find(|(k, _)| k.0 == key)
            .map(|(_, v)| *v)
    }

    /// Reads a key as a typed value; `None` when absent, `Err` when present but mistyped.
    pub fn get_as<T: Deserialize<'a>>(&self, key: &str) -> Option<Result<T, serde_json::Error>> {
        self.get(key).map(|raw| serde_json::from_str(raw.get()))
    }

    /// The value of `key` when it is a JSON string; borrowed unless it holds escapes.
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self.get(key)?.get();
        match serde_json::from_str::<&'a str>(raw) {
            Ok(s) => Some(Cow::Borrowed(s)),
            Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawFields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(Members(PhantomData))
            .map(|entries| RawFields { entries })
    }
}

/// Changes to an object read as [`RawFields`]: members replaced in place or added at the end,
/// written back with every other member's value verbatim. For the rewrites on the request path
/// (an upstream's own tool name, `_meta`) without first copying each member into a
/// [`RawObject`].
#[derive(Debug, Clone, Default)]
pub struct RawEdit<'a> {
    /// The object's text, written back as it is while nothing is changed.
    source: Option<&'a RawValue>,
    fields: RawFields<'a>,
    changes: Vec<(Slot, Box<RawValue>)>,
}

/// Which member a change is for: one of the object's own (by position) or a new one.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Member(usize),
    Added(String),
}

impl<'a> RawEdit<'a> {
    /// Parses raw JSON that must be an object.
    pub fn parse(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        Ok(Self {
            source: Some(raw),
            fields: RawFields::parse(raw)?,
            changes: Vec::new(),
        })
    }

    /// The members as parsed, before any change.
    pub fn original(&self) -> &RawFields<'a> {
        &self.fields
    }

    /// The value of `key` with the changes made so far.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        match self.change(key).and_then(|i| self.changes.get(i)) {
            Some((_, changed)) => Some(changed),
            None => self.fields.get(key),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Replaces `key` in place, or adds it after the object's members.
    pub fn set_raw(&mut self, key: &str, value: Box<RawValue>) {
        match self.change(key).and_then(|i| self.changes.get_mut(i)) {
            Some(change) => change.1 = value,
            None => {
                let slot = match self.fields.entries.iter().position(|(k, _)| k.0 == key) {
                    Some(i) => Slot::Member(i),
                    None => Slot::Added(key.to_owned()),
                };
                self.changes.push((slot, value));
            }
        }
    }

    pub fn set<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        self.set_raw(key, raw);
        Ok(())
    }

    /// Whether anything was set.
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The object with its changes; byte for byte the text it was parsed from when unchanged.
    pub fn to_raw(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self.source {
            Some(source) if self.changes.is_empty() => Ok(source.to_owned()),
            _ => serde_json::value::to_raw_value(self),
        }
    }

    /// The index in `changes` of the change to `key`, if any.
    fn change(&self, key: &str) -> Option<usize> {
        self.changes.iter().position(|(slot, _)| match slot {
            Slot::Member(i) => self.fields.entries.get(*i).is_some_and(|(k, _)| k.0 == key),
            Slot::Added(k) => k == key,
        })
    }
}

impl Serialize for RawEdit<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(source) = self.source
            && self.changes.is_empty()
        {
            return source.serialize(serializer);
        }
        let added = self
            .changes
            .iter()
            .filter(|(s, _)| matches!(s, Slot::Added(_)));
        let mut map =
            serializer.serialize_map(Some(self.fields.entries.len() + added.clone().count()))?;
        for (i, (k, v)) in self.fields.entries.iter().enumerate() {
            let changed = self.changes.iter().find(|(s, _)| *s == Slot::Member(i));
            map.serialize_entry(k.as_ref(), changed.map_or(*v, |(_, c)| &**c))?;
        }
        for (slot, v) in added {
            if let Slot::Added(k) = slot {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// A member's name: borrowed from the text unless it holds escapes.
#[derive(Debug, Clone)]
struct Key<'a>(Cow<'a, str>);

impl AsRef<str> for Key<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// Reads an object's members in order, refusing a name seen before (a smuggling vector: two
/// components could read different values).
struct Members<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for Members<K, V>
where
    K: Deserialize<'de> + AsRef<str>,
    V: Deserialize<'de>,
{
    type Value = Vec<(K, V)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<(K, V)>, A::Error> {
        let mut entries: Vec<(K, V)> = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(key) = map.next_key::<K>()? {
            if entries.iter().any(|(k, _)| k.as_ref() == key.as_ref()) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}`",
                    key.as_ref()
                )));
            }
            let value: V = map.next_value()?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_one_key_and_keeps_the_rest_verbatim() {
        let raw = RawValue::from_string(
            r#"{"name":"fs__read","arguments":{"x":1.50},"_meta":{"k":[1, 2]}}"#.into(),
        )
        .unwrap();
        let mut obj = RawObject::from_raw(&raw).unwrap();
        obj.set("name", "read").unwrap();
        let out = serde_json::to_string(&obj).unwrap();
        assert_eq!(
            out,
            r#"{"name":"read","arguments":{"x":1.50},"_meta":{"k":[1, 2]}}"#
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let raw = RawValue::from_string(r#"{"name":"a","name":"b"}"#.into()).unwrap();
        assert!(RawObject::from_raw(&raw).is_err());
    }

    #[test]
    fn non_objects_are_rejected() {
        for s in ["[]", "1", "\"x\"", "null"] {
            let raw = RawValue::from_string(s.into()).unwrap();
            assert!(RawObject::from_raw(&raw).is_err(), "{s}");
            assert!(RawFields::parse(&raw).is_err(), "{s}");
        }
    }

    #[test]
    fn fields_borrow_what_they_can_and_read_escaped_names_and_strings() {
        let raw = RawValue::from_string(
            r#"{"name":"fs__read","na\u006de2":"a\"b","arguments":{"x":1.50},"n":3}"#.into(),
        )
        .unwrap();
        let fields = RawFields::parse(&raw).unwrap();
        assert!(matches!(
            fields.get_str("name"),
            Some(Cow::Borrowed("fs__read"))
        ));
        // An escaped name is still found under its decoded text; an escaped value is decoded.
        assert_eq!(fields.get_str("name2").as_deref(), Some("a\"b"));
        assert_eq!(fields.get("arguments").unwrap().get(), r#"{"x":1.50}"#);
        assert_eq!(fields.get_as::<u32>("n").unwrap().unwrap(), 3);
        assert!(fields.get_str("n").is_none());
        assert!(fields.get_as::<u32>("name").unwrap().is_err());
        assert!(!fields.contains("missing"));
    }

    #[test]
    fn fields_refuse_duplicate_names_even_when_one_is_escaped() {
        for s in [
            r#"{"name":"a","name":"b"}"#,
            r#"{"name":"a","n\u0061me":"b"}"#,
        ] {
            let raw = RawValue::from_string(s.into()).unwrap();
            let err = RawFields::parse(&raw).unwrap_err().to_string();
            assert!(err.contains("duplicate key `name`"), "{s}: {err}");
            assert!(RawObject::from_raw(&raw).is_err(), "{s}");
        }
    }

    #[test]
    fn edits_replace_in_place_append_new_members_and_keep_the_rest_verbatim() {
        let raw = RawValue::from_string(
            r#"{"name":"fs__read", "arguments":{"x":1.50},"n\u0061\"":2}"#.into(),
        )
        .unwrap();
        let mut edit = RawEdit::parse(&raw).unwrap();
        assert!(!edit.is_changed());
        assert_eq!(edit.to_raw().unwrap().get(), raw.get());
        assert_eq!(serde_json::to_string(&edit).unwrap(), raw.get());
        edit.set("name", "read").unwrap();
        edit.set("_meta", &serde_json::json!({"k": 1})).unwrap();
        edit.set("_meta", &serde_json::json!({"k": 2})).unwrap();
        assert!(edit.is_changed());
        assert_eq!(edit.get("name").unwrap().get(), r#""read""#);
        assert_eq!(edit.original().get_str("name").as_deref(), Some("fs__read"));
        assert_eq!(edit.get("_meta").unwrap().get(), r#"{"k":2}"#);
        assert!(edit.contains("na\""));
        assert!(!edit.contains("missing"));
        assert_eq!(
            edit.to_raw().unwrap().get(),
            r#"{"name":"read","arguments":{"x":1.50},"na\"":2,"_meta":{"k":2}}"#
        );
        let empty = RawValue::from_string("{ }".into()).unwrap();
        let mut edit = RawEdit::parse(&empty).unwrap();
        edit.set("a", &1).unwrap();
        assert_eq!(edit.to_raw().unwrap().get(), r#"{"a":1}"#);
        for bad in [r#"{"a":1,"a":2}"#, "[]", "null"] {
            let raw = RawValue::from_string(bad.into()).unwrap();
            assert!(RawEdit::parse(&raw).is_err(), "{bad}");
        }
    }
}
