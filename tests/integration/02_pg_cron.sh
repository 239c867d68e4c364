# pg_cron runs maintain() and an audited change: both jobs succeed, and the
# change and the MAINTENANCE event are attributed to System (pg_cron runs
# jobs as ordinary backends named pg_cron). pg_cron here has minute resolution.
[ "$IT_PG_CRON" = 1 ] || skip "pg_cron is not installed for PostgreSQL $PG (Debian 12 packages it for 15 only)"
sql_db cron_db <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
DROP TABLE IF EXISTS heartbeat;
CREATE TABLE heartbeat (id serial PRIMARY KEY, at timestamptz DEFAULT now());
SELECT audit_trail.enable('heartbeat');
-- The README's schedule line, every minute here.
SELECT cron.schedule('audit-trail-maintain', '* * * * *', 'SELECT audit_trail.maintain()');
SELECT cron.schedule('it-heartbeat', '* * * * *', 'INSERT INTO heartbeat DEFAULT VALUES');
SQL
IT_DB=cron_db wait_for 130 t \
  "SELECT count(DISTINCT jobid) = 2 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')"
sql_db cron_db -c "SELECT cron.unschedule('it-heartbeat'), cron.unschedule('audit-trail-maintain')" >/dev/null
# Runs that ended (a run of the next minute may still be in progress).
expect_eq "job statuses" \
  "$(sql_db cron_db -c "SELECT string_agg(DISTINCT status, ',') FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')")" succeeded
expect_eq "actor of the job's change" \
  "$(sql_db cron_db -c "SELECT actor FROM audit_trail.events WHERE entity_type = 'public.heartbeat' ORDER BY id LIMIT 1")" System
expect_eq "maintain's event" \
  "$(sql_db cron_db -c "SELECT actor || ' ' || service FROM audit_trail.events WHERE action = 'MAINTENANCE' ORDER BY id LIMIT 1")" "System pg_cron"
