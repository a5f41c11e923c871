#!/usr/bin/env bash
# with-s3.sh CMD...: runs CMD against a throw-away Ceph RADOS Gateway started for it
# (start-s3.sh on a free port, bucket walkeep-unit, 1 KiB smallest multipart part), with
# S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION and WALKEEP_S3_TEST_BUCKET exported;
# stops and removes the gateway afterwards. Exits with CMD's status (or 1 when the
# gateway does not start). ctest runs the S3 unit suites' live tests through it.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(mktemp -d /tmp/wk-s3.XXXXXX)
trap '"$here/stop-s3.sh" "$dir/gw" --purge >/dev/null 2>&1; rm -rf "$dir"' EXIT
secret=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
# A start that fails (a port taken between choosing and binding it by a gateway of a test
# running alongside, or a Ceph start-up race) is retried twice on new ports, as lib.sh does.
for attempt in 1 2 3; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if S3_MIN_PART_SIZE=1024 "$here/start-s3.sh" "$dir/gw" "$port" AKIAWALKEEPUNIT "$secret" \
        walkeep-unit >"$dir/start.log" 2>&1 </dev/null; then
        break
    fi
    if ((attempt == 3)); then
        echo "with-s3.sh: could not start the S3 gateway (3 attempts):" >&2
        tail -n 40 "$dir/start.log" >&2
        exit 1
    fi
    echo "with-s3.sh: starting the S3 gateway failed (attempt $attempt); retrying" >&2
    "$here/stop-s3.sh" "$dir/gw" --purge >/dev/null 2>&1
    rm -rf "$dir/gw"
done
set -a
# shellcheck disable=SC1091 # written by start-s3.sh
. "$dir/gw/s3.env"
set +a
export WALKEEP_S3_TEST_BUCKET=walkeep-unit
"$@"
