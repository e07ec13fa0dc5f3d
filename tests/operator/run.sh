#!/usr/bin/env bash
# Operator checks outside Rust: CRD drift, Helm chart lint/render,
# manifests/install.yaml, schema validation of everything rendered and of the
# examples, and the server image built with podman and started the way the
# operator's pod spec says.
#
#   tests/operator/run.sh           run the checks
#   tests/operator/run.sh --write   regenerate crds/ and manifests/install.yaml
#
# Environment:
#   BLEEPSTORE_BIN_DIR   built release binaries (bleepstore, bleepstore-operator,
#                        crdgen); default $CARGO_TARGET_DIR/release. Never builds.
#   BLEEPSTORE_CACHE     cache for the Python venv and the base image rootfs
#                        (default ~/.cache/bleepstore)
#   DEBIAN_MIRROR        mirror for debootstrap (default: from apt sources)
#   SKIP_PODMAN=1        skip the image checks (counted as failures, not passes)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${BLEEPSTORE_CACHE:-$HOME/.cache/bleepstore}
BIN=${BLEEPSTORE_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/bleepstore-target}/release}
VENV=$CACHE/venv-operator
PY=$VENV/bin/python
CHART=$ROOT/charts/bleepstore-operator
CRD=$ROOT/crds/bleepstoreclusters.bleepstore.io.yaml
BASE_IMAGE=localhost/bleepstore-base:bookworm-minbase
SERVER_IMAGE=localhost/bleepstore:ci
OPERATOR_IMAGE=localhost/bleepstore-operator:ci
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bleepstore-operator-checks.XXXXXX")
CONTAINERS=()
PASSED=0
FAILED=0
START=$(date +%s)

cleanup() {
    for c in "${CONTAINERS[@]}"; do
        timeout 30 podman rm -f -t 5 "$c" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK" 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }

# check NAME COMMAND...: runs the command, counts and reports it.
check() {
    local name=$1
    shift
    local log="$WORK/check.log"
    if "$@" >"$log" 2>&1; then
        PASSED=$((PASSED + 1))
        say "ok    $name"
    else
        FAILED=$((FAILED + 1))
        say "FAIL  $name"
        tail -n 40 "$log" | sed 's/^/      /'
    fi
}

fail() {
    FAILED=$((FAILED + 1))
    say "FAIL  $1"
}

# --- tools -----------------------------------------------------------------

setup_venv() {
    local want="helm-python-sdk kubernetes-validate check-jsonschema yamllint PyYAML"
    if [ -x "$PY" ] && [ "$(cat "$VENV/.installed" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" &&
        timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check $want &&
        printf '%s' "$want" >"$VENV/.installed"
}

setup_apt() {
    local missing=()
    for tool in podman buildah debootstrap runc; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    timeout 600 $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq podman buildah debootstrap runc
}

setup_podman_conf() {
    # runc (crun refuses this machine's cgroup layout) and ulimits the
    # sandbox can grant.
    mkdir -p "$CACHE/podman"
    cat >"$CACHE/podman/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
    export CONTAINERS_CONF="$CACHE/podman/containers.conf"
}

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local m
    m=$(grep -hoE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | sed 's/^URIs: *//')
    [ -z "$m" ] && m=$(grep -hoE '^deb +http[^ ]*/debian/? ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')
    echo "${m:-http://deb.debian.org/debian}"
}

# The base image: a debootstrap'd Debian minbase (with CA certificates),
# cached as a tarball, imported once per machine.
base_image() {
    if podman image exists "$BASE_IMAGE" 2>/dev/null; then
        return 0
    fi
    local tar="$CACHE/podman/debian-minbase-bookworm.tar"
    if [ ! -s "$tar" ]; then
        local rootfs="$CACHE/podman/rootfs.tmp"
        rm -rf "$rootfs"
        timeout 900 debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$(debian_mirror)" ||
            return 1
        tar -C "$rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar" && rm -rf "$rootfs"
    fi
    timeout 300 podman import "$tar" "$BASE_IMAGE" >/dev/null
}

build_image() { # DOCKERFILE BINARY TAG
    local ctx="$WORK/ctx-$(basename "$2")" old new
    old=$(podman image inspect -f '{{.Id}}' "$3" 2>/dev/null || true)
    mkdir -p "$ctx" && cp "$BIN/$2" "$ctx/" &&
        timeout 300 podman build -q --pull=never --build-arg "BASE=$BASE_IMAGE" \
            -f "$ROOT/images/$1" -t "$3" "$ctx" || return 1
    # Drop the previous build of this tag so repeated runs do not pile up images.
    new=$(podman image inspect -f '{{.Id}}' "$3")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        timeout 60 podman rmi "$old" >/dev/null 2>&1 || true
    fi
}

free_port() {
    PYTHONPATH="$ROOT/tests/lib" python3 -c 'from ports import free_port; print(free_port())'
}

# --- individual checks -----------------------------------------------------

crds_up_to_date() {
    "$BIN/crdgen" >"$WORK/crd.yaml" || return 1
    for f in "$CRD" "$CHART/crds/bleepstoreclusters.bleepstore.io.yaml"; do
        diff -u "$f" "$WORK/crd.yaml" || {
            echo "$f is stale: run tests/operator/run.sh --write (or crdgen --write .)"
            return 1
        }
    done
}

install_up_to_date() {
    "$PY" "$ROOT/tests/operator/chart.py" install "$CHART" >"$WORK/install.yaml" || return 1
    diff -u "$ROOT/manifests/install.yaml" "$WORK/install.yaml" || {
        echo "manifests/install.yaml is stale: run tests/operator/run.sh --write"
        return 1
    }
}

kval() { "$VENV/bin/kubernetes-validate" --strict -k 1.30.0 "$@"; }

render_examples() {
    mkdir -p "$WORK/operator-render"
    local ok=0
    for ex in "$ROOT"/manifests/examples/*.yaml; do
        local name
        name=$(basename "$ex" .yaml)
        "$BIN/bleepstore-operator" render "$ex" >"$WORK/operator-render/$name.yaml" || ok=1
        "$PY" "$ROOT/tests/operator/chart.py" split "$WORK/operator-render/$name.yaml" "$WORK/operator-render/$name" || ok=1
    done
    return $ok
}

negative_example() {
    # A broken resource must be refused, or the schema check proves nothing.
    cat >"$WORK/bad.yaml" <<'EOF'
apiVersion: bleepstore.io/v1alpha1
kind: BleepStoreCluster
metadata: {name: bad}
spec:
  replicas: 0
  storage: {backend: floppy, locl: {}}
EOF
    ! "$VENV/bin/check-jsonschema" --schemafile "$WORK/crd.json" "$WORK/bad.yaml"
}

wait_http() { # URL SECONDS [EXPECTED_STATUS]
    local deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt $deadline ]; do
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)
        [ "$code" = "${3:-200}" ] && return 0
        sleep 0.5
    done
    echo "$1 did not answer ${3:-200} within $2 s (last: ${code:-none})"
    return 1
}

s3_checks() { # S3PORT INFO_JSON
    local port=$1 info=$2 key secret region
    key=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key"])' "$info")
    secret=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_key"])' "$info")
    region=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["region"])' "$info")
    # SigV4 header auth needs x-amz-content-sha256 (curl 7.88 does not add it).
    local sig=(--aws-sigv4 "aws:amz:$region:s3" --user "$key:$secret" -s --max-time 10 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    # Unsigned requests are refused.
    local code
    code=$(env -u CURL_CA_BUNDLE curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/")
    [ "$code" = 403 ] || { echo "anonymous ListBuckets answered $code, want 403"; return 1; }
    # Wrong keys are refused.
    code=$(curl "${sig[@]/$secret/wrong-secret}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
    [ "$code" = 403 ] || { echo "ListBuckets with a wrong secret answered $code, want 403"; return 1; }
    code=$(curl "${sig[@]}" -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$port/operator-check")
    [ "$code" = 200 ] || { echo "CreateBucket answered $code"; return 1; }
    code=$(curl "${sig[@]}" -o /dev/null -w '%{http_code}' -X PUT --data-binary 'hello from podman' "http://127.0.0.1:$port/operator-check/hello.txt")
    [ "$code" = 200 ] || { echo "PutObject answered $code"; return 1; }
    local body
    body=$(curl "${sig[@]}" "http://127.0.0.1:$port/operator-check/hello.txt")
    [ "$body" = "hello from podman" ] || { echo "GetObject returned: $body"; return 1; }
    body=$(curl "${sig[@]}" "http://127.0.0.1:$port/")
    echo "$body" | grep -q '<Name>operator-check</Name>' || { echo "ListBuckets: $body"; return 1; }
}

run_server_pod() { # EXAMPLE
    local name="bleepstore-check-$$" s3 ops
    s3=$(free_port)
    ops=$(free_port)
    local dir="$WORK/pod"
    mkdir -p "$dir"
    "$BIN/bleepstore-operator" render "$1" >"$dir/render.yaml" || return 1
    local argv=()
    mapfile -d '' argv < <("$PY" "$ROOT/tests/operator/chart.py" podman-args "$dir/render.yaml" "$dir" "$SERVER_IMAGE" "$name" "$s3" "$ops")
    [ ${#argv[@]} -gt 5 ] || return 1
    echo "podman ${argv[*]}" | sed -E 's/(SECRET_KEY|ACCESS_KEY)=[^ ]*/\1=***/g'
    CONTAINERS+=("$name")
    timeout 60 podman "${argv[@]}" >/dev/null || return 1
    local info="$dir/pod-info.json" live ready
    live=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["liveness"])' "$info")
    ready=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["readiness"])' "$info")
    if ! wait_http "http://127.0.0.1:$ops$live" 60; then
        timeout 10 podman logs "$name" 2>&1 | tail -n 30
        return 1
    fi
    wait_http "http://127.0.0.1:$ops$ready" 30 || return 1
    curl -sf --max-time 5 "http://127.0.0.1:$ops/metrics" | grep -q '^# ' || { echo "no /metrics"; return 1; }
    # Runs as the pod's user, not root.
    local user
    user=$(timeout 10 podman inspect -f '{{.Config.User}}' "$name")
    [ "$user" = "65532:65532" ] || { echo "container user $user"; return 1; }
    s3_checks "$s3" "$info" || { timeout 10 podman logs "$name" 2>&1 | tail -n 30; return 1; }
    # SIGTERM stops it cleanly within the pod's grace period.
    timeout 50 podman stop -t 45 "$name" >/dev/null || return 1
    local code
    code=$(timeout 10 podman inspect -f '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || { echo "exit code $code after SIGTERM"; timeout 10 podman logs "$name" 2>&1 | tail -n 20; return 1; }
}

operator_image_runs() {
    local out
    out=$(timeout 60 podman run --rm --pull=never --read-only --cap-drop ALL "$OPERATOR_IMAGE" --version) || return 1
    echo "$out"
    [[ "$out" == bleepstore-operator* ]] || return 1
    [ "$(timeout 10 podman image inspect -f '{{.Config.User}}' "$OPERATOR_IMAGE")" = "65532:65532" ]
}

server_image_metadata() {
    local ep cmd user
    ep=$(podman image inspect -f '{{json .Config.Entrypoint}}' "$SERVER_IMAGE")
    cmd=$(podman image inspect -f '{{json .Config.Cmd}}' "$SERVER_IMAGE")
    user=$(podman image inspect -f '{{.Config.User}}' "$SERVER_IMAGE")
    echo "entrypoint $ep cmd $cmd user $user"
    [ "$ep" = '["/usr/local/bin/bleepstore"]' ] && [ "$cmd" = '["serve"]' ] && [ "$user" = 65532:65532 ] &&
        podman image inspect -f '{{json .Config.ExposedPorts}}' "$SERVER_IMAGE" | grep -q '9000/tcp' &&
        podman image inspect -f '{{json .Config.ExposedPorts}}' "$SERVER_IMAGE" | grep -q '9001/tcp'
}

# --- main --------------------------------------------------------------------

check "python tools in $VENV" setup_venv

if [ "${1:-}" = "--write" ]; then
    "$BIN/crdgen" --write "$ROOT" &&
        "$PY" "$ROOT/tests/operator/chart.py" install "$CHART" >"$ROOT/manifests/install.yaml" &&
        say "wrote crds/ and manifests/install.yaml"
    exit $?
fi

for b in crdgen bleepstore-operator; do
    check "binary $b in $BIN" test -x "$BIN/$b"
done

check "crds/ matches crdgen" crds_up_to_date
check "helm lint --strict" "$PY" "$ROOT/tests/operator/chart.py" lint "$CHART"
check "chart renders (default, namespaced, monitoring)" "$PY" "$ROOT/tests/operator/chart.py" render "$CHART" "$WORK/chart"
check "values.schema.json refuses bad values" "$PY" "$ROOT/tests/operator/chart.py" bad-values "$CHART"
check "manifests/install.yaml matches the chart" install_up_to_date
check "yamllint rendered chart, install.yaml, examples" "$VENV/bin/yamllint" -d \
    '{extends: relaxed, rules: {line-length: disable, indentation: {indent-sequences: whatever}}}' \
    "$WORK/chart" "$ROOT/manifests" "$CHART/values.yaml"
check "kubernetes-validate rendered chart (1.30, strict)" kval "$WORK"/chart/*/*.yaml
check "kubernetes-validate manifests/install.yaml (1.30, strict)" kval "$ROOT/manifests/install.yaml"
check "kubernetes-validate examples (1.30, strict)" kval "$ROOT"/manifests/examples/*.yaml
check "CRD openAPIV3Schema extracted" "$PY" "$ROOT/tests/operator/chart.py" crd-schema "$CRD" "$WORK/crd.json"
check "examples valid against the CRD schema (check-jsonschema)" "$VENV/bin/check-jsonschema" --schemafile "$WORK/crd.json" "$ROOT"/manifests/examples/*.yaml
check "an invalid resource is refused by the CRD schema" negative_example
check "operator renders every example" render_examples
check "kubernetes-validate what the operator applies for the examples" kval "$WORK"/operator-render/*/*.yaml

if [ "${SKIP_PODMAN:-0}" = 1 ]; then
    fail "podman checks skipped (SKIP_PODMAN=1)"
else
    check "podman, buildah, debootstrap, runc installed" setup_apt
    setup_podman_conf
    check "base image $BASE_IMAGE (debootstrap, cached)" base_image
    check "binary bleepstore in $BIN" test -x "$BIN/bleepstore"
    check "server image builds" build_image server.Dockerfile bleepstore "$SERVER_IMAGE"
    check "server image: entrypoint, cmd, user, ports" server_image_metadata
    check "operator image builds" build_image operator.Dockerfile bleepstore-operator "$OPERATOR_IMAGE"
    check "operator image runs as non-root" operator_image_runs
    check "server pod from the operator's spec: probes, S3 over SigV4, clean stop" \
        run_server_pod "$ROOT/manifests/examples/single-node.yaml"
fi

say "($(($(date +%s) - START)) s)"
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
