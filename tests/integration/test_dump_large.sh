#!/usr/bin/env bash
# test_dump_large.sh: a directory dump of a database with 10,000 tables (a record of
# about 1.9 MB, larger than the 1 MiB expire once read) is stored, one table is
# restored from it, the repository verifies, and walkeep expire still works on it (it
# once failed for the whole repository on such a record). PostgreSQL 15, POSIX
# repository: the record's size is what matters, not the storage.
source "$(dirname "$0")/lib.sh"

TABLES=10000
DUMP=$(wk_bin walkeep-dump)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }
dump() { as_pg timeout -k 10 900 "$DUMP" --config "$conf" "$@"; }

pg=$(wk_cluster_init primary)
# pg_dump locks every table it dumps, in one transaction.
wk_cluster_conf "$pg" "max_locks_per_transaction = 256"
wk_repo_conf_write "$conf" "$repo" \
    "pg_conninfo = host=$(wk_cluster_sockdir "$pg") port=$(wk_cluster_port "$pg") dbname=postgres" \
    "pg_bindir = $(wk_pg_client_bindir)" "retention_dumps = 1"
wk_cluster_start "$pg"
wk_pg_dump_fits || wk_bail "pg_dump in $(wk_pg_client_bindir) cannot dump PostgreSQL $WK_PG_MAJOR"

wk_psql "$pg" "CREATE DATABASE many" >/dev/null
wk_psql "$pg" "DO \$\$BEGIN FOR i IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO t%s VALUES (%s, %L)', i, i, md5(i::text));
END LOOP; END\$\$" many >/dev/null
wk_assert_eq "$TABLES" "$(wk_psql "$pg" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" many)" \
    "the database holds $TABLES tables"

start=$SECONDS
wk_assert_status 0 "a directory dump of $TABLES tables is stored" -- \
    dump create --dbname many --format directory --jobs 2 --label many
echo "# dump of $TABLES tables stored in $((SECONDS - start)) s"
record_bytes=$(wk_repo_cat "$repo" dumps/many/dump.json | wc -c)
echo "# its record: $record_bytes bytes"
wk_assert_ge $((1024 * 1024 + 1)) "$record_bytes" "the record is larger than 1 MiB (where expire once stopped reading)"
wk_assert_ge "$TABLES" "$(wk_repo_ls "$repo" dumps/many | wc -l)" "every table's data is an object of its own"

# One table back, into the database: drop it, restore it alone, compare.
wk_psql "$pg" "DROP TABLE t7777" many >/dev/null
wk_assert_status 0 "one table is restored from the dump (--table)" -- \
    dump restore many --dbname many --table t7777
wk_assert_eq "7777|$(printf '%s' 7777 | md5sum | cut -d' ' -f1)" \
    "$(wk_psql "$pg" "SELECT id, v FROM t7777" many)" "t7777 is back with its row"

wk_assert_status 0 "walkeep-dump verify passes on it" -- dump verify many
wk_assert_status 0 "walkeep verify passes on the repository" -- \
    as_pg timeout -k 10 900 "$WALKEEP" verify --config "$conf"

# A second dump of the same database (custom: one object); retention_dumps = 1 then
# expires the large one.
sleep 1.1
wk_assert_status 0 "a second dump is stored" -- dump create --dbname many --format custom --label small
wk_assert_status 0 "walkeep expire works on a repository with the large record" -- \
    as_pg timeout -k 10 900 "$WALKEEP" expire --config "$conf"
wk_assert_no_repo_file "$repo" dumps/many "the large dump expired (retention_dumps = 1)"
wk_assert_repo_file "$repo" dumps/small/dump.json "the newest dump is kept"

wk_done
