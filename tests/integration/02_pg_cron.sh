# A pg_cron job's changes are attributed to System (pg_cron runs jobs as
# ordinary backends named pg_cron). pg_cron here has minute resolution.
sql_db cron_db <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
DROP TABLE IF EXISTS heartbeat;
CREATE TABLE heartbeat (id serial PRIMARY KEY, at timestamptz DEFAULT now());
SELECT audit_trail.enable('heartbeat');
SELECT cron.schedule('it-heartbeat', '* * * * *', 'INSERT INTO heartbeat DEFAULT VALUES');
SQL
IT_DB=cron_db wait_for 130 t "SELECT count(*) > 0 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')"
expect_eq "job status" "$(sql_db cron_db -c "SELECT status FROM cron.job_run_details ORDER BY runid LIMIT 1")" succeeded
expect_eq "actor of the job's change" \
  "$(sql_db cron_db -c "SELECT actor FROM audit_trail.events WHERE entity_type = 'public.heartbeat' ORDER BY id LIMIT 1")" System
sql_db cron_db -c "SELECT cron.unschedule('it-heartbeat')" >/dev/null
