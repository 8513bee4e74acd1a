//! Every endpoint, once: its path pattern, its methods, the handler it names and the query
//! parameters it accepts. The router (`routes.rs`), the 405 and `OPTIONS` answers (`Allow`)
//! and the unknown-parameter refusals (`unrecognized.rs`) are all read from [`ROUTES`], so
//! adding an endpoint is one row, and no list of paths can drift from another. (Quickwit's
//! Elasticsearch API keeps one registry of its handlers the same way.)

use crate::http::unrecognized::{BULK, DELETE, GET, INDEX, MGET, UPDATE};
use crate::input::changes::CHANGES_PARAMS;

/// What a row's handler is: each has exactly one handler (`routes::handler`, a `match` the
/// compiler holds to every variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Main,
    Bulk,
    BulkIndex,
    Mget,
    MgetIndex,
    RefreshAll,
    Refresh,
    FlushAll,
    Flush,
    ForcemergeAll,
    Forcemerge,
    StatsAll,
    Stats,
    CountAll,
    Count,
    Health,
    HealthOf,
    CreateIndex,
    GetIndex,
    DeleteIndex,
    IndexAutoId,
    IndexDoc,
    GetDoc,
    DeleteDoc,
    CreateDoc,
    GetSource,
    UpdateDoc,
    Changes,
    Consumers,
    CreateConsumer,
    GetConsumer,
    DeleteConsumer,
    AckConsumer,
    GetSettings,
    PutSettings,
    Reset,
    CreateFault,
    ListFaults,
    DeleteFaults,
    DeleteFault,
    Restart,
    PutSnapshot,
    RestoreSnapshot,
    ListSnapshots,
    DeleteSnapshot,
}

/// One endpoint at one path: the methods it answers and the parameters it accepts.
#[derive(Debug)]
pub(crate) struct Route {
    /// axum's pattern: `/{index}/_doc/{id}`.
    pub(crate) pattern: &'static str,
    /// As the `Allow` header names them; `HEAD` where Elasticsearch lists it.
    pub(crate) methods: &'static [&'static str],
    pub(crate) endpoint: Endpoint,
    /// The parameters Elasticsearch 8's REST specification gives the endpoint, besides the
    /// common ones; `None` where optimist checks none yet and the handler reads what it knows.
    pub(crate) params: Option<&'static [&'static str]>,
    /// Of the test API (`api/testing.rs`): routed only by a server started for tests; on
    /// any other, the path is unknown, as Elasticsearch has it.
    pub(crate) test_api: bool,
}

const fn row(
    pattern: &'static str,
    methods: &'static [&'static str],
    endpoint: Endpoint,
    params: Option<&'static [&'static str]>,
) -> Route {
    Route {
        pattern,
        methods,
        endpoint,
        params,
        test_api: false,
    }
}

/// A row of the test API.
const fn test_row(
    pattern: &'static str,
    methods: &'static [&'static str],
    endpoint: Endpoint,
    params: &'static [&'static str],
) -> Route {
    Route {
        test_api: true,
        ..row(pattern, methods, endpoint, Some(params))
    }
}

const READ: &[&str] = &["GET", "HEAD"];
const WRITE: &[&str] = &["POST", "PUT"];
const GET_POST: &[&str] = &["GET", "POST"];
/// Only the common parameters.
const COMMON_ONLY: &[&str] = &[];

/// The API. Static paths before patterns, as the router prefers them.
pub(crate) const ROUTES: &[Route] = &[
    row("/", READ, Endpoint::Main, None),
    row("/_bulk", WRITE, Endpoint::Bulk, Some(BULK)),
    row("/_mget", GET_POST, Endpoint::Mget, Some(MGET)),
    row("/_refresh", GET_POST, Endpoint::RefreshAll, None),
    row("/_flush", GET_POST, Endpoint::FlushAll, None),
    row("/_forcemerge", &["POST"], Endpoint::ForcemergeAll, None),
    row("/_stats", &["GET"], Endpoint::StatsAll, None),
    row("/_count", GET_POST, Endpoint::CountAll, None),
    row("/_cluster/health", &["GET"], Endpoint::Health, None),
    row(
        "/_cluster/health/{index}",
        &["GET"],
        Endpoint::HealthOf,
        None,
    ),
    row("/{index}", &["PUT"], Endpoint::CreateIndex, None),
    row("/{index}", READ, Endpoint::GetIndex, None),
    row("/{index}", &["DELETE"], Endpoint::DeleteIndex, None),
    row(
        "/{index}/_doc",
        &["POST"],
        Endpoint::IndexAutoId,
        Some(INDEX),
    ),
    row("/{index}/_doc/{id}", WRITE, Endpoint::IndexDoc, Some(INDEX)),
    row("/{index}/_doc/{id}", READ, Endpoint::GetDoc, Some(GET)),
    row(
        "/{index}/_doc/{id}",
        &["DELETE"],
        Endpoint::DeleteDoc,
        Some(DELETE),
    ),
    row(
        "/{index}/_create/{id}",
        WRITE,
        Endpoint::CreateDoc,
        Some(INDEX),
    ),
    row(
        "/{index}/_source/{id}",
        READ,
        Endpoint::GetSource,
        Some(GET),
    ),
    row(
        "/{index}/_update/{id}",
        &["POST"],
        Endpoint::UpdateDoc,
        Some(UPDATE),
    ),
    row("/{index}/_bulk", WRITE, Endpoint::BulkIndex, Some(BULK)),
    row("/{index}/_mget", GET_POST, Endpoint::MgetIndex, Some(MGET)),
    row("/{index}/_refresh", GET_POST, Endpoint::Refresh, None),
    row("/{index}/_flush", GET_POST, Endpoint::Flush, None),
    row(
        "/{index}/_forcemerge",
        &["POST"],
        Endpoint::Forcemerge,
        None,
    ),
    row("/{index}/_stats", &["GET"], Endpoint::Stats, None),
    row("/{index}/_count", GET_POST, Endpoint::Count, None),
    row(
        "/{index}/_changes",
        &["GET"],
        Endpoint::Changes,
        Some(CHANGES_PARAMS),
    ),
    row(
        "/{index}/_changes/consumer",
        &["GET"],
        Endpoint::Consumers,
        Some(COMMON_ONLY),
    ),
    row(
        "/{index}/_changes/consumer/{id}",
        &["PUT"],
        Endpoint::CreateConsumer,
        Some(COMMON_ONLY),
    ),
    row(
        "/{index}/_changes/consumer/{id}",
        &["GET"],
        Endpoint::GetConsumer,
        Some(COMMON_ONLY),
    ),
    row(
        "/{index}/_changes/consumer/{id}",
        &["DELETE"],
        Endpoint::DeleteConsumer,
        Some(COMMON_ONLY),
    ),
    row(
        "/{index}/_changes/consumer/{id}/_ack",
        &["POST"],
        Endpoint::AckConsumer,
        Some(COMMON_ONLY),
    ),
    row("/{index}/_settings", &["GET"], Endpoint::GetSettings, None),
    row("/{index}/_settings", &["PUT"], Endpoint::PutSettings, None),
    test_row(
        "/_optimist/reset",
        &["POST"],
        Endpoint::Reset,
        &["snapshot", "snapshots"],
    ),
    test_row(
        "/_optimist/faults",
        &["POST"],
        Endpoint::CreateFault,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/faults",
        &["GET"],
        Endpoint::ListFaults,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/faults",
        &["DELETE"],
        Endpoint::DeleteFaults,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/faults/{id}",
        &["DELETE"],
        Endpoint::DeleteFault,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/restart",
        &["POST"],
        Endpoint::Restart,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/snapshots",
        &["GET"],
        Endpoint::ListSnapshots,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/snapshots/{name}",
        &["PUT"],
        Endpoint::PutSnapshot,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/snapshots/{name}",
        &["DELETE"],
        Endpoint::DeleteSnapshot,
        COMMON_ONLY,
    ),
    test_row(
        "/_optimist/snapshots/{name}/_restore",
        &["POST"],
        Endpoint::RestoreSnapshot,
        &["bump_primary_term"],
    ),
];

/// The rows a server routes: the API, and the test API when it serves one.
pub(crate) fn rows(test_api: bool) -> impl Iterator<Item = &'static Route> {
    ROUTES
        .iter()
        .filter(move |route| test_api || !route.test_api)
}

/// The pattern a path takes, as the router chooses it: of those with its segments, the one
/// with the most static segments.
fn pattern_of(path: &str, test_api: bool) -> Option<&'static str> {
    let fits = |pattern: &str| {
        let mut parts = pattern.split('/').skip(1);
        let mut segments = path.split('/').skip(1);
        loop {
            match (parts.next(), segments.next()) {
                (None, None) => return true,
                (Some(p), Some(s)) if p.starts_with('{') || p == s => {}
                _ => return false,
            }
        }
    };
    let static_count = |pattern: &str| pattern.split('/').filter(|p| !p.starts_with('{')).count();
    rows(test_api)
        .map(|route| route.pattern)
        .filter(|pattern| fits(pattern))
        .max_by_key(|pattern| static_count(pattern))
}

/// The row a request takes, if its path and method name one; `HEAD` takes a `GET` row, as
/// the router answers it.
pub(crate) fn route(method: &str, path: &str, test_api: bool) -> Option<&'static Route> {
    let pattern = pattern_of(path, test_api)?;
    let taken = |method| {
        rows(test_api).find(|route| route.pattern == pattern && route.methods.contains(&method))
    };
    taken(method).or_else(|| taken("GET").filter(|_| method == "HEAD"))
}

/// The methods a path accepts, sorted, for 405 and `OPTIONS` answers (axum's own `Allow`
/// header is lost under router-wide layers).
pub(crate) fn allowed_methods(path: &str, test_api: bool) -> Vec<&'static str> {
    let Some(pattern) = pattern_of(path, test_api) else {
        return Vec::new();
    };
    let mut methods: Vec<&str> = rows(test_api)
        .filter(|route| route.pattern == pattern)
        .flat_map(|route| route.methods.iter().copied())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_takes_the_row_the_router_would_take() {
        let take = |method, path| route(method, path, false).map(|r| r.endpoint);
        assert_eq!(take("PUT", "/m/_doc/1"), Some(Endpoint::IndexDoc));
        assert_eq!(take("HEAD", "/m/_doc/1"), Some(Endpoint::GetDoc));
        assert_eq!(take("HEAD", "/_mget"), Some(Endpoint::Mget));
        assert_eq!(take("POST", "/_bulk"), Some(Endpoint::Bulk));
        assert_eq!(take("POST", "/m/_bulk"), Some(Endpoint::BulkIndex));
        // A static path wins over `/{index}`, and a wrong method takes no row.
        assert_eq!(take("GET", "/_stats"), Some(Endpoint::StatsAll));
        assert_eq!(take("DELETE", "/_stats"), None);
        assert_eq!(take("GET", "/m/_doc/1/more"), None);
        assert_eq!(take("GET", "/m//1"), None);
        assert_eq!(
            allowed_methods("/m/_doc/1", false),
            ["DELETE", "GET", "HEAD", "POST", "PUT"]
        );
        assert_eq!(
            allowed_methods("/m", false),
            ["DELETE", "GET", "HEAD", "PUT"]
        );
        assert_eq!(allowed_methods("/_forcemerge", false), ["POST"]);
        assert!(allowed_methods("/a/b/c/d/e", false).is_empty());
        // The test API is a row only where it is served.
        assert_eq!(take("POST", "/_optimist/reset"), None);
        let reset = route("POST", "/_optimist/reset", true).map(|r| r.endpoint);
        assert_eq!(reset, Some(Endpoint::Reset));
        assert_eq!(allowed_methods("/_optimist/reset", true), ["POST"]);
    }

    #[test]
    fn one_row_per_method_of_a_path() {
        let all: Vec<&Route> = rows(true).collect();
        for (n, a) in all.iter().enumerate() {
            for b in &all[n + 1..] {
                let shared = a.methods.iter().any(|m| b.methods.contains(m));
                assert!(!(a.pattern == b.pattern && shared), "{a:?} and {b:?}");
            }
        }
    }
}
