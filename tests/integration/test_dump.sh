#!/usr/bin/env bash
# walkeep-dump against a real PostgreSQL (15 to 18): a dump in each format (plain, custom,
# directory with --jobs 2) restored into a new database matches the source table by
# table; --table brings one dropped table back; --globals brings a dropped role back;
# list --json is oldest first; verify passes, and fails on a flipped byte; a failing
# pg_dump passes its error on and leaves no dump; an encrypted repository round-trips.
# Where Debian's pg_dump 15 is older than the server (16 to 18), only walkeep-dump's
# refusal of it is checked: nothing else can be dumped there.
# With WK_REPO_KIND=s3 the repositories are on S3 (lib.sh).
source "$(dirname "$0")/lib.sh"

DUMP=$(wk_bin walkeep-dump)
WALKEEP=$(wk_bin walkeep)
work=$(wk_tmpdir work)
repo=$(wk_repo_new repo "$work")
conf=$work/walkeep.conf
as_pg() { wk_run_as_postgres "$@"; }
# walkeep-dump stages in $TMPDIR: its own folder here, so that what it leaves is ours alone
# (other tests run side by side).
staging=$(wk_tmpdir staging)
dump() { as_pg env TMPDIR="$staging" "$DUMP" --config "$conf" "$@"; }

pg=$(wk_cluster_init primary)
port=$(wk_cluster_port "$pg")
sock=$(wk_cluster_sockdir "$pg")
bindir=$(wk_pg_client_bindir)
wk_repo_conf_write "$conf" "$repo" "pg_conninfo = host=$sock port=$port dbname=postgres" \
    "pg_bindir = $bindir"
wk_cluster_start "$pg"

# --- a pg_dump older than the server (Debian's 15 against 16 to 18) --------------------
# pg_dump refuses a newer server by design; walkeep-dump says so before storing anything,
# naming both versions and pg_bindir, for every format. Nothing more can be run here then.
if ! wk_pg_dump_fits; then
    server_version=$(wk_psql "$pg" "SHOW server_version")
    for format in custom plain directory globals; do
        what="a pg_dump older than PostgreSQL $WK_PG_MAJOR ($format)"
        args=(create --dbname postgres --format "$format" --label "old-$format")
        [[ $format != globals ]] || args=(create --globals --label "old-$format")
        wk_assert_status 1 "$what: create fails" -- dump "${args[@]}"
        wk_assert_eq 2 "$(wc -l <"$WK_ERR")" "$what: an error line and a hint, nothing else"
        wk_assert_contains "$WK_ERR" "^walkeep-dump: error: pg_dump(all)? 15\.[0-9]+ \(pg_bindir \"$bindir\"\) cannot dump the server's PostgreSQL ${server_version//./\\.}: it refuses a newer server\$" \
            "$what: the error names both versions and pg_bindir"
        wk_assert_contains "$WK_ERR" "^walkeep-dump: hint: set \"pg_bindir\" to the bin folder of PostgreSQL $WK_PG_MAJOR or later\$" \
            "$what: the hint says what to do"
        wk_assert_no_repo_file "$repo" "dumps" "$what: nothing is stored"
    done
    wk_done
fi

# --- the source database ---------------------------------------------------------------
wk_psql "$pg" "CREATE DATABASE src" >/dev/null
wk_psql "$pg" "
CREATE TABLE small (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO small VALUES (1, 'one'), (2, 'two'), (3, 'it''s \"three\"'), (4, E'tab\there');
CREATE TABLE big (id bigint PRIMARY KEY, v numeric, note text, at timestamptz);
INSERT INTO big SELECT g, g * 1.5, md5(g::text), '2026-01-01'::timestamptz + g * interval '1 min'
  FROM generate_series(1, 200000) g;
CREATE TABLE misc (k text, doc jsonb, tags text[], raw bytea);
INSERT INTO misc VALUES ('a', '{\"x\": [1, 2, {\"y\": null}]}', '{p,q}', '\\x00ff10'),
                        ('b', NULL, '{}', NULL), ('c', '\"é ü\"', NULL, '');
CREATE VIEW big_even AS SELECT * FROM big WHERE id % 2 = 0;
CREATE SEQUENCE counter START 42;
" src >/dev/null
tables=(small big misc)

# signature DB: per table, the row count and an md5 over every row in a fixed order.
signature() {
    local t out=""
    for t in "${tables[@]}"; do
        out+=$(wk_psql "$pg" "SELECT '$t', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM $t x" "$1")
        out+=$'\n'
    done
    printf '%s' "$out"
}
src_sig=$(signature src)
wk_assert_eq 200000 "$(grep '^big|' <<<"$src_sig" | cut -d'|' -f2)" "the source holds 200000 rows in big"

# --- create, one dump per format ------------------------------------------------------
# (one second apart: start times order the listing)
wk_assert_status 0 "a plain dump succeeds" -- dump create --dbname src --format plain --label src-plain
wk_assert_eq src-plain "$(cat "$WK_OUT")" "create prints the label"
sleep 1
wk_assert_status 0 "a custom dump (the default format) succeeds" -- dump create --dbname src --label src-custom
sleep 1
wk_assert_status 0 "a directory dump with --jobs 2 succeeds" -- \
    dump create --dbname src --format directory --jobs 2 --label src-dir
sleep 1
wk_psql "$pg" "CREATE ROLE dumprole LOGIN CONNECTION LIMIT 7" >/dev/null
wk_assert_status 0 "a globals dump succeeds" -- dump create --globals --label globals
sleep 1
wk_assert_status 0 "a dump with the default label succeeds" -- dump create --dbname src
default_label=$(cat "$WK_OUT")
wk_assert_contains "$WK_OUT" '^[0-9]{8}T[0-9]{6}Z-src$' "the default label is <start time>-<database>"

# objects DIR ERE: how many objects below DIR of $repo have a name matching ERE.
objects() { wk_repo_ls "$repo" "$1" | awk -F/ -v re="$2" '$NF ~ re { n++ } END { print n + 0 }'; }
wk_assert_repo_file "$repo" dumps/src-plain/dump.json "the plain dump has its record"
wk_assert_eq 1 "$(objects dumps/src-plain '^dump[.]sql[.]')" "the plain dump is one object"
wk_assert_eq 1 "$(objects dumps/src-custom '^dump[.]custom[.]')" "the custom dump is one object"
wk_assert_eq 1 "$(objects dumps/globals '^globals[.]sql[.]')" "the globals dump is globals.sql"
ndir=$(objects dumps/src-dir/dir '')
wk_assert_ge 4 "$ndir" "the directory dump is stored file by file ($ndir objects)"
wk_assert_eq 1 "$(objects dumps/src-dir/dir '^toc[.]dat[.]')" "including toc.dat"
wk_assert_eq 0 "$(find "$staging" -mindepth 1 -maxdepth 1 -name 'walkeep-dump.*' | wc -l)" \
    "the staging folder is removed"
wk_repo_cat "$repo" dumps/src-dir/dump.json >"$work/src-dir.json" || true
record_ok=$(python3 - "$work/src-dir.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format"] == 1 and r["label"] == "src-dir" and r["database"] == "src"
assert r["dump_format"] == "directory" and r["server_version"].startswith("15")
assert r["bytes"] == sum(s["bytes"] for s in r["streams"])
assert r["stored_bytes"] == sum(s["stored_bytes"] for s in r["streams"])
for s in r["streams"]:
    assert set(s) == {"name", "object", "bytes", "stored_bytes", "fingerprint"}, s
    assert s["object"].startswith("dumps/src-dir/dir/") and len(s["fingerprint"]) == 32
print("ok")
EOF
)
wk_assert_eq ok "$record_ok" "the record holds format, database, version, sizes and streams"

# --- restore each into a new database -------------------------------------------------
restore_into() { # LABEL DB [restore options...]
    local label=$1 db=$2
    shift 2
    wk_psql "$pg" "CREATE DATABASE $db" >/dev/null
    wk_assert_status 0 "restore $label into $db $*" -- dump restore "$label" --dbname "$db" "$@"
    wk_assert_eq "$src_sig" "$(signature "$db")" "$db matches the source, table by table"
}
restore_into src-plain r_plain
restore_into src-custom r_custom
restore_into src-dir r_dir --jobs 2
restore_into src-custom r_custom_jobs --jobs 2
wk_assert_eq 42 "$(wk_psql "$pg" "SELECT nextval('counter')" r_custom)" "sequences come back too"
wk_assert_eq 100000 "$(wk_psql "$pg" "SELECT count(*) FROM big_even" r_dir)" "views come back too"

# --- --create: into a new database in one step, every format ---------------------------
for pair in src-plain:c_plain src-custom:c_custom src-dir:c_dir; do
    label=${pair%%:*} db=${pair#*:}
    wk_assert_status 0 "restore $label --dbname $db --create" -- \
        dump restore "$label" --dbname "$db" --create
    wk_assert_eq "$src_sig" "$(signature "$db")" "$db is created and matches the source"
    wk_assert_status 1 "$label --create into the existing $db is refused" -- \
        dump restore "$label" --dbname "$db" --create
    wk_assert_contains "$WK_ERR" "error: could not restore dump \"$label\": database \"$db\" already exists\$" \
        "it names the database"
    wk_assert_contains "$WK_ERR" "hint: restore with --clean to replace it" \
        "and says how to replace it"
    wk_psql "$pg" "INSERT INTO small VALUES (99, 'extra')" "$db" >/dev/null
    wk_assert_status 0 "$label --create --clean replaces $db" -- \
        dump restore "$label" --dbname "$db" --create --clean
    wk_assert_eq "$src_sig" "$(signature "$db")" "$db holds the dump again, without the extra row"
done
wk_assert_status 1 "a plain dump --create into its own, existing database is refused" -- \
    dump restore src-plain --create
wk_assert_contains "$WK_ERR" 'database "src" already exists' "naming the dump's database"
wk_assert_eq "$src_sig" "$(signature src)" "and src is untouched"
# pg_conninfo naming the very database to replace: created and dropped from a
# maintenance database, as createdb does.
wk_psql "$pg" "INSERT INTO small VALUES (98, 'extra')" src >/dev/null
wk_assert_status 0 "--create --clean replaces the database pg_conninfo connects to" -- \
    dump restore src-plain --create --clean "--pg-conninfo=host=$sock port=$port dbname=src"
wk_assert_eq "$src_sig" "$(signature src)" "src holds the dump again"
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT count(*) FROM pg_database WHERE datname LIKE 'walkeep\_restore\_%'")" \
    "no temporary database is left"
wk_assert_status 1 "--clean alone with a plain dump is refused" -- \
    dump restore src-plain --dbname c_plain --clean
wk_assert_contains "$WK_ERR" "--clean with a plain dump needs --create" "saying what it needs"
wk_assert_status 1 "--create with a globals dump is refused" -- dump restore globals --create
wk_assert_contains "$WK_ERR" "--create does not apply to a globals dump" "saying why"
wk_assert_status 0 "the help text says what --create does" -- dump --help
wk_assert_contains "$WK_OUT" "--create +create the database first" "--create is explained"
wk_assert_contains "$WK_OUT" "--clean +with --create: replace an existing database" "--clean is explained"

# --- --table ---------------------------------------------------------------------------
wk_psql "$pg" "DROP TABLE small" r_custom >/dev/null
wk_assert_status 0 "--table restores one dropped table" -- \
    dump restore src-custom --dbname r_custom --table small
wk_assert_eq "$src_sig" "$(signature r_custom)" "the table is back with all its rows"
wk_assert_status 1 "--table with a plain dump is refused" -- \
    dump restore src-plain --dbname r_plain --table small
wk_assert_contains "$WK_ERR" "--table needs a custom or directory dump" "with a clear message"

# --- --globals ---------------------------------------------------------------------------
wk_psql "$pg" "DROP ROLE dumprole" >/dev/null
wk_assert_status 0 "the globals dump restores" -- dump restore globals
wk_assert_eq "7" "$(wk_psql "$pg" "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'dumprole'")" \
    "the dropped role exists again, with its attributes"

# --- list ------------------------------------------------------------------------------
wk_assert_status 0 "list --json succeeds" -- dump list --json
order=$(python3 -c 'import json,sys; print(" ".join(d["label"] for d in json.load(open(sys.argv[1]))["dumps"]))' "$WK_OUT")
wk_assert_eq "src-plain src-custom src-dir globals $default_label" "$order" "list --json is oldest first"
fields=$(python3 -c '
import json, sys
for d in json.load(open(sys.argv[1]))["dumps"]:
    assert all(k in d for k in ("label", "database", "format", "start_time", "end_time", "bytes", "stored_bytes")), d
print(" ".join(d["format"] for d in json.load(open(sys.argv[1]))["dumps"]))' "$WK_OUT")
wk_assert_eq "plain custom directory globals custom" "$fields" "each entry has its format, times and sizes"
wk_assert_status 0 "list (text) succeeds" -- dump list
wk_assert_contains "$WK_OUT" '^src-dir +src +directory' "the text listing names label, database and format"
wk_assert_contains "$WK_OUT" '^src-dir +src +directory +.* [0-9.]+ (KiB|MiB) +[0-9.]+ (KiB|MiB)$' \
    "and sizes with their unit (KiB / MiB)"

# --- verify ----------------------------------------------------------------------------
for label in src-plain src-custom src-dir globals; do
    wk_assert_status 0 "verify $label passes" -- dump verify "$label"
done
wk_assert_contains "$WK_ERR" "intact" "verify says the dump is intact"
wk_assert_status 0 "a custom dump to damage" -- dump create --dbname src --label damaged
obj=$(wk_repo_ls "$repo" dumps/damaged | awk -F/ '$NF ~ /^dump\.custom\./')
wk_repo_flip "$repo" "$obj"
wk_assert_status '!0' "verify finds a flipped byte" -- dump verify damaged
wk_assert_contains "$WK_ERR" 'damaged' "and names the dump"
wk_psql "$pg" "CREATE DATABASE r_damaged" >/dev/null
wk_assert_status '!0' "restore of the damaged dump fails" -- dump restore damaged --dbname r_damaged
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" r_damaged)" \
    "and leaves nothing restored (one transaction, never committed)"
wk_assert_status '!0' "a --create restore of the damaged dump fails" -- \
    dump restore damaged --dbname r_damaged_new --create
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT count(*) FROM pg_database WHERE datname = 'r_damaged_new'")" \
    "and drops the database it created"
# --create --clean of a damaged dump over a database with data: the old one stays.
wk_psql "$pg" "CREATE DATABASE r_keep" >/dev/null
wk_psql "$pg" "CREATE TABLE precious AS SELECT 1 AS x" r_keep >/dev/null
wk_assert_status '!0' "a --create --clean restore of the damaged dump fails" -- \
    dump restore damaged --dbname r_keep --create --clean
wk_assert_eq 1 "$(wk_psql "$pg" "SELECT count(*) FROM precious" r_keep)" \
    "and the database it would have replaced is untouched"
wk_assert_eq 0 "$(wk_psql "$pg" "SELECT count(*) FROM pg_database WHERE datname LIKE 'walkeep\_restore\_%'")" \
    "and its temporary database is gone"
wk_assert_status 1 "verify of an unknown label fails" -- dump verify nosuch
wk_assert_contains "$WK_ERR" 'dump "nosuch" does not exist' "and says so"

# --- a failing pg_dump ---------------------------------------------------------------
# A database that does not exist: walkeep-dump's own connection (it asks the server for
# its version before running pg_dump) says so, and nothing is stored.
wk_assert_status 1 "a dump of a database that does not exist fails" -- \
    dump create --dbname nosuchdb --label bad
wk_assert_contains "$WK_ERR" '^walkeep-dump: error: could not connect to the server: .*database "nosuchdb" does not exist' \
    "the error names the missing database"
wk_assert_no_repo_file "$repo" dumps/bad "no dump (no record, no objects) is left"
# pg_dump itself failing (a role that may not read a table): its error is passed on.
wk_psql "$pg" "CREATE DATABASE locked" >/dev/null
wk_psql "$pg" "CREATE ROLE weak LOGIN; CREATE TABLE secret (x int); REVOKE ALL ON secret FROM PUBLIC" locked >/dev/null
wk_assert_status 1 "a dump that pg_dump cannot make fails" -- \
    dump create --dbname locked --label bad "--pg_conninfo=host=$sock port=$port dbname=postgres user=weak"
wk_assert_contains "$WK_ERR" '^pg_dump: error: .*permission denied for table secret' "pg_dump's own error is passed on"
wk_assert_contains "$WK_ERR" '^walkeep-dump: error: pg_dump failed with exit status 1' "and ours says pg_dump failed"
wk_assert_no_repo_file "$repo" dumps/bad "no dump (no record, no objects) is left by pg_dump's failure"
wk_assert_status 1 "the label of a failed dump is not restorable" -- dump restore bad --dbname r_plain
wk_assert_status 1 "a label in use is refused" -- dump create --dbname src --label src-plain
wk_assert_contains "$WK_ERR" 'already exists' "the refusal says why"
wk_assert_status 1 "a bad label is refused" -- dump create --dbname src --label '../x'
wk_assert_contains "$WK_ERR" 'invalid dump label' "naming the label"

# --- create --all: the globals and every database, one dump each -------------------------
for db in $(wk_psql "$pg" "SELECT datname FROM pg_database WHERE datname LIKE 'r\_%' OR datname LIKE 'c\_%'"); do
    wk_psql "$pg" "DROP DATABASE $db" >/dev/null
done
databases=$(wk_psql "$pg" "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datallowconn AND NOT datistemplate")
wk_assert_eq "locked postgres src" "$databases" "three databases take connections"
wk_assert_status 0 "create --all succeeds" -- dump create --all
wk_assert_eq 4 "$(wc -l <"$WK_OUT")" "it prints four labels (globals and three databases)"
wk_assert_contains "$WK_OUT" '^[0-9]{8}T[0-9]{6}Z-globals$' "the globals first"
for db in $databases; do
    wk_assert_contains "$WK_OUT" "^[0-9]{8}T[0-9]{6}Z-$db\$" "a dump of $db"
done
wk_assert_status 0 "list --json" -- dump list --json
templates=$(python3 -c 'import json,sys; print(sum(1 for d in json.load(open(sys.argv[1]))["dumps"] if d["database"].startswith("template")))' "$WK_OUT")
wk_assert_eq 0 "$templates" "no template database is dumped"
sleep 1 # default labels name the second a dump started
wk_assert_status 1 "create --all with a database that does not exist fails at the end" -- \
    dump create --all "--dump-databases=nosuchdb, src"
wk_assert_eq 2 "$(wc -l <"$WK_OUT")" "after dumping the others (globals and src)"
wk_assert_contains "$WK_ERR" "^walkeep-dump: error: 1 of 3 dumps failed: nosuchdb\$" \
    "the error counts and names the failed ones"
# Two databases whose default labels are one ("x y" and "x_y", dumped in the same second
# as a rule): the second gets a suffix; names given twice are dumped once.
wk_psql "$pg" 'CREATE DATABASE "x y"' >/dev/null
wk_psql "$pg" 'CREATE DATABASE x_y' >/dev/null
sleep 1
wk_assert_status 0 "create --all with databases whose labels collide" -- \
    dump create --all "--dump-databases=x_y"
wk_assert_status 0 "create --all of every database" -- dump create --all
wk_assert_eq "$(sort -u <"$WK_OUT" | wc -l)" "$(wc -l <"$WK_OUT")" "every dump has its own label"
wk_assert_status 0 "list --json" -- dump list --json
xy=$(python3 -c 'import json,sys; print(sum(1 for d in json.load(open(sys.argv[1]))["dumps"] if d["database"] in ("x y", "x_y")))' "$WK_OUT")
wk_assert_eq 3 "$xy" "\"x y\" and x_y are both dumped (x_y twice)"
wk_assert_status 0 "a database named twice in dump_databases is dumped once" -- \
    dump create --all "--dump-databases=x_y,x_y"
wk_assert_eq 2 "$(wc -l <"$WK_OUT")" "globals and x_y"
wk_assert_status 1 "--all and --dbname do not go together" -- dump create --all --dbname src
wk_assert_contains "$WK_ERR" "--all takes no --dbname or --label" "saying so"

# --- an encrypted repository -----------------------------------------------------------
key=$work/repo.key
as_pg "$WALKEEP" keygen "$key" 2>/dev/null
econf=$work/encrypted.conf
erepo=$(wk_repo_new erepo "$work")
wk_repo_conf_write "$econf" "$erepo" "pg_conninfo = host=$sock port=$port dbname=postgres" \
    "pg_bindir = $WK_PGBIN" "encrypt_key_file = $key" "compress = lz4"
edump() { as_pg "$DUMP" --config "$econf" "$@"; }
wk_assert_status 0 "a custom dump into an encrypted repository" -- edump create --dbname src --label enc
wk_assert_eq 1 "$(wk_repo_ls "$erepo" dumps/enc | grep -c '/dump\.custom\.lz4\.enc$' || true)" "its object is encrypted"
wk_repo_cat "$erepo" dumps/enc/dump.custom.lz4.enc >"$work/enc.object" 2>/dev/null || true
if ! grep -q 'misc' "$work/enc.object" 2>/dev/null; then
    wk_pass "no plaintext in the encrypted object"
else
    wk_fail "no plaintext in the encrypted object"
fi
wk_assert_status 0 "an encrypted directory dump" -- edump create --dbname src --format directory --label encdir
wk_assert_status 0 "verify passes on the encrypted dump" -- edump verify enc
wk_assert_status 0 "verify passes on the encrypted directory dump" -- edump verify encdir
wk_psql "$pg" "CREATE DATABASE r_enc" >/dev/null
wk_assert_status 0 "restore from the encrypted repository" -- edump restore enc --dbname r_enc
wk_assert_eq "$src_sig" "$(signature r_enc)" "r_enc matches the source"
wk_assert_status 1 "the encrypted repository refuses a restore without its key" -- \
    as_pg "$DUMP" --config "$econf" --encrypt-key-file= restore enc --dbname r_enc
wk_assert_contains "$WK_ERR" 'encrypted but no key' "and says the key is missing"

wk_done
