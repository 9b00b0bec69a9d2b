#!/usr/bin/env bash
# Installs the reference peer for the benchmarks (bench/peer/app.py) into ./.venv-bench.
#
#   bench/setup-peer.sh            install what is missing (idempotent, instant when done)
#   bench/setup-peer.sh --force    reinstall
#
# Everything comes from PyPI, hash-pinned by bench/requirements-peer.txt (which lists every
# dependency, so pip runs with --no-deps). A separate environment from .venv / .venv-clients,
# so that the peer's FastAPI stack never shifts the pins the tests rely on. Needs python3 (3.11)
# with venv; does not need root. The stamp lives inside the venv (not in scripts/setup.sh's
# /var/lib/registryd-setup, which that script empties), so deleting .venv-bench redoes it all.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv-bench"
reqs="$here/bench/requirements-peer.txt"
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'setup-peer: %s\n' "$*"; }
die() { printf 'setup-peer: error: %s\n' "$*" >&2; exit 1; }

stamp="$venv/.setup-peer-$(cat "$0" "$reqs" | sha256sum | cut -c1-16)"
if [ $force = 0 ] && [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

command -v python3 >/dev/null || die "python3 is not on PATH (scripts/setup.sh installs it)"
say "Python environment for the benchmark peer (.venv-bench)"
if [ $force = 1 ] || [ ! -x "$venv/bin/python" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed?)"
fi
"$venv/bin/python" -m pip install -q --require-hashes --no-deps --only-binary=:all: -r "$reqs" \
  || die "pip install of bench/requirements-peer.txt failed"
"$venv/bin/python" -c 'import fastapi, uvicorn, onnxruntime, numpy' \
  || die "the peer's packages do not import in .venv-bench"

rm -f "$venv"/.setup-peer-*
touch "$stamp"
say "done"
