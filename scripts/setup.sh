#!/usr/bin/env bash
# Installs everything registryd needs to build, test and run on Debian 12 (bookworm), as root.
#
#   scripts/setup.sh            install what is missing (idempotent, quick when done)
#   scripts/setup.sh --force    redo every step
#
# What it installs, and why each piece comes from where it comes from:
#   * SQLite and OpenSSL development files: Debian packages.
#   * ONNX Runtime:
#       - where apt offers libonnxruntime-dev (Debian 13, recent Ubuntu), that package;
#       - on bookworm, which has none: the C headers from Debian 13's libonnxruntime-dev .deb
#         (pinned version, SHA-256 checked; only headers are used, because trixie's library
#         needs a newer glibc), and the shared library from PyPI's onnxruntime wheel (pinned,
#         SHA-256 checked), installed under /usr/local/lib and registered with ldconfig so that
#         the loader finds it (SwiftPM refuses -rpath from pkg-config).
#   * Python (in ./.venv, hash-pinned by scripts/requirements.txt): only for regenerating the
#     test fixtures.
#   * Python clients (in ./.venv-clients, hash-pinned by scripts/requirements-clients.txt): the
#     real KServe v2 client (tritonclient[http]) the tests drive registryd with. A separate
#     environment, because tritonclient pins ml-dtypes <= 0.5.4 and the fixture tools want 0.6.
#   * The Python backend example's dependencies (in ./.venv-example, hash-pinned by
#     examples/python-backend/requirements.txt: FastAPI, httpx), for its end-to-end test.
# Every download is pinned and checked; a failure stops with a message that says what failed.
set -euo pipefail

ORT_DEB_VERSION="1.21.0+dfsg-1"
ORT_DEB_SHA256="14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08"
ORT_WHEEL_VERSION="1.32.0"
ORT_WHEEL_FILE="onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"
PREFIX=/usr/local

here=$(cd "$(dirname "$0")/.." && pwd)
force=0
[ "${1:-}" = "--force" ] && force=1

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs system packages): sudo $0"
[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported (the pinned ONNX Runtime build is x86_64)"
command -v swift >/dev/null || die "the Swift 6 toolchain is not on PATH; install it first (swift.org)"

stamp_dir=/var/lib/registryd-setup
stamp="$stamp_dir/$(cat "$0" "$here/scripts/requirements.txt" "$here/scripts/requirements-clients.txt" \
  "$here/examples/python-backend/requirements.txt" | sha256sum | cut -c1-16)"
if [ $force = 0 ] && [ -f "$stamp" ] && [ -x "$here/.venv/bin/python" ] && [ -x "$here/.venv-clients/bin/python" ] \
   && [ -x "$here/.venv-example/bin/python" ] \
   && pkg-config --exists libonnxruntime sqlite3 libcrypto libssl 2>/dev/null \
   && command -v openssl >/dev/null && command -v curl >/dev/null \
   && ldconfig -p | grep -q 'libonnxruntime.so.1 ' && command -v promtool >/dev/null \
   && command -v make >/dev/null && command -v systemd-analyze >/dev/null && command -v chromium >/dev/null; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
say "installing Debian packages"
apt-get update -q >/dev/null || die "apt-get update failed"
apt-get install -y -q --no-install-recommends \
  libsqlite3-dev libssl-dev pkg-config sqlite3 python3 python3-venv python3-pip \
  ca-certificates util-linux prometheus make systemd chromium fonts-dejavu-core openssl curl >/dev/null \
  || die "apt-get install of the build and test dependencies failed"
# prometheus brings promtool, which the metrics test uses to check /metrics; its own service
# is not needed (and does not start without systemd). make runs `make install` (the install
# test stages it into a temporary DESTDIR); systemd brings systemd-analyze, which checks the
# unit file; chromium (headless) renders the status page in the browser test. openssl makes the
# TLS tests' certificates and probes the listener (s_client), curl is one of their HTTPS clients.

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check_sha256() { # file expected
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || die "checksum mismatch for $(basename "$1"): expected $2, got $got"
}

if apt-cache show libonnxruntime-dev >/dev/null 2>&1; then
  say "installing ONNX Runtime from apt (libonnxruntime-dev)"
  apt-get install -y -q --no-install-recommends libonnxruntime-dev >/dev/null \
    || die "apt-get install libonnxruntime-dev failed"
else
  say "ONNX Runtime headers: Debian 13 libonnxruntime-dev $ORT_DEB_VERSION (headers only)"
  # A private apt state that knows only trixie/main, using the same mirror this machine's apt
  # already uses and the archive keyring for authentication; nothing of the system's apt
  # configuration changes.
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt/sources.list(.d)"
  mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
    > "$work/apt/sources.list"
  aptopt=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
          -o "APT::Sandbox::User=root")
  apt-get "${aptopt[@]}" update -q >/dev/null || die "cannot read Debian 13 package lists from $uri"
  (cd "$work" && apt-get "${aptopt[@]}" download "libonnxruntime-dev=$ORT_DEB_VERSION" >/dev/null) \
    || die "download of libonnxruntime-dev=$ORT_DEB_VERSION failed"
  deb=$(ls "$work"/libonnxruntime-dev_*.deb)
  check_sha256 "$deb" "$ORT_DEB_SHA256"
  dpkg -x "$deb" "$work/deb"
  rm -rf "$PREFIX/include/onnxruntime"
  mkdir -p "$PREFIX/include"
  cp -r "$work/deb/usr/include/onnxruntime" "$PREFIX/include/onnxruntime"

  say "ONNX Runtime library: PyPI onnxruntime $ORT_WHEEL_VERSION"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$work/wheel" \
    "onnxruntime==$ORT_WHEEL_VERSION" || die "download of onnxruntime==$ORT_WHEEL_VERSION failed"
  check_sha256 "$work/wheel/$ORT_WHEEL_FILE" "$ORT_WHEEL_SHA256"
  python3 - "$work/wheel/$ORT_WHEEL_FILE" "$work/lib" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("libonnxruntime.so.1.32.0", "libonnxruntime_providers_shared.so"):
        z.extract("onnxruntime/capi/" + name, sys.argv[2])
PY
  install -m 0755 "$work/lib/onnxruntime/capi/libonnxruntime.so.$ORT_WHEEL_VERSION" "$PREFIX/lib/"
  install -m 0755 "$work/lib/onnxruntime/capi/libonnxruntime_providers_shared.so" "$PREFIX/lib/"
  ln -sf "libonnxruntime.so.$ORT_WHEEL_VERSION" "$PREFIX/lib/libonnxruntime.so.1"
  ln -sf "libonnxruntime.so.1" "$PREFIX/lib/libonnxruntime.so"
  mkdir -p "$PREFIX/lib/pkgconfig"
  cat > "$PREFIX/lib/pkgconfig/libonnxruntime.pc" <<EOF
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include/onnxruntime

Name: onnxruntime
Description: ONNX Runtime $ORT_WHEEL_VERSION (library from PyPI, headers from Debian $ORT_DEB_VERSION)
Version: $ORT_WHEEL_VERSION
Libs: -L\${libdir} -lonnxruntime
Cflags: -I\${includedir}
EOF
  echo "$PREFIX/lib" > /etc/ld.so.conf.d/registryd-onnxruntime.conf
  ldconfig
fi
ldconfig -p | grep -q 'libonnxruntime.so.1 ' || die "libonnxruntime.so.1 is not on the loader path after install"

say "Python environment for fixtures and client tests (.venv)"
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv" || die "python3 -m venv failed (is python3-venv installed?)"
fi
"$here/.venv/bin/python" -m pip install -q --require-hashes --only-binary=:all: \
  -r "$here/scripts/requirements.txt" || die "pip install of scripts/requirements.txt failed"

say "Python environment for client tests (.venv-clients)"
if [ ! -x "$here/.venv-clients/bin/python" ]; then
  python3 -m venv "$here/.venv-clients" || die "python3 -m venv failed (is python3-venv installed?)"
fi
"$here/.venv-clients/bin/python" -m pip install -q --require-hashes --only-binary=:all: \
  -r "$here/scripts/requirements-clients.txt" || die "pip install of scripts/requirements-clients.txt failed"

say "Python environment for the backend example's test (.venv-example)"
if [ ! -x "$here/.venv-example/bin/python" ]; then
  python3 -m venv "$here/.venv-example" || die "python3 -m venv failed (is python3-venv installed?)"
fi
"$here/.venv-example/bin/python" -m pip install -q --require-hashes --only-binary=:all: \
  -r "$here/examples/python-backend/requirements.txt" || die "pip install of examples/python-backend/requirements.txt failed"

mkdir -p "$stamp_dir"
rm -f "$stamp_dir"/*
touch "$stamp"
say "done"
