//! A JSON text whose object names a field twice is refused, as Elasticsearch refuses it (its
//! parser runs with strict duplicate detection: `Duplicate field 'a'`). optimist keeps a source
//! as sent, so without this check it would keep both fields, and readers would disagree about
//! which one counts: a client's parser may take the first, an update's merge takes the last.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Above this many fields an object's names go into a set: a linear search per field would make
/// an object of many fields cost their square.
const LINEAR_UP_TO: usize = 16;

/// One JSON value, walked rather than built, refused (as a data error, with the line and
/// column of the place) if an object in it names a field twice.
pub struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(Walk).map(|()| Checked)
    }
}

/// One JSON value, built as a `serde_json::Value` is, and refused as [`Checked`] refuses one: a
/// `Value` alone would keep the last of a field named twice. For a body that is read into a
/// `Value` anyway (an update's), this reads it once instead of twice.
pub struct CheckedValue(pub serde_json::Value);

impl<'de> Deserialize<'de> for CheckedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CheckedValue, D::Error> {
        deserializer.deserialize_any(Build).map(CheckedValue)
    }
}

/// The message of a duplicate field's error without its position, which the caller words as
/// Elasticsearch does; `None` for any other error.
pub fn duplicate_message(e: &serde_json::Error) -> Option<String> {
    if !e.is_data() {
        return None;
    }
    let text = e.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    message
        .starts_with("Duplicate field '")
        .then(|| message.to_owned())
}

/// Walks one value of any kind.
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Walk)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The first names on the stack: most objects have few fields, and a heap allocation
        // per object would cost more than the search.
        let mut few: [Cow<'de, str>; LINEAR_UP_TO] = Default::default();
        let mut len = 0;
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(name) = map.next_key_seed(Name)? {
            let seen = if len < LINEAR_UP_TO {
                few[..len].contains(&name)
            } else {
                many.contains(&name)
            };
            if seen {
                return Err(de::Error::custom(format_args!("Duplicate field '{name}'")));
            }
            if len < LINEAR_UP_TO {
                few[len] = name;
                len += 1;
                if len == LINEAR_UP_TO {
                    many.extend(few.iter_mut().map(std::mem::take));
                }
            } else {
                many.insert(name);
            }
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }
}

/// Builds one value of any kind.
struct Build;

impl<'de> DeserializeSeed<'de> for Build {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(Build)
    }
}

impl<'de> Visitor<'de> for Build {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(b.into())
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // What `Value`'s own deserializer makes of a float: the parser gives only finite ones.
        Ok(serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(s.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(Build)? {
            values.push(value);
        }
        Ok(values.into())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(name) = map.next_key_seed(Name)? {
            // Refused where the name ends, as [`Walk`] refuses it, not after its value.
            if fields.contains_key(name.as_ref()) {
                return Err(de::Error::custom(format_args!("Duplicate field '{name}'")));
            }
            let value = map.next_value_seed(Build)?;
            fields.insert(name.into_owned(), value);
        }
        Ok(fields.into())
    }
}

/// A field's name, borrowed from the text unless it had escapes to decode.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(Name)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> Option<(String, usize, usize)> {
        let e = serde_json::from_str::<Checked>(json).err()?;
        Some((
            duplicate_message(&e).unwrap_or_else(|| format!("other: {e}")),
            e.line(),
            e.column(),
        ))
    }

    #[test]
    fn a_field_named_twice_in_any_object_is_found() {
        assert_eq!(
            refused(r#"{"a":1,"a":2}"#),
            Some(("Duplicate field 'a'".into(), 1, 10))
        );
        assert_eq!(
            refused(r#"{"a":[{"b":{"c":1,"c":{}}}]}"#).map(|r| r.0),
            Some("Duplicate field 'c'".into())
        );
        // Escapes are decoded before names are compared.
        assert_eq!(
            refused(r#"{"\u0061":1,"a":2}"#).map(|r| r.0),
            Some("Duplicate field 'a'".into())
        );
        // Past the linear search, in the set.
        let many: Vec<String> = (0..40).map(|i| format!("\"f{i}\":{i}")).collect();
        let text = format!("{{{},\"f3\":0}}", many.join(","));
        assert_eq!(
            refused(&text).map(|r| r.0),
            Some("Duplicate field 'f3'".into())
        );
    }

    #[test]
    fn a_built_value_is_refused_where_a_walked_one_is_and_equals_a_plain_one_otherwise() {
        let built = |json: &str| {
            serde_json::from_str::<CheckedValue>(json)
                .map(|v| v.0)
                .map_err(|e| (duplicate_message(&e), e.line(), e.column()))
        };
        assert_eq!(
            built(r#"{"a":1,"a":2}"#),
            Err((Some("Duplicate field 'a'".into()), 1, 10))
        );
        assert_eq!(
            built(r#"{"x":[{"b":{"\u0063":1,"c":{}}}]}"#).map_err(|e| e.0),
            Err(Some("Duplicate field 'c'".into()))
        );
        let many: Vec<String> = (0..40).map(|i| format!("\"f{i}\":{i}")).collect();
        let fine = [
            r#"{"a":{"a":1},"b":[{"a":1},{"a":2}],"c":null,"d":true}"#.to_owned(),
            r#"{"n":-1,"u":18446744073709551615,"f":1.5e300,"s":"\u00e9\n","e":[],"o":{}}"#.into(),
            format!("{{{}}}", many.join(",")),
            "[1,\"two\",[3.25]]".into(),
            "\"just a string\"".into(),
        ];
        for json in fine {
            let plain: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(built(&json), Ok(plain), "{json}");
        }
        assert!(matches!(built(r#"{"a":1,}"#), Err((None, ..))));
    }

    #[test]
    fn the_same_name_in_different_objects_and_other_errors_are_not_duplicates() {
        assert_eq!(refused(r#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#), None);
        let many: Vec<String> = (0..40).map(|i| format!("\"f{i}\":{i}")).collect();
        assert_eq!(refused(&format!("{{{}}}", many.join(","))), None);
        let (message, ..) = refused(r#"{"a":1,}"#).unwrap();
        assert!(message.starts_with("other: "), "{message}");
        let (message, ..) = refused(r#"{"a":1} {"#).unwrap();
        assert!(message.starts_with("other: "), "{message}");
    }
}
