//! A stored document read for an update's merge with the order of its fields kept, whatever
//! features the application builds `serde_json` with. A `serde_json::Map` keeps insertion
//! order only with `serde_json`'s `preserve_order` feature, and cargo unifies features: if the
//! engine merged into a `Map`, it would either force that feature on every application or
//! sort a document's fields on its first update. Elasticsearch keeps them as written
//! (`XContentHelper.update` merges into an ordered map), and so does this.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Number, Value};

/// One JSON value; objects keep their fields in the order they came.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(Fields),
}

/// An object's fields, in order.
pub(crate) type Fields = IndexMap<String, Node>;

impl Node {
    /// The same value as a node (its objects in the order `value` iterates them).
    fn from_value(value: &Value) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::String(s.clone()),
            Value::Array(items) => Node::Array(items.iter().map(Node::from_value).collect()),
            Value::Object(map) => Node::Object(fields_of(map)),
        }
    }

    /// Whether this is the value `value` is, objects compared as maps (order aside), as
    /// `Value`'s own equality compares them.
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Node::Null, Value::Null) => true,
            (Node::Bool(a), Value::Bool(b)) => a == b,
            (Node::Number(a), Value::Number(b)) => a == b,
            (Node::String(a), Value::String(b)) => a == b,
            (Node::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.equals(b))
            }
            (Node::Object(a), Value::Object(b)) => {
                a.len() == b.len() && b.iter().all(|(k, v)| a.get(k).is_some_and(|n| n.equals(v)))
            }
            _ => false,
        }
    }
}

/// The fields of `map`, in the order it iterates them.
pub(crate) fn fields_of(map: &Map<String, Value>) -> Fields {
    map.iter()
        .map(|(k, v)| (k.clone(), Node::from_value(v)))
        .collect()
}

/// Merges `changes` into `source` as Elasticsearch's `XContentHelper.update` does: objects
/// merge recursively, anything else is replaced, a new field goes after the existing ones.
/// Returns whether anything changed.
pub(crate) fn merge(source: &mut Fields, changes: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (key, new) in changes {
        match (source.get_mut(key), new) {
            (Some(Node::Object(old)), Value::Object(new)) => changed |= merge(old, new),
            (Some(old), new) => {
                if !old.equals(new) {
                    *old = Node::from_value(new);
                    changed = true;
                }
            }
            (None, new) => {
                source.insert(key.clone(), Node::from_value(new));
                changed = true;
            }
        }
    }
    changed
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => n.serialize(serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node, E> {
        Number::from_f64(n)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut fields = Fields::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            fields.insert(k, v);
        }
        Ok(Node::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn parse(text: &str) -> Fields {
        match serde_json::from_str(text).unwrap() {
            Node::Object(fields) => fields,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merges_objects_recursively_and_replaces_the_rest() {
        let mut source = parse(r#"{"z":"keep","o":{"y":[1],"x":1},"a":1}"#);
        assert!(merge(
            &mut source,
            &map(json!({"o": {"y": [2], "w": null}, "b": true}))
        ));
        assert_eq!(
            serde_json::to_string(&Node::Object(source.clone())).unwrap(),
            r#"{"z":"keep","o":{"y":[2],"x":1,"w":null},"a":1,"b":true}"#,
            "the document's own order, new fields after it"
        );
        assert!(!merge(&mut source, &map(json!({"a": 1, "o": {"x": 1}}))));
        assert!(!merge(&mut source, &map(json!({"o": {"y": [2]}}))));
        assert!(merge(&mut source, &map(json!({"a": 1.0}))), "1.0 is not 1");
    }

    #[test]
    fn a_document_reads_and_writes_back_byte_for_byte() {
        let text = r#"{"b":[{"y":1,"x":{"d":null,"c":-2}}],"a":"\u00e9\n","n":1.5e300,"m":18446744073709551615}"#;
        let node: Node = serde_json::from_str(text).unwrap();
        let back = serde_json::to_string(&node).unwrap();
        let again: Node = serde_json::from_str(&back).unwrap();
        assert_eq!(again, node);
        // The order of every object, arrays' included, is the text's.
        assert!(
            back.starts_with(r#"{"b":[{"y":1,"x":{"d":null,"c":-2}}],"a":"#),
            "{back}"
        );
    }
}
