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

# The server's ratios (HTTP against a noop handler, _bulk against the embedded engine).
server-ratios rounds="5":
    ROUNDS={{rounds}} cargo run --release -p benches --bin server_ratios

bench *args:
    cargo bench -p benches {{args}}

# Fuzz one target on stable, e.g. `just fuzz wal_decode 60` (needs `cargo install cargo-fuzz`).
fuzz target seconds="60":
    cd fuzz && cargo fuzz run -s none {{target}} -- -max_total_time={{seconds}}

# Long runs: many more crash workloads and model cases than CI has time for.
soak:
    WAL_CRASH_WORKLOADS=400 WAL_MODEL_CASES=100000 cargo test --release -p wal --test it -- crash model
