//! The live server and the HTTP client of `testkit`, under the names these tests use.

pub(crate) use testkit::{Response, Server};
