# Logical replication into an audited table (API §8): the apply worker, and
# the table synchronisation worker's initial COPY, fire row triggers only
# (TRUNCATE: statement triggers); every change they apply has exactly one
# event, actor System, with the table's redaction. Publisher and subscriber
# are two databases of the test cluster (wal_level = logical).
pub="${IT_DB}_pub"
slot="${IT_DB}_slot"
sub="${IT_DB}_sub"
cleanup() {
  sql -c "ALTER SUBSCRIPTION $sub DISABLE" -c "ALTER SUBSCRIPTION $sub SET (slot_name = NONE)" \
      -c "DROP SUBSCRIPTION $sub" >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do
    sql_db "$pub" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                      WHERE database = '$pub' AND NOT active" >/dev/null 2>&1 || true
    [ "$(sql_db postgres -c "SELECT count(*) FROM pg_replication_slots WHERE database = '$pub'" 2>/dev/null)" = 0 ] && break
    sleep 1
  done
  sql_db postgres -c "DROP DATABASE IF EXISTS $pub" >/dev/null 2>&1 || true
}
trap cleanup EXIT

sql_db postgres -c "DROP DATABASE IF EXISTS $pub" -c "CREATE DATABASE $pub" 2>/dev/null
sql_db "$pub" >/dev/null <<SQL
CREATE TABLE accounts (id int PRIMARY KEY, owner text, pin text, balance numeric);
INSERT INTO accounts VALUES (1, 'ann', '1111', 10), (2, 'bob', '2222', 20);
CREATE TABLE orders (id int, region text, total numeric, PRIMARY KEY (id, region));
CREATE PUBLICATION it_pub FOR TABLE accounts, orders;
-- Made here, not by CREATE SUBSCRIPTION: in one cluster that would wait
-- for its own transaction.
SELECT 1 FROM pg_create_logical_replication_slot('$slot', 'pgoutput');
SQL

sql <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, pin text, balance numeric);
SELECT audit_trail.enable('accounts', redact => '{pin}');
-- Partitioned here: the apply worker routes rows to the partitions, whose
-- row triggers are clones of the table's.
CREATE TABLE orders (id int, region text, total numeric, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu');
CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us');
SELECT audit_trail.enable('orders');
CREATE SUBSCRIPTION $sub CONNECTION 'host=127.0.0.1 port=$IT_PORT user=postgres dbname=$pub'
    PUBLICATION it_pub WITH (create_slot = false, slot_name = '$slot', copy_data = true);
SQL
# The initial copy, by the table synchronisation worker.
wait_for 60 "0" "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'"
expect_eq "initial copy: one INSERT event per row" \
  "$(sql -c "SELECT string_agg(entity_id || ':' || (after ->> 'pin'), ' ' ORDER BY entity_id) FROM audit_trail.events WHERE action = 'INSERT'")" \
  "1:[REDACTED] 2:[REDACTED]"

sql_db "$pub" <<'SQL'
INSERT INTO accounts VALUES (3, 'cy', '3333', 30);
UPDATE accounts SET balance = 11 WHERE id = 1;
UPDATE accounts SET owner = owner WHERE id = 2;   -- changes nothing: no event
DELETE FROM accounts WHERE id = 2;
UPDATE accounts SET pin = '3334' WHERE id = 3;
BEGIN;
INSERT INTO accounts VALUES (4, 'di', '4444', 40), (5, 'ed', '5555', 50);
UPDATE accounts SET balance = balance + 1 WHERE id IN (4, 5);
COMMIT;
INSERT INTO orders VALUES (1, 'eu', 10), (2, 'us', 20);
UPDATE orders SET total = 21 WHERE id = 2;
DELETE FROM orders WHERE id = 1;
TRUNCATE accounts;
TRUNCATE orders;
INSERT INTO accounts VALUES (99, 'sentinel', NULL, 0);
SQL
wait_for 60 "1" "SELECT count(*) FROM accounts WHERE id = 99"

expect_eq "subscriber rows" "$(sql -c "SELECT string_agg(id::text, ',') FROM accounts")" "99"
expect_eq "events, in order" \
  "$(sql -c "SELECT string_agg(action || ':' || coalesce(entity_id, '-'), ' ' ORDER BY id) FROM audit_trail.events
             WHERE entity_type = 'public.accounts'")" \
  "INSERT:1 INSERT:2 INSERT:3 UPDATE:1 DELETE:2 UPDATE:3 INSERT:4 INSERT:5 UPDATE:4 UPDATE:5 TRUNCATE:- INSERT:99"
expect_eq "actor System, db_user the subscription's owner" \
  "$(sql -c "SELECT string_agg(DISTINCT actor || '/' || db_user, ',') FROM audit_trail.events WHERE entity_type = 'public.accounts'")" \
  "System/postgres"
expect_eq "UPDATE: changed columns only" \
  "$(sql -c "SELECT changed::text || ' ' || before::text || ' ' || after::text FROM audit_trail.events WHERE action = 'UPDATE' AND entity_id = '1'")" \
  '{balance} {"balance": 10} {"balance": 11}'
expect_eq "redacted on the subscriber too" \
  "$(sql -c "SELECT changed::text || ' ' || before::text || ' ' || after::text FROM audit_trail.events WHERE action = 'UPDATE' AND entity_id = '3'")" \
  '{pin} {"pin": "[REDACTED]"} {"pin": "[REDACTED]"}'
expect_eq "DELETE: the whole old row" \
  "$(sql -c "SELECT before::text FROM audit_trail.events WHERE action = 'DELETE' AND entity_type = 'public.accounts'")" \
  '{"id": 2, "pin": "[REDACTED]", "owner": "bob", "balance": 20}'
expect_eq "partitioned subscriber table: events name it, TRUNCATE is one event" \
  "$(sql -c "SELECT string_agg(action || ':' || coalesce(entity_id, details::text), ' ' ORDER BY id) FROM audit_trail.events
             WHERE entity_type = 'public.orders'")" \
  'INSERT:[1,"eu"] INSERT:[2,"us"] UPDATE:[2,"us"] DELETE:[1,"eu"] TRUNCATE:{"partitions": ["public.orders_eu", "public.orders_us"]}'
expect_eq "one transaction on the publisher, one on the subscriber" \
  "$(sql -c "SELECT count(DISTINCT txid) FROM audit_trail.events WHERE entity_id IN ('4', '5')")" 1

cleanup
trap - EXIT
expect_eq "no replication slot left" "$(sql_db postgres -c "SELECT count(*) FROM pg_replication_slots")" 0
expect_eq "no subscription left" "$(sql -c "SELECT count(*) FROM pg_subscription")" 0
sql -c "DROP TABLE accounts"
