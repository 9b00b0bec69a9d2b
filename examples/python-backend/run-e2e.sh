#!/usr/bin/env bash
# End-to-end test of the FastAPI example: starts a scratch registryd on a copy of the example
# configuration and models, installs requirements.txt (hash-checked) into a venv, runs
# test_app.py against it, and stops the daemon.
#
#   REGISTRYD=/path/to/registryd examples/python-backend/run-e2e.sh
#
# Environment:
#   REGISTRYD  the registryd binary (default: .build/debug/registryd, then .build/release/registryd)
#   VENV       a venv to use or create (default: a fresh one in the scratch directory)
#   PYTHON     the interpreter to create it with (default: python3; the pins are for 3.11)
#   KEEP=1     keep the scratch directory (daemon log, catalog) for inspection
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

registryd="${REGISTRYD:-}"
if [[ -z "$registryd" ]]; then
    for candidate in "$repo/.build/debug/registryd" "$repo/.build/release/registryd"; do
        if [[ -x "$candidate" ]]; then registryd="$candidate"; break; fi
    done
fi
if [[ -z "$registryd" || ! -x "$registryd" ]]; then
    echo "run-e2e.sh: no registryd binary; build it or set REGISTRYD" >&2
    exit 2
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/registryd-pyex.XXXXXX")"
daemon_pid=""
cleanup() {
    local status=$?
    if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill "$daemon_pid"
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$scratch/registryd.log" ]]; then
        echo "--- registryd log ($scratch/registryd.log) ---" >&2
        tail -n 50 "$scratch/registryd.log" >&2
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "run-e2e.sh: kept $scratch" >&2
    else
        rm -rf "$scratch"
    fi
    exit $status
}
trap cleanup EXIT

# A copy of the example configuration, pointed at a copy of the example models.
cp -R "$repo/registry.d" "$scratch/registry.d"
cp -R "$repo/examples/models" "$scratch/models"
"${PYTHON:-python3}" - "$scratch" <<'EOF'
import json, sys
scratch = sys.argv[1]
path = f"{scratch}/registry.d/registryd.json"
with open(path) as f:
    config = json.load(f)
config.update(model_root=f"{scratch}/models", database=f"{scratch}/registry.sqlite",
              control_socket=f"{scratch}/registryd.sock")
with open(path, "w") as f:
    json.dump(config, f, indent=2)
EOF

"$registryd" --config "$scratch/registry.d" >"$scratch/registryd.log" 2>&1 &
daemon_pid=$!

venv="${VENV:-$scratch/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --require-hashes --only-binary=:all: -r "$here/requirements.txt"
fi

# test_app.py waits (up to 30 s) for /v2/health/ready itself.
cd "$repo"
REGISTRY_SOCKET="$scratch/registryd.sock" "$venv/bin/python" -m unittest -v examples/python-backend/test_app.py
