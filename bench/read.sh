#!/usr/bin/env bash
# Reading the trail on a log of N events over seven monthly partitions:
# timings (median of 7 runs after a warm-up) and the plans behind them.
#   bench/read.sh PORT EVENTS RESULTS
set -euo pipefail
PORT=$1; EVENTS=$2; RESULTS=$3
q() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench_read -v ON_ERROR_STOP=1 "$@"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS bench_read" -c "CREATE DATABASE bench_read"
q -f "$(dirname "$0")/common.sql"
q <<SQL
CREATE EXTENSION pg_audit_trail;
CREATE TABLE orders (id int PRIMARY KEY);
SELECT audit_trail._create_partition(m, m + interval '1 month')
FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '6 months',
                     date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', interval '1 month') m;
SQL
echo "  generating $EVENTS events over 180 days"
t0=$(date +%s)
q <<SQL
-- 20 entity types, 100,000 entities each, 500 actors, 10 tenants; ids follow time.
INSERT INTO audit_trail.events (occurred_at, txid, action, entity_type, entity_id, entity_label, before, after,
                                changed, actor, db_user, client_ip, service, tenant, request_id, operation)
SELECT now() - interval '180 days' * (1 - g::float8 / $EVENTS),
       g / 3,
       (ARRAY['INSERT','UPDATE','UPDATE','UPDATE','DELETE','USER_LOGIN'])[1 + g % 6],
       CASE WHEN g % 20 = 0 THEN 'public.orders' ELSE 'public.t' || (g % 20) END,
       ((g::bigint * 7919) % 100000)::text,
       'entity ' || ((g::bigint * 7919) % 100000),
       CASE WHEN g % 6 IN (1, 2, 3) THEN jsonb_build_object('status', 'old', 'qty', g % 50) END,
       jsonb_build_object('status', 'new', 'qty', g % 51),
       CASE WHEN g % 6 IN (1, 2, 3) THEN ARRAY['status', 'qty'] END,
       'user' || (g % 500) || '@example.com', 'app', '10.0.0.1', 'web', 'tenant' || (g % 10),
       -- An API request writes 4 events, in one statement's transaction or two.
       'req-' || md5((g / 4)::text),
       CASE WHEN g % 6 < 5 THEN (ARRAY['INSERT','UPDATE','UPDATE','UPDATE','DELETE'])[1 + g % 6] END
FROM generate_series(1, $EVENTS) g;
VACUUM ANALYZE audit_trail.events;
SQL
echo "  generated in $(( $(date +%s) - t0 ))s"
maxid=$(q -c "SELECT max(id) FROM audit_trail.events")
deep=$(( maxid - 10000 * 50 ))
ent=$(q -c "SELECT entity_id FROM audit_trail.events WHERE entity_type = 'public.orders' ORDER BY id DESC LIMIT 1")
# A request and a transaction from the middle of the log (90 days back): no
# newest-first scan stumbles on them early.
mid=$(( maxid / 2 ))
req=$(q -c "SELECT request_id FROM audit_trail.events WHERE id = $mid")
tx=$(q -c "SELECT txid FROM audit_trail.events WHERE id = $mid")
declare -A QUERIES=(
  [1_first_page]="SELECT count(*) FROM audit_trail.search()"
  [2_action_entity_type]="SELECT count(*) FROM audit_trail.search(actions => '{UPDATE}', entity_types => '{public.orders}')"
  [3_seven_days]="SELECT count(*) FROM audit_trail.search(since => now() - interval '7 days')"
  [4_keyset_10000_pages_deep]="SELECT count(*) FROM audit_trail.search(before_id => $deep)"
  [5_history]="SELECT count(*) FROM audit_trail.history('orders', '$ent')"
  [6_count_seven_days]="SELECT audit_trail.count(since => now() - interval '7 days')"
  [7_page_100_offset]="SELECT count(*) FROM audit_trail.search(page => 100)"
  [8_actors]="SELECT count(*) FROM audit_trail.search(actors => '{User7@example.com}')"
  [9_request_id]="SELECT count(*) FROM audit_trail.search(request_id => '$req')"
  [10_txid]="SELECT count(*) FROM audit_trail.search(txid => $tx)"
  [11_exclude_actions]="SELECT count(*) FROM audit_trail.search(exclude_actions => '{UPDATE,USER_LOGIN}')"
  [12_operations]="SELECT count(*) FROM audit_trail.search(operations => '{DELETE}')"
  [13_after_id]="SELECT count(*) FROM audit_trail.search(after_id => $deep)"
  [14_q_details]="SELECT count(*) FROM audit_trail.search(q => 'user7@')"
  [15_count_request]="SELECT audit_trail.count(request_id => '$req')"
  [16_two_actors]="SELECT count(*) FROM audit_trail.search(actors => '{user7@example.com,user8@example.com}')"
)
declare -A LABEL=(
  [1_first_page]="search(): first page, no filter"
  [2_action_entity_type]="search(): first page, action + entity type"
  [3_seven_days]="search(): first page, 7-day range"
  [4_keyset_10000_pages_deep]="search(): keyset page 10,000 pages deep"
  [5_history]="history() of one entity ($(q -c "SELECT count(*) FROM audit_trail.history('orders', '$ent')") events)"
  [6_count_seven_days]="count() over 7 days"
  [7_page_100_offset]="search(): page 100 by OFFSET (for comparison)"
  [8_actors]="search(): first page, actors (exact, 1 in 500)"
  [9_request_id]="search(): first page, request_id (90 days back)"
  [10_txid]="search(): first page, txid (90 days back)"
  [11_exclude_actions]="search(): first page, exclude_actions (2 of 6)"
  [12_operations]="search(): first page, operations (DELETE, 1 in 6)"
  [13_after_id]="search(): keyset Previous (after_id) 10,000 pages deep"
  [14_q_details]="search(): first page, q (details too)"
  [15_count_request]="count() of one request"
  [16_two_actors]="search(): first page, actors (two, = ANY)"
)
declare -A TARGET=([1_first_page]="< 10 ms" [2_action_entity_type]="< 10 ms" [3_seven_days]="< 10 ms"
  [4_keyset_10000_pages_deep]="< 10 ms" [5_history]="< 5 ms" [6_count_seven_days]="< 1 s" [7_page_100_offset]=""
  [8_actors]="< 10 ms" [9_request_id]="< 10 ms" [10_txid]="< 10 ms" [11_exclude_actions]="< 10 ms"
  [12_operations]="< 10 ms" [13_after_id]="< 10 ms" [14_q_details]="" [15_count_request]="< 10 ms"
  [16_two_actors]="< 10 ms")
{
  echo
  echo "## Reading the trail ($EVENTS events, 7 monthly partitions, $(q -c "SELECT pg_size_pretty(sum(total_bytes)) FROM audit_trail.partitions"))"
  echo
  echo "| query | median of 7 (one session, after a warm-up run) | target |"
  echo "|---|---|---|"
} >> "$RESULTS"
for k in $(printf '%s\n' "${!QUERIES[@]}" | sort -n); do
  # One session, as an application's pooled connection: a warm-up run, then 7.
  ms=$(q -c "SELECT time_ms(\$q\$${QUERIES[$k]}\$q\$) FROM generate_series(1, 8)" | tail -n 7 | sort -g | sed -n 4p)
  printf '  %-45s %8.2f ms\n' "${LABEL[$k]}" "$ms"
  printf '| %s | %.2f ms | %s |\n' "${LABEL[$k]}" "$ms" "${TARGET[$k]}" >> "$RESULTS"
done
{
  echo
  echo "Plans of the queries search(), history() and count() run (EXPLAIN ANALYZE, costs off):"
  for sqlq in \
    "SELECT * FROM audit_trail.events WHERE true AND upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM audit_trail.events WHERE upper(action) = ANY ('{UPDATE}') AND entity_type = ANY ('{public.orders}') ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM audit_trail.events WHERE upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') AND occurred_at >= now() - interval '7 days' ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM audit_trail.events WHERE id < $deep ORDER BY id DESC LIMIT 50" \
    "SELECT e.* FROM audit_trail._names_of('orders') n JOIN audit_trail.events e ON e.entity_type = n.entity_type AND e.entity_id = '$ent' AND e.occurred_at >= n.valid_from AND (n.valid_until IS NULL OR e.occurred_at < n.valid_until) ORDER BY e.id" \
    "SELECT count(*) FROM audit_trail.events WHERE occurred_at >= now() - interval '7 days' AND upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}')" \
    "SELECT * FROM audit_trail.events WHERE upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') AND lower(actor) = 'user7@example.com' ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM audit_trail.events WHERE upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') AND request_id = '$req' ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM audit_trail.events WHERE upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') AND txid = $tx ORDER BY id DESC LIMIT 50" \
    "SELECT * FROM (SELECT * FROM audit_trail.events WHERE upper(action) <> ALL ('{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}') AND id > $deep ORDER BY id LIMIT 50) p ORDER BY id DESC"; do
    echo
    echo '```'
    echo "$sqlq"
    q -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $sqlq" | awk 'NF && n++ < 40'
    echo '```'
  done
} >> "$RESULTS"
