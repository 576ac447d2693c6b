#!/usr/bin/env bash
# Installs whatever tollgate's build, tests and benchmarks need and is
# missing. Idempotent: a second run installs nothing and takes seconds.
#   scripts/setup.sh          C/C++ toolchain and libraries only
#   scripts/setup.sh --all    also the Python and Go test/benchmark deps
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(build-essential cmake ninja-build pkg-config
      libabsl-dev android-libboringssl-dev libsimdjson-dev libfmt-dev catch2 libbenchmark-dev
      clang clang-format libclang-rt-14-dev valgrind libr3-dev libspdlog-dev
      fiu-utils libfiu-dev)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--all" ]; then
  py=${PYTHON:-python3}
  # Installed when any pinned requirement is missing or at another version
  # (pip's own check, so a requirement added later is never skipped).
  if ! "$py" - bindings/python/requirements-test.txt <<'PY' 2>/dev/null; then
import sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, version = line.partition("==")
    if metadata.version(name) != version:
        sys.exit(1)
PY
    echo "setup: installing Python test dependencies"
    "$py" -m pip install -q -r bindings/python/requirements-test.txt
  fi
  if command -v go >/dev/null; then
    for mod in bindings/go benchmarks/go; do
      [ -f "$mod/go.mod" ] && (cd "$mod" && go mod download)
    done
  else
    echo "setup: go is not installed; the Go suite cannot run" >&2
    exit 1
  fi
fi
echo "setup: dependencies present"
