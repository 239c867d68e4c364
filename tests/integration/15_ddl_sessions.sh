# DDL in several sessions (API §8): an old snapshot does not let DDL judge by
# stale settings, enable() and a concurrent ATTACH leave no partition
# without capture, and DDL on one table never waits for another's locks.

# A session that holds a transaction open, fed through a fifo; its output
# goes to $IT_WORK/<name>.out.
session_start() { # session_start NAME
  mkfifo "$IT_WORK/$1.in"
  sql -v ON_ERROR_STOP=0 < "$IT_WORK/$1.in" > "$IT_WORK/$1.out" 2>&1 &
  eval "exec {fd_$1}>\"$IT_WORK/$1.in\""
}
session_send() { local fd="fd_$1"; echo "$2" >&"${!fd}"; }
session_end() { local fd="fd_$1"; session_send "$1" '\q'; eval "exec ${!fd}>&-"; }

sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE rr (id int PRIMARY KEY, v text);
CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE TABLE q (id int PRIMARY KEY, v text);
CREATE TABLE other (id int PRIMARY KEY);
SELECT audit_trail.enable('other');
SQL

# 1. A REPEATABLE READ transaction that began before enable(): its DDL fails
#    with a serialization failure instead of being judged by settings it
#    cannot see, and the capture triggers stay.
session_start old
session_send old "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'snapshot taken';"
wait_for 10 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
sql -c "SELECT audit_trail.enable('rr')" >/dev/null
session_send old "DROP TRIGGER audit_trail_insert ON rr;"
session_send old "ROLLBACK;"
session_end old
wait
grep -q "ERROR:  could not serialize access due to a concurrent change of pg_audit_trail's settings" "$IT_WORK/old.out" \
  || fail "old snapshot: $(cat "$IT_WORK/old.out")"
# ... while DDL on other tables in such a transaction goes on.
session_start bystander
session_send bystander "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 'snapshot taken';"
wait_for 10 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
sql -c "CREATE TABLE late (id int PRIMARY KEY)" -c "SELECT audit_trail.enable('late')" >/dev/null
session_send bystander "CREATE TABLE unrelated (id int); DROP TABLE unrelated; COMMIT;"
session_end bystander
wait
grep -q "ERROR" "$IT_WORK/bystander.out" && fail "unrelated DDL refused: $(cat "$IT_WORK/bystander.out")"
echo "  unrelated DDL in an old snapshot: accepted"
expect_eq "capture trigger kept" "$(sql -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'rr'::regclass AND tgname = 'audit_trail_insert'")" 1
sql -c "INSERT INTO rr VALUES (1, 'a')"
expect_eq "captured" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.rr'")" 1

# 2. enable() while another session's ATTACH PARTITION is not yet committed:
#    enable() waits for it, then gives the new partition capture too.
session_start attacher
session_send attacher "BEGIN; ALTER TABLE p ATTACH PARTITION q FOR VALUES FROM (100) TO (200);"
wait_for 10 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
sql -c "SELECT audit_trail.enable('p')" > "$IT_WORK/enable.out" 2>&1 &
enabler=$!
wait_for 10 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
session_send attacher "COMMIT;"
session_end attacher
wait "$enabler" || fail "enable: $(cat "$IT_WORK/enable.out")"
wait
expect_eq "attached partition has capture" \
  "$(sql -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'q'::regclass AND tgfoid = 'audit_trail.capture()'::regprocedure AND tgparentid = 0 AND tgtype::int & 1 = 0")" 4
sql -c "INSERT INTO q VALUES (150, 'x')"
expect_eq "row in the late partition captured" \
  "$(sql -c "SELECT entity_type || ' ' || entity_id FROM audit_trail.events WHERE action = 'INSERT' AND entity_id = '150'")" "public.p 150"
expect_eq "check() clean" "$(sql -c "SELECT count(*) FROM audit_trail.check()")" 0

# 3. DDL on one table, and a DROP of an unrelated one, never wait for the
#    locks held on another audited table or its partitions.
session_start locker
session_send locker "BEGIN; LOCK TABLE p1 IN ACCESS EXCLUSIVE MODE; LOCK TABLE rr IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"
wait_for 10 1 "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
sql <<'SQL'
SET lock_timeout = '3s';
CREATE TABLE junk (id int);
DROP TABLE junk;
ALTER TABLE other ADD COLUMN note text;
ALTER TABLE other RENAME TO other2;
CREATE TRIGGER noisy AFTER INSERT ON other2 FOR EACH STATEMENT EXECUTE FUNCTION suppress_redundant_updates_trigger();
DROP TRIGGER noisy ON other2;
SQL
session_send locker "ROLLBACK;"
session_end locker
wait
echo "  unrelated DDL did not wait"
expect_eq "rename followed" "$(sql -c "SELECT entity_type FROM audit_trail.table_names WHERE relid = 'other2'::regclass AND valid_until IS NULL")" "public.other2"
