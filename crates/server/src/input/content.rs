//! What a request's body must come with: a JSON (or NDJSON) content type, and a body at all.
//! (What a document itself must be, the engine checks: `IndexRequest::check_source`.)

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::es::{EsError, Exception};

/// The request's `Content-Type`, the one header handlers read. (axum's `HeaderMap`
/// extractor would copy every header of every request.)
pub(crate) struct ContentType(Option<HeaderValue>);

impl<S: Sync> FromRequestParts<S> for ContentType {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ContentType, Infallible> {
        Ok(ContentType::of(&parts.headers))
    }
}

impl ContentType {
    pub(crate) fn of(headers: &HeaderMap) -> ContentType {
        ContentType(headers.get(header::CONTENT_TYPE).cloned())
    }
}

/// Why the body of a document write is refused, if it is: no JSON content type, absent.
/// (What the document itself must be, the engine checks: `IndexRequest::check_source`.)
pub(crate) fn require_document(content_type: &ContentType, body: &Bytes) -> Result<(), EsError> {
    require_json(content_type)?;
    body_required(body)
}

/// `parse_exception`, `request body is required`, for an empty body.
pub(crate) fn body_required(body: &[u8]) -> Result<(), EsError> {
    if body.is_empty() {
        return Err(EsError::bad_request(
            Exception::Parse,
            "request body is required",
        ));
    }
    Ok(())
}

/// A body that must be JSON, read: `what` names it in the refusal (`parse_exception`).
pub(crate) fn json_body(
    content_type: &ContentType,
    body: &[u8],
    what: &str,
) -> Result<serde_json::Value, EsError> {
    require_json(content_type)?;
    body_required(body)?;
    serde_json::from_slice(body)
        .map_err(|e| EsError::bad_request(Exception::Parse, format!("cannot read {what}: {e}")))
}

/// JSON and NDJSON, including the `vnd.elasticsearch+json; compatible-with=N` forms.
pub(crate) fn require_json(content_type: &ContentType) -> Result<(), EsError> {
    let Some(value) = &content_type.0 else {
        return Err(EsError::plain(
            StatusCode::NOT_ACCEPTABLE,
            "Content-Type header is missing",
        ));
    };
    let text = value.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    let accepted = [
        "application/json",
        "application/x-ndjson",
        "application/vnd.elasticsearch+json",
        "application/vnd.elasticsearch+x-ndjson",
    ]
    .iter()
    .any(|accepted| media.eq_ignore_ascii_case(accepted));
    if accepted {
        Ok(())
    } else {
        Err(EsError::plain(
            StatusCode::NOT_ACCEPTABLE,
            format!("Content-Type header [{text}] is not supported"),
        ))
    }
}
