//! A JSON object whose values stay raw: read or replace a few keys, keep the rest byte for byte
//! ([`RawObject`]), or only read a few keys without copying anything ([`RawFields`]).

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
}
