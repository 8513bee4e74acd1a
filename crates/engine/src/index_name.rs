//! Index names, validated as Elasticsearch's `MetadataCreateIndexService.validateIndexName`
//! does, in its order (the first failing check wins). A valid name is also a safe directory
//! name: no separator, not `.` or `..`, so no request can reach outside the data directory.

use crate::error::{Error, Result};

/// Bytes an index name may have.
pub const INDEX_NAME_LEN_MAX: usize = 255;

/// Elasticsearch 8.19's rendering of the characters it refuses.
const INVALID_CHARS: &str = r#"[' ','"','*',',','/','<','>','?','\','|']"#;

/// Elasticsearch's rules for an index name, in its words (`invalid_index_name_exception`).
pub fn validate_index_name(name: &str) -> Result<()> {
    let invalid = |why: String| {
        Err(Error::InvalidIndexName {
            index: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return invalid("must not be empty".into());
    }
    if name.chars().any(|c| {
        matches!(
            c,
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | ' '
        )
    }) {
        return invalid(format!(
            "must not contain the following characters {INVALID_CHARS}"
        ));
    }
    if name.contains('#') {
        return invalid("must not contain '#'".into());
    }
    if name.contains(':') {
        return invalid("must not contain ':'".into());
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'".into());
    }
    if name.len() > INDEX_NAME_LEN_MAX {
        return invalid(format!(
            "index name is too long, ({} > {INDEX_NAME_LEN_MAX})",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'".into());
    }
    // As `index.toLowerCase(Locale.ROOT).equals(index)`: a title-case letter (`ǅ`) is not
    // upper case, and still not lower case.
    if name.to_lowercase() != name {
        return invalid("must be lowercase".into());
    }
    // Control characters (a NUL in particular) have no place in a file name.
    if name.chars().any(char::is_control) {
        return invalid("must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(name: &str) -> String {
        match validate_index_name(name) {
            Err(Error::InvalidIndexName { why, .. }) => why,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn elasticsearchs_rules_in_order() {
        assert!(validate_index_name("movies").is_ok());
        assert!(validate_index_name(".hidden").is_ok());
        assert!(why("a/b").starts_with("must not contain the following characters ["));
        assert!(why("..\\x").starts_with("must not contain the following characters"));
        assert_eq!(why("a#b"), "must not contain '#'");
        assert_eq!(why("a:b"), "must not contain ':'");
        assert_eq!(why("_a"), "must not start with '_', '-', or '+'");
        assert_eq!(why(&"a".repeat(256)), "index name is too long, (256 > 255)");
        assert!(validate_index_name(&"a".repeat(255)).is_ok());
        assert_eq!(why(".."), "must not be '.' or '..'");
        assert_eq!(why("."), "must not be '.' or '..'");
        assert_eq!(why("Foo"), "must be lowercase");
        // The first failing check wins.
        assert_eq!(why("_A#"), "must not contain '#'");
        assert_eq!(
            Error::InvalidIndexName {
                index: "Foo".into(),
                why: why("Foo")
            }
            .reason(),
            "Invalid index name [Foo], must be lowercase"
        );
    }
}
