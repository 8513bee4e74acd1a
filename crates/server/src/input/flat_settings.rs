//! Index settings as Elasticsearch reads them from a body: nested objects or dotted keys
//! alike, flattened to `index.number_of_shards`-style names (create index, update settings).

use serde_json::Value;

/// Every leaf of `settings` under its dotted name, in the body's order.
pub(crate) fn flatten(settings: &Value) -> Vec<(String, Value)> {
    let mut flat = Vec::new();
    walk("", settings, &mut flat);
    flat
}

fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let key = match prefix {
                    "" => key.clone(),
                    _ => format!("{prefix}.{key}"),
                };
                walk(&key, inner, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_and_dotted_settings_read_alike() {
        let body = json!({"index": {"blocks": {"write": true}}, "index.number_of_shards": "3"});
        assert_eq!(
            flatten(&body),
            [
                ("index.blocks.write".to_owned(), json!(true)),
                ("index.number_of_shards".to_owned(), json!("3")),
            ]
        );
    }
}
