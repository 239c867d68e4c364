#!/usr/bin/env bash
# The sealed trail (API §13) on a log of N events: seal() of all N, verify()
# of them, and verify() of one small seal made after them (it reads that
# seal's events only, whatever the size of the log). Medians of 3: seal()
# is timed in transactions rolled back, then made for good.
#   bench/seal.sh PORT EVENTS RESULTS
set -euo pipefail
PORT=$1; EVENTS=$2; RESULTS=$3
q() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench_seal -v ON_ERROR_STOP=1 "$@"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "DROP DATABASE IF EXISTS bench_seal" -c "CREATE DATABASE bench_seal"
q -f "$(dirname "$0")/common.sql"
# A database updated from 0.4.0 with 180 days of history (feed_origin's
# restored is then '-infinity': every event is the feed's and the seal's),
# in 1,000 transactions of 1,000 events, each event carrying the txid of the
# transaction that wrote it, as captured events do. An event is ~500 bytes
# of canonical bytes: before and after of a 6-column row, the changed
# columns, the caller's identity.
# feed_origin is append-only (0.6.0): its guard is switched off through the
# catalog for the one UPDATE (seen by the next session), then on again.
q <<SQL
CREATE EXTENSION pg_audit_trail;
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
SQL
q <<SQL
UPDATE audit_trail.feed_origin SET restored = '-infinity';
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
SQL
q <<SQL
SELECT audit_trail._create_partition(m, m + interval '1 month')
FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '6 months',
                     date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', interval '1 month') m;
CREATE TABLE orders (id int PRIMARY KEY, qty int);
INSERT INTO orders SELECT g, 0 FROM generate_series(1, 1000) g;
SELECT audit_trail.enable('orders');
SQL
echo "  generating $EVENTS events over 180 days"
t0=$(date +%s)
BATCH=$(( EVENTS / 1000 ))
q <<SQL
DO \$\$
DECLARE
    n bigint := $EVENTS;
    b bigint := $BATCH;
BEGIN
    FOR k IN 0 .. n / b - 1 LOOP
        INSERT INTO audit_trail.events (occurred_at, txid, action, entity_type, entity_id, before, after, changed,
                                        actor, db_user, client_ip, user_agent, service, tenant, request_id, operation)
        SELECT now() - interval '180 days' * (1 - g::float8 / n), pg_current_xact_id()::text::bigint, 'UPDATE',
               'public.orders', (g % 100000)::text,
               jsonb_build_object('id', g % 100000, 'qty', g % 51, 'status', 'pending', 'customer', 'customer ' || g % 997,
                                  'price', (g % 10000) / 100.0, 'updated_at', now() - interval '181 days'),
               jsonb_build_object('id', g % 100000, 'qty', g % 51 + 1, 'status', 'shipped', 'customer', 'customer ' || g % 997,
                                  'price', (g % 10000) / 100.0, 'updated_at', now()),
               ARRAY['qty', 'status', 'updated_at'], 'user' || (g % 500) || '@example.com', 'app',
               ('10.0.' || g % 250 || '.' || g % 200)::inet, 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
               'orders-api', 'tenant-' || g % 20, md5(g::text), 'UPDATE'
        FROM generate_series(k * b + 1, (k + 1) * b) g;
        COMMIT;
    END LOOP;
END
\$\$;
VACUUM ANALYZE audit_trail.events;
SQL
echo "  generated in $(( $(date +%s) - t0 ))s"
bytes=$(q -c "SELECT round(avg(length(audit_trail._event_bytes(e.id, e.occurred_at, e.txid,
                ARRAY[e.action, e.entity_type, e.entity_id, e.entity_label, e.before::text, e.after::text, e.changed::text,
                      e.details::text, e.actor, e.db_user, e.client_ip::text, e.user_agent, e.service, e.tenant,
                      e.request_id, e.statement, e.operation]))))
              FROM audit_trail.events e TABLESAMPLE SYSTEM (1)")
med() { sort -g | sed -n 2p; }
# seal() of all of them, three times rolled back.
seal_ms=$(for r in 1 2 3; do
  q -c "BEGIN" -c "SELECT time_ms('SELECT * FROM audit_trail.seal()')" -c "ROLLBACK"
done | med)
# All of them (and enable()'s CONFIG event).
total=$(q -c "SELECT count(*) FROM audit_trail.events")
sealed=$(q -c "SELECT events FROM audit_trail.seal()")
if [ "$sealed" != "$total" ] || [ "$total" -lt "$EVENTS" ]; then
  echo "seal() sealed $sealed events, not the $total of the log" >&2
  exit 1
fi
# A small seal after them: 10 transactions of 100 captured UPDATEs.
for i in $(seq 0 9); do
  q -c "UPDATE orders SET qty = qty + 1 WHERE id BETWEEN $(( i * 100 + 1 )) AND $(( i * 100 + 100 ))"
done
small=$(q -c "SELECT events FROM audit_trail.seal()")
since=$(q -c "SELECT sealed_at FROM audit_trail.seals ORDER BY seal_id DESC LIMIT 1")
problems=$(q -c "SELECT count(*) FROM audit_trail.verify()")
if [ "$problems" != 0 ]; then
  echo "verify() reports $problems problems on an intact trail" >&2
  exit 1
fi
verify_ms=$(for r in 1 2 3; do q -c "SELECT time_ms('SELECT count(*) FROM audit_trail.verify()')"; done | med)
one_ms=$(for r in 1 2 3; do q -c "SELECT time_ms(\$s\$SELECT count(*) FROM audit_trail.verify('$since')\$s\$)"; done | med)
printf '  seal() of %s events: %.0f ms   verify() of them: %.0f ms   verify of one seal of %s: %.1f ms\n' \
  "$sealed" "$seal_ms" "$verify_ms" "$small" "$one_ms"
{
  echo
  echo "## The sealed trail ($EVENTS events of ~$bytes canonical bytes, 1,000 transactions, 8 partitions, $(q -c "SELECT pg_size_pretty(sum(total_bytes)) FROM audit_trail.partitions"))"
  echo
  echo "| operation | events | time (median of 3) |"
  echo "|---|---|---|"
  printf '| seal() | %s | %.0f ms |\n' "$sealed" "$seal_ms"
  printf '| verify() (every seal) | %s | %.0f ms |\n' "$(( sealed + small ))" "$verify_ms"
  printf '| verify(since) of the last seal only | %s | %.1f ms |\n' "$small" "$one_ms"
  echo
  echo "Target (issue #17): sealing 1M events and verifying them, both under 10 s."
} >> "$RESULTS"
