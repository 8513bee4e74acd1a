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

# The changes feed's ratios (history read against optimist export, writes with long polls
# attached, a long poll's wake against a write's round trip).
changes-ratios rounds="3":
    cargo build --release -p optimist-cli
    ROUNDS={{rounds}} cargo run --release -p benches --bin changes_ratios

# How long a test waits for a server: `serve --ephemeral` spawned to its first answer, beside
# a fresh data directory and a bare process start (issue 33).
start-times runs="50":
    cargo build --release -p optimist-cli
    RUNS={{runs}} cargo run --release -p benches --bin start_times

# What a suite pays between tests on `serve --ephemeral`: a reset to a snapshot against
# re-indexing, snapshots and restores by size, a test with a reset after it (issue 33).
test-mode rounds="20" tests="1000":
    cargo build --release -p optimist-cli
    ROUNDS={{rounds}} TESTS={{tests}} cargo run --release -p benches --bin test_mode

bench *args:
    cargo bench -p benches {{args}}

# Fuzz one target on stable, e.g. `just fuzz wal_decode 60` (needs `cargo install cargo-fuzz`).
fuzz target seconds="60":
    cd fuzz && cargo fuzz run -s none {{target}} -- -max_total_time={{seconds}}

# Long runs (hours): issue 5's soak, every part in turn. Every figure and seed goes to
# docs/reliability.md. Each part is a recipe of its own, so the parts can run on different
# machines or days; `seed` replays a part's run exactly.
soak: soak-models soak-kill soak-power soak-power-async soak-lifecycle soak-sim soak-fuzz

soak-models:
    WAL_CRASH_WORKLOADS=400 WAL_MODEL_CASES=100000 cargo test --release -p optimist-wal --test it -- crash model
    ENGINE_MODEL_CASES=100000 cargo test --release -p optimist-engine --test it -- model

# The request and async runs side by side: each server picks its own port, and a harness
# waits on its server's restarts most of the time.
soak-kill rounds="10000" seed="20261126":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p optimist-cli -p crashtest --bins
    ./target/release/crashtest kill --rounds {{rounds}} --seed {{seed}} --binary ./target/release/optimist &
    request=$!
    ./target/release/crashtest kill --rounds 2000 --async --seed {{seed}} --binary ./target/release/optimist
    wait $request

# `chunks` runs of `rounds` cuts, seeds `seed`, `seed`+1, ..., `lanes` at a time (a round spends
# most of its time waiting on a restart). Each run prints its own figures in
# target/soak-power-N.log; the first violation stops the rest.
soak-power chunks="10" rounds="1000" seed="20261126" lanes="3":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p optimist-cli -p crashtest --bins
    rm -f target/soak-power-*.log
    seq 0 $(({{chunks}} - 1)) | xargs -P {{lanes}} -I{} sh -c \
      './target/release/crashtest power --rounds {{rounds}} --seed $(({{seed}} + {})) --binary ./target/release/optimist > target/soak-power-{}.log 2>&1 || { tail -n 3 target/soak-power-{}.log; exit 255; }'
    grep -h "^ok:" target/soak-power-*.log

# Async durability under power cuts: acknowledged writes may be lost, never out of order
# (no hole in the log), and a stamp lost with them gets 409.
soak-power-async rounds="2000" seed="20261126":
    cargo build --release -p optimist-cli -p crashtest --bins
    ./target/release/crashtest power --async --rounds {{rounds}} --seed {{seed}} --binary ./target/release/optimist

# Indices deleted and created across SIGKILL and power cuts: each whole or gone.
soak-lifecycle rounds="5000" seed="20261126":
    cargo build --release -p optimist-cli -p crashtest --bins
    ./target/release/crashtest lifecycle --rounds {{rounds}} --seed {{seed}} --binary ./target/release/optimist
    ./target/release/crashtest lifecycle --power --rounds {{rounds}} --seed {{seed}} --binary ./target/release/optimist
    for s in $(seq {{seed}} $(({{seed}} + 99))); do ./target/release/crashtest faults --seed $s --disk-full --binary ./target/release/optimist || exit 1; done

# Seeds are independent: `jobs` runs that many at once (one per core).
soak-sim seeds="100000" seed="20261126" jobs=`nproc`:
    cargo build --release -p crashtest
    ./target/release/crashtest sim --seeds {{seeds}} --seed {{seed}} --jobs {{jobs}}

soak-fuzz seconds="3600":
    for t in wal_decode wal_recover engine_model http_request changes_position; do (cd fuzz && cargo fuzz run -s none $t -- -max_total_time={{seconds}} -print_final_stats=1); done
