//! HTTP basic authentication, answered as Elasticsearch's security layer answers: 401
//! `security_exception` with a `WWW-Authenticate` challenge, for every request (`GET /` and
//! `HEAD /` included) when any user is configured.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::json;

use crate::es::{EsError, Exception};
use crate::http::routes::request_uri;
use crate::state::Reply;

/// The challenge Elasticsearch 8.15+ sends for its native realm.
pub const CHALLENGE: &str = "Basic realm=\"security\", charset=\"UTF-8\"";

/// Who may call: user name to password.
#[derive(Clone, Debug, Default)]
pub struct Users {
    passwords: HashMap<String, String>,
}

impl Users {
    /// From `NAME:PASSWORD` strings (the `--user` flag; the password may contain `:`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Users, String> {
        let mut users = Users::default();
        for entry in entries {
            let (name, password) = entry
                .split_once(':')
                .ok_or_else(|| format!("a user is NAME:PASSWORD, got [{entry}]"))?;
            if name.is_empty() || password.is_empty() {
                return Err(format!(
                    "a user needs a name and a password, got [{name}:...]"
                ));
            }
            users.passwords.insert(name.to_owned(), password.to_owned());
        }
        Ok(users)
    }

    /// A users file: one `NAME:PASSWORD` a line; blank lines and `#` comments are skipped.
    /// The file holds passwords, so one that others can read is refused.
    pub fn read_file(path: &Path) -> Result<Users, String> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{shown} holds passwords but others may read it (mode {:o}); chmod 600 it",
                meta.permissions().mode() & 0o777
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Users::parse(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        )
        .map_err(|e| format!("{shown}: {e}"))
    }

    pub fn add(&mut self, other: Users) {
        self.passwords.extend(other.passwords);
    }

    pub fn is_empty(&self) -> bool {
        self.passwords.is_empty()
    }

    /// Whether `name` has this password. Compared in time independent of where they differ.
    fn verify(&self, name: &str, password: &str) -> bool {
        let Some(expected) = self.passwords.get(name) else {
            return false;
        };
        let (a, b) = (expected.as_bytes(), password.as_bytes());
        let mut differ = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            differ |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
        }
        differ == 0
    }
}

/// `None` for a request with valid credentials, the 401 answer otherwise.
pub(crate) fn refusal(users: &Users, request: &Request) -> Option<Reply> {
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let uri = || request_uri(request.uri());
    match credentials {
        Some((name, password)) if users.verify(&name, &password) => None,
        Some((name, _)) => Some(unauthorized(&format!(
            "unable to authenticate user [{name}] for REST request [{}]",
            uri()
        ))),
        None => Some(unauthorized(&format!(
            "missing authentication credentials for REST request [{}]",
            uri()
        ))),
    }
}

/// `Basic base64(name:password)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

fn unauthorized(reason: &str) -> Reply {
    let header_field = json!({ "WWW-Authenticate": CHALLENGE });
    let error = EsError::new(StatusCode::UNAUTHORIZED, Exception::Security, reason);
    let mut reply = error.with("header", header_field).into_response();
    reply.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_exactly() {
        let users = Users::parse(["elastic:s3cret:x", "bob:pw"]).unwrap();
        assert!(users.verify("elastic", "s3cret:x"));
        assert!(!users.verify("elastic", "s3cret"));
        assert!(!users.verify("elastic", "s3cret:xy"));
        assert!(!users.verify("alice", "pw"));
        assert!(Users::parse(["nocolon"]).is_err());
        assert!(Users::parse([":pw"]).is_err());
        assert_eq!(
            basic_credentials("Basic ZWxhc3RpYzpzM2NyZXQ="),
            Some(("elastic".into(), "s3cret".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
    }
}
