# Crashes: a backend killed with SIGKILL mid-transaction, and the server
# stopped in immediate mode mid-load. After recovery no event exists without
# its change and no committed change lacks its event; capture keeps working.
consistent() { # every row has its INSERT event, every INSERT event its row
  sql -c "SELECT (SELECT count(*) FROM items) || ' rows, ' ||
                 (SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.items' AND action = 'INSERT') || ' events, ' ||
                 (SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM audit_trail.events e
                    WHERE e.entity_type = 'public.items' AND e.entity_id = i.id::text)) || ' rows without event, ' ||
                 (SELECT count(*) FROM audit_trail.events e WHERE e.entity_type = 'public.items'
                    AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id::text = e.entity_id)) || ' events without row'"
}
wait_ready() { for _ in $(seq 1 60); do sql -c "SELECT 1" >/dev/null 2>&1 && return 0; sleep 1; done; fail "server did not come back"; }
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE items (id bigserial PRIMARY KEY, payload text);
SELECT audit_trail.enable('items', actions => '{INSERT}');
INSERT INTO items (payload) SELECT 'before crash ' || g FROM generate_series(1, 1000) g;
SQL

# 1. SIGKILL of a backend in the middle of a transaction that has written rows and events.
sql -c "SELECT pg_backend_pid()" -c "BEGIN" -c "INSERT INTO items (payload) SELECT 'doomed' FROM generate_series(1, 5000)" \
    -c "SELECT pg_sleep(30)" > "$IT_WORK/doomed.out" 2>&1 &
for _ in $(seq 1 50); do pid=$(head -1 "$IT_WORK/doomed.out" 2>/dev/null | grep -E '^[0-9]+$' || true); [ -n "$pid" ] && break; sleep 0.2; done
[ -n "$pid" ] || fail "no backend pid"
wait_running 'SELECT pg_sleep(30)'
kill -9 "$pid"
wait || true
wait_ready
echo "  after SIGKILL: $(consistent)"
expect_eq "SIGKILL: nothing of the killed transaction" "$(sql -c "SELECT count(*) FROM items WHERE payload = 'doomed'")" 0
expect_eq "SIGKILL: consistent" "$(consistent | grep -o '0 rows without event, 0 events without row')" "0 rows without event, 0 events without row"

# 2. Immediate shutdown while 4 clients insert.
echo "INSERT INTO items (payload) VALUES ('load');" > "$IT_WORK/load.sql"
pgbench -n -h 127.0.0.1 -p "$IT_PORT" -U postgres -c 4 -T 20 -f "$IT_WORK/load.sql" "$IT_DB" > "$IT_WORK/load.out" 2>&1 &
wait_for 30 t "SELECT count(*) > 100 FROM items WHERE payload = 'load'"
as_pg_ctl() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }
as_pg_ctl "$BIN/pg_ctl" -D "$IT_DATA" -m immediate stop >/dev/null
wait || true
as_pg_ctl "$BIN/pg_ctl" -D "$IT_DATA" -l "$IT_DATA/server.log" -w start >/dev/null
wait_ready
echo "  after immediate stop: $(consistent)"
expect_eq "immediate stop: consistent" "$(consistent | grep -o '0 rows without event, 0 events without row')" "0 rows without event, 0 events without row"
[ "$(sql -c "SELECT count(*) FROM items WHERE payload = 'load'")" -gt 0 ] || fail "the load wrote nothing before the stop"

# 3. Capture keeps working.
sql -c "INSERT INTO items (payload) VALUES ('after recovery')"
expect_eq "capture after recovery" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events e JOIN items i ON i.id::text = e.entity_id WHERE i.payload = 'after recovery'")" 1
