//! The server's layers import one way (`src/lib.rs`): `http/` → `api/` → `input/` and
//! `es.rs` → `state.rs`. A module that reaches up a layer fails here, naming the file and the
//! line, as TigerBeetle's `tidy.zig` keeps its tree in shape.

use std::path::Path;

/// The layer a source file is in, by its path under `src/`.
fn layer(relative: &str) -> &'static str {
    match relative.split('/').next().unwrap_or("") {
        "http" | "http.rs" => "http",
        "api" | "api.rs" => "api",
        "input" | "input.rs" => "input",
        "es" | "es.rs" => "es",
        "state.rs" => "state",
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

#[test]
fn the_tidy_check_sees_a_file_reaching_up() {
    // The check itself: a handler naming the HTTP layer, and state naming anything, are found.
    assert!(forbidden(layer("api/docs.rs")).contains(&"crate::http"));
    assert!(forbidden(layer("input/params.rs")).contains(&"crate::api"));
    assert!(forbidden(layer("es.rs")).contains(&"crate::http"));
    assert_eq!(forbidden(layer("state.rs")), &["crate::"]);
    assert!(forbidden(layer("http/routes.rs")).is_empty());
}
