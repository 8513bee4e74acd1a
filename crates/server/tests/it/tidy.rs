//! The server's layers import one way (`src/lib.rs`): `http/` → `api/` → `input/` and
//! `es.rs` → `state.rs`; and Elasticsearch's error types and bodies are spelt in `es/` alone.
//! A module that breaks either fails here, naming the file and the line, as TigerBeetle's
//! `tidy.zig` keeps its tree in shape.

use std::path::Path;

/// The layer a source file is in, by its path under `src/`.
fn layer(relative: &str) -> &'static str {
    match relative.split('/').next().unwrap_or("") {
        "http" | "http.rs" => "http",
        "api" | "api.rs" => "api",
        "input" | "input.rs" => "input",
        "es" | "es.rs" => "es",
        "state" | "state.rs" => "state",
        _ => "top",
    }
}

/// What a layer may not name.
fn forbidden(layer: &str) -> &'static [&'static str] {
    match layer {
        "api" => &["crate::http"],
        "input" | "es" => &["crate::http", "crate::api"],
        "state" => &["crate::"],
        _ => &[],
    }
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut reaching_up = Vec::new();
    let files = testkit::rust_sources(&src);
    assert!(files.len() > 20, "the server's sources: {files:?}");
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let layer = layer(&relative);
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in forbidden(layer) {
                if code.contains(name) {
                    reaching_up.push(format!("src/{relative}:{}: {layer} names {name}", n + 1));
                }
            }
        }
    }
    assert!(
        reaching_up.is_empty(),
        "imports against the layers:\n{}",
        reaching_up.join("\n")
    );
}

/// What only `es/` may spell in shipped code: an exception's wire name, and an error body's
/// `"error"` field. (Tests may quote them, to check what was answered.)
fn spells_an_error(layer: &str, code: &str) -> bool {
    layer != "es" && (code.contains("_exception\"") || code.contains("\"error\""))
}

#[test]
fn only_es_spells_an_error() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut spelt = Vec::new();
    for file in testkit::rust_sources(&src) {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap();
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in shipped.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if spells_an_error(layer(&relative), code) {
                spelt.push(format!("src/{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        spelt.is_empty(),
        "error types or bodies spelt outside es/ (build an es::EsError instead):\n{}",
        spelt.join("\n")
    );
}

#[test]
fn the_tidy_check_sees_a_file_reaching_up() {
    // The check itself: a handler naming the HTTP layer, and state naming anything, are found.
    assert!(forbidden(layer("api/docs.rs")).contains(&"crate::http"));
    assert!(forbidden(layer("input/params.rs")).contains(&"crate::api"));
    assert!(forbidden(layer("es.rs")).contains(&"crate::http"));
    assert_eq!(forbidden(layer("state.rs")), &["crate::"]);
    assert!(forbidden(layer("http/routes.rs")).is_empty());
    // And an error spelt by hand.
    let by_hand = r#"es::exception(400, "parse_exception", reason)"#;
    assert!(spells_an_error(layer("api/mget.rs"), by_hand));
    assert!(spells_an_error(
        layer("http/auth.rs"),
        r#"json!({"error": e})"#
    ));
    assert!(!spells_an_error(layer("es/error.rs"), by_hand));
}
