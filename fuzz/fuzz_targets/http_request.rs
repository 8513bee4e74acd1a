#![no_main]
//! Arbitrary query strings and bodies through the server's request parsing.

libfuzzer_sys::fuzz_target!(|data: &[u8]| server::fuzz::http_request(data));
