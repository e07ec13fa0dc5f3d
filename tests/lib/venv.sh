# Sourced by the suites' run.sh: makes $venv, the Python environment with the
# clients the black-box and cluster suites drive (tests/blackbox/requirements.txt),
# reinstalled only when that file changes. Idempotent.
cache="${BLEEPSTORE_CACHE:-$HOME/.cache/bleepstore}"
venv="$cache/venv-blackbox"
requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/blackbox/requirements.txt"
mkdir -p "$cache"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi
