//! How deep a document may nest. Elasticsearch's JSON parser refuses a document nested deeper
//! than its limit (Jackson's `maxNestingDepth`, 1000), and with dynamic mapping, its default, an
//! object deeper than 20 levels (`index.mapping.depth.limit`). optimist stores a source as the
//! client sent it, but reads it back into a `serde_json::Value` wherever it must (an update's
//! merge, `_source` filtering, `?pretty`, `_mget`), and that parser stops at 127 levels. So a
//! write is refused above [`NESTING_DEPTH_MAX`], below that parser's limit with room for the
//! levels an answer wraps around a source: every stored document can be read back by every
//! path, never half-served or filtered wrongly.

/// The deepest nesting of objects and arrays a document may have (docs/api.md).
pub const NESTING_DEPTH_MAX: usize = 100;

/// Where a JSON text first nests deeper than its limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// How deep the first container over the limit is.
    pub depth: usize,
    /// Its line, 1-based as the parser's errors give them.
    pub line: usize,
    /// Its column, 1-based.
    pub column: usize,
}

impl TooDeep {
    /// The reason, in the shape of Elasticsearch's parse failures.
    pub fn reason(&self, limit: usize) -> String {
        format!(
            "[{}:{}] failed to parse: Document nesting depth ({}) exceeds the maximum allowed ({limit})",
            self.line, self.column, self.depth
        )
    }
}

/// The first object or array of `json` (valid JSON) opened deeper than `limit`, if any.
pub fn too_deep(json: &[u8], limit: usize) -> Option<TooDeep> {
    // Most documents open far fewer containers than the limit in all: then none can be too
    // deep, and a count (which the compiler vectorises) settles it without the scan below.
    let openers: usize = json
        .chunks(255)
        .map(|chunk| {
            // Counted in a byte per lane, which a chunk of 255 cannot overflow.
            let count = chunk
                .iter()
                .fold(0u8, |n, &b| n + u8::from(b == b'{' || b == b'['));
            usize::from(count)
        })
        .sum();
    if openers <= limit {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut line, mut line_start) = (1, 0);
    for (at, &b) in json.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(TooDeep {
                        depth,
                        line,
                        column: at - line_start + 1,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'\n' => {
                line += 1;
                line_start = at + 1;
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn the_limit_itself_passes_and_one_more_level_is_found_where_it_opens() {
        assert_eq!(too_deep(nested(100).as_bytes(), 100), None);
        assert_eq!(
            too_deep(nested(101).as_bytes(), 100),
            Some(TooDeep {
                depth: 101,
                line: 1,
                column: 501,
            })
        );
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(arrays.as_bytes(), 100).map(|t| t.depth), Some(101));
    }

    #[test]
    fn brackets_in_strings_and_siblings_do_not_count() {
        let strings = format!(r#"{{"a":"{}","b":"\"{{[\\"}}"#, "{[".repeat(200));
        assert_eq!(too_deep(strings.as_bytes(), 3), None);
        let siblings = format!("[{}]", vec!["{}"; 500].join(","));
        assert_eq!(too_deep(siblings.as_bytes(), 2), None);
        let lines = "{\n\"a\":\n  [[1]]}";
        assert_eq!(
            too_deep(lines.as_bytes(), 2),
            Some(TooDeep {
                depth: 3,
                line: 3,
                column: 4,
            })
        );
    }

    #[test]
    fn what_the_limit_admits_every_reading_path_can_parse() {
        // An answer wraps a source in up to three levels (`_mget`'s `docs`, its item, and
        // `_source`): that much must still parse into a `Value`.
        let wrapped = format!(
            r#"{{"docs":[{{"_source":{}}}]}}"#,
            nested(NESTING_DEPTH_MAX)
        );
        assert!(serde_json::from_str::<serde_json::Value>(&wrapped).is_ok());
    }
}
