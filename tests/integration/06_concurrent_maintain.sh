# Two sessions run maintain() at the same moment, with work to do: no error,
# no partition made twice, coverage without gaps or overlaps.
sql -c "CREATE EXTENSION pg_audit_trail"
sql -c "ALTER DATABASE $IT_DB SET audit_trail.partition_interval = '1 day'" -c "ALTER DATABASE $IT_DB SET audit_trail.premake = 200"
for i in 1 2; do
  sql -c "SELECT pg_sleep_until(date_trunc('second', clock_timestamp()) + interval '2 seconds')" \
      -c "SELECT count(*) FROM audit_trail.maintain() WHERE action = 'created'" > "$IT_WORK/maintain.$i" 2>&1 &
done
wait
cat "$IT_WORK/maintain.1" "$IT_WORK/maintain.2"
if grep -q ERROR "$IT_WORK/maintain.1" "$IT_WORK/maintain.2"; then fail "maintain failed"; fi
made=$(( $(tail -1 "$IT_WORK/maintain.1") + $(tail -1 "$IT_WORK/maintain.2") ))
expect_eq "partitions made once in all" "$made" \
  "$(sql -c "SELECT count(*) FROM audit_trail.partitions WHERE range_end - range_start = interval '1 day'")"
expect_eq "one of the two did the work" "$( (tail -1 "$IT_WORK/maintain.1"; tail -1 "$IT_WORK/maintain.2") | grep -c '^0$')" 1
expect_eq "no gap, no overlap" "$(sql -c "SELECT bool_and(range_end = nxt) FROM (SELECT range_end, lead(range_start) OVER (ORDER BY range_start) nxt
                                        FROM audit_trail.partitions WHERE range_start IS NOT NULL) p WHERE nxt IS NOT NULL")" t
expect_eq "MAINTENANCE events" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE action = 'MAINTENANCE' AND actor = 'System'")" 2
