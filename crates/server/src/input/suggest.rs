//! "Did you mean": the known names that look like an unknown one, as Elasticsearch suggests
//! them for a request's unknown parameter (`BaseRestHandler`) and a body's unknown field
//! (`SuggestingErrorOnUnknown`): Lucene's Levenshtein similarity above 0.5, most alike first,
//! then by name.

/// The candidates like `unknown`, best first.
pub(crate) fn near<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut close: Vec<(f32, &str)> = candidates
        .into_iter()
        .map(|candidate| (similarity(unknown, candidate), candidate))
        .filter(|(score, _)| *score > 0.5)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    close.into_iter().map(|(_, name)| name).collect()
}

/// `did you mean [x]?` or `did you mean any of [x, y]?` for what [`near`] found; `None` when
/// it found nothing.
pub(crate) fn did_you_mean(near: &[&str]) -> Option<String> {
    match near {
        [] => None,
        [one] => Some(format!("did you mean [{one}]?")),
        many => Some(format!("did you mean any of [{}]?", many.join(", "))),
    }
}

/// Lucene's `LevenshteinDistance.getDistance`: one less the edit distance over the longer
/// length, counted in UTF-16 units as Java counts a string's length (so a character outside
/// the Basic Multilingual Plane is two, as it is to Elasticsearch).
fn similarity(target: &str, other: &str) -> f32 {
    let a: Vec<u16> = target.encode_utf16().collect();
    let b: Vec<u16> = other.encode_utf16().collect();
    if a.is_empty() || b.is_empty() {
        return if a.len() == b.len() { 1.0 } else { 0.0 };
    }
    let mut previous: Vec<usize> = (0..=a.len()).collect();
    let mut current = vec![0; a.len() + 1];
    for (j, &bj) in b.iter().enumerate() {
        current[0] = j + 1;
        for (i, &ai) in a.iter().enumerate() {
            let cost = usize::from(ai != bj);
            current[i + 1] = (current[i] + 1)
                .min(previous[i + 1] + 1)
                .min(previous[i] + cost);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    1.0 - previous[a.len()] as f32 / a.len().max(b.len()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_is_lucenes() {
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert_eq!(similarity("if_seqno", "if_seq_no"), 1.0 - 1.0 / 9.0);
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("a", ""), 0.0);
        assert_eq!(similarity("kitten", "sitting"), 1.0 - 3.0 / 7.0);
        // One character outside the BMP is two UTF-16 units, both edited: 1 - 2/3, not
        // 1 - 1/2 as counting chars would have it.
        assert_eq!(similarity("a🎬", "ab"), 1.0 - 2.0 / 3.0);
    }

    #[test]
    fn the_most_alike_come_first_then_by_name() {
        let candidates = ["_source_includes", "_source_excludes", "routing"];
        assert_eq!(
            near("_source_include", candidates),
            ["_source_includes", "_source_excludes"]
        );
        assert_eq!(
            did_you_mean(&near("_source_include", candidates)).as_deref(),
            Some("did you mean any of [_source_includes, _source_excludes]?")
        );
        assert_eq!(did_you_mean(&near("zzz", candidates)), None);
        assert_eq!(
            did_you_mean(&near("routin", candidates)).as_deref(),
            Some("did you mean [routing]?")
        );
    }
}
