//! The server's tests, each against a live server on 127.0.0.1.

mod api;
mod blocks;
mod changes;
mod client;
mod conflicts;
mod conformance;
mod faults;
mod fuzz_corpus;
mod limits;
mod quickstart;
mod security;
mod support;
mod testing;
mod tidy;
