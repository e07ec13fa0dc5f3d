# Sourced: defines ensure_venv DIR REQUIREMENTS, which makes the Python venv DIR
# from REQUIREMENTS and reinstalls it only when that file's hash changes (the
# hash is stamped into DIR after a successful install, so an interrupted
# install is redone next time). Serialised with flock so two suites starting
# at once do not install into the same venv together; bounded by timeouts.
ensure_venv() {
    local dir="$1" requirements="$2" want
    want="$(sha256sum "$requirements" | cut -d' ' -f1)"
    [[ -x "$dir/bin/python" && -f "$dir/.requirements.sha256" && "$(cat "$dir/.requirements.sha256")" == "$want" ]] && return 0
    mkdir -p "$(dirname "$dir")"
    (
        set -e
        flock -w 900 9 || { echo "ensure_venv: $dir is locked by another install" >&2; exit 1; }
        # Someone else may have finished the install while we waited.
        [[ -x "$dir/bin/python" && -f "$dir/.requirements.sha256" && "$(cat "$dir/.requirements.sha256")" == "$want" ]] && exit 0
        rm -f "$dir/.requirements.sha256"
        python3 -m venv "$dir"
        timeout 900 "$dir/bin/pip" install --quiet --disable-pip-version-check --timeout 60 -r "$requirements"
        echo "$want" > "$dir/.requirements.sha256"
    ) 9>"$dir.lock"
}
