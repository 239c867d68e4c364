# API §10 with real sessions: the feed misses nothing and repeats nothing
# however transactions interleave (a transaction that captured first and
# commits last; a consumer's own transaction), under 8 pgbench writers; the
# live feed is a wake-up that tells a LISTENer without SELECT nothing; two
# check_alerts() at once record each firing once; the README's SIEM recipe
# ships JSON lines that a real client reads back exactly.
sql <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL, note text);
INSERT INTO acct SELECT g, 1000, NULL FROM generate_series(1, 100) g;
SELECT audit_trail.enable('acct');
CREATE ROLE feed_outsider LOGIN;
CREATE ROLE feed_reader LOGIN;
GRANT SELECT ON audit_trail.events TO feed_reader;
SQL

echo "1. out of order: captured first, committed last"
p0=$(sql -c "SELECT audit_trail.feed_position()")
# A: captures (takes the smaller id), then waits before committing.
sql -c "BEGIN" -c "UPDATE acct SET note = 'A' WHERE id = 1" -c "SELECT pg_sleep(3)" -c "COMMIT" &
a=$!
wait_running 'SELECT pg_sleep(3)'
# B: captures later (a larger id) and commits first.
sql -c "UPDATE acct SET note = 'B' WHERE id = 2"
p1=$(sql -c "SELECT audit_trail.feed_position()")
first=$(sql -c "SELECT string_agg(entity_id || ':' || id, ',' ORDER BY id) FROM audit_trail.feed('$p0', '$p1')")
wait $a
p2=$(sql -c "SELECT audit_trail.feed_position()")
second=$(sql -c "SELECT string_agg(entity_id, ',' ORDER BY id) FROM audit_trail.feed('$p1', '$p2')")
a_id=$(sql -c "SELECT id FROM audit_trail.events WHERE entity_id = '1' AND operation = 'UPDATE'")
b_id=$(sql -c "SELECT id FROM audit_trail.events WHERE entity_id = '2' AND operation = 'UPDATE'")
expect_eq "A's id is smaller than B's" "$(( a_id < b_id ))" 1
expect_eq "first batch: only B (A not committed yet)" "$first" "2:$b_id"
expect_eq "second batch: A, though its id is smaller than one already read" "$second" "1"
# An id watermark would have missed A: ids after the last one read.
expect_eq "an id watermark misses it" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE id > $b_id AND entity_id = '1'")" 0

echo "2. a position taken inside a transaction that has written (another commits after it)"
sql -c "BEGIN" -c "UPDATE acct SET note = 'C' WHERE id = 3" -c "SELECT pg_sleep(2)" \
    -c "SELECT audit_trail.feed_position()" -c "COMMIT" > "$IT_WORK/own.out" &
c=$!
wait_running 'SELECT pg_sleep(2)'
sql -c "UPDATE acct SET note = 'D' WHERE id = 4"
wait $c
p_own=$(grep '/' "$IT_WORK/own.out" | tail -1)
# The snapshot of C's own position would call C's transaction visible
# (another finished after it took its id): feed_position lists it in flight.
expect_eq "C's own events come after its position" \
  "$(sql -c "SELECT string_agg(entity_id, ',' ORDER BY id) FROM audit_trail.feed('$p_own') WHERE operation = 'UPDATE'")" "3"

echo "3. REPEATABLE READ: a position newer than the transaction is refused"
newer=$(sql -c "SELECT audit_trail.feed_position()")
out=$(sql -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT 1" -c "\\! psql -X -q -At -h 127.0.0.1 -p $IT_PORT -U postgres -d $IT_DB -c \"UPDATE acct SET note = 'E' WHERE id = 5\"" \
          -c "SELECT count(*) FROM audit_trail.feed('$p0', audit_trail.feed_position())" -c "COMMIT" 2>&1 || true)
expect_eq "own snapshot's position accepted" "$(echo "$out" | tail -1)" "$(sql -c "SELECT count(*) FROM audit_trail.feed('$p0', '$newer')")"
late=$(sql -c "SELECT audit_trail.feed_position()")
out=$(sql 2>&1 <<SQL || true
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT 1;
\! psql -X -q -At -h 127.0.0.1 -p $IT_PORT -U postgres -d $IT_DB -c "UPDATE acct SET note = 'F' WHERE id = 6" -c "SELECT audit_trail.feed_position()" > $IT_WORK/later.pos
\set later \`cat $IT_WORK/later.pos\`
SELECT count(*) FROM audit_trail.feed('$late', :'later');
COMMIT;
SQL
)
case "$out" in
  *"is newer than this transaction's snapshot"*) echo "  a later position in an older REPEATABLE READ snapshot: refused (22023)" ;;
  *) fail "expected a refusal, got: $out" ;;
esac

echo "4. 8 pgbench writers, a consumer polling in batches of at most 500"
cat > "$IT_WORK/write.sql" <<'EOF'
\set a random(1, 100)
\set b random(1, 100)
BEGIN;
UPDATE acct SET balance = balance - 1 WHERE id = :a;
UPDATE acct SET balance = balance + 1 WHERE id = :b;
SELECT pg_sleep(random() * 0.01);
COMMIT;
EOF
start=$(sql -c "SELECT audit_trail.feed_position()")
echo "$start" > "$IT_WORK/consumer.pos"
: > "$IT_WORK/consumer.ids"
pgbench -n -h 127.0.0.1 -p "$IT_PORT" -U postgres -c 8 -j 2 -T 12 -f "$IT_WORK/write.sql" "$IT_DB" > "$IT_WORK/pgbench.out" 2>&1 &
bench=$!
# The consumer: keeps its position in a file; a batch cut short goes on
# from feed_position_after, a whole one from upto.
poll() {
  local pos upto got n last
  pos=$(cat "$IT_WORK/consumer.pos")
  upto=$(sql -c "SELECT audit_trail.feed_position()")
  got=$(sql -c "SELECT id FROM audit_trail.feed('$pos', '$upto', 500)")
  n=$(printf '%s' "$got" | grep -c . || true)
  [ "$n" -gt 0 ] && printf '%s\n' "$got" >> "$IT_WORK/consumer.ids"
  if [ "$n" -eq 500 ]; then
    last=$(printf '%s\n' "$got" | tail -1)
    sql -c "SELECT audit_trail.feed_position_after('$pos', '$upto', $last)" > "$IT_WORK/consumer.pos"
  else
    echo "$upto" > "$IT_WORK/consumer.pos"
  fi
  echo "$n"
}
polls=0; cut=0
while kill -0 $bench 2>/dev/null; do
  n=$(poll); polls=$((polls + 1)); [ "$n" -eq 500 ] && cut=$((cut + 1))
  sleep 0.2
done
wait $bench || fail "pgbench failed: $(tail -5 "$IT_WORK/pgbench.out")"
# Drain: until a poll returns a batch that is not full and no writer is left.
while [ "$(poll)" -eq 500 ]; do :; done
poll > /dev/null
grep -E "number of transactions actually processed" "$IT_WORK/pgbench.out" | sed 's/^ */  /'
echo "  $polls polls while writing, $cut batches cut short by max_events"
sort -n "$IT_WORK/consumer.ids" > "$IT_WORK/consumer.sorted"
sql -c "SELECT id FROM audit_trail.feed('$start') ORDER BY id" > "$IT_WORK/log.sorted"
expect_eq "events written while consuming" "$(( $(wc -l < "$IT_WORK/log.sorted") > 1000 ))" 1
expect_eq "consumer saw each event once" "$(uniq -d "$IT_WORK/consumer.sorted" | wc -l)" 0
expect_eq "consumer's events equal the log's (count)" "$(wc -l < "$IT_WORK/consumer.sorted")" "$(wc -l < "$IT_WORK/log.sorted")"
expect_eq "consumer's events equal the log's (ids)" "$(cmp -s "$IT_WORK/consumer.sorted" "$IT_WORK/log.sorted" && echo same)" same
expect_eq "and the log's are every UPDATE since the start" "$(wc -l < "$IT_WORK/log.sorted")" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE id > (SELECT id FROM audit_trail.events WHERE entity_id = '6' AND after->>'note' = 'F')")"

echo "5. LISTEN: a wake-up per transaction, no event data for a role that cannot read the log"
sql -c "ALTER DATABASE $IT_DB SET audit_trail.notify_channel = 'audit_wake'"
sql_as feed_outsider -c "LISTEN audit_wake" -c "SELECT pg_sleep(3)" -c "SELECT 'done'" > "$IT_WORK/outsider.out" 2>&1 &
listener=$!
wait_running 'SELECT pg_sleep(3)'
sql -c "BEGIN" -c "SELECT audit_trail.set_context(actor => 'secret-actor@tenant-a')" \
    -c "UPDATE acct SET note = 'tenant-a-secret' WHERE id <= 3" -c "COMMIT"
sql -c "UPDATE acct SET note = 'x' WHERE id = 10"
wait $listener
grep -o 'payload "{.*}"' "$IT_WORK/outsider.out" | sed 's/^payload "//; s/"$//' > "$IT_WORK/wake.jsonl"
python3 - "$IT_WORK/wake.jsonl" <<'PY'
import json, sys
wakes = [json.loads(l) for l in open(sys.argv[1])]
assert [w["events"] for w in wakes] == [3, 1], wakes
for w in wakes:
    assert set(w) == {"txid", "events"}, w
assert wakes[0]["txid"] < wakes[1]["txid"], wakes
print(f"  {len(wakes)} wake-ups, one per transaction: {wakes}")
PY
expect_eq "nothing of the events in what the outsider heard" "$(grep -c 'secret\|tenant-a\|acct' "$IT_WORK/outsider.out")" 0
# The wake-up names the transaction; a reader gets its events through feed.
txid=$(head -1 "$IT_WORK/wake.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["txid"])')
expect_eq "a reader finds that transaction's events" "$(sql_as feed_reader -c "SELECT count(*) FROM audit_trail.events WHERE txid = $txid")" 3
expect_eq "the outsider cannot" "$(sql_as feed_outsider -c "SELECT count(*) FROM audit_trail.feed('$p0')" 2>&1 | grep -c 'permission denied')" 1
# summary (superuser only): the 0.4.0 payload per event, and more.
# (Set before the library is loaded, the value waits as a placeholder and
# is thrown out with a warning when the library defines the setting.)
expect_eq "only a superuser may choose summary" \
  "$(sql_as feed_outsider -c "SET audit_trail.notify_payload = 'summary'" -c "SELECT audit_trail.log_event('PROBE') IS NOT NULL" \
       -c "SHOW audit_trail.notify_payload" -c "SET audit_trail.notify_payload = 'summary'" 2>&1 | tr '\n' ' ')" \
  "WARNING:  permission denied to set parameter \"audit_trail.notify_payload\" t minimal ERROR:  permission denied to set parameter \"audit_trail.notify_payload\" "
sql -c "ALTER DATABASE $IT_DB RESET audit_trail.notify_channel"

echo "6. two check_alerts() at once: each firing recorded once"
sql <<'SQL'
SELECT audit_trail.add_alert('big_moves', ARRAY['UPDATE'], entity_types => ARRAY['public.acct'],
                             changed_any => ARRAY['balance'], threshold => 50, within => '1 hour');
SQL
# 800 matching updates exactly: the rows locked in id order, so that no
# deadlock aborts a client (write.sql's random order did, once in CI: 15).
cat > "$IT_WORK/write_ordered.sql" <<'EOF'
\set a random(1, 100)
\set b random(1, 100)
BEGIN;
UPDATE acct SET balance = balance - 1 WHERE id = least(:a, :b);
UPDATE acct SET balance = balance + 1 WHERE id = greatest(:a, :b);
COMMIT;
EOF
pgbench -n -h 127.0.0.1 -p "$IT_PORT" -U postgres -c 4 -j 2 -t 100 -f "$IT_WORK/write_ordered.sql" "$IT_DB" > "$IT_WORK/pgbench6.out" 2>&1 \
  || fail "pgbench: $(tail -3 "$IT_WORK/pgbench6.out")"
for i in 1 2; do
  sql -c "BEGIN" -c "SELECT count(*) FROM audit_trail.check_alerts()" -c "SELECT pg_sleep(1)" -c "COMMIT" > "$IT_WORK/check$i.out" &
done
wait
fired=$(( $(head -1 "$IT_WORK/check1.out") + $(head -1 "$IT_WORK/check2.out") ))
expect_eq "firings returned by both runs together" "$fired" 16
expect_eq "ALERT events recorded" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE action = 'ALERT'")" 16
expect_eq "one of the runs found nothing left" \
  "$( (head -1 "$IT_WORK/check1.out"; head -1 "$IT_WORK/check2.out") | sort -n | head -1)" 0

echo "6b. a window holds its events while a transaction that may add to it is open"
sql -c "SELECT audit_trail.add_alert('pair', ARRAY['PAIR_EVT'], threshold => 2, within => '3 seconds')" >/dev/null
# L logs at t=0 and commits at t=6; S logs just after and commits at once;
# a run at t=3+ sees S only (L in flight), a run after L's commit sees L.
sql -c "BEGIN" -c "SELECT audit_trail.log_event('PAIR_EVT') IS NOT NULL" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null &
l=$!
wait_running 'SELECT pg_sleep(6)'
sql -c "SELECT audit_trail.log_event('PAIR_EVT') IS NOT NULL" >/dev/null
sleep 3
run1=$(sql -c "SELECT count(*) FROM audit_trail.check_alerts() WHERE alert = 'pair'")
wait $l
run2=$(sql -c "SELECT string_agg(alert || ':' || events, ',') FROM audit_trail.check_alerts()")
expect_eq "two events under 1 s apart, one committed 6 s later: fired once, after both" "$run1|$run2" "0|pair:2"
sql -c "SELECT audit_trail.drop_alert('pair')" >/dev/null

echo "7. the SIEM recipe, as the README writes it, under writers; read back with psql \\copy"
sql -c "CREATE TABLE siem_position (consumer text PRIMARY KEY, pos text NOT NULL)"
sql -c "INSERT INTO siem_position SELECT 'siem', audit_trail.feed_position()"
first_pos=$(sql -c "SELECT pos FROM siem_position")
: > "$IT_WORK/audit.jsonl"
ship() {
  # --- README: SIEM recipe (begin) ---
  psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$IT_DB" >> "$IT_WORK/audit.jsonl" <<'PSQL'
BEGIN;
SELECT pos AS since, audit_trail.feed_position() AS upto FROM siem_position WHERE consumer = 'siem' FOR UPDATE \gset
SELECT to_jsonb(e) FROM audit_trail.feed(:'since', :'upto') e;
UPDATE siem_position SET pos = :'upto' WHERE consumer = 'siem';
COMMIT;
PSQL
  # --- README: SIEM recipe (end) ---
}
pgbench -n -h 127.0.0.1 -p "$IT_PORT" -U postgres -c 8 -j 2 -T 8 -f "$IT_WORK/write.sql" "$IT_DB" > /dev/null 2>&1 &
bench=$!
shipped=0
while kill -0 $bench 2>/dev/null; do ship; shipped=$((shipped + 1)); sleep 0.3; done
wait $bench
ship; ship
sql <<SQL
CREATE TABLE siem_read (line jsonb);
-- One JSON document a line, read as it is (no COPY escapes, no CSV quotes).
\copy siem_read FROM '$IT_WORK/audit.jsonl' (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
SQL
echo "  $shipped shipments, $(wc -l < "$IT_WORK/audit.jsonl") lines"
expect_eq "no event twice in the file" "$(sql -c "SELECT count(*) - count(DISTINCT line->>'id') FROM siem_read")" 0
expect_eq "the file holds exactly the events committed since the first position" \
  "$(sql -c "SELECT count(*) FROM (SELECT (line->>'id')::bigint FROM siem_read EXCEPT SELECT id FROM audit_trail.feed('$first_pos', (SELECT pos FROM siem_position))) x")|$(sql -c "SELECT count(*) FROM (SELECT id FROM audit_trail.feed('$first_pos', (SELECT pos FROM siem_position)) EXCEPT SELECT (line->>'id')::bigint FROM siem_read) x")" "0|0"
expect_eq "and the lines are the events as stored" \
  "$(sql -c "SELECT count(*) FROM siem_read r JOIN audit_trail.events e ON e.id = (r.line->>'id')::bigint WHERE to_jsonb(e) = r.line")" \
  "$(sql -c "SELECT count(*) FROM siem_read")"
