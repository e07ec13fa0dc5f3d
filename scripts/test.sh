#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests,
# the black-box S3 client suite against the release binary, the cluster suite
# (Raft groups of real server processes), and the operator's
# chart, manifest and image checks. Builds once (release) and reuses the
# binaries everywhere. Installs what it needs (Python venvs, rclone, podman)
# itself, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/bleepstore-target}
export CARGO_TERM_COLOR=never
BIN_DIR=$CARGO_TARGET_DIR/release

step() { printf '\n=== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (release: binaries and test targets, one feature set)"
cargo build --release --workspace --all-targets --locked

step "Rust unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --workspace --locked --no-fail-fast
    cargo test --release --workspace --locked --doc
else
    cargo test --release --workspace --locked --no-fail-fast
fi

step "black-box S3 client suite"
BLEEPSTORE_BIN=$BIN_DIR/bleepstore bash tests/blackbox/run.sh

step "cluster suite (Raft groups of real processes)"
BLEEPSTORE_BIN=$BIN_DIR/bleepstore BLEEPSTORE_OPERATOR_BIN=$BIN_DIR/bleepstore-operator \
    bash tests/cluster/run.sh

step "operator: CRD, chart, manifests, images"
BLEEPSTORE_BIN_DIR=$BIN_DIR bash tests/operator/run.sh

step "all suites passed"
