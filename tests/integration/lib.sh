# Helpers for integration tests: $IT_PORT, $IT_DB, $IT_WORK, $IT_DATA,
# $IT_PG_CRON (1 when pg_cron is installed), and PG, BIN (the PostgreSQL's
# bin directory, first in PATH) are set by scripts/test-integration.
sql() { psql -X -q -At -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$IT_DB" -v ON_ERROR_STOP=1 "$@"; }
sql_as() { local role=$1; shift; psql -X -q -At -h 127.0.0.1 -p "$IT_PORT" -U "$role" -d "$IT_DB" -v ON_ERROR_STOP=1 "$@"; }
sql_db() { local db=$1; shift; psql -X -q -At -h 127.0.0.1 -p "$IT_PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
# The test cannot run on this installation: reported SKIPPED, never passed.
skip() { echo "SKIPPED: $*"; exit 77; }
expect_eq() { # expect_eq WHAT ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then fail "$1: expected [$3], got [$2]"; fi
  echo "  $1: $2"
}
# Polls an SQL query until it prints the expected value or the time runs out
# (every POLL seconds, default 1).
wait_for() { # wait_for SECONDS EXPECTED QUERY [POLL]
  local until=$(( $(date +%s) + $1 )) got=""
  while [ "$(date +%s)" -lt "$until" ]; do
    got=$(sql -c "$3" || true)
    [ "$got" = "$2" ] && return 0
    sleep "${4:-1}"
  done
  fail "waited $1s for [$3] = [$2], last [$got]"
}
# Waits until another session is running a statement that matches a LIKE
# pattern: a background psql has reached that command, so every command it
# had before is done (a LISTEN, a lock, a captured change). Never a fixed
# sleep: a slow machine would let the test go on before the session is there.
wait_running() { # wait_running PATTERN [SECONDS]
  wait_for "${2:-60}" t "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()
                                          AND datname = current_database() AND query LIKE '$1')" 0.1
}
