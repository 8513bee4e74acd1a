//! Elasticsearch's simple match, for `_source` filters, index patterns and the test API's
//! fault rules alike.

/// Elasticsearch's `Regex.simpleMatch`: `*` matches any run of characters.
///
/// In time proportional to the pattern's length times the text's, whatever the stars: a
/// recursive match tried every split for every star, and `_source=*a*a*a*a*b` against one
/// long field name took minutes (found by the `http_request` fuzz target). On a mismatch
/// only the last star is moved on; an earlier one never needs to be, since anything the last
/// star cannot absorb, an earlier one could not either. Bytes compare as characters: a
/// literal run after a star starts with a character's first byte, which never equals a
/// continuation byte of the text.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // After the last star seen: where its pattern resumes and where in the text it stops.
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            last_star = Some((p + 1, t));
            p += 1;
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((resume, absorbed)) = last_star {
            // The last star takes one more byte of the text; its pattern starts again.
            last_star = Some((resume, absorbed + 1));
            p = resume;
            t = absorbed + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursive definition `matches` must agree with: every split for every star.
    fn matches_by_definition(pattern: &str, text: &str) -> bool {
        let Some(star) = pattern.find('*') else {
            return pattern == text;
        };
        let (head, rest) = (&pattern[..star], &pattern[star + 1..]);
        let Some(tail) = text.strip_prefix(head) else {
            return false;
        };
        (0..=tail.len())
            .filter(|&i| tail.is_char_boundary(i))
            .any(|i| matches_by_definition(rest, &tail[i..]))
    }

    #[test]
    fn wildcards_match_as_elasticsearch_simple_match() {
        let cases = [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a.b.c", true),
            ("*.field2", "object.field2", true),
            ("*.field2", "field2", false),
            ("a*c", "abbc", true),
            ("a*c", "abcd", false),
            ("*é*", "café.crème", true),
            ("**x", "yyx", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXcYb", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern, text),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
        // Every pattern and text of up to 5 characters over a small alphabet.
        let alphabet = ["a", "b", ".", "é", "*"];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for pattern in &words {
            for text in words.iter().filter(|t| !t.contains('*')) {
                assert_eq!(
                    matches(pattern, text),
                    matches_by_definition(pattern, text),
                    "{pattern:?} against {text:?}"
                );
            }
        }
    }

    /// Many stars against a long name that almost matches: the recursive definition tries
    /// about n^k splits (minutes for this one); `matches` returns at once.
    #[test]
    fn many_wildcards_against_a_long_name_take_no_time_to_refuse() {
        let text = "a".repeat(5_000);
        assert!(!matches("*a*a*a*a*a*a*a*b", &text));
        assert!(matches("*a*a*a*a*a*a*a*", &text));
    }
}
