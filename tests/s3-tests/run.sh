#!/usr/bin/env bash
# Runs the core S3 part of Ceph's s3-tests (s3tests/functional/test_s3.py)
# against the bleepstore binary, deselecting features BleepStore does not
# offer and the few places where it deliberately answers as AWS does rather
# than as Ceph RGW does (listed in README.md here).
#
#   tests/s3-tests/run.sh S3_TESTS_CHECKOUT [extra pytest args]
#
#   BLEEPSTORE_BIN   binary (default: the shared release build)
#   BLEEPSTORE_CACHE where the venv lives (default ~/.cache/bleepstore)
#   BLEEPSTORE_S3TESTS_NODES  1 (default): one server; 3 (or 5): a Raft
#                    group of that many local processes, the suite talking
#                    to a follower, so every write is forwarded to the leader
#                    and every read waits for a read index from it
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suite="$(cd "${1:?usage: run.sh S3_TESTS_CHECKOUT}" && pwd)"
shift
bin="${BLEEPSTORE_BIN:-$HOME/.cache/bleepstore-target/release/bleepstore}"
venv="${BLEEPSTORE_CACHE:-$HOME/.cache/bleepstore}/venv-s3tests"
work="$(mktemp -d "${TMPDIR:-/tmp}/bleepstore-s3tests.XXXXXX")"

if [[ ! -x "$venv/bin/pytest" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$suite/requirements.txt" pytest-timeout
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nodes="${BLEEPSTORE_S3TESTS_NODES:-1}"
admin_token="s3tests-admin-$RANDOM$RANDOM"
declare -a s3_ports ops_ports pids
for ((i = 0; i < nodes; i++)); do
    s3_ports[i]=$(free_port)
    ops_ports[i]=$(free_port)
done
peers=""
for ((i = 0; i < nodes; i++)); do
    peers+="${peers:+, }{id: $i, address: 127.0.0.1:${ops_ports[i]}}"
done
stop_servers() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_servers; rm -rf "$work"' EXIT
for ((i = 0; i < nodes; i++)); do
    mkdir -p "$work/data$i"
    cluster_env=()
    if ((nodes > 1)); then
        cluster_env=(BLEEPSTORE_CLUSTER_ENABLED=true BLEEPSTORE_CLUSTER_NODE_ID=$i
            "BLEEPSTORE_CLUSTER_PEERS=[$peers]" BLEEPSTORE_CLUSTER_SECRET="s3tests-cluster-$admin_token")
    fi
    env "${cluster_env[@]}" BLEEPSTORE_AUTH_ADMIN_TOKEN="$admin_token" \
        "$bin" serve --s3-listen "127.0.0.1:${s3_ports[i]}" --ops-listen "127.0.0.1:${ops_ports[i]}" \
        --data-dir "$work/data$i" --config "$here/bleepstore.yaml" > "$work/server$i.log" 2>&1 &
    pids[i]=$!
done
ready() { curl -sf "http://127.0.0.1:$1/ready" >/dev/null; }
for ((i = 0; i < nodes; i++)); do
    for _ in $(seq 300); do ready "${ops_ports[i]}" && break; sleep 0.1; done
    ready "${ops_ports[i]}" || { cat "$work/server$i.log" >&2; echo "node $i not ready" >&2; exit 1; }
done
target=0
if ((nodes > 1)); then
    leader=$(curl -sf -H "Authorization: Bearer $admin_token" "http://127.0.0.1:${ops_ports[0]}/admin/v1/cluster" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["leader"])')
    target=$(( (leader + 1) % nodes ))
    echo "a group of $nodes: node $leader leads, the suite talks to node $target"
fi
sed "s/@PORT@/${s3_ports[target]}/" "$here/s3tests.conf.in" > "$work/s3tests.conf"

# Features BleepStore does not offer yet (see the README's "Not yet").
markers="not bucket_logging
 and not bucket_logging_cleanup and not fails_without_logging_rollover
 and not lifecycle_transition and not cloud_transition
 and not cloud_restore and not target_by_bucket
 and not s3select and not s3website
 and not s3website_routing_rules and not s3website_redirect_location and not sns
 and not iam_account and not iam_cross_account and not iam_role
 and not iam_tenant and not iam_user and not user_policy and not role_policy
 and not session_policy and not group and not group_policy and not abac_test
 and not test_of_sts and not webidentity_test and not appendobject
 and not fails_on_aws and not fails_on_rgw"
names="not torrent
 and not website and not logging
 and not restore and not select and not notif
 and not put_acl_mtime and not x_amz_expires_not_expired
 and not different_tenant and not tenanted_bucket
 and not test_delete_marker_expiration"
# Where BleepStore answers as AWS does and RGW differs (README.md).
aws_answers="not test_encryption_sse_c_other_key and not test_encryption_sse_c_multipart_bad_download
 and not test_sse_kms_no_key and not test_sse_kms_multipart_invalid_chunks"
# Single parameter sets (pytest's -k cannot name them).
deselect=()
for source in sse-s3 sse-c sse-kms; do
    deselect+=(--deselect "s3tests/functional/test_s3.py::test_copy_part_enc[$source-sse-c-STANDARD-STANDARD-8388608]")
done

cd "$suite"
S3TEST_CONF="$work/s3tests.conf" "$venv/bin/pytest" -p no:cacheprovider --timeout=60 -q -rf \
    -m "$(echo $markers)" -k "$(echo $names) and $(echo $aws_answers)" \
    "${deselect[@]}" s3tests/functional/test_s3.py "$@"
