//! The OpenSearch YAML REST tests (`../shared/conformance/opensearch-yaml`, Apache-2.0, read
//! where they lie and never copied here) against a live server, with a small runner for
//! their vocabulary: `setup`, `teardown`, `do` (with `catch`, `headers`, `ignore`), `match`
//! (regexes included), `is_true`, `is_false`, `length`, `set`, `gt`/`gte`/`lt`/`lte`, `skip`.
//!
//! Each test runs on a fresh server. Tests that need what optimist does not do are listed,
//! each with its reason, in `tests/conformance-exclusions.txt`; an excluded test that passes
//! fails the run, so the list stays true.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{Response, Server};

/// The version the skip ranges are judged against: what `GET /` reports.
const VERSION: &str = server::es::VERSION_NUMBER;

/// Runner features the tests may ask for.
const FEATURES: &[&str] = &["headers", "allowed_warnings", "warnings", "default_shards"];

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

#[test]
fn opensearch_yaml_rest_tests() {
    let root = shared();
    if !root.join("opensearch-yaml").is_dir() {
        eprintln!(
            "conformance: {} is not present; nothing to run",
            root.display()
        );
        return;
    }
    let specs = Specs::load(&root.join("opensearch-api"));
    let exclusions = Exclusions::load();
    let mut files: Vec<PathBuf> = Vec::new();
    for api in std::fs::read_dir(root.join("opensearch-yaml")).unwrap() {
        for file in std::fs::read_dir(api.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files.sort();
    let only = std::env::var("CONFORMANCE_ONLY").ok();
    let mut report = Report::default();
    for file in &files {
        let name = file
            .strip_prefix(root.join("opensearch-yaml"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        run_file(file, &name, &specs, &exclusions, &mut report);
    }
    println!(
        "conformance: files {} passed, {} failed, {} excluded; tests {} passed, {} failed, {} skipped, {} excluded; steps {} passed, {} failed",
        report.files_passed,
        report.files_failed,
        report.files_excluded,
        report.tests_passed,
        report.failures.len(),
        report.tests_skipped,
        report.tests_excluded,
        report.steps_passed,
        report.steps_failed,
    );
    for failure in &report.failures {
        println!("FAILED {failure}");
    }
    for passing in &report.excluded_but_passing {
        println!("EXCLUDED BUT PASSES {passing}");
    }
    assert!(
        report.failures.is_empty(),
        "{} conformance tests failed",
        report.failures.len()
    );
    assert!(
        report.excluded_but_passing.is_empty(),
        "excluded tests pass: take them out of tests/conformance-exclusions.txt"
    );
    let unused = exclusions.unused();
    assert!(
        unused.is_empty(),
        "exclusions that match no test: {unused:?}"
    );
}

#[derive(Default)]
struct Report {
    files_passed: usize,
    files_failed: usize,
    files_excluded: usize,
    tests_passed: usize,
    tests_skipped: usize,
    tests_excluded: usize,
    steps_passed: usize,
    steps_failed: usize,
    failures: Vec<String>,
    excluded_but_passing: Vec<String>,
}

fn run_file(file: &Path, name: &str, specs: &Specs, ex: &Exclusions, report: &mut Report) {
    let text = std::fs::read_to_string(file).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let mut setup = Vec::new();
    let mut teardown = Vec::new();
    let mut tests: Vec<(String, Vec<Value>)> = Vec::new();
    for doc in docs {
        let Value::Object(map) = yaml_to_json(&doc) else {
            continue;
        };
        for (key, steps) in map {
            let steps = steps.as_array().cloned().unwrap_or_default();
            match key.as_str() {
                "setup" => setup = steps,
                "teardown" => teardown = steps,
                _ => tests.push((key, steps)),
            }
        }
    }
    let file_excluded = ex.excludes(name, None);
    let mut file_failed = false;
    for (test, steps) in &tests {
        let excluded = file_excluded || ex.excludes(name, Some(test));
        if skipped(&setup) || skipped(steps) {
            report.tests_skipped += 1;
            continue;
        }
        let server = Server::start_fresh();
        let mut runner = Runner {
            server: &server,
            specs,
            stash: HashMap::new(),
            last: None,
            steps_passed: 0,
        };
        let outcome = runner
            .run(&setup)
            .and_then(|()| runner.run(steps))
            .and_then(|()| runner.run(&teardown));
        if excluded {
            report.tests_excluded += 1;
            if outcome.is_ok() {
                report
                    .excluded_but_passing
                    .push(format!("{name} :: {test}"));
            }
            continue;
        }
        report.steps_passed += runner.steps_passed;
        match outcome {
            Ok(()) => report.tests_passed += 1,
            Err(why) => {
                report.steps_failed += 1;
                file_failed = true;
                report.failures.push(format!("{name} :: {test}: {why}"));
            }
        }
    }
    if file_excluded {
        report.files_excluded += 1;
    } else if file_failed {
        report.files_failed += 1;
    } else {
        report.files_passed += 1;
    }
}

/// Whether a `skip` step at the head of these steps applies to us.
fn skipped(steps: &[Value]) -> bool {
    steps.iter().any(|step| {
        let Some(skip) = step.get("skip") else {
            return false;
        };
        if let Some(features) = skip.get("features") {
            let features: Vec<&str> = match features {
                Value::String(s) => vec![s.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if features.iter().any(|f| !FEATURES.contains(f)) {
                return true;
            }
        }
        skip.get("version")
            .and_then(Value::as_str)
            .is_some_and(version_in_ranges)
    })
}

/// `" - 6.99.99"`, `"7.0.0 - 7.9.99"`, `"all"`, comma-separated ranges.
fn version_in_ranges(ranges: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let ours = parse(VERSION);
    ranges.split(',').any(|range| {
        let range = range.trim();
        if range == "all" {
            return true;
        }
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        let low = if low.trim().is_empty() {
            vec![0]
        } else {
            parse(low)
        };
        let high = if high.trim().is_empty() {
            vec![u64::MAX]
        } else {
            parse(high)
        };
        low <= ours && ours <= high
    })
}

struct Runner<'a> {
    server: &'a Server,
    specs: &'a Specs,
    stash: HashMap<String, Value>,
    /// The last response: (status, JSON body, whether it was a HEAD).
    last: Option<(u16, Value, bool)>,
    steps_passed: usize,
}

impl Runner<'_> {
    fn run(&mut self, steps: &[Value]) -> Result<(), String> {
        for step in steps {
            let Value::Object(step) = step else {
                return Err(format!("a step is not a map: {step}"));
            };
            let (kind, arg) = step.iter().next().ok_or("an empty step")?;
            let result = match kind.as_str() {
                "skip" => Ok(()),
                "do" => self.call(arg),
                "set" => self.set(arg),
                "match" => self.each(arg, |r, path, want| r.matches(path, want)),
                "is_true" => self.truth(arg, true),
                "is_false" => self.truth(arg, false),
                "length" => self.each(arg, |r, path, want| {
                    let got = r.lookup(path)?;
                    let len = match &got {
                        Value::Array(a) => a.len(),
                        Value::Object(o) => o.len(),
                        Value::String(s) => s.chars().count(),
                        other => return Err(format!("length of {other}")),
                    };
                    (json!(len) == *want)
                        .then_some(())
                        .ok_or(format!("length of {path} is {len}, want {want}"))
                }),
                "gt" | "gte" | "lt" | "lte" => {
                    let op = kind.clone();
                    self.each(arg, move |r, path, want| {
                        let got = r.lookup(path)?.as_f64().ok_or("not a number")?;
                        let want = want.as_f64().ok_or("not a number")?;
                        let ok = match op.as_str() {
                            "gt" => got > want,
                            "gte" => got >= want,
                            "lt" => got < want,
                            _ => got <= want,
                        };
                        ok.then_some(())
                            .ok_or(format!("{path} = {got}, want {op} {want}"))
                    })
                }
                other => Err(format!("unknown step [{other}]")),
            };
            match result {
                Ok(()) => self.steps_passed += 1,
                Err(why) => return Err(format!("{kind} {arg}: {why}")),
            }
        }
        Ok(())
    }

    fn each(
        &mut self,
        arg: &Value,
        check: impl Fn(&Self, &str, &Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let Value::Object(pairs) = arg else {
            return Err("expected a map".into());
        };
        for (path, want) in pairs {
            let want = self.unstash(want);
            check(self, path, &want)?;
        }
        Ok(())
    }

    fn set(&mut self, arg: &Value) -> Result<(), String> {
        let Value::Object(pairs) = arg else {
            return Err("expected a map".into());
        };
        for (path, name) in pairs {
            let value = self.lookup(path)?;
            self.stash
                .insert(name.as_str().unwrap_or_default().to_owned(), value);
        }
        Ok(())
    }

    fn truth(&self, arg: &Value, want: bool) -> Result<(), String> {
        let path = arg.as_str().unwrap_or_default();
        let value = if path.is_empty() {
            let (status, body, _) = self.last.as_ref().ok_or("no response")?;
            if *status >= 300 {
                Value::Bool(false)
            } else if body.is_null() {
                Value::Bool(true)
            } else {
                body.clone()
            }
        } else {
            self.lookup(path).unwrap_or(Value::Null)
        };
        let falsy = matches!(&value, Value::Null | Value::Bool(false))
            || value == json!("")
            || value == json!("false")
            || value == json!(0);
        (falsy != want)
            .then_some(())
            .ok_or(format!("{path:?} is {value}"))
    }

    /// A value in the last response, by a dotted path (`\.` escapes a dot); `$body` is it all.
    fn lookup(&self, path: &str) -> Result<Value, String> {
        let (_, body, _) = self.last.as_ref().ok_or("no response yet")?;
        if path.is_empty() || path == "$body" {
            return Ok(body.clone());
        }
        let mut current = body.clone();
        for part in split_path(path) {
            let part = match self.stash.get(part.trim_start_matches('$')) {
                Some(Value::String(s)) if part.starts_with('$') => s.clone(),
                _ => part,
            };
            current = match current {
                Value::Object(mut map) => map.remove(&part).unwrap_or(Value::Null),
                Value::Array(mut list) => match part.parse::<usize>() {
                    Ok(i) if i < list.len() => list.swap_remove(i),
                    _ => Value::Null,
                },
                _ => Value::Null,
            };
        }
        Ok(current)
    }

    fn matches(&self, path: &str, want: &Value) -> Result<(), String> {
        let got = self.lookup(path)?;
        if let Value::String(pattern) = want
            && pattern.len() > 1
            && pattern.starts_with('/')
            && pattern.trim_end().ends_with('/')
        {
            let re = java_regex(pattern)?;
            let text = match &got {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            return re
                .is_match(&text)
                .then_some(())
                .ok_or(format!("{path} = {text:?} does not match {pattern}"));
        }
        same(&got, want)
            .then_some(())
            .ok_or(format!("{path} = {got}, want {want}"))
    }

    /// `$name` and `${name}` replaced by stashed values, everywhere in a value.
    fn unstash(&self, value: &Value) -> Value {
        match value {
            Value::String(s) if s.starts_with('$') && self.stash.contains_key(&s[1..]) => {
                self.stash[&s[1..]].clone()
            }
            Value::String(s) if s.contains("${") => {
                let mut out = s.clone();
                for (name, v) in &self.stash {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    out = out.replace(&format!("${{{name}}}"), &text);
                }
                Value::String(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.unstash(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.unstash(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn call(&mut self, arg: &Value) -> Result<(), String> {
        let Value::Object(fields) = self.unstash(arg) else {
            return Err("expected a map".into());
        };
        let mut catch = None;
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut api = None;
        for (key, value) in &fields {
            match key.as_str() {
                "catch" => catch = value.as_str().map(str::to_owned),
                "headers" => {
                    for (name, v) in value.as_object().into_iter().flatten() {
                        headers.push((name.clone(), scalar(v)));
                    }
                }
                "warnings" | "allowed_warnings" | "node_selector" => {}
                name => api = Some((name.to_owned(), value.clone())),
            }
        }
        let (name, args) = api.ok_or("a do without an API")?;
        let request = match self.specs.request(&name, &args) {
            Ok(request) => request,
            Err(why) if catch.as_deref() == Some("param") => {
                let _ = why;
                return Ok(());
            }
            Err(why) => return Err(why),
        };
        if catch.as_deref() == Some("param") {
            return Err(format!(
                "expected a client-side error, but sent {}",
                request.path
            ));
        }
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let response: Response = self.server.send(
            request.method,
            &request.path,
            &header_refs,
            request.body.as_deref(),
        );
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body)
                .unwrap_or_else(|_| Value::String(response.text()))
        };
        let status = response.status;
        self.last = Some((status, body.clone(), request.method == "HEAD"));
        let ignored = request.ignore.contains(&status);
        match catch.as_deref() {
            None if status >= 400 && !ignored && request.method != "HEAD" => Err(format!(
                "{} {} answered {status}: {body}",
                request.method, request.path
            )),
            None => Ok(()),
            Some(catch) => {
                let ok = match catch {
                    "conflict" => status == 409,
                    "missing" => status == 404,
                    "bad_request" => status == 400,
                    "unauthorized" => status == 401,
                    "forbidden" => status == 403,
                    "request_timeout" => status == 408,
                    "request" => status >= 400,
                    pattern if pattern.starts_with('/') => {
                        status >= 400 && catch_regex(pattern)?.is_match(&body.to_string())
                    }
                    other => return Err(format!("unknown catch [{other}]")),
                };
                ok.then_some(()).ok_or(format!(
                    "{} {}: catch {catch}, got {status}: {body}",
                    request.method, request.path
                ))
            }
        }
    }
}

/// A `/.../` pattern of the YAML tests: Java regex syntax, matched anywhere, with the
/// COMMENTS flag (whitespace ignored) as Elasticsearch's runner compiles them.
fn java_regex(pattern: &str) -> Result<Regex, String> {
    let inner = pattern.trim().trim_start_matches('/').trim_end_matches('/');
    Regex::new(&format!("(?xs){inner}")).map_err(|e| format!("bad regex {pattern}: {e}"))
}

/// A `catch: /.../` pattern: matched against the error body as it is (no COMMENTS flag).
fn catch_regex(pattern: &str) -> Result<Regex, String> {
    let inner = pattern.trim().trim_start_matches('/').trim_end_matches('/');
    Regex::new(&format!("(?s){inner}")).map_err(|e| format!("bad regex {pattern}: {e}"))
}

/// Equality as the runner means it: numbers by value, objects key by key.
fn same(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) => a == &b.to_string(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && b.iter().all(|(k, v)| a.get(k).is_some_and(|g| same(g, v)))
        }
        _ => got == want,
    }
}

fn split_path(path: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                parts.last_mut().unwrap().push('.');
                chars.next();
            }
            '.' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn yaml_to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match yaml_to_json(k) {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// The REST API specs: how a named API call becomes a method, path and query string.
struct Specs {
    apis: BTreeMap<String, Vec<SpecPath>>,
}

/// One URL of an API: the path template, its methods, its parts.
type SpecPath = (String, Vec<String>, Vec<String>);

struct Request {
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    ignore: Vec<u16>,
}

impl Specs {
    fn load(dir: &Path) -> Specs {
        let mut apis = BTreeMap::new();
        for file in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let spec: Value = serde_json::from_str(&text).unwrap();
            for (name, api) in spec.as_object().unwrap() {
                let paths = api["url"]["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let methods = p["methods"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|m| m.as_str().unwrap().to_owned())
                            .collect();
                        let parts = p
                            .get("parts")
                            .and_then(Value::as_object)
                            .map(|parts| parts.keys().cloned().collect())
                            .unwrap_or_default();
                        (p["path"].as_str().unwrap().to_owned(), methods, parts)
                    })
                    .collect();
                apis.insert(name.clone(), paths);
            }
        }
        // APIs the tests call whose specs were not copied.
        let mut add = |name: &str, paths: &[(&str, &[&str], &[&str])]| {
            apis.insert(
                name.to_owned(),
                paths
                    .iter()
                    .map(|(p, m, parts)| {
                        (
                            p.to_string(),
                            m.iter().map(|s| s.to_string()).collect(),
                            parts.iter().map(|s| s.to_string()).collect(),
                        )
                    })
                    .collect(),
            );
        };
        add(
            "indices.refresh",
            &[
                ("/{index}/_refresh", &["POST", "GET"], &["index"]),
                ("/_refresh", &["POST", "GET"], &[]),
            ],
        );
        add("indices.get", &[("/{index}", &["GET"], &["index"])]);
        add(
            "indices.put_alias",
            &[("/{index}/_alias/{name}", &["PUT"], &["index", "name"])],
        );
        add(
            "cluster.health",
            &[
                ("/_cluster/health/{index}", &["GET"], &["index"]),
                ("/_cluster/health", &["GET"], &[]),
            ],
        );
        add(
            "search",
            &[
                ("/{index}/_search", &["POST"], &["index"]),
                ("/_search", &["POST"], &[]),
            ],
        );
        Specs { apis }
    }

    fn request(&self, name: &str, args: &Value) -> Result<Request, String> {
        let paths = self.apis.get(name).ok_or(format!("no spec for [{name}]"))?;
        let args = args.as_object().cloned().unwrap_or_default();
        let given: Vec<&String> = args.keys().collect();
        // The path whose parts are all given, with the most parts.
        let (path, methods, parts) = paths
            .iter()
            .filter(|(_, _, parts)| parts.iter().all(|p| given.contains(&p)))
            .max_by_key(|(_, _, parts)| parts.len())
            .ok_or(format!("[{name}]: missing a required path part"))?;
        let mut url = path.clone();
        for part in parts {
            url = url.replace(&format!("{{{part}}}"), &encode(&scalar(&args[part])));
        }
        let mut query = Vec::new();
        let mut body = None;
        let mut ignore = Vec::new();
        for (key, value) in &args {
            match key.as_str() {
                k if parts.iter().any(|p| p == k) => {}
                "body" => body = Some(render_body(value)),
                "ignore" => {
                    ignore = match value {
                        Value::Array(list) => list
                            .iter()
                            .filter_map(|v| v.as_u64())
                            .map(|v| v as u16)
                            .collect(),
                        v => v.as_u64().map(|v| v as u16).into_iter().collect(),
                    }
                }
                k => query.push(format!("{k}={}", encode(&scalar(value)))),
            }
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let method = if body.is_some() && methods.iter().any(|m| m == "POST") && methods[0] == "GET"
        {
            "POST"
        } else {
            match methods[0].as_str() {
                "GET" => "GET",
                "PUT" => "PUT",
                "POST" => "POST",
                "DELETE" => "DELETE",
                "HEAD" => "HEAD",
                other => return Err(format!("method {other}")),
            }
        };
        Ok(Request {
            method,
            path: url,
            body,
            ignore,
        })
    }
}

/// A body: a list is NDJSON (strings as they are, the rest as JSON), a string is raw.
fn render_body(value: &Value) -> Vec<u8> {
    match value {
        Value::Array(lines) => lines
            .iter()
            .map(|line| match line {
                Value::String(s) => format!("{s}\n"),
                other => format!("{other}\n"),
            })
            .collect::<String>()
            .into_bytes(),
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~*,".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `tests/conformance-exclusions.txt`: `FILE` or `FILE :: TEST`, then ` | REASON`.
struct Exclusions {
    entries: Vec<(String, Option<String>, std::cell::Cell<bool>)>,
}

impl Exclusions {
    fn load() -> Exclusions {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance-exclusions.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (what, reason) = line
                .split_once(" | ")
                .unwrap_or_else(|| panic!("an exclusion needs ` | reason`: {line}"));
            assert!(
                !reason.trim().is_empty(),
                "an exclusion needs a reason: {line}"
            );
            let (file, test) = match what.split_once(" :: ") {
                Some((f, t)) => (f.trim().to_owned(), Some(t.trim().to_owned())),
                None => (what.trim().to_owned(), None),
            };
            entries.push((file, test, std::cell::Cell::new(false)));
        }
        Exclusions { entries }
    }

    fn excludes(&self, file: &str, test: Option<&str>) -> bool {
        let mut hit = false;
        for (f, t, used) in &self.entries {
            if f == file && t.as_deref() == test {
                used.set(true);
                hit = true;
            }
        }
        hit
    }

    fn unused(&self) -> Vec<String> {
        let only = std::env::var("CONFORMANCE_ONLY").ok();
        self.entries
            .iter()
            .filter(|(f, _, used)| !used.get() && only.as_deref().is_none_or(|o| f.contains(o)))
            .map(|(f, t, _)| format!("{f} {}", t.as_deref().unwrap_or("")))
            .collect()
    }
}
