#!/usr/bin/env bash
# The feed (API §10) on a log of N events: the cost of a batch of 1,000
# events and of an empty poll, with nothing and with 20 transactions in
# flight, must not grow with the log. Medians of 7 runs.
#   bench/feed.sh PORT EVENTS RESULTS
set -euo pipefail
PORT=$1; EVENTS=$2; RESULTS=$3
q() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench_feed -v ON_ERROR_STOP=1 "$@"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS bench_feed" -c "CREATE DATABASE bench_feed"
q -f "$(dirname "$0")/common.sql"
q <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE orders (id int PRIMARY KEY, qty int);
SELECT audit_trail._create_partition(m, m + interval '1 month')
FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '6 months',
                     date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', interval '1 month') m;
SELECT audit_trail.enable('orders');
SQL
echo "  generating $EVENTS events over 180 days"
t0=$(date +%s)
# Transactions long committed (ids 3 to 502, below every snapshot's xmin):
# the history a feed must not read.
q <<SQL
INSERT INTO audit_trail.events (occurred_at, txid, action, entity_type, entity_id, after, actor, db_user, operation)
SELECT now() - interval '180 days' * (1 - g::float8 / $EVENTS), 3 + g % 500, 'UPDATE', 'public.orders',
       (g % 100000)::text, jsonb_build_object('qty', g % 51), 'user' || (g % 500) || '@example.com', 'app', 'UPDATE'
FROM generate_series(1, $EVENTS) g;
VACUUM ANALYZE audit_trail.events;
INSERT INTO orders SELECT g, 0 FROM generate_series(1, 10000) g;
SQL
echo "  generated in $(( $(date +%s) - t0 ))s"
# One run: 10 transactions of 100 UPDATEs between two positions, then the
# batch between them and an empty poll from the second.
run() {
  local p1 p2
  p1=$(q -c "SELECT audit_trail.feed_position()")
  for i in $(seq 1 10); do
    q -c "UPDATE orders SET qty = qty + 1 WHERE id BETWEEN $(( i * 100 )) AND $(( i * 100 + 99 ))"
  done
  p2=$(q -c "SELECT audit_trail.feed_position()")
  q -c "SELECT time_ms(\$s\$SELECT count(*) FROM audit_trail.feed('$p1', '$p2')\$s\$), time_ms(\$s\$SELECT count(*) FROM audit_trail.feed('$p2')\$s\$), (SELECT count(*) FROM audit_trail.feed('$p1', '$p2'))"
}
measure() { # label
  local out batch empty n
  out=$(for r in $(seq 1 8); do run; done | tail -n 7)
  batch=$(echo "$out" | cut -d'|' -f1 | sort -g | sed -n 4p)
  empty=$(echo "$out" | cut -d'|' -f2 | sort -g | sed -n 4p)
  n=$(echo "$out" | cut -d'|' -f3 | sort -g | sed -n 4p)
  printf '  %-40s batch of %s: %7.2f ms   empty poll: %6.2f ms\n' "$1" "$n" "$batch" "$empty"
  printf '| %s | %s | %.2f ms | %.2f ms |\n' "$1" "$n" "$batch" "$empty" >> "$RESULTS"
}
{
  echo
  echo "## The feed ($EVENTS events, 8 partitions, $(q -c "SELECT pg_size_pretty(sum(total_bytes)) FROM audit_trail.partitions"))"
  echo
  echo "| situation | events per batch | feed(since, upto) (median of 7) | empty poll (median of 7) |"
  echo "|---|---|---|---|"
} >> "$RESULTS"
measure "nothing else in flight"
# 20 sessions that captured and have not committed: their events are
# looked at (and left out) by every poll until they commit.
pids=()
for i in $(seq 1 20); do
  q -c "BEGIN" -c "UPDATE orders SET qty = qty + 1 WHERE id BETWEEN $(( 5000 + i * 100 )) AND $(( 5000 + i * 100 + 99 ))" \
    -c "SELECT pg_sleep(600)" -c "COMMIT" >/dev/null 2>&1 &
  pids+=($!)
done
sleep 2
measure "20 transactions in flight (100 events each)"
kill "${pids[@]}" 2>/dev/null || true
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'bench_feed' AND pid <> pg_backend_pid()" >/dev/null
wait 2>/dev/null || true
{
  echo
  echo "Target (issue #10): a batch of 1,000 under 10 ms, an empty poll under 2 ms, whatever the size of the log."
} >> "$RESULTS"
