//! optimist's test fixtures, shared by the server's tests, the CLI's tests and the crash
//! harness: a small HTTP/1.1 client that shows exactly what went over the wire
//! ([`http`]), and, with the `server` feature, a live server on 127.0.0.1 in this process
//! ([`Server`]).

pub mod http;
#[cfg(feature = "server")]
mod server;

pub use http::{Response, exchange, send_to};
#[cfg(feature = "server")]
pub use server::Server;
