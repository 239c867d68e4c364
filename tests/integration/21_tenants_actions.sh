# API §11 across sessions: a named action and a row's tenant reach the live
# feed; a rule named in one session applies at once in another that has the
# table's settings cached, in READ COMMITTED and in a REPEATABLE READ
# transaction that began before the rule was committed.
sql <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE sessions (id int PRIMARY KEY, org text, status text);
SELECT audit_trail.enable('sessions', tenant_column => 'org');
SELECT audit_trail.name_action('sessions', 'SESSION_STOPPED', 'UPDATE', after_matches => '{"status": "stopped"}');
INSERT INTO sessions VALUES (1, 'acme', 'running'), (2, 'globex', 'running'), (3, 'initech', 'running');
ALTER DATABASE $IT_DB SET audit_trail.notify_channel = 'audit_feed';
ALTER DATABASE $IT_DB SET audit_trail.notify_payload = 'summary';
SQL

# The feed: the named action under its name, in order with the others.
sql -c "LISTEN audit_feed" -c "SELECT pg_sleep(4)" -c "SELECT 'done'" > "$IT_WORK/listener.out" 2>&1 &
listener=$!
wait_running 'SELECT pg_sleep(4)'
sql -c "UPDATE sessions SET status = CASE id WHEN 2 THEN 'paused' ELSE 'stopped' END"
wait $listener
grep -o 'payload "{.*}"' "$IT_WORK/listener.out" | sed 's/^payload "//; s/"$//' > "$IT_WORK/payloads.jsonl"
python3 - "$IT_WORK/payloads.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
got = [(e["action"], e["entity_id"]) for e in events]
assert got == [("SESSION_STOPPED", "1"), ("UPDATE", "2"), ("SESSION_STOPPED", "3")], got
# summary payloads carry each event's own tenant (the row's).
assert [e["tenant"] for e in events] == ["acme", "globex", "initech"], events
print(f"  feed: {got}")
PY
sql -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_channel" -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_payload"
expect_eq "tenants of one statement" \
  "$(sql -c "SELECT string_agg(action || ' ' || tenant, ', ' ORDER BY id) FROM audit_trail.events WHERE operation = 'UPDATE'")" \
  "SESSION_STOPPED acme, UPDATE globex, SESSION_STOPPED initech"

# A rule committed by another session applies at once: session B has the
# table's settings cached (it changed a row), waits for session A's rule
# (held on an advisory lock A takes first), then changes a row again.
for iso in "READ COMMITTED" "REPEATABLE READ"; do
  sql -c "SELECT audit_trail.drop_named_action('sessions', 'SESSION_PAUSED')" >/dev/null 2>&1 || true
  sql <<'SQL' > "$IT_WORK/a.out" 2>&1 &
SELECT pg_advisory_lock(1621);
DO $$ BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 1621 AND NOT granted) LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', after_matches => '{"status": "paused"}');
SELECT pg_advisory_unlock(1621);
SQL
  a=$!
  wait_for 60 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1621 AND granted"
  sql <<SQL
BEGIN ISOLATION LEVEL $iso;
UPDATE sessions SET status = 'running' WHERE id = 1;
SELECT pg_advisory_lock(1621);
UPDATE sessions SET status = 'paused' WHERE id = 1;
COMMIT;
SELECT pg_advisory_unlock(1621);
SQL
  wait $a || fail "session A: $(cat "$IT_WORK/a.out")"
  expect_eq "$iso: the rule another session committed" \
    "$(sql -c "SELECT action FROM audit_trail.events WHERE operation = 'UPDATE' ORDER BY id DESC LIMIT 1")" "SESSION_PAUSED"
done
