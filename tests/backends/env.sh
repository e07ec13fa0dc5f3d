# Sourced by shell scripts that need the cloud-storage emulators
# (emulators.py): makes the Python venv $backends_venv from
# tests/backends/requirements.txt (reinstalled only when that file changes)
# and installs Azurite from npm into $BLEEPSTORE_CACHE/npm (only when missing
# or when AZURITE_VERSION changed). Exports backends_venv and AZURITE_BIN.
# Idempotent; every network step is bounded by a timeout.
_backends_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$_backends_here/../lib/pyvenv.sh"
_backends_cache="${BLEEPSTORE_CACHE:-$HOME/.cache/bleepstore}"

export backends_venv="$_backends_cache/venv-backends"
ensure_venv "$backends_venv" "$_backends_here/requirements.txt"

# Azurite 3.35.x is the newest line that runs on this Node 20.
AZURITE_VERSION=3.35.0
_npm_prefix="$_backends_cache/npm"
_azurite_installed() {
    [[ -x "$_npm_prefix/node_modules/.bin/azurite-blob" ]] &&
        [[ "$(node -p "require('$_npm_prefix/node_modules/azurite/package.json').version" 2>/dev/null)" == "$AZURITE_VERSION" ]]
}
if ! _azurite_installed; then
    mkdir -p "$_npm_prefix"
    (
        set -e
        flock -w 900 9 || { echo "env.sh: $_npm_prefix is locked by another install" >&2; exit 1; }
        _azurite_installed && exit 0
        timeout 600 npm install --prefix "$_npm_prefix" --no-audit --no-fund --loglevel=error \
            --fetch-timeout=60000 --fetch-retries=2 "azurite@$AZURITE_VERSION" >/dev/null
    ) 9>"$_npm_prefix.lock"
fi
export AZURITE_BIN="$_npm_prefix/node_modules/.bin/azurite-blob"
