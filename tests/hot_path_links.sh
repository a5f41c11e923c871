#!/usr/bin/env bash
# hot_path_links.sh BUILD_DIR: archive_command and restore_command start for every WAL
# file, so walkeep-archive and walkeep-fetch link no more than they use: never libpq (with
# it come OpenSSL, Kerberos and LDAP: about 5 MiB and 4 ms more per call, bench/README.md).
# libcurl is loaded only for S3 repositories (lib/curlfn.c), so it is not linked either.
set -u
status=0
for program in walkeep-archive walkeep-fetch; do
    libs=$(ldd "$1/$program") || { echo "not ok - ldd $program"; exit 1; }
    for lib in libpq libcurl libgssapi_krb5 libldap; do
        if printf '%s\n' "$libs" | grep -q "$lib"; then
            echo "not ok - $program links $lib"
            status=1
        else
            echo "ok - $program does not link $lib"
        fi
    done
done
exit $status
