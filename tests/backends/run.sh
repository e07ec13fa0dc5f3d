#!/usr/bin/env bash
# Storage-backend harness tests: real moto_server (S3), Azurite (Azure Blob)
# and fake-gcs-server (GCS) on 127.0.0.1, started by emulators.py. No
# bleepstore binary needed. Idempotent; safe to rerun.
#
#   BLEEPSTORE_CACHE   where the venv and Azurite live (default ~/.cache/bleepstore)
#   extra arguments go to pytest (e.g. -k azurite, -x)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

# Clients here get explicit endpoints and credentials; nothing of the
# machine's AWS settings may leak in (AWS_CA_BUNDLE breaks some clients).
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export PATH="$backends_venv/bin:$PATH"

cd "$here"
exec "$backends_venv/bin/python" -m pytest -p no:cacheprovider "$@"
