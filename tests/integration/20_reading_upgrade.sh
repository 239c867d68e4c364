# The 0.5.0 update replaces search, count and export (API §12: new arguments
# at the end): a DBA's privileges and comments on the old ones carry over,
# a view that calls them stops the update with its name, calls written for
# 0.4.0 keep working, and a reader with only SELECT on audit_trail.events
# reads what 0.4.0 archived.
sql <<'SQL'
DROP ROLE IF EXISTS it20_app;
DROP ROLE IF EXISTS it20_other;
DROP ROLE IF EXISTS it20_reader;
CREATE ROLE it20_app LOGIN;
CREATE ROLE it20_other LOGIN;
CREATE ROLE it20_reader LOGIN;
CREATE EXTENSION pg_audit_trail VERSION '0.4.0';
REVOKE EXECUTE ON FUNCTION audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint) TO it20_app WITH GRANT OPTION;
GRANT EXECUTE ON FUNCTION audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint) TO it20_reader;
COMMENT ON FUNCTION audit_trail.count(text[], text[], text, text, timestamptz, timestamptz, text, text) IS 'our total';
GRANT SELECT ON audit_trail.events TO it20_app, it20_reader;
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01');
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) SELECT '2020-01-15', 'OLD', 'x', 'x' FROM generate_series(1, 4);
SELECT count(*) FROM audit_trail.apply_retention(keep => '90 days', archive => true);
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', '1');
SQL

# A view of the database that calls search(): the update stops, naming it.
sql -c "CREATE VIEW last_logins AS SELECT id, actor FROM audit_trail.search(actions => '{USER_LOGIN}')"
out=$(sql -c "ALTER EXTENSION pg_audit_trail UPDATE" 2>&1) && fail "the update ran over a view that calls search()"
case $out in *"view public.last_logins"*"Drop them, update, then make them again"*) ;; *) fail "unexpected error: $out" ;; esac
expect_eq "still 0.4.0 after the refused update" "$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_audit_trail'")" "0.4.0"
sql -c "DROP VIEW last_logins"

sql -c "ALTER EXTENSION pg_audit_trail UPDATE TO '0.5.0'"
new_search="audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint, text[], text, bigint, text[], text[], boolean, bigint)"
new_count="audit_trail.count(text[], text[], text, text, timestamptz, timestamptz, text, text, text[], text, bigint, text[], text[], boolean)"
expect_eq "search's privileges carried over (app, reader, other, PUBLIC)" \
  "$(sql -c "SELECT has_function_privilege('it20_app', '$new_search', 'EXECUTE WITH GRANT OPTION') || ' ' || has_function_privilege('it20_reader', '$new_search', 'EXECUTE') || ' ' || has_function_privilege('it20_other', '$new_search', 'EXECUTE') || ' ' || (SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE p.oid = '$new_search'::regprocedure AND a.grantee = 0)")" \
  "true true false 0"
expect_eq "count's comment carried over" "$(sql -c "SELECT obj_description('$new_count'::regprocedure, 'pg_proc')")" "our total"
expect_eq "export keeps the defaults (PUBLIC, no comment)" \
  "$(sql -c "SELECT coalesce(p.proacl::text, 'default') || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '-') FROM pg_proc p WHERE p.oid = 'audit_trail.export'::regproc")" \
  "default -"
expect_eq "a 0.4.0 call, positional" "$(sql_as it20_app -c "SELECT count(*) FROM audit_trail.search('{USER_LOGIN}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 50, NULL)")" "1"
expect_eq "what 0.4.0 archived, read by a reader of the log" \
  "$(sql_as it20_reader -c "SELECT (SELECT count(*) FROM audit_trail.search(actions => '{OLD}', archived => true)) || ' ' || (SELECT count(*) FROM audit_trail.archived_events)")" \
  "4 4"
out=$(sql_as it20_other -c "SELECT count(*) FROM audit_trail.archived_events" 2>&1) && fail "a role that may not read the log read the archive"
case $out in *"permission denied for table events"*) echo "  archive refused to a role without SELECT on events" ;; *) fail "unexpected: $out" ;; esac

sql <<'SQL'
DROP EXTENSION pg_audit_trail CASCADE;
DROP OWNED BY it20_app, it20_other, it20_reader;
DROP ROLE it20_app, it20_other, it20_reader;
SQL
