#!/usr/bin/env bash
# Cluster tests: real `bleepstore serve` processes on 127.0.0.1 forming Raft
# groups, node-to-node links through the tests' own TCP proxies
# (cluster.dial), driven with boto3 and the admin API. Idempotent.
#
#   BLEEPSTORE_BIN    binary to test (default: the shared release build)
#   extra arguments go to pytest (e.g. -k partition, -x)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BLEEPSTORE_BIN="${BLEEPSTORE_BIN:-$HOME/.cache/bleepstore-target/release/bleepstore}"
if [[ ! -x "$BLEEPSTORE_BIN" ]]; then
    echo "run.sh: no bleepstore binary at $BLEEPSTORE_BIN" >&2
    exit 2
fi
source "$here/../lib/venv.sh"
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
cd "$here"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
