-- pgsuite: the server log of the suite's run (csvlog, PostgreSQL 15's 26
-- columns), loaded into a database of its own for the checks. psql
-- variable csv: the file.
\set ON_ERROR_STOP 1
CREATE TABLE log (
    log_time timestamptz, user_name text, database_name text, process_id int,
    connection_from text, session_id text, session_line_num bigint, command_tag text,
    session_start_time timestamptz, virtual_transaction_id text, transaction_id bigint,
    error_severity text, sql_state_code text, message text, detail text, hint text,
    internal_query text, internal_query_pos int, context text, query text, query_pos int,
    location text, application_name text, backend_type text, leader_pid int, query_id bigint
);
COPY log FROM :'csv' WITH (FORMAT csv);
ALTER TABLE log ADD COLUMN n bigserial;
ALTER TABLE log ADD COLUMN test text;
UPDATE log SET test = CASE WHEN application_name LIKE 'pg_regress/%' THEN substr(application_name, 12)
                           ELSE nullif(application_name, '') END;

-- What pg_audit_trail raised: its message, or the error arose inside one of
-- its functions (context, internal query), or in its Rust code (location,
-- with log_error_verbosity = verbose, names the .rs file).
CREATE VIEW extension_errors AS
SELECT n, test, sql_state_code AS sqlstate, error_severity AS severity, message, detail, hint,
       context, internal_query, location, query,
       CASE
           WHEN sql_state_code = '0A000' THEN '§8 refusal'
           WHEN sql_state_code = '42501' AND message ~* '(pg_audit_trail|guard|audit events)' THEN '§8 refusal'
           ELSE 'error'
       END AS kind
FROM log
WHERE error_severity IN ('ERROR', 'FATAL', 'PANIC')
  AND coalesce(context, '') !~ 'pgsuite\.'
  AND (message ~* 'audit.trail' OR coalesce(context, '') ~* 'audit_trail'
       OR coalesce(internal_query, '') ~* 'audit_trail' OR coalesce(location, '') ~ '\.rs(:[0-9]+)?$')
UNION ALL
-- enable() called by pgsuite's event trigger, failing (caught, logged).
SELECT n, test, sql_state_code, 'ERROR (caught by pgsuite)', message, detail, hint,
       context, internal_query, location, query,
       CASE WHEN sql_state_code = '0A000' THEN '§8 refusal' ELSE 'error' END
FROM log
WHERE error_severity = 'LOG' AND message LIKE 'pgsuite: enable(%) failed:%';

-- pgsuite's own event trigger must never make the suite fail.
CREATE VIEW harness_errors AS
SELECT n, test, sql_state_code AS sqlstate, message, context, query FROM log
WHERE error_severity IN ('ERROR', 'FATAL', 'PANIC') AND coalesce(context, '') ~ 'pgsuite\.';

CREATE VIEW crashes AS
SELECT n, log_time, error_severity, message, detail FROM log
WHERE error_severity = 'PANIC'
   OR message ~ '(terminated by signal|terminated by exception|exited with exit code ([2-9]|[1-9][0-9])|terminating any other active server processes|all server processes terminated|database system was interrupted|database system was not properly shut down)';

-- PostgreSQL's suite expects none of these: each is a wait that had to be cut.
CREATE VIEW stalls AS
SELECT n, test, sql_state_code AS sqlstate, message, detail, context, query FROM log
WHERE error_severity IN ('ERROR', 'FATAL')
  AND message ~ '^(canceling statement due to (statement|lock) timeout|deadlock detected|terminating connection due to idle-in-transaction timeout)';

-- Lock waits longer than deadlock_timeout (log_lock_waits), all of them and
-- those in pg_audit_trail's code.
CREATE VIEW lock_waits AS
SELECT n, test, message, context, query FROM log
WHERE error_severity = 'LOG' AND message ~ 'still waiting for';

CREATE VIEW extension_lock_waits AS
SELECT n, test, message, context, query FROM log
WHERE error_severity = 'LOG' AND message ~ 'still waiting for'
  AND (coalesce(context, '') ~* 'audit_trail' OR coalesce(query, '') ~* 'audit_trail');

CREATE VIEW extension_warnings AS
SELECT n, test, message, context, query FROM log
WHERE error_severity = 'WARNING'
  AND (message ~* 'audit.trail' OR coalesce(context, '') ~* 'audit_trail' OR coalesce(location, '') ~ '\.rs(:[0-9]+)?$')
  -- enable()'s, called by pgsuite (no primary key, redacted columns)
  AND coalesce(context, '') !~ 'pgsuite\.';
