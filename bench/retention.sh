#!/usr/bin/env bash
# Retention of an expired partition of 1,000,000 events while a writer keeps
# inserting audited rows: how long apply_retention takes, and what the
# writer saw (transactions, failures, worst latency).
#   bench/retention.sh PORT RESULTS WORKDIR
set -euo pipefail
PORT=$1; RESULTS=$2; WORK=$3
q() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench_ret -v ON_ERROR_STOP=1 "$@"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS bench_ret" -c "CREATE DATABASE bench_ret"
q -f "$(dirname "$0")/common.sql"
q <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE writes (id bigserial PRIMARY KEY, v text);
SELECT audit_trail.enable('writes');
SELECT audit_trail._create_partition(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '8 months',
                                     date_trunc('month', now() AT TIME ZONE 'UTC') - interval '7 months');
INSERT INTO audit_trail.events (occurred_at, action, entity_type, entity_id, after, actor, db_user)
SELECT date_trunc('month', now() AT TIME ZONE 'UTC') - interval '8 months' + g * interval '2 seconds',
       'INSERT', 'public.old', g::text, jsonb_build_object('v', g), 'x', 'x'
FROM generate_series(1, 1000000) g;
VACUUM ANALYZE audit_trail.events;
SQL
echo "INSERT INTO writes (v) VALUES ('x');" > "$WORK/writer.sql"
rm -f "$WORK"/pgbench_log.*
(cd "$WORK" && pgbench -n -h 127.0.0.1 -p "$PORT" -U postgres -c 2 -j 2 -T 8 -l -f writer.sql bench_ret > "$WORK/writer.out" 2>&1) &
writer=$!
sleep 3
ms=$(q -c "SELECT time_ms(\$\$SELECT * FROM audit_trail.apply_retention(keep => '90 days', archive => true)\$\$)")
done_=$(q -c "SELECT details->'done' FROM audit_trail.events WHERE action = 'RETENTION_APPLIED'")
wait $writer
tx=$(awk '/number of transactions actually processed/ { print $NF }' "$WORK/writer.out")
failed=$(awk '/number of failed transactions/ { print $5 }' "$WORK/writer.out"); failed=${failed:-0}
maxlat=$(cat "$WORK"/pgbench_log.* | awk '{ if ($3 > m) m = $3 } END { printf "%.1f", m / 1000 }')
events=$(q -c "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.writes'")
rows=$(q -c "SELECT count(*) FROM writes")
printf '  apply_retention: %.0f ms; writer: %s transactions, %s failed, worst latency %s ms; %s rows, %s events\n' \
  "$ms" "$tx" "$failed" "$maxlat" "$rows" "$events"
{
  echo
  echo "## Retention under a concurrent writer"
  echo
  echo "An expired partition of 1,000,000 events archived by \`apply_retention(keep => '90 days', archive => true)\`"
  echo "while pgbench (2 clients) inserts audited rows for 8 s."
  echo
  echo "| apply_retention | writer transactions | failed | writer's worst latency | rows written = events written |"
  echo "|---|---|---|---|---|"
  printf '| %.0f ms | %s | %s | %s ms | %s = %s |\n' "$ms" "$tx" "$failed" "$maxlat" "$rows" "$events"
  echo
  echo "What it did: \`$done_\`"
} >> "$RESULTS"
