# pg_dump / pg_restore carry every event exactly once, and the restored
# database is still audited and still append-only.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, password text, balance numeric);
SELECT audit_trail.enable('accounts', label_column => 'owner');
INSERT INTO accounts SELECT g, 'owner ' || g, 'pw' || g, g * 10 FROM generate_series(1, 500) g;
UPDATE accounts SET balance = balance + 1 WHERE id <= 100;
DELETE FROM accounts WHERE id > 450;
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', '7');
CREATE TABLE readings (id int, site text, v int, PRIMARY KEY (id, site)) PARTITION BY LIST (site);
CREATE TABLE readings_a PARTITION OF readings FOR VALUES IN ('a');
SELECT audit_trail.enable('readings');
INSERT INTO readings VALUES (1, 'a', 1);
-- An old partition, archived by retention, travels too.
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01');
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) SELECT '2020-01-15', 'OLD', 'x', 'x' FROM generate_series(1, 10);
SELECT count(*) FROM audit_trail.apply_retention(keep => '90 days', archive => true);
-- An alert rule travels; where check_alerts() stands does not (it names
-- this cluster's transactions).
SELECT audit_trail.add_alert('big_balance', ARRAY['UPDATE'], entity_types => ARRAY['public.accounts'],
                             changed_any => ARRAY['balance']);
SELECT count(*) FROM audit_trail.check_alerts();
SQL
source_pos=$(sql -c "SELECT audit_trail.feed_position()")
expect_eq "archived before dump" "$(sql -c "SELECT partition || ' ' || range_start::date FROM audit_trail.partitions WHERE archived")" \
  "audit_trail_archive.events_p20200101 2020-01-01"
archived_before=$(sql -c "SELECT count(*) FROM audit_trail_archive.events_p20200101")
before=$(sql -c "SELECT count(*) || ':' || max(id) || ':' || md5(string_agg(e::text, '|' ORDER BY id)) FROM audit_trail.events e")
echo "  source: $before"
max_id=$(echo "$before" | cut -d: -f2)

for format in custom plain; do
  target="${IT_DB}_restored_$format"
  sql -c "DROP DATABASE IF EXISTS $target" -c "CREATE DATABASE $target"
  if [ "$format" = custom ]; then
    pg_dump -h 127.0.0.1 -p "$IT_PORT" -U postgres -Fc -f "$IT_WORK/dump.custom" "$IT_DB"
    pg_restore -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$target" --exit-on-error "$IT_WORK/dump.custom"
  else
    pg_dump -h 127.0.0.1 -p "$IT_PORT" -U postgres -f "$IT_WORK/dump.sql" "$IT_DB"
    psql -X -q -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$target" -v ON_ERROR_STOP=1 -f "$IT_WORK/dump.sql" >/dev/null
  fi
  after=$(sql_db "$target" -c "SELECT count(*) || ':' || max(id) || ':' || md5(string_agg(e::text, '|' ORDER BY id)) FROM audit_trail.events e")
  expect_eq "$format: events restored exactly once" "$after" "$before"
  sql_db "$target" -c "UPDATE accounts SET balance = 0 WHERE id = 1"
  expect_eq "$format: still audited" \
    "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.events WHERE action = 'UPDATE' AND after = '{\"balance\": 0}'")" 1
  # The feed of a restored database: a position of the source is refused
  # (another token); the restored events are never fed, even where their
  # txid values (the source's) fall among this database's new transactions.
  expect_eq "$format: a position of the source is refused" \
    "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.feed('$source_pos')" 2>&1 | grep -c 'taken in another database')" 1
  p_new=$(sql_db "$target" -c "SELECT audit_trail.feed_position()")
  # Their txid values are the source's: feed() leaves out every event that
  # occurred before the restore made this database's origin, so they can
  # never be fed, wherever this cluster's transaction ids go.
  expect_eq "$format: the restore's origin is after every restored event" \
    "$(sql_db "$target" -c "SELECT o.restored > (SELECT max(occurred_at) FROM audit_trail.events WHERE id <= $max_id) FROM audit_trail.feed_origin o")" t
  sql_db "$target" -c "UPDATE accounts SET balance = 1 WHERE id = 2"
  expect_eq "$format: the feed gives the new events only" \
    "$(sql_db "$target" -c "SELECT string_agg(action || ':' || entity_id, ' ' ORDER BY id) FROM audit_trail.feed('$p_new')")" "UPDATE:2"
  expect_eq "$format: alerts go on from the restore" \
    "$(sql_db "$target" -c "SELECT count(*) FROM audit_trail.check_alerts()" -c "UPDATE accounts SET balance = 5 WHERE id = 3" \
         -c "SELECT string_agg(alert, ',') FROM audit_trail.check_alerts()" | tr '\n' ' ')" "0 big_balance "
  expect_eq "$format: new ids continue" \
    "$(sql_db "$target" -c "SELECT min(id) > $max_id FROM audit_trail.events WHERE action = 'UPDATE' AND after = '{\"balance\": 0}'")" t
  expect_eq "$format: archive restored" \
    "$(sql_db "$target" -c "SELECT partition || ' ' || range_start::date || ' ' || (SELECT count(*) FROM audit_trail_archive.events_p20200101) FROM audit_trail.partitions WHERE archived")" \
    "audit_trail_archive.events_p20200101 2020-01-01 $archived_before"
  sql_db "$target" -c "INSERT INTO readings_a VALUES (2, 'a', 2)"
  expect_eq "$format: partition still audited" \
    "$(sql_db "$target" -c "SELECT string_agg(entity_id, ' ' ORDER BY id) FROM audit_trail.events WHERE entity_type = 'public.readings'")" '[1,"a"] [2,"a"]'
  if sql_db "$target" -c "DELETE FROM audit_trail.events" 2>/dev/null; then fail "$format: log writable after restore"; fi
  expect_eq "$format: tracked" "$(sql_db "$target" -c "SELECT string_agg(table_name || ' ' || coalesce(label_column, '-'), ', ' ORDER BY 1) FROM audit_trail.tracked")" "accounts owner, readings -"
  sql -c "DROP DATABASE $target"
done
