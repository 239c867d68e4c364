#!/usr/bin/env bash
# What the indexes of search()'s filters (API §12: lower(actor), request_id)
# cost capture: the same bulk DML, in one statement with a
# context (actor, request id), in two databases of one cluster, with and
# without them, alternated; medians of ROUNDS, and their ratio.
#   bench/index_cost.sh PORT ROWS ROUNDS RESULTS
set -euo pipefail
PORT=$1; ROWS=$2; ROUNDS=$3; RESULTS=$4
p() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
for db in idx_with idx_without; do
  p -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  p -d $db -f "$(dirname "$0")/common.sql"
  p -d $db -c "CREATE EXTENSION pg_audit_trail" -c "SELECT count(*) FROM audit_trail.maintain()" \
    -c "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, qty int, status text)" \
    -c "SELECT audit_trail.enable('items')" >/dev/null
done
p -d idx_without -c "DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT c.oid::regclass AS i FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
           JOIN pg_inherits h ON h.inhrelid = x.indrelid
           WHERE h.inhparent = 'audit_trail.events'::regclass
             AND (c.relname LIKE '%\_actor' OR c.relname LIKE '%\_request')
  LOOP EXECUTE 'DROP INDEX ' || r.i; END LOOP; END \$\$"
declare -A T
for r in $(seq 1 "$ROUNDS"); do
  for db in idx_with idx_without; do
    p -d $db -c "TRUNCATE items" -c "VACUUM ANALYZE items" -c "CHECKPOINT" >/dev/null
    for w in insert update delete; do
      case $w in
        insert) stmt="INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g % 100, 'new' FROM generate_series(1, $ROWS) g" ;;
        update) stmt="UPDATE items SET qty = qty + 1, status = 'shipped'" ;;
        delete) stmt="DELETE FROM items" ;;
      esac
      ms=$(p -d $db -c "BEGIN" -c "SELECT audit_trail.set_context(actor => 'user$r@example.com', request_id => 'req-$r-$w')" \
             -c "SELECT time_ms(\$b\$$stmt\$b\$)" -c "COMMIT" | tail -1)
      T[$db.$w]+="$ms "
      printf '  round %s %-12s %-6s %9.1f ms\n' "$r" "$db" "$w" "$ms"
    done
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
{
  echo
  echo "## What the filter indexes cost capture ($ROWS rows per statement, $ROUNDS rounds, medians)"
  echo
  echo "| workload | with the actor and request indexes | without | ratio |"
  echo "|---|---|---|---|"
  for w in insert update delete; do
    a=$(echo ${T[idx_with.$w]} | median); b=$(echo ${T[idx_without.$w]} | median)
    awk -v w=$w -v a=$a -v b=$b 'BEGIN { printf "| %s | %.1f ms | %.1f ms | %.2fx |\n", w, a, b, a / b }'
  done
} | tee -a "$RESULTS"
p -d postgres -c "DROP DATABASE idx_with" -c "DROP DATABASE idx_without"
