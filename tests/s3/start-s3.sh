#!/usr/bin/env bash
# start-s3.sh DIR PORT ACCESS_KEY SECRET_KEY [BUCKET...]
#
# Starts a throw-away single-node Ceph RADOS Gateway (one mon, one OSD, radosgw with
# the beast frontend) whose whole state lives in DIR, serving S3 on
# http://127.0.0.1:PORT with SigV4 enforced. Installs the Debian packages radosgw,
# ceph-mon and ceph-osd first if they are missing. Creates an S3 user with the
# given keys and the named buckets, waits until a signed request succeeds, prints
# S3_ENDPOINT=http://127.0.0.1:PORT and writes DIR/s3.env.
#
# With S3_TLS_PORT=P it also serves HTTPS on 127.0.0.1:P (beast ssl_endpoint), with a
# certificate for 127.0.0.1 and localhost signed by a private CA made with openssl in
# DIR/tls/, waits until a signed HTTPS request verified with that CA succeeds, and
# prints and writes S3_TLS_ENDPOINT=https://127.0.0.1:P and S3_CA_FILE=DIR/tls/ca.crt.
# Plain HTTP on PORT keeps working alongside.
#
# Optional environment:
#   S3_TIMEOUT        seconds for the cluster to come up (default 90; apt not counted)
#   S3_OBJECTSTORE    memstore (default; objects in RAM) or bluestore (DIR/osd/0/block)
#   S3_MEM_BYTES      memstore size in bytes (default 4 GiB)
#   S3_MIN_PART_SIZE  smallest multipart part but the last (default 5 MiB, as AWS)
#   S3_DNS_NAME       e.g. localhost: also accept virtual-host addressing (with TLS,
#                     the certificate also names BUCKET.localhost for each BUCKET given)
#   S3_TLS_PORT       also serve HTTPS on 127.0.0.1:S3_TLS_PORT (see above)
#   S3_TCP_NODELAY    1 (default): beast sets TCP_NODELAY; 0: Nagle's algorithm stays on,
#                     and every small response waits ~40 ms for the client's delayed ACK
#
# Stop with tests/s3/stop-s3.sh DIR [--purge]. Not a ctest test: run it by hand or
# from a test that needs S3. Background: /work/shared/notes/s3-test-server-ceph-rgw.md.
set -uo pipefail

prog=start-s3.sh
usage() {
    echo "usage: $prog DIR PORT ACCESS_KEY SECRET_KEY [BUCKET...]" >&2
    exit 2
}
[ $# -ge 4 ] || usage
DIR=$1 PORT=$2 AK=$3 SK=$4
shift 4
BUCKETS=("$@")

TIMEOUT=${S3_TIMEOUT:-90}
OBJECTSTORE=${S3_OBJECTSTORE:-memstore}
MEM_BYTES=${S3_MEM_BYTES:-4294967296}
MIN_PART=${S3_MIN_PART_SIZE:-5242880}
DNS_NAME=${S3_DNS_NAME:-}
TLS_PORT=${S3_TLS_PORT:-}
NODELAY=${S3_TCP_NODELAY:-1}
REGION=us-east-1
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

err() { echo "$prog: $*" >&2; }

# --- argument checks: nothing is created or installed before these pass --------
case $PORT in ''|*[!0-9]*) err "PORT must be a number: $PORT"; exit 2 ;; esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then err "PORT out of range: $PORT"; exit 2; fi
case $TIMEOUT in ''|*[!0-9]*|0) err "S3_TIMEOUT must be a positive number"; exit 2 ;; esac
case $MEM_BYTES in ''|*[!0-9]*) err "S3_MEM_BYTES must be a number"; exit 2 ;; esac
case $MIN_PART in ''|*[!0-9]*) err "S3_MIN_PART_SIZE must be a number"; exit 2 ;; esac
case $NODELAY in 0|1) ;; *) err "S3_TCP_NODELAY must be 0 or 1"; exit 2 ;; esac
case $OBJECTSTORE in memstore|bluestore) ;; *) err "S3_OBJECTSTORE must be memstore or bluestore"; exit 2 ;; esac
[ -n "$AK" ] && [ -n "$SK" ] || { err "ACCESS_KEY and SECRET_KEY must not be empty"; exit 2; }
if [ -n "$TLS_PORT" ]; then
    case $TLS_PORT in *[!0-9]*) err "S3_TLS_PORT must be a number: $TLS_PORT"; exit 2 ;; esac
    if [ "$TLS_PORT" -lt 1 ] || [ "$TLS_PORT" -gt 65535 ]; then err "S3_TLS_PORT out of range: $TLS_PORT"; exit 2; fi
    [ "$TLS_PORT" != "$PORT" ] || { err "S3_TLS_PORT must differ from PORT ($PORT)"; exit 2; }
    # rgw frontends is a blank-separated option list: the certificate paths cannot hold blanks.
    case $DIR in *[[:space:]]*) err "with S3_TLS_PORT, DIR must not contain blanks: $DIR"; exit 2 ;; esac
    command -v openssl >/dev/null || { err "S3_TLS_PORT needs openssl (apt-get install openssl)"; exit 1; }
fi
for b in "${BUCKETS[@]}"; do
    [[ $b =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || { err "not a valid bucket name: $b"; exit 2; }
done

port_busy() { # listening anywhere, or anything answers on 127.0.0.1
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
if port_busy "$PORT"; then err "port $PORT is already in use"; exit 1; fi
if [ -n "$TLS_PORT" ] && port_busy "$TLS_PORT"; then err "port $TLS_PORT (S3_TLS_PORT) is already in use"; exit 1; fi
if [ -e "$DIR" ]; then
    [ -d "$DIR" ] || { err "$DIR exists and is not a directory"; exit 1; }
    [ -z "$(ls -A "$DIR")" ] || { err "$DIR is not empty"; exit 1; }
fi

# --- packages -----------------------------------------------------------------
t_begin=$(date +%s.%N)
missing=()
for p in radosgw ceph-mon ceph-osd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { err "needs root to install: ${missing[*]}"; exit 1; }
    echo "$prog: installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >/tmp/start-s3.apt.$$.log 2>&1 || {
        tail -n 30 /tmp/start-s3.apt.$$.log >&2; err "apt-get install failed"; exit 1; }
    rm -f /tmp/start-s3.apt.$$.log
    echo "$prog: installed in $(awk -v a="$t_begin" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >&2
fi
for c in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph curl timeout; do
    command -v "$c" >/dev/null || { err "missing command: $c"; exit 1; }
done

# --- layout -------------------------------------------------------------------
mkdir -p "$DIR" || exit 1
DIR=$(cd "$DIR" && pwd) || exit 1
C=$DIR/ceph.conf
mkdir -p "$DIR"/{log,run,mon,osd,rgw} || exit 1
t0=$(date +%s.%N)
END=$((SECONDS + TIMEOUT))
left() { local l=$((END - SECONDS)); [ "$l" -gt 1 ] && echo "$l" || echo 1; }

cli_log() { echo "+ $*" >>"$DIR/log/cli.log"; "$@" >>"$DIR/log/cli.log" 2>&1; }

started=0
die() {
    err "FAILED: $*"
    for f in "$DIR"/log/*.log; do
        [ -s "$f" ] || continue
        echo "----- tail of $f" >&2
        tail -n 25 "$f" >&2
    done
    if [ "$started" -eq 1 ]; then
        "$SCRIPT_DIR/stop-s3.sh" "$DIR" >&2 || true
    fi
    # Keep DIR/log (and ceph.conf) for inspection; drop the data stores.
    rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/monmap" "$DIR/tls"
    err "logs kept in $DIR/log"
    exit 1
}
trap 'die "interrupted"' INT TERM HUP

# A free port for the mon, on loopback.
MON_PORT=
for _ in $(seq 1 50); do
    cand=$((20000 + RANDOM % 20000))
    [ "$cand" -ne "$PORT" ] || continue
    [ "$cand" != "$TLS_PORT" ] || continue
    port_busy "$cand" && continue
    MON_PORT=$cand
    break
done
[ -n "$MON_PORT" ] || die "no free port for the monitor"

# --- TLS: a private CA and a server certificate for 127.0.0.1 / localhost -----
FRONTENDS="beast endpoint=127.0.0.1:$PORT"
# Without TCP_NODELAY, beast's small writes (a HEAD's headers, the end of a response)
# sit in Nagle's buffer until the client's delayed ACK: ~40 ms per request on loopback.
[ "$NODELAY" = 0 ] || FRONTENDS="$FRONTENDS tcp_nodelay=1"
if [ -n "$TLS_PORT" ]; then
    T=$DIR/tls
    # Readable by all (clients running as other users need ca.crt); the keys are 0600.
    mkdir -m 755 "$T" || die "cannot make $T"
    # DNS:127.0.0.1 too: pgBackRest 2.45 matches the host only against DNS names (an IP
    # entry alone gives "unable to find hostname '127.0.0.1' in certificate"); curl and
    # other OpenSSL clients match an IP host against the IP entry.
    SAN="IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost"
    # Virtual-host names: OpenSSL (curl, libcurl, pgBackRest) never matches a wildcard
    # over a single-label name such as *.localhost, so each bucket named on the command
    # line gets its own entry; *.NAME stays for clients and names that accept it.
    if [ -n "$DNS_NAME" ]; then
        SAN="$SAN,DNS:*.$DNS_NAME"
        for b in "${BUCKETS[@]}"; do SAN="$SAN,DNS:$b.$DNS_NAME"; done
    fi
    [ -z "$DNS_NAME" ] || [ "$DNS_NAME" = localhost ] || SAN="$SAN,DNS:$DNS_NAME"
    cat >"$T/server.ext" <<EOF || die "cannot write $T/server.ext"
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    # P-256 keys: made in milliseconds, and every TLS client of interest accepts them.
    cli_log openssl ecparam -name prime256v1 -genkey -noout -out "$T/ca.key" || die "openssl: CA key"
    cli_log openssl req -x509 -new -sha256 -days 30 -key "$T/ca.key" -out "$T/ca.crt" \
        -subj "/O=walkeep tests/CN=start-s3.sh throw-away CA $(date -u +%Y%m%dT%H%M%S)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        || die "openssl: CA certificate"
    cli_log openssl ecparam -name prime256v1 -genkey -noout -out "$T/server.key" || die "openssl: server key"
    cli_log openssl req -new -sha256 -key "$T/server.key" -subj "/O=walkeep tests/CN=127.0.0.1" \
        -out "$T/server.csr" || die "openssl: server request"
    cli_log openssl x509 -req -sha256 -days 30 -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" \
        -CAcreateserial -extfile "$T/server.ext" -out "$T/server.crt" || die "openssl: server certificate"
    chmod 600 "$T/ca.key" "$T/server.key"
    chmod 644 "$T/ca.crt" "$T/server.crt"
    cli_log openssl verify -CAfile "$T/ca.crt" "$T/server.crt" || die "openssl verify of the server certificate"
    FRONTENDS="$FRONTENDS ssl_endpoint=127.0.0.1:$TLS_PORT ssl_certificate=$T/server.crt ssl_private_key=$T/server.key"
fi

FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

# Unix socket paths are limited to 107 bytes: without room, no admin sockets.
if [ ${#DIR} -le 70 ]; then ASOK="$DIR/run/\$name.asok"; else ASOK=""; fi

{
cat <<EOF
# Generated by tests/s3/start-s3.sh: a throw-away single-node cluster.
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
# Ceph-internal auth only; S3 SigV4 is separate and enforced by radosgw.
auth cluster required = none
auth service required = none
auth client required = none
run dir = $DIR/run
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
osd objectstore = $OBJECTSTORE
memstore device bytes = $MEM_BYTES
osd max object name len = 460
osd max object namespace len = 64
paxos propose interval = 0.1

[mon]
mon data = $DIR/mon/\$id
pid file = $DIR/run/\$name.pid
admin socket = $ASOK

[osd]
osd data = $DIR/osd/\$id
pid file = $DIR/run/\$name.pid
admin socket = $ASOK
osd class update on start = false
osd crush update on start = false

[client.rgw.s3]
pid file = $DIR/run/\$name.pid
admin socket = $ASOK
rgw data = $DIR/rgw
rgw frontends = $FRONTENDS
rgw multipart min part size = $MIN_PART
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
[ -z "$DNS_NAME" ] || echo "rgw dns name = $DNS_NAME"
} >"$C" || die "cannot write $C"

cephc() { timeout "$(left)" ceph -c "$C" --connect-timeout 15 "$@" 2>>"$DIR/log/cli.log"; }
pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# --- monitor ------------------------------------------------------------------
cli_log monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$DIR/monmap" \
    || die "monmaptool"
cli_log timeout "$(left)" ceph-mon -c "$C" -i a --mkfs --monmap "$DIR/monmap" || die "ceph-mon --mkfs"
started=1
cli_log timeout "$(left)" ceph-mon -c "$C" -i a || die "ceph-mon did not start"
alive mon.a || die "ceph-mon is not running"

# --- OSD ----------------------------------------------------------------------
osd_id=$(cephc osd new "$OSD_UUID") || die "ceph osd new"
[ "$osd_id" = 0 ] || die "ceph osd new returned '$osd_id', expected 0"
cephc osd crush add osd.0 1.0 root=default host=localhost >>"$DIR/log/cli.log" \
    || die "ceph osd crush add"
mkdir -p "$DIR/osd/0"
cli_log timeout "$(left)" ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$OSD_UUID" || die "ceph-osd --mkfs"

osd_up() { cephc osd dump | grep -q '^osd\.0 up '; }
ok=0
for attempt in 1 2 3; do
    cli_log timeout "$(left)" ceph-osd -c "$C" -i 0 || { echo "ceph-osd start attempt $attempt failed" >>"$DIR/log/cli.log"; continue; }
    while [ $SECONDS -lt $END ]; do
        osd_up && { ok=1; break; }
        alive osd.0 || break
        sleep 0.2
    done
    [ $ok -eq 1 ] && break
    echo "ceph-osd attempt $attempt: not up" >>"$DIR/log/cli.log"
    [ $SECONDS -lt $END ] || break
    p=$(pid_of osd.0) && kill -9 "$p" 2>/dev/null
    sleep 0.5
done
[ $ok -eq 1 ] || die "the OSD did not come up"

# --- radosgw ------------------------------------------------------------------
s3_code() { # METHOD URL [CURL_ARG...] -> HTTP status of a signed request
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${@:3}" \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" \
        -H "x-amz-content-sha256: $EMPTY_SHA" -X "$1" "$2"
}
ok=0
for attempt in 1 2 3; do
    if cli_log timeout "$(left)" radosgw -c "$C" -n client.rgw.s3; then
        while [ $SECONDS -lt $END ]; do
            # any HTTP answer means the frontend is up
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/")
            [ "$code" != 000 ] && { ok=1; break; }
            alive client.rgw.s3 || break
            sleep 0.2
        done
    fi
    [ $ok -eq 1 ] && break
    echo "radosgw attempt $attempt failed" >>"$DIR/log/cli.log"
    [ $SECONDS -lt $END ] || break
    p=$(pid_of client.rgw.s3) && kill -9 "$p" 2>/dev/null
    sleep 0.5
done
[ $ok -eq 1 ] || die "radosgw did not come up on 127.0.0.1:$PORT"

# --- S3 user and buckets ------------------------------------------------------
# As client.admin: -n client.rgw.s3 would clash with the daemon's admin socket.
cli_log timeout "$(left)" radosgw-admin -c "$C" user create --uid=tester \
    --display-name="walkeep S3 tester" --access-key="$AK" --secret-key="$SK" \
    || die "radosgw-admin user create"

ready=0
while [ $SECONDS -lt $END ]; do
    [ "$(s3_code GET "http://127.0.0.1:$PORT/")" = 200 ] && { ready=1; break; }
    sleep 0.2
done
[ $ready -eq 1 ] || die "no signed request succeeded within ${TIMEOUT}s"
if [ -n "$TLS_PORT" ]; then
    # The certificate is checked against our CA only (no -k): name, chain and dates.
    ready=0
    while [ $SECONDS -lt $END ]; do
        [ "$(s3_code GET "https://127.0.0.1:$TLS_PORT/" --cacert "$T/ca.crt")" = 200 ] && { ready=1; break; }
        alive client.rgw.s3 || break
        sleep 0.2
    done
    if [ $ready -eq 0 ]; then
        cli_log curl -sS -o /dev/null --max-time 10 --cacert "$T/ca.crt" "https://127.0.0.1:$TLS_PORT/"
        die "no signed HTTPS request to 127.0.0.1:$TLS_PORT succeeded within ${TIMEOUT}s (curl's error in log/cli.log)"
    fi
fi

for b in "${BUCKETS[@]}"; do
    code=$(s3_code PUT "http://127.0.0.1:$PORT/$b")
    [ "$code" = 200 ] || die "creating bucket $b: HTTP $code"
done

{
    printf 'S3_ENDPOINT=%q\n' "http://127.0.0.1:$PORT"
    printf 'S3_ACCESS_KEY=%q\n' "$AK"
    printf 'S3_SECRET_KEY=%q\n' "$SK"
    printf 'S3_REGION=%q\n' "$REGION"
    if [ -n "$TLS_PORT" ]; then
        printf 'S3_TLS_ENDPOINT=%q\n' "https://127.0.0.1:$TLS_PORT"
        printf 'S3_CA_FILE=%q\n' "$T/ca.crt"
    fi
} >"$DIR/s3.env" || die "cannot write $DIR/s3.env"

trap - INT TERM HUP
t1=$(date +%s.%N)
echo "$prog: ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s" \
     "(total $(awk -v a="$t_begin" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s); state in $DIR" >&2
echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
if [ -n "$TLS_PORT" ]; then
    echo "S3_TLS_ENDPOINT=https://127.0.0.1:$TLS_PORT"
    echo "S3_CA_FILE=$T/ca.crt"
fi
