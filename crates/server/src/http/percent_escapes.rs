//! A request's percent-escapes, read as Elasticsearch reads them (`RestUtils.decodeComponent`,
//! applied to each path parameter and each query parameter's name and value): a malformed
//! escape is refused with 400 `illegal_argument_exception`, where a lenient decoder would keep
//! it as text (so `PUT /i%zz/_doc/1` would create an index named `i%zz`); `%%` reads as `%`;
//! and bytes that are not UTF-8 become U+FFFD, where the router's decoder would refuse the
//! path with a plain-text error.

/// What the request's path and query amount to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// Nothing to change.
    Fine,
    /// The path as Elasticsearch decodes it, encoded again so the router decodes it alike.
    Rewritten(String),
    /// Elasticsearch's reason for refusing the request.
    Refused(String),
}

/// Checks `path` segment by segment and `query` parameter by parameter.
pub(crate) fn check(path: &str, query: Option<&str>) -> Escapes {
    // Most requests have no escape at all.
    if !path.contains('%') && !query.is_some_and(|query| query.contains('%')) {
        return Escapes::Fine;
    }
    let parameters = query.unwrap_or("").split('&').flat_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        [name, value]
    });
    for text in parameters {
        if let Err(reason) = decode(text) {
            return Escapes::Refused(reason);
        }
    }
    if !path.contains('%') {
        return Escapes::Fine;
    }
    let mut rewritten = String::with_capacity(path.len());
    let mut changed = false;
    for (n, segment) in path.split('/').enumerate() {
        if n > 0 {
            rewritten.push('/');
        }
        match decode(segment) {
            Err(reason) => return Escapes::Refused(reason),
            Ok(Decoded::AsTheRouterReadsIt) => rewritten.push_str(segment),
            Ok(Decoded::Differently(text)) => {
                changed = true;
                rewritten.extend(percent_encoding::utf8_percent_encode(
                    &text,
                    percent_encoding::NON_ALPHANUMERIC,
                ));
            }
        }
    }
    if changed {
        Escapes::Rewritten(rewritten)
    } else {
        Escapes::Fine
    }
}

enum Decoded {
    /// A standard percent-decoder gives the same text.
    AsTheRouterReadsIt,
    /// The text Elasticsearch reads, where a standard decoder would read another or refuse.
    Differently(String),
}

fn decode(s: &str) -> Result<Decoded, String> {
    if !s.contains('%') {
        return Ok(Decoded::AsTheRouterReadsIt);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut doubled = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        if i == bytes.len() - 1 {
            return Err(format!(
                "unterminated escape sequence at end of string: {s}"
            ));
        }
        if bytes[i + 1] == b'%' {
            doubled = true;
            out.push(b'%');
            i += 2;
            continue;
        }
        if i + 1 == bytes.len() - 1 {
            return Err(format!("partial escape sequence at end of string: {s}"));
        }
        let hex = |b: u8| (b as char).to_digit(16);
        match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
            (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
            _ => {
                // Quoted as Java quotes them: the two characters after the `%`, and the
                // index of the `%` in the string (in UTF-16 units, as Java counts).
                let pair: String = s[i + 1..].chars().take(2).collect();
                let index = s[..i].encode_utf16().count();
                return Err(format!(
                    "invalid escape sequence `%{pair}' at index {index} of: {s}"
                ));
            }
        }
        i += 3;
    }
    match String::from_utf8(out) {
        Ok(_) if !doubled => Ok(Decoded::AsTheRouterReadsIt),
        Ok(text) => Ok(Decoded::Differently(text)),
        Err(e) => Ok(Decoded::Differently(
            String::from_utf8_lossy(e.as_bytes()).into_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_escapes_are_refused_in_elasticsearchs_words() {
        let refused = |path, query| match check(path, query) {
            Escapes::Refused(reason) => reason,
            other => panic!("{path} {query:?}: {other:?}"),
        };
        assert_eq!(
            refused("/i%zz/_doc/1", None),
            "invalid escape sequence `%zz' at index 1 of: i%zz"
        );
        assert_eq!(
            refused("/i/_doc/a%", None),
            "unterminated escape sequence at end of string: a%"
        );
        assert_eq!(
            refused("/i/_doc/a%2", None),
            "partial escape sequence at end of string: a%2"
        );
        assert_eq!(
            refused("/i/_doc/1", Some("routing=%g1")),
            "invalid escape sequence `%g1' at index 0 of: %g1"
        );
    }

    #[test]
    fn what_is_not_utf8_reads_as_a_replacement_and_a_doubled_percent_as_one() {
        assert_eq!(
            check("/i/_doc/%ff", None),
            Escapes::Rewritten("/i/_doc/%EF%BF%BD".into())
        );
        assert_eq!(
            check("/i/_doc/a%%b", None),
            Escapes::Rewritten("/i/_doc/a%25b".into())
        );
        assert_eq!(check("/i/_doc/a%2Fb%C3%A9", Some("q=%20&x")), Escapes::Fine);
        assert_eq!(check("/i/_doc/1", None), Escapes::Fine);
    }
}
