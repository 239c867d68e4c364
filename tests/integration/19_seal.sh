# The sealed trail (API §13) across sessions: a late committer sealed once
# by the next seal, two seal() at once under writers, partitions dropped by
# retention (fine) or by hand (reported), a detached-and-edited partition,
# and a dump restored elsewhere that still verifies.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE acct (id int PRIMARY KEY, v int);
SELECT audit_trail.enable('acct');
INSERT INTO acct SELECT g, g FROM generate_series(1, 100) g;
SQL
expect_eq "first seal" "$(sql -c "SELECT seal_id || ':' || (events > 100) FROM audit_trail.seal()")" "1:true"

# A late committer: captured first (small id), committed after a seal.
sql -c "SELECT pg_advisory_lock(1919), pg_sleep(120)" >/dev/null 2>&1 &
holder=$!
wait_for 30 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1919 AND granted"
sql -c "BEGIN; INSERT INTO acct VALUES (1000, 1); SELECT pg_advisory_lock(1919); COMMIT;" >/dev/null &
late=$!
wait_for 30 1 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1919 AND NOT granted"
sql -c "INSERT INTO acct VALUES (1001, 1)"
expect_eq "seal without the late committer" "$(sql -c "SELECT events FROM audit_trail.seal()")" 1
sql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$late" || fail "late committer did not commit"
wait "$holder" 2>/dev/null || true
late_id=$(sql -c "SELECT id FROM audit_trail.events WHERE entity_id = '1000'")
expect_eq "late id below the sealed one" "$(sql -c "SELECT $late_id < (SELECT id FROM audit_trail.events WHERE entity_id = '1001')")" t
expect_eq "next seal takes the late committer" "$(sql -c "SELECT events FROM audit_trail.seal()")" 1
expect_eq "sealed exactly once" "$(sql -c "SELECT count(*) FROM audit_trail.sealed_events s, unnest(s.event_ids) i WHERE i = $late_id")" 1

# A prepared transaction is a late committer too.
sql -c "BEGIN; INSERT INTO acct VALUES (1002, 1); PREPARE TRANSACTION 'seal_late';"
expect_eq "nothing to seal while prepared" "$(sql -c "SELECT count(*) FROM audit_trail.seal()")" 0
sql -c "COMMIT PREPARED 'seal_late'"
expect_eq "sealed after COMMIT PREPARED" "$(sql -c "SELECT events FROM audit_trail.seal()")" 1

# Two seal() at once, many times, while writers write.
for w in 1 2; do
  ( for i in $(seq 1 40); do sql -c "INSERT INTO acct SELECT 10000 * $w + $i * 10 + g, 0 FROM generate_series(1, 5) g" >/dev/null; done ) &
done
for i in $(seq 1 15); do
  sql -c "SELECT * FROM audit_trail.seal()" >/dev/null &
  sql -c "SELECT * FROM audit_trail.seal()" >/dev/null &
  wait %3 %4 2>/dev/null || true
done
wait
sql -c "SELECT * FROM audit_trail.seal()" >/dev/null
expect_eq "seals numbered without gaps" "$(sql -c "SELECT max(seal_id) = count(*) FROM audit_trail.seal_chain")" t
expect_eq "no event sealed twice" "$(sql -c "SELECT count(*) = count(DISTINCT i) FROM audit_trail.sealed_events s, unnest(s.event_ids) i")" t
expect_eq "every event sealed" "$(sql -c "SELECT count(*) FROM audit_trail.events e WHERE NOT EXISTS (SELECT 1 FROM audit_trail.sealed_events s WHERE e.id = ANY (s.event_ids))")" 0
expect_eq "intact" "$(sql -c "SELECT count(*) FROM audit_trail.verify()")" 0

# Retention keeps the seals and records what it removed.
sql <<'SQL'
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01');
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) SELECT '2020-01-15', 'OLD', 'x', 'x' FROM generate_series(1, 10);
SELECT count(*) FROM audit_trail.apply_retention(keep => '90 days', archive => true);
SQL
expect_eq "archived by retention, recorded" "$(sql -c "SELECT partition || ' ' || action || ' ' || events FROM audit_trail.removed_partitions")" \
  "audit_trail.events_p20200101 archived 10"
# Retention is no tampering; the ten events written by hand with a time
# before this database's origin are reported (in the log before, in the
# archive now: format 2 seals read archives), and nothing else.
expect_eq "retention is no tampering" \
  "$(sql -c "SELECT count(*) FILTER (WHERE seal_id IS NOT NULL OR event_id IS NULL) || ' ' || count(*) FILTER (WHERE problem LIKE 'not sealed: older than this database''s origin%') FROM audit_trail.verify()")" "0 10"
sql -c "SELECT count(*) FROM audit_trail.seal()" >/dev/null

# The partition holding the sealed events, detached, edited and attached
# again by a superuser (the extension's event triggers and the guard
# switched off through the catalog).
part=$(sql -c "SELECT tableoid::regclass FROM audit_trail.events WHERE entity_id = '1'")
bounds=$(sql -c "SELECT format('FOR VALUES FROM (%L) TO (%L)', range_start, range_end) FROM audit_trail._partition_bounds() WHERE partition = '$part'::regclass")
edited=$(sql -c "SELECT id FROM audit_trail.events WHERE entity_id = '2' AND action = 'INSERT'")
sql <<SQL
UPDATE pg_event_trigger SET evtenabled = 'D' WHERE evtname LIKE 'audit_trail%';
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
SQL
sql <<SQL
ALTER TABLE audit_trail.events DETACH PARTITION $part;
UPDATE $part SET after = '{"id": 2, "v": 999}' WHERE id = $edited;
ALTER TABLE audit_trail.events ATTACH PARTITION $part $bounds;
SQL
expect_eq "detached-and-edited partition reported" \
  "$(sql -c "SELECT string_agg(event_id || ' ' || problem, '; ') FROM audit_trail.verify() WHERE seal_id IS NOT NULL")" "$edited changed"

# The same partition dropped: every sealed event in it, and the partition.
n_in=$(sql -c "SELECT count(*) FROM $part")
sql -c "DROP TABLE $part"
sql <<SQL
UPDATE pg_event_trigger SET evtenabled = 'A' WHERE evtname LIKE 'audit_trail%';
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
SQL
expect_eq "dropped partition: events removed" "$(sql -c "SELECT count(*) FROM audit_trail.verify() WHERE problem = 'removed'")" "$n_in"
expect_eq "dropped partition: partition missing" "$(sql -c "SELECT string_agg(problem, '; ') FROM audit_trail.verify() WHERE event_id IS NULL")" \
  "partition $part is missing: not removed by retention"

# Dump and restore: the seals still verify (they belong to the series of
# transaction ids before the restore), and sealing goes on after it.
problems_before=$(sql -c "SELECT count(*) FROM audit_trail.verify()")
# An event committed after the last seal and before the dump: not sealed
# before the restore, and older than the restored database's origin, so
# never sealed after it either. verify() says so (one more row there).
sql -c "INSERT INTO acct VALUES (4999, 1)"
unsealed=$(sql -c "SELECT id FROM audit_trail.events WHERE entity_id = '4999'")
expect_eq "unsealed before the dump: not a problem here" "$(sql -c "SELECT count(*) FROM audit_trail.verify()")" "$problems_before"
target="${IT_DB}_restored"
sql -c "DROP DATABASE IF EXISTS $target" -c "CREATE DATABASE $target"
pg_dump -h 127.0.0.1 -p "$IT_PORT" -U postgres -Fc -f "$IT_WORK/seal.dump" "$IT_DB"
pg_restore -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$target" --exit-on-error "$IT_WORK/seal.dump"
expect_eq "seals restored" "$(sql_db "$target" -c "SELECT md5(string_agg(seal_id || root, ',' ORDER BY seal_id)) FROM audit_trail.seals")" \
  "$(sql -c "SELECT md5(string_agg(seal_id || root, ',' ORDER BY seal_id)) FROM audit_trail.seals")"
expect_eq "restored: same verdict, and the event the seals never took" \
  "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.verify()")" "$(( problems_before + 1 ))"
last_seal=$(sql -c "SELECT max(seal_id) FROM audit_trail.seal_chain")
expect_eq "restored: the unsealed event, said as such" \
  "$(sql_db "$target" -c "SELECT coalesce(seal_id::text, '-') || ' ' || problem FROM audit_trail.verify() WHERE event_id = $unsealed")" \
  "- not sealed: captured before this database was restored (feed_origin.restored) and committed after seal $last_seal, the last before the dump: expected for the events committed between that seal and the dump, otherwise forged"
sql_db "$target" -c "INSERT INTO acct VALUES (5000, 1)"
expect_eq "restored: a new seal" "$(sql_db "$target" -c "SELECT events > 0 FROM audit_trail.seal()")" t
expect_eq "restored: still the same verdict" "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.verify()")" "$(( problems_before + 1 ))"
cp=$(sql_db "$target" -c "SELECT audit_trail.checkpoint()")
expect_eq "restored: checkpoint verifies" "$(echo "SELECT count(*) FROM audit_trail.verify_checkpoint(:'cp')" | sql_db "$target" -v cp="$cp")" 0
sql -c "DROP DATABASE $target"
