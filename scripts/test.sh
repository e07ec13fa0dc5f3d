#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests,
# the black-box S3 client suite against the release binary (its core also on
# the sqlite, aws, azure and gcs backends, against moto, Azurite and
# fake-gcs-server), the storage
# backend fault tests, the cluster suite
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

step "storage emulators (moto, Azurite, fake-gcs-server), once for every suite"
source tests/backends/env.sh
emulator_env=$(mktemp -u /tmp/bleepstore-emulators.XXXXXX)
"$backends_venv/bin/python" tests/backends/emulators.py up --env-file "$emulator_env" &
emulators_pid=$!
trap 'kill "$emulators_pid" 2>/dev/null; wait "$emulators_pid" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    [[ -f "$emulator_env" ]] && break
    kill -0 "$emulators_pid" 2>/dev/null || { echo "the emulators failed to start" >&2; exit 1; }
    sleep 0.5
done
[[ -f "$emulator_env" ]] || { echo "the emulators did not start within 60 s" >&2; exit 1; }
set -a; source "$emulator_env"; set +a
# The cloud backend tests fail instead of skipping if an endpoint is missing.
export BLEEPSTORE_REQUIRE_EMULATORS=1

step "Rust unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --release --workspace --locked --no-fail-fast
    cargo test --release --workspace --locked --doc
else
    cargo test --release --workspace --locked --no-fail-fast
fi

step "black-box S3 client suite"
BLEEPSTORE_BIN=$BIN_DIR/bleepstore bash tests/blackbox/run.sh

step "black-box core (objects, listing, multipart, copy, ranges, checksums) on every other backend"
core=(test_objects.py test_listing.py test_multipart.py test_delete_copy.py test_reads.py)
creds='"access_key_id":{"value":"testing"},"secret_access_key":{"value":"testing"}'
declare -A backend_storage=(
    [sqlite]='{"backend":"sqlite","inline_max":0}'
    [aws]="{\"backend\":\"aws\",\"inline_max\":0,\"aws\":{\"bucket\":\"$BLEEPSTORE_TEST_BUCKET\",\"endpoint\":\"$BLEEPSTORE_TEST_S3_ENDPOINT\",\"region\":\"us-east-1\",\"force_path_style\":true,\"prefix\":\"blackbox/\",\"part_size\":\"5MiB\",$creds}}"
    [gcs]="{\"backend\":\"gcs\",\"inline_max\":0,\"gcs\":{\"bucket\":\"$BLEEPSTORE_TEST_BUCKET\",\"endpoint\":\"$BLEEPSTORE_TEST_GCS_ENDPOINT\",\"prefix\":\"blackbox/\",\"part_size\":\"5MiB\"}}"
    [azure]="{\"backend\":\"azure\",\"inline_max\":0,\"azure\":{\"container\":\"$BLEEPSTORE_TEST_BUCKET\",\"endpoint\":\"$BLEEPSTORE_TEST_AZURE_ENDPOINT\",\"account\":\"$BLEEPSTORE_TEST_AZURE_ACCOUNT\",\"prefix\":\"blackbox/\",\"part_size\":\"5MiB\",\"access_key\":{\"value\":\"$BLEEPSTORE_TEST_AZURE_KEY\"}}}"
)
for backend in sqlite aws azure gcs; do
    echo "--- $backend"
    BLEEPSTORE_BLACKBOX_STORAGE=${backend_storage[$backend]} BLEEPSTORE_BIN=$BIN_DIR/bleepstore \
        bash tests/blackbox/run.sh -q "${core[@]}"
done

step "storage backends: emulator faults and storage classes (real server processes)"
BLEEPSTORE_BIN=$BIN_DIR/bleepstore bash tests/backends/run.sh -q

step "cluster suite (Raft groups of real processes)"
BLEEPSTORE_BIN=$BIN_DIR/bleepstore BLEEPSTORE_OPERATOR_BIN=$BIN_DIR/bleepstore-operator \
    bash tests/cluster/run.sh

step "operator: CRD, chart, manifests, images"
BLEEPSTORE_BIN_DIR=$BIN_DIR bash tests/operator/run.sh

step "all suites passed"
