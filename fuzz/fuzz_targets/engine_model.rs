#![no_main]
//! Operation sequences (index and delete with every condition kind, sync, compaction,
//! checkpoint, power loss, restart) against a model of Elasticsearch's rules.

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::engine_model(data));
