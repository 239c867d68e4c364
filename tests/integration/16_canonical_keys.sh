# API §9 item 1 with real sessions: three sessions whose TimeZone, DateStyle,
# IntervalStyle and extra_float_digits differ (set at connection, as an
# application's pool would) write the same rows; each row is one entity_id,
# and history() from any of those sessions, given the key as that session
# prints it, finds the row's whole life.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE slots (at timestamptz PRIMARY KEY, what text);
CREATE TABLE ratios (r float8 PRIMARY KEY, what text);
CREATE TABLE spans (d interval PRIMARY KEY, what text);
SELECT audit_trail.enable('slots'), audit_trail.enable('ratios'), audit_trail.enable('spans');
SQL
sessions=("-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=1 -c IntervalStyle=postgres"
          "-c TimeZone=Europe/Paris -c DateStyle=SQL,DMY -c extra_float_digits=0 -c IntervalStyle=sql_standard"
          "-c TimeZone=America/New_York -c DateStyle=German -c extra_float_digits=-3 -c IntervalStyle=iso_8601")
# The first session makes the rows; each then changes them, concurrently, to
# a value of its own (so every UPDATE changes the row, whatever the order).
PGOPTIONS="${sessions[0]}" sql -c "INSERT INTO slots VALUES ('2026-11-23 10:00:00+00', 'init')" \
  -c "INSERT INTO ratios VALUES (0.1, 'init')" -c "INSERT INTO spans VALUES ('1 day 02:00:00', 'init')"
for i in 0 1 2; do
  PGOPTIONS="${sessions[$i]}" sql -c "UPDATE slots SET what = 's$i'" -c "UPDATE ratios SET what = 's$i'" \
    -c "UPDATE spans SET what = 's$i'" &
done
wait
expect_eq "one entity_id per row, whatever the writer's settings" \
  "$(sql -c "SELECT string_agg(entity_type || '=' || n || ' ids ' || e, '; ' ORDER BY entity_type) FROM (
               SELECT entity_type, count(DISTINCT entity_id) AS n, count(*) AS e FROM audit_trail.events
               WHERE entity_type IN ('public.slots', 'public.ratios', 'public.spans') GROUP BY 1) x")" \
  "public.ratios=1 ids 4; public.slots=1 ids 4; public.spans=1 ids 4"
expect_eq "the ids" \
  "$(sql -c "SELECT string_agg(DISTINCT entity_id, ' | ' ORDER BY entity_id) FROM audit_trail.events
             WHERE entity_type IN ('public.slots', 'public.ratios', 'public.spans')")" \
  "0.1 | 1 day 02:00:00 | 2026-11-23 10:00:00+00"
for i in 0 1 2; do
  found=$(PGOPTIONS="${sessions[$i]}" sql -c "SELECT
      (SELECT count(*) FROM audit_trail.history('slots', (SELECT at::text FROM slots))) || ' ' ||
      (SELECT count(*) FROM audit_trail.history('ratios', (SELECT r::text FROM ratios))) || ' ' ||
      (SELECT count(*) FROM audit_trail.history('spans', (SELECT d::text FROM spans)))")
  expect_eq "session $i finds each row's 4 events by the key as it prints it" "$found" "4 4 4"
done
