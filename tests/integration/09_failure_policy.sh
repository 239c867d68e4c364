# When an event cannot be written, the change fails with the error instead of
# committing without its event. Here the log's partition is locked by another
# session and the writer's lock_timeout expires.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE orders (id int PRIMARY KEY, status text);
SELECT audit_trail.enable('orders');
INSERT INTO orders VALUES (1, 'new');
SQL
part=$(sql -c "SELECT partition FROM audit_trail.partitions WHERE now() >= range_start AND now() < range_end")
sql -c "BEGIN" -c "LOCK TABLE $part IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null 2>&1 &
wait_running 'SELECT pg_sleep(6)'
if out=$(sql -c "SET lock_timeout = '1s'" -c "UPDATE orders SET status = 'paid' WHERE id = 1" 2>&1); then
  fail "the update committed while its event could not be written"
fi
echo "  the change failed: $(echo "$out" | grep -o 'ERROR:.*' | head -1)"
wait
expect_eq "row unchanged" "$(sql -c "SELECT status FROM orders WHERE id = 1")" new
expect_eq "no event" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE action = 'UPDATE'")" 0
sql -c "UPDATE orders SET status = 'paid' WHERE id = 1"
expect_eq "with the log writable again, change and event together" \
  "$(sql -c "SELECT (SELECT status FROM orders) || ' ' || (SELECT count(*) FROM audit_trail.events WHERE action = 'UPDATE')")" "paid 1"
