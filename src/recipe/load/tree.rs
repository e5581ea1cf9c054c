//! A positions-only view of a YAML document: every map key, list item and scalar
//! with where it is defined (and, for aliases and `<<` merges, where it is used).
//!
//! The typed model does not keep positions for most fields; the loader parses the
//! same text a second time into this tree to point validation errors at the exact
//! value (a bad regex in the second `expect` item, say) and to read scalars exactly
//! as written.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A node and its positions.
#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Where the node is written (for an alias: where the anchor is).
    pub defined: Location,
    /// Where the node is used (the alias or `<<` site; else as `defined`).
    pub referenced: Location,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// Keys with their own positions, in order (merged keys included).
    Map(Vec<(Key, Node)>),
    Seq(Vec<Node>),
    Scalar,
    Null,
}

/// A map key.
#[derive(Debug)]
pub(crate) struct Key {
    pub text: String,
    pub defined: Location,
    pub referenced: Location,
}

impl Node {
    /// The value under `key` of a map node.
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key and value under `key` of a map node.
    pub(super) fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text == key)
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The `i`th item of a list node.
    pub(super) fn item(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    /// The items of a list node, or the node itself (for one-or-many fields).
    pub(super) fn items_or_self(&self) -> Vec<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Null => Vec::new(),
            _ => vec![self],
        }
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Kind, E> {
        Ok(Kind::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((
                Key {
                    text: key.value.0,
                    defined: key.defined,
                    referenced: key.referenced,
                },
                value,
            ));
        }
        Ok(Kind::Map(entries))
    }
}

struct KindSeed(Kind);

impl<'de> Deserialize<'de> for KindSeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor).map(KindSeed)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<KindSeed>::deserialize(d)?;
        Ok(Node {
            kind: s.value.0,
            defined: s.defined,
            referenced: s.referenced,
        })
    }
}

/// A key read as text whatever its YAML type (`1: x` has the key `1`).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
        }
        d.deserialize_str(V)
    }
}
