#!/usr/bin/env bash
# Capture cost in the backend's own CPU time (user + system, from
# /proc/self/stat around each statement), which a loaded machine disturbs far
# less than wall time: the bulk INSERT, UPDATE and DELETE of bench/run with
# VARIANTS (default: none, pg_audit_trail, pg_audit_trail_shaped) alternated
# in ROUNDS rounds of ROWS rows; medians and minima, as a markdown table on
# stdout. Uses the installed build (bash scripts/install first) and its own
# cluster on BENCH_PORT.  ROUNDS=9 ROWS=100000 bash bench/capture_cpu.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ROUNDS=${ROUNDS:-9}; ROWS=${ROWS:-100000}; PORT=${BENCH_PORT:-55434}
BUILD=$(build_dir); DATA="$BUILD/micro-data"
bash scripts/cluster stop "$DATA" >/dev/null 2>&1 || true
rm -rf "$DATA"
bash scripts/cluster start "$DATA" "$PORT" "shared_buffers = '1GB'" "max_wal_size = '8GB'" "checkpoint_timeout = '30min'" "synchronous_commit = off" "work_mem = '64MB'" >/dev/null
trap 'bash scripts/cluster stop "$DATA" >/dev/null' EXIT
q() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres -d bench -v ON_ERROR_STOP=1 "$@" 2>/dev/null; }
psql_at "$PORT" -d postgres -c "CREATE DATABASE bench" >/dev/null
q -c "CREATE EXTENSION pg_audit_trail" -f bench/common.sql -f bench/capture.sql >/dev/null
# The backend's own CPU time (user + system, clock ticks of 10 ms) around the
# statement: what capture costs, whatever else the machine runs.
q <<'SQL'
CREATE FUNCTION cpu_ms(stmt text) RETURNS numeric LANGUAGE plpgsql AS $f$
DECLARE a text[]; b text[];
BEGIN
    a := regexp_split_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ');
    EXECUTE stmt;
    b := regexp_split_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ');
    -- after the ") ": field 3 is state; utime and stime are fields 14 and 15 of stat, 12 and 13 here.
    RETURN ((b[12]::bigint + b[13]::bigint) - (a[12]::bigint + a[13]::bigint)) * 10;
END $f$;
SQL
declare -A T
for r in $(seq 1 "$ROUNDS"); do
  for v in ${VARIANTS:-none pg_audit_trail pg_audit_trail_shaped}; do
    q -c "SELECT set_variant('none')" -c "DROP EXTENSION pg_audit_trail CASCADE" -c "CREATE EXTENSION pg_audit_trail" >/dev/null
    q -c "SELECT set_variant('$v')" -c "TRUNCATE items" -c "VACUUM ANALYZE items" -c "CHECKPOINT" >/dev/null
    for w in insert update delete; do
      case $w in
        insert) stmt="INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g % 100, ARRAY['a', 'b' || g % 10], now(), 'new', NULL, g % 2 = 0, g / 7.0 FROM generate_series(1, $ROWS) g" ;;
        update) stmt="UPDATE items SET qty = qty + 1, status = 'shipped'" ;;
        delete) stmt="DELETE FROM items" ;;
      esac
      ms=$(q -c "SELECT cpu_ms(\$b\$$stmt\$b\$)")
      T[$v.$w]+="$ms "
    done
  done
  echo "round $r done" >&2
done
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mn() { sort -g | head -1; }
echo "| workload | none | pg_audit_trail | tenant+rule | tenant+rule vs pg_audit_trail (capture only) | minima: pg_audit_trail / tenant+rule |"
echo "|---|---|---|---|---|---|"
for w in insert update delete; do
  [ -n "${T[pg_audit_trail_shaped.$w]:-}" ] || T[pg_audit_trail_shaped.$w]=0
  n=$(echo ${T[none.$w]} | tr ' ' '\n' | median); p=$(echo ${T[pg_audit_trail.$w]} | tr ' ' '\n' | median); s=$(echo ${T[pg_audit_trail_shaped.$w]} | tr ' ' '\n' | median)
  pm=$(echo ${T[pg_audit_trail.$w]} | tr ' ' '\n' | mn); sm=$(echo ${T[pg_audit_trail_shaped.$w]} | tr ' ' '\n' | mn)
  printf '| %s | %.0f ms | %.0f ms | %.0f ms | %s | %.0f / %.0f ms (%s) |\n' $w $n $p $s "$(awk -v s=$s -v p=$p -v n=$n 'BEGIN { printf "%+.1f%% (%+.1f%%)", 100*(s-p)/p, 100*(s-p)/(p-n) }')" $pm $sm "$(awk -v s=$sm -v p=$pm 'BEGIN { printf "%+.1f%%", 100*(s-p)/p }')"
done
for v in none pg_audit_trail pg_audit_trail_shaped; do for w in insert update delete; do echo "raw $v $w: ${T[$v.$w]}"; done; done
