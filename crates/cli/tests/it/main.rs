//! The `optimist` binary's tests: each runs it as its own process.

mod crash;
mod ephemeral;
mod offline;
mod serve;
mod tools;
