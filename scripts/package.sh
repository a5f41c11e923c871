#!/usr/bin/env bash
# Builds the Debian package walkeep_<version>_amd64.deb and prints its path.
#
#   scripts/package.sh [BUILD_DIR]      (default: build-package in the source folder)
#
# Configures BUILD_DIR as a Release build without tests or sanitizers (reused when it is already
# there, so a second run only rebuilds what changed), builds it and runs `cpack -G DEB`
# (the CPack section of CMakeLists.txt: prefix /usr, Depends computed by dpkg-shlibdeps).
# The .deb is written into BUILD_DIR; install it with
#   apt install ./BUILD_DIR/walkeep_<version>_amd64.deb
# Needs what scripts/deps.sh installs (run it first on a fresh machine).
set -euo pipefail

build=
if [[ -n ${1:-} ]]; then
    mkdir -p "$1"
    build=$(cd "$1" && pwd)
fi
cd "$(dirname "$0")/.."
build=${build:-$PWD/build-package}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DWALKEEP_TESTS=OFF -DWALKEEP_SANITIZE=OFF \
    -DWALKEEP_FUZZ=OFF >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || {
    tail -n 30 "$build/cpack.log" >&2
    echo "package.sh: error: cpack failed (whole output in $build/cpack.log)" >&2
    exit 1
}
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
arch=$(dpkg --print-architecture)
deb=$build/walkeep_${version}_${arch}.deb
if [[ ! -f $deb ]]; then
    echo "package.sh: error: cpack did not write \"$deb\" (output in $build/cpack.log)" >&2
    exit 1
fi
echo "$deb"
