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
pub(crate) struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(Walk).map(|()| Checked)
    }
}

/// The message of a duplicate field's error without its position, which the caller words as
/// Elasticsearch does; `None` for any other error.
pub(crate) fn duplicate_message(e: &serde_json::Error) -> Option<String> {
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
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(name) = map.next_key_seed(Name)? {
            let seen = if many.is_empty() {
                few.contains(&name)
            } else {
                many.contains(&name)
            };
            if seen {
                return Err(de::Error::custom(format_args!("Duplicate field '{name}'")));
            }
            if few.len() < LINEAR_UP_TO {
                few.push(name);
            } else {
                many.extend(few.drain(..));
                many.insert(name);
            }
            map.next_value_seed(Walk)?;
        }
        Ok(())
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
