#!/usr/bin/env bash
# stop-s3.sh DIR [--purge]
#
# Stops the daemons that tests/s3/start-s3.sh started in DIR, by the PIDs in
# DIR/run/*.pid: radosgw first, then the OSD, then the mon. A PID is signalled only
# if its process is a ceph-mon, ceph-osd or radosgw that was started with
# DIR/ceph.conf (so a stale PID file never hits an unrelated process). SIGTERM,
# then SIGKILL if it is still there after STOP_GRACE seconds (default 15).
# --purge then deletes DIR.
set -uo pipefail

prog=stop-s3.sh
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $prog DIR [--purge]" >&2; exit 2; }
DIR=$1
PURGE=0
if [ $# -eq 2 ]; then
    [ "$2" = --purge ] || { echo "usage: $prog DIR [--purge]" >&2; exit 2; }
    PURGE=1
fi
GRACE=${STOP_GRACE:-15}
[ -d "$DIR" ] || { echo "$prog: no such directory: $DIR" >&2; exit 1; }
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf

# ours PID: true if PID is one of our daemons running with DIR/ceph.conf
ours() {
    local pid=$1 comm exe
    [ -r "/proc/$pid/cmdline" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null)
    exe=$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)")
    case "$comm $exe" in
        *ceph-mon*|*ceph-osd*|*radosgw*) ;;
        *) return 1 ;;
    esac
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -Fxq -- "$CONF"
}

rc=0
stop_one() { # PIDFILE
    local f=$1 pid i
    pid=$(cat "$f" 2>/dev/null)
    case $pid in ''|*[!0-9]*) rm -f "$f"; return 0 ;; esac
    if ! ours "$pid"; then
        # gone already, or the PID now belongs to something else: leave it alone
        rm -f "$f"
        return 0
    fi
    local t0=$SECONDS
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < GRACE * 10; i++)); do
        ours "$pid" || break
        sleep 0.1
    done
    if ours "$pid"; then
        echo "$prog: $(basename "$f" .pid) (pid $pid) ignored SIGTERM for ${GRACE}s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do ours "$pid" || break; sleep 0.1; done
        if ours "$pid"; then
            echo "$prog: could not stop pid $pid" >&2
            rc=1
            return
        fi
    fi
    echo "$prog: stopped $(basename "$f" .pid) (pid $pid) in $((SECONDS - t0)) s" >&2
    rm -f "$f"
}

shopt -s nullglob
for pat in 'client.rgw.*' 'osd.*' 'mon.*'; do
    for f in "$DIR"/run/$pat.pid; do
        stop_one "$f"
    done
done

if [ $PURGE -eq 1 ]; then
    if [ $rc -ne 0 ]; then
        echo "$prog: not purging $DIR: a daemon is still running" >&2
    elif [ "$DIR" = / ]; then
        echo "$prog: refusing to purge /" >&2
        rc=1
    elif [ -e "$DIR/ceph.conf" ] || [ -d "$DIR/log" ] || [ -z "$(ls -A "$DIR")" ]; then
        rm -rf "$DIR" || rc=1
    else
        echo "$prog: $DIR does not look like a start-s3.sh directory: not purged" >&2
        rc=1
    fi
fi
exit $rc
