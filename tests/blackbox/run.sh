#!/usr/bin/env bash
# Black-box tests: the real bleepstore release binary driven by real clients
# (boto3, awscli, rclone, s3cmd) on 127.0.0.1. Idempotent; safe to rerun.
#
#   BLEEPSTORE_BIN              binary to test (default: the shared release build)
#   BLEEPSTORE_CACHE            where the venv lives (default ~/.cache/bleepstore)
#   extra arguments go to pytest (e.g. -k listing, -x)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BLEEPSTORE_BIN="${BLEEPSTORE_BIN:-$HOME/.cache/bleepstore-target/release/bleepstore}"

if [[ ! -x "$BLEEPSTORE_BIN" ]]; then
    echo "run.sh: no bleepstore binary at $BLEEPSTORE_BIN" >&2
    echo "build it: CARGO_TARGET_DIR=\$HOME/.cache/bleepstore-target cargo build --release -p bleepstore" >&2
    exit 2
fi

# Python clients, reinstalled only when requirements.txt changes.
source "$here/../lib/venv.sh"

# rclone from Debian, only if missing.
if ! command -v rclone >/dev/null 2>&1; then
    if ! apt-get install -y -qq rclone >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq rclone
    fi
fi

# The clients get their own clean environment from the harness; pytest and
# boto3 in this process must not pick up the machine's AWS settings either.
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export PATH="$venv/bin:$PATH"

cd "$here"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider --timeout=180 "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected (e.g. a -k that matched nothing).
exit "$rc"
