# The live feed with audit_trail.notify_payload = summary (one payload per
# event; the default, minimal, is tested in 17_feed), seen from a real LISTEN
# session: committed events only, in order, with the contract's fields; a
# huge key still fits NOTIFY's limit.
sql <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE orders (id text PRIMARY KEY, status text);
SELECT audit_trail.enable('orders');
ALTER DATABASE $IT_DB SET audit_trail.notify_channel = 'audit_feed';
ALTER DATABASE $IT_DB SET audit_trail.notify_payload = 'summary';
SQL
# psql prints notifications after each command: LISTEN, then wait, then a
# last command to flush what arrived while waiting.
sql -c "LISTEN audit_feed" -c "SELECT pg_sleep(4)" -c "SELECT 'done'" > "$IT_WORK/listener.out" 2>&1 &
listener=$!
wait_running 'SELECT pg_sleep(4)'
sql <<SQL
BEGIN;
SELECT audit_trail.set_context(actor => 'feed-tester', tenant => 'acme', service => 'billing', client_ip => '203.0.113.7');
INSERT INTO orders VALUES ('o-1', 'new');
UPDATE orders SET status = 'paid' WHERE id = 'o-1';
COMMIT;
BEGIN;
INSERT INTO orders VALUES ('rolled-back', 'new');
ROLLBACK;
BEGIN;
INSERT INTO orders VALUES ('o-2', 'new');
SAVEPOINT s;
INSERT INTO orders VALUES ('savepoint-rolled-back', 'new');
ROLLBACK TO s;
COMMIT;
INSERT INTO orders VALUES (repeat('k', 50000), 'huge key');
SQL
wait $listener
grep -o 'payload "{.*}"' "$IT_WORK/listener.out" | sed 's/^payload "//; s/"$//' > "$IT_WORK/payloads.jsonl"
python3 - "$IT_WORK/payloads.jsonl" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
ids = [e["entity_id"][:10] for e in events]
assert ids == ["o-1", "o-1", "o-2", "kkkkkkkkkk"], ids
assert [e["action"] for e in events] == ["INSERT", "UPDATE", "INSERT", "INSERT"]
for e in events:
    assert set(e) >= {"id", "occurred_at", "action", "entity_type", "entity_id", "actor",
                      "tenant", "entity_label", "client_ip", "service"}, e
    assert e["entity_type"] == "public.orders"
assert events[0]["actor"] == "feed-tester"
assert (events[0]["tenant"], events[0]["service"], events[0]["client_ip"]) == ("acme", "billing", "203.0.113.7"), events[0]
assert events[2]["tenant"] is None
assert sorted(e["id"] for e in events) == [e["id"] for e in events]
assert events[-1].get("truncated") is True
print(f"  {len(events)} notifications: committed events only, in order; rolled-back ones never sent")
PY
expect_eq "largest payload under 8000 bytes" "$(awk '{ if (length($0) > m) m = length($0) } END { print (m < 8000) }' "$IT_WORK/payloads.jsonl")" 1
sql -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_channel" -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_payload"
