# Two-phase commit with the live feed on (API §8): PREPARE TRANSACTION works
# on audited tables whatever audit_trail.notify_channel says; the events of
# a prepared transaction are recorded but not announced; events of
# rolled-back transactions and savepoints are never announced (one payload
# per event: notify_payload = summary); feed() delivers the prepared
# transaction's events once COMMIT PREPARED commits them.
sql <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE orders (id int PRIMARY KEY, status text);
SELECT audit_trail.enable('orders');
ALTER DATABASE $IT_DB SET audit_trail.notify_channel = 'audit_2pc';
ALTER DATABASE $IT_DB SET audit_trail.notify_payload = 'summary';
SQL
p_start=$(sql -c "SELECT audit_trail.feed_position()")

# The listener: a psql fed through a fifo, which prints the notifications
# that arrived with the result of each command it runs.
fifo="$IT_WORK/2pc_listener.in"
rm -f "$fifo"; mkfifo "$fifo"
PGAPPNAME=it_2pc_listener sql < "$fifo" > "$IT_WORK/2pc_listener.out" 2>&1 &
listener=$!
exec 3> "$fifo"
trap 'exec 3>&- 2>/dev/null || true; kill $listener 2>/dev/null || true' EXIT
echo "LISTEN audit_2pc;" >&3
wait_for 30 "1" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'it_2pc_listener' AND query = 'LISTEN audit_2pc;' AND state = 'idle'"

sql <<'SQL'
BEGIN;
INSERT INTO orders VALUES (1, 'prepared, then committed');
PREPARE TRANSACTION 'it_2pc_commit';
COMMIT PREPARED 'it_2pc_commit';
BEGIN;
INSERT INTO orders VALUES (2, 'prepared, then rolled back');
SAVEPOINT s;
UPDATE orders SET status = 'in a savepoint' WHERE id = 2;
RELEASE s;
PREPARE TRANSACTION 'it_2pc_rollback';
ROLLBACK PREPARED 'it_2pc_rollback';
BEGIN;
INSERT INTO orders VALUES (3, 'committed');
SAVEPOINT a;
INSERT INTO orders VALUES (4, 'rolled back with savepoint a');
SAVEPOINT b;
INSERT INTO orders VALUES (5, 'released into a, rolled back with it');
RELEASE b;
ROLLBACK TO a;
INSERT INTO orders VALUES (6, 'committed after the rollback to a');
SAVEPOINT c;
INSERT INTO orders VALUES (7, 'released savepoint');
RELEASE c;
COMMIT;
DO $$
BEGIN
    BEGIN
        INSERT INTO orders VALUES (8, 'in an exception block that failed');
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    BEGIN
        INSERT INTO orders VALUES (9, 'in an exception block that succeeded');
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END
$$;
SQL
# A change in a transaction that PREPAREs and stays prepared is not
# announced either, nor does it keep others from being announced.
sql -c "BEGIN" -c "INSERT INTO orders VALUES (10, 'left prepared')" -c "PREPARE TRANSACTION 'it_2pc_open'"
sql -c "INSERT INTO orders VALUES (11, 'after a prepared one')"

echo "SELECT 'flush';" >&3
exec 3>&-
wait $listener
trap - EXIT
sql -c "ROLLBACK PREPARED 'it_2pc_open'"

expect_eq "events recorded" \
  "$(sql -c "SELECT string_agg(action || ':' || entity_id, ' ' ORDER BY id) FROM audit_trail.events WHERE entity_type = 'public.orders'")" \
  "INSERT:1 INSERT:3 INSERT:6 INSERT:7 INSERT:9 INSERT:11"
grep -o 'payload "{.*}"' "$IT_WORK/2pc_listener.out" | sed 's/^payload "//; s/"$//' > "$IT_WORK/2pc_payloads.jsonl" || true
python3 - "$IT_WORK/2pc_payloads.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
got = [f'{e["action"]}:{e["entity_id"]}' for e in events]
assert got == ["INSERT:3", "INSERT:6", "INSERT:7", "INSERT:9", "INSERT:11"], got
print(f"  announced: {' '.join(got)} (prepared and rolled-back events never)")
PY
expect_eq "no prepared transaction left" "$(sql -c "SELECT count(*) FROM pg_prepared_xacts")" 0
expect_eq "the feed delivers every committed event, the prepared one's too" \
  "$(sql -c "SELECT string_agg(action || ':' || entity_id, ' ' ORDER BY id) FROM audit_trail.feed('$p_start') WHERE entity_type = 'public.orders'")" \
  "INSERT:1 INSERT:3 INSERT:6 INSERT:7 INSERT:9 INSERT:11"
sql -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_channel" -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_payload" -c "DROP TABLE orders"
