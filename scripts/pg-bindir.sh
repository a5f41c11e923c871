#!/usr/bin/env bash
# pg-bindir.sh MAJOR: prints the folder of PostgreSQL MAJOR's server programs (initdb,
# pg_ctl, postgres) for the tests: Debian's /usr/lib/postgresql/MAJOR/bin where it is
# installed, else .pg/MAJOR/bin that scripts/deps.sh unpacked. Fails loudly when neither
# is there: a matrix version that cannot be had must never pass silently.
set -euo pipefail
major=${1:?usage: pg-bindir.sh MAJOR}
top=$(cd "$(dirname "$0")/.." && pwd)
runs_as_postgres() {
    [[ $(id -u) -ne 0 ]] || ! id postgres >/dev/null 2>&1 || runuser -u postgres -- test -x "$1"
}
for dir in "/usr/lib/postgresql/$major/bin" "$top/.pg/$major/bin"; do
    [[ -x $dir/postgres && -x $dir/initdb && -x $dir/pg_ctl ]] || continue
    if ! runs_as_postgres "$dir/postgres"; then
        # The checkout is out of postgres's reach (under a 0700 folder): a copy of the
        # tree where it can run it, made once, whole or not at all.
        copy=/var/tmp/walkeep-pg/$major-$(stat -c %i "$dir/postgres")
        if [[ ! -d $copy ]]; then
            mkdir -p /var/tmp/walkeep-pg
            chmod 0755 /var/tmp/walkeep-pg
            rm -rf "$copy.$$"
            cp -a "$(readlink -f "$dir/..")" "$copy.$$"
            chmod -R a+rX "$copy.$$"
            mv -T "$copy.$$" "$copy" 2>/dev/null || rm -rf "$copy.$$"
        fi
        dir=$copy/bin
        runs_as_postgres "$dir/postgres" ||
            { echo "pg-bindir.sh: error: user postgres cannot run $dir/postgres" >&2; exit 1; }
    fi
    printf '%s\n' "$dir"
    exit 0
done
echo "pg-bindir.sh: error: no PostgreSQL $major server programs (looked in /usr/lib/postgresql/$major/bin and $top/.pg/$major/bin); run scripts/deps.sh" >&2
exit 1
