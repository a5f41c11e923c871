#!/usr/bin/env bash
# Installs the Debian packages walkeep needs to build and test, only those missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(build-essential cmake pkg-config libpq-dev liblz4-dev libzstd-dev
          libsodium-dev libxxhash-dev check libcurl4-openssl-dev
          postgresql-15 postgresql-client-15 lz4 zstd util-linux
          procps strace diffutils iproute2 python3 man-db groff-base systemd
          radosgw ceph-mon ceph-osd openssl curl)
# (radosgw, ceph-mon, ceph-osd: the throw-away S3 server of the tests, tests/s3/.)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: error: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
