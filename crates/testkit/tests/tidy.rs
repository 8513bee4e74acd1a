//! The shipped crates' functions fit a screen: none over 100 lines, and one over 70 says why
//! in its comment ("Over 70 lines: ..."), as TigerBeetle's style asks: the library crates,
//! the server, the CLI and the crash harness, whose figures are published. Tests and the
//! benchmarks' binaries are not checked.

use std::path::Path;

const SHIPPED: [&str; 6] = ["wal", "engine", "optimist", "server", "cli", "crashtest"];
const LINES_MAX: usize = 100;
const LINES_SAY_WHY: usize = 70;

/// A function found in a source file.
#[derive(Debug)]
struct Function {
    line: usize,
    name: String,
    len: usize,
    /// The comment and attribute lines above it.
    comment: String,
}

/// The comment and attribute lines right above line `at`.
fn comment_above(lines: &[&str], at: usize) -> String {
    let mut comment = String::new();
    let mut above = at;
    while above > 0 {
        let prev = lines[above - 1].trim_start();
        if !(prev.starts_with("//") || prev.starts_with("#[")) {
            break;
        }
        comment.push_str(prev);
        comment.push('\n');
        above -= 1;
    }
    comment
}

/// The name of the function a line starts, if it starts one.
fn starts_function(line: &str) -> Option<String> {
    let signature = line
        .trim_start()
        .trim_start_matches("pub ")
        .trim_start_matches("pub(crate) ")
        .trim_start_matches("pub(super) ")
        .trim_start_matches("async ")
        .trim_start_matches("const ");
    let rest = signature.strip_prefix("fn ")?;
    Some(
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect(),
    )
}

/// Each function with a body outside the file's test module, measured from its signature to
/// the closing brace at its indentation.
fn functions(text: &str) -> Vec<Function> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let Some(name) = starts_function(line) else {
            i += 1;
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let close = format!("{indent}}}");
        let Some(len) = lines[i..].iter().position(|l| *l == close) else {
            i += 1;
            continue;
        };
        // A declaration without a body (a trait's) ends at its `;` before any `{`.
        let head = lines[i..=i + len].join("\n");
        let declared = head
            .find(';')
            .is_some_and(|semi| head.find('{').is_none_or(|brace| semi < brace));
        if declared {
            i += 1;
            continue;
        }
        found.push(Function {
            line: i + 1,
            name,
            len: len + 1,
            comment: comment_above(&lines, i),
        });
        i += len + 1;
    }
    found
}

#[test]
fn shipped_functions_fit_a_screen_or_say_why() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut too_long = Vec::new();
    let mut checked = 0;
    for name in SHIPPED {
        for file in testkit::rust_sources(&crates.join(name).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            for f in functions(&text) {
                checked += 1;
                let shown = format!("{}:{} {} ({} lines)", file.display(), f.line, f.name, f.len);
                if f.len > LINES_MAX {
                    too_long.push(format!("{shown}: over {LINES_MAX}"));
                } else if f.len > LINES_SAY_WHY && !f.comment.contains("Over 70 lines:") {
                    too_long.push(format!("{shown}: over {LINES_SAY_WHY}, and no word of why"));
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} functions found");
    assert!(
        too_long.is_empty(),
        "functions too long:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn the_length_check_counts_a_function_and_skips_tests_and_declarations() {
    let text = "/// Doc.\nfn short() {\n    body();\n}\ntrait T {\n    fn declared(&self);\n}\n\
                #[cfg(test)]\nmod tests {\n    fn long() {\n    }\n}\n";
    let found = functions(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].name.as_str(), found[0].len), ("short", 3));
    assert!(found[0].comment.contains("/// Doc."));
}
