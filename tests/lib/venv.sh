# Sourced by the suites' run.sh: makes $venv, the Python environment with the
# clients the black-box and cluster suites drive (tests/blackbox/requirements.txt),
# reinstalled only when that file changes. Idempotent.
source "$(dirname "${BASH_SOURCE[0]}")/pyvenv.sh"
cache="${BLEEPSTORE_CACHE:-$HOME/.cache/bleepstore}"
venv="$cache/venv-blackbox"
ensure_venv "$venv" "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/blackbox/requirements.txt"
