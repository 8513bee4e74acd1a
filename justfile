# List recipes.
default:
    @just --list

# Exactly what CI runs.
ci:
    bash .ci/run

test:
    cargo test --workspace

fmt-check:
    cargo fmt --all -- --check

# Warnings are errors here, not in your editor.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# The ratios of docs/performance.md, measured in one run.
ratios rounds="7":
    ROUNDS={{rounds}} cargo run --release -p benches --bin ratios

# The engine's ratios (durable CAS against raw fdatasync and against SQLite and sled).
engine-ratios rounds="5":
    ROUNDS={{rounds}} cargo run --release -p benches --bin engine_ratios

# The same with RocksDB (sync=true) as a peer, linked to Debian's library:
# `apt-get install librocksdb-dev libclang-dev` first.
engine-ratios-rocksdb rounds="5":
    ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu LIBCLANG_PATH=/usr/lib/llvm-14/lib ROUNDS={{rounds}} cargo run --release -p benches --features rocksdb --bin engine_ratios

# The server's ratios (HTTP against a noop handler, _bulk against the embedded engine).
server-ratios rounds="5":
    ROUNDS={{rounds}} cargo run --release -p benches --bin server_ratios

bench *args:
    cargo bench -p benches {{args}}

# Fuzz one target on stable, e.g. `just fuzz wal_decode 60` (needs `cargo install cargo-fuzz`).
fuzz target seconds="60":
    cd fuzz && cargo fuzz run -s none {{target}} -- -max_total_time={{seconds}}

# Long runs (hours): issue 5's soak. Every figure and seed goes to docs/reliability.md.
soak:
    WAL_CRASH_WORKLOADS=400 WAL_MODEL_CASES=100000 cargo test --release -p wal --test it -- crash model
    ENGINE_MODEL_CASES=100000 cargo test --release -p engine --test it -- model
    cargo build --release -p server -p crashtest --bins
    ./target/release/crashtest kill --rounds 10000 --binary ./target/release/optimist
    ./target/release/crashtest kill --rounds 2000 --async --binary ./target/release/optimist
    ./target/release/crashtest power --rounds 10000 --binary ./target/release/optimist
    ./target/release/crashtest sim --seeds 100000
    for t in wal_decode wal_recover engine_model http_request; do (cd fuzz && cargo fuzz run -s none $t -- -max_total_time=3600); done
