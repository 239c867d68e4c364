# ALTER EXTENSION ... UPDATE from the oldest released version: events,
# per-table settings, database settings, partitions and archived partitions
# survive; auditing goes on; and every object of the extension ends up
# exactly as a fresh install of the current version makes it.
oldest=$(ls sql/released/pg_audit_trail--*.sql | sed 's/.*--\(.*\)\.sql/\1/' | sort -V | head -1)
current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ "$oldest" != "$current" ] || fail "no released version older than $current in sql/released"
echo "  updating $oldest -> $current"

sql <<SQL
CREATE EXTENSION pg_audit_trail VERSION '$oldest';
ALTER DATABASE $IT_DB SET audit_trail.retention = '30 days';
ALTER DATABASE $IT_DB SET audit_trail.redact_patterns = 'pin,token';
SQL
sql <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, owner text, secret text, noise int, balance numeric, pin text);
SELECT audit_trail.enable('accounts', redact => '{secret}', exclude => '{noise}', label_column => 'owner');
BEGIN;
SELECT audit_trail.set_context(actor => 'alice@example.com', client_ip => '10.0.0.7', request_id => 'req-1');
INSERT INTO accounts SELECT g, 'owner ' || g, 's' || g, g, g * 10, 'p' || g FROM generate_series(1, 300) g;
UPDATE accounts SET balance = balance + 1, noise = noise + 1 WHERE id <= 100;
DELETE FROM accounts WHERE id > 280;
COMMIT;
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', '7', '{"method": "sso"}');
-- An application event that borrowed a row action (log_event allowed that
-- before 0.4.0; the new library refuses it, so it is written directly).
INSERT INTO audit_trail.events (action, entity_type, entity_id, actor, db_user) VALUES ('DELETE', 'public.accounts', '5', 'app', 'app');
-- Partitions made by the old version, and one archived by its retention.
SELECT audit_trail.maintain();
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01');
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) SELECT '2020-01-15', 'OLD', 'x', 'x' FROM generate_series(1, 10);
SELECT count(*) FROM audit_trail.apply_retention(keep => '90 days', archive => true);
SQL

state() { # everything that must survive, one line each
  sql_db "$1" <<'SQL'
-- Every column the oldest version had (0.4.0 added operation, filled below).
SELECT 'events ' || count(*) || ':' || max(id) || ':' || md5(string_agg((to_jsonb(e) - 'operation')::text, '|' ORDER BY id)) FROM audit_trail.events e;
-- Every setting the oldest version had; redact, which 0.4.0 fills with the
-- columns the patterns matched, is compared through tracked below; 0.5.0
-- added tenant_column, always_include and named_actions (API §11), checked
-- after the update below.
SELECT 'config ' || md5(string_agg((to_jsonb(c) - 'redact' - 'reveal' - 'tenant_column' - 'always_include' - 'named_actions')::text, '|' ORDER BY relid)) FROM audit_trail.config c;
SELECT 'names ' || md5(string_agg(n::text, '|' ORDER BY relid, valid_from)) FROM audit_trail.table_names n;
SELECT 'archived ' || string_agg(partition || ' ' || range_start || ' ' || range_end, ', ') FROM audit_trail.archived_partitions;
SELECT 'archive rows ' || count(*) FROM audit_trail_archive.events_p20200101;
SELECT 'partitions ' || string_agg(partition::text, ' ' ORDER BY partition::text) FROM audit_trail.partitions;
SELECT 'tracked ' || string_agg(table_name || ' ' || array_to_string(redact, ',') || ' ' || array_to_string(exclude, ','), '; ') FROM audit_trail.tracked;
SELECT 'settings ' || array_to_string(setconfig, ' ') FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database());
SQL
}
before=$(state "$IT_DB")
echo "$before" | sed 's/^/  before: /'

sql -c "ALTER EXTENSION pg_audit_trail UPDATE"
expect_eq "version" "$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_audit_trail'")" "$current"
after=$(state "$IT_DB")
[ "$after" = "$before" ] || fail "state changed by the update: $(diff <(echo "$before") <(echo "$after"))"
echo "  events, settings, partitions and archive: unchanged"
# The archive of the oldest version is read with the log (API §12), its
# missing columns NULL.
expect_eq "archive read through archived_events and search(archived => true)" \
  "$(sql -c "SELECT count(*) || ' ' || audit_trail.count(actions => '{OLD}', archived => true) || ' ' || count(operation) FROM audit_trail.archived_events WHERE action = 'OLD'")" \
  "10 10 0"
# 0.4.0's operation: filled for the row events written before it, and only
# for them (the borrowed DELETE and application events stay NULL).
expect_eq "operation back-filled" \
  "$(sql -c "SELECT string_agg(a || ':' || o || ' ' || n, ', ' ORDER BY a, o) FROM (SELECT action a, coalesce(operation, '-') o, count(*) n FROM audit_trail.events GROUP BY 1, 2) x")" \
  "AUDIT_ENABLED:- 1, DELETE:- 1, DELETE:DELETE 20, INSERT:INSERT 300, MAINTENANCE:- 1, RETENTION_APPLIED:- 1, UPDATE:UPDATE 100, USER_LOGIN:- 1"
# Tables audited before the update get what the new version gives them.
expect_eq "capture whole after the update (check())" "$(sql -c "SELECT count(*) FROM audit_trail.check()")" 0
expect_eq "tracked.capture_ok" "$(sql -c "SELECT string_agg(table_name || ' ' || capture_ok, ', ') FROM audit_trail.tracked")" "accounts true"

# Auditing goes on, with the old settings.
sql <<'SQL'
BEGIN;
SELECT audit_trail.set_context(actor => 'bob');
UPDATE accounts SET balance = 0, secret = 'new', noise = 0, pin = '1234' WHERE id = 1;
COMMIT;
SQL
expect_eq "capture after update" \
  "$(sql -c "SELECT actor || ' ' || before::text || ' ' || after::text || ' ' || array_to_string(changed, ',') FROM audit_trail.events ORDER BY id DESC LIMIT 1")" \
  'bob {"pin": "[REDACTED]", "secret": "[REDACTED]", "balance": 11} {"pin": "[REDACTED]", "secret": "[REDACTED]", "balance": 0} secret,balance,pin'
expect_eq "history across the update" "$(sql -c "SELECT string_agg(action, ' ' ORDER BY id) FROM audit_trail.history('accounts', '1')")" \
  "INSERT UPDATE UPDATE"
expect_eq "retention setting" "$(sql -c "SHOW audit_trail.retention")" "30 days"
# 0.4.0 stores what each table redacts (API §9, sticky): the pattern-matched
# column of a table audited before the update keeps its redaction through a
# rename that leaves the patterns behind.
expect_eq "settings after the update" \
  "$(sql -c "SELECT array_to_string(redact, ',') || ' ' || cardinality(reveal) FROM audit_trail.config")" "secret,pin 0"
sql -c "ALTER TABLE accounts RENAME COLUMN pin TO passcode" >/dev/null
sql -c "UPDATE accounts SET passcode = '4321' WHERE id = 2" >/dev/null
expect_eq "redaction follows a rename after the update" \
  "$(sql -c "SELECT after::text FROM audit_trail.events ORDER BY id DESC LIMIT 1")" '{"passcode": "[REDACTED]"}'
# 0.5.0 (API §11): tables audited before have no tenant column, nothing
# always included and no named actions; a rule named after the update works.
expect_eq "API §11 settings after the update" \
  "$(sql -c "SELECT coalesce(tenant_column, '-') || ' ' || cardinality(always_include) || ' ' || named_actions::text FROM audit_trail.config")" "- 0 []"
sql -c "SELECT audit_trail.name_action('accounts', 'BALANCE_ZEROED', 'UPDATE', after_matches => '{\"balance\": 0}')" >/dev/null
sql -c "UPDATE accounts SET balance = 0 WHERE id = 3" >/dev/null
expect_eq "named action after the update" \
  "$(sql -c "SELECT action || ' ' || operation FROM audit_trail.events WHERE operation IS NOT NULL ORDER BY id DESC LIMIT 1")" "BALANCE_ZEROED UPDATE"
if sql -c "DELETE FROM audit_trail.events" 2>/dev/null; then fail "log writable after the update"; fi
sql -c "SELECT audit_trail.maintain()" >/dev/null

# The updated extension is the current one: every member object, column,
# index, constraint, trigger, view, comment and privilege as a fresh install
# makes it.
fingerprint() {
  sql_db "$1" <<'SQL'
WITH m AS (
    SELECT classid, objid FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_audit_trail')
), rels AS (
    SELECT c.oid FROM pg_class c JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
)
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM m
UNION ALL
SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '-')
       || ' ' || coalesce(md5(obj_description(p.oid, 'pg_proc')), '-')
FROM pg_proc p JOIN m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid WHERE p.prokind <> 'a'
UNION ALL
SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '-') || ' ' || coalesce(c.reloptions::text, '-')
       || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels)
   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM rels))
UNION ALL
SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
       || a.attnotnull || ' ' || a.attcollation || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
       || ' ' || coalesce(a.attacl::text, '-') || ' ' || coalesce(col_description(a.attrelid, a.attnum), '-')
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid IN (SELECT oid FROM rels) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) || ' ' || tgenabled::text FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels) AND c.relkind = 'v'
UNION ALL
SELECT 'sequence ' || seqrelid::regclass || ' ' || seqstart || ' ' || seqincrement || ' ' || seqcache || ' ' || seqcycle
FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM rels)
UNION ALL
SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc || ' ' || evtenabled::text || ' ' || coalesce(evttags::text, '-')
FROM pg_event_trigger e JOIN m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
UNION ALL
SELECT 'schema ' || n.nspname || ' ' || coalesce(n.nspacl::text, '-') || ' ' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
FROM pg_namespace n WHERE n.nspname IN ('audit_trail', 'audit_trail_archive')
UNION ALL
SELECT 'config dump ' || coalesce(extconfig::regclass[]::text, '-') || ' ' || coalesce(extcondition::text, '-')
FROM pg_extension WHERE extname = 'pg_audit_trail'
ORDER BY 1;
SQL
}
fresh="${IT_DB}_fresh"
sql -c "DROP DATABASE IF EXISTS $fresh" -c "CREATE DATABASE $fresh"
sql_db "$fresh" -c "CREATE EXTENSION pg_audit_trail"
fingerprint "$IT_DB" > "$IT_WORK/upgraded.txt"
fingerprint "$fresh" > "$IT_WORK/fresh.txt"
if ! diff -u "$IT_WORK/fresh.txt" "$IT_WORK/upgraded.txt"; then fail "updated extension differs from a fresh $current install"; fi
expect_eq "objects compared" "$(wc -l < "$IT_WORK/fresh.txt" | tr -d ' ')" "$(wc -l < "$IT_WORK/upgraded.txt" | tr -d ' ')"

# The sealed trail (API §13): events the old version wrote are sealed like
# any other and verify; 0.5.0 is the first version with seals, and the
# golden canonical bytes of tests/regress/sql/23_seal.sql keep later
# versions from changing what an old seal hashed.
expect_eq "old events sealed" "$(sql -c "SELECT events > 0 FROM audit_trail.seal()")" t
expect_eq "old events verify" "$(sql -c "SELECT count(*) FROM audit_trail.verify()")" 0
# The archive made by the oldest version is read by seals through a (txid)
# index the 0.6.0 update gave it.
expect_eq "old archive's txid index" \
  "$(sql -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'audit_trail_archive' AND tablename = 'events_p20200101' AND indexdef LIKE '%(txid)'")" 1

# Seals made by 0.5.0 (format 1) verify after the update, next to format 2
# seals made after it; the 0.5.0 objects seal through the new library
# before the update (the symbols their script names stay); an event a
# format 1 seal covers, changed, is still reported.
v1="${IT_DB}_v050"
sql -c "DROP DATABASE IF EXISTS $v1" -c "CREATE DATABASE $v1"
sql_db "$v1" <<'SQL' >/dev/null
CREATE EXTENSION pg_audit_trail VERSION '0.5.0';
CREATE TABLE t (id int PRIMARY KEY, v int);
SELECT audit_trail.enable('t');
INSERT INTO t SELECT g, g FROM generate_series(1, 50) g;
SELECT * FROM audit_trail.seal();
INSERT INTO t VALUES (51, 51);
SELECT * FROM audit_trail.seal();
SQL
expect_eq "0.5.0 seals: format 1" "$(sql_db "$v1" -c "SELECT string_agg(format || ':' || (events > 0), ',' ORDER BY seal_id) FROM audit_trail.seal_chain")" "1:true,1:true"
expect_eq "0.5.0 seals verify under 0.5.0" "$(sql_db "$v1" -c "SELECT count(*) FROM audit_trail.verify()")" 0
sql_db "$v1" -c "ALTER EXTENSION pg_audit_trail UPDATE"
expect_eq "format 1 seals verify after the update" "$(sql_db "$v1" -c "SELECT count(*) FROM audit_trail.verify()")" 0
sql_db "$v1" -c "INSERT INTO t VALUES (52, 52)"
sql_db "$v1" -c "SELECT * FROM audit_trail.seal()" >/dev/null
expect_eq "then format 2" "$(sql_db "$v1" -c "SELECT string_agg(format::text, ',' ORDER BY seal_id) FROM audit_trail.seal_chain")" "1,1,2"
expect_eq "both formats verify" "$(sql_db "$v1" -c "SELECT count(*) FROM audit_trail.verify()")" 0
edited=$(sql_db "$v1" -c "SELECT id FROM audit_trail.events WHERE entity_id = '7' AND action = 'INSERT'")
sql_db "$v1" -c "UPDATE pg_trigger SET tgenabled = 'D' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row')"
sql_db "$v1" -c "UPDATE audit_trail.events SET after = '{\"id\": 7, \"v\": 700}' WHERE id = $edited"
expect_eq "a format 1 seal still reports a change" "$(sql_db "$v1" -c "SELECT string_agg(seal_id || ' ' || (event_id - $edited) || ' ' || problem, '; ') FROM audit_trail.verify()")" "1 0 changed"
sql -c "DROP DATABASE $v1"

# Partitions the old version made carry the new index options too.
expect_eq "old partitions' id index" \
  "$(sql -c "SELECT count(*) FILTER (WHERE reloptions @> '{fillfactor=100}') || '/' || count(*) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_inherits h ON h.inhrelid = i.indrelid WHERE h.inhparent = 'audit_trail.events'::regclass AND c.relname LIKE '%\_id'")" \
  "$(sql -c "SELECT count(*) || '/' || count(*) FROM pg_inherits WHERE inhparent = 'audit_trail.events'::regclass")"

# A dump of the updated database restores into the current version.
target="${IT_DB}_restored"
sql -c "DROP DATABASE IF EXISTS $target" -c "CREATE DATABASE $target"
pg_dump -h 127.0.0.1 -p "$IT_PORT" -U postgres -Fc -f "$IT_WORK/upgrade.custom" "$IT_DB"
pg_restore -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$target" --exit-on-error "$IT_WORK/upgrade.custom"
expect_eq "restored after the update" "$(state "$target" | head -1)" "$(state "$IT_DB" | head -1)"
expect_eq "seals verify after the restore" "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.verify()")" 0
sql -c "DROP DATABASE $target" -c "DROP DATABASE $fresh"
