-- Every error a user can cause, with its SQLSTATE. An error a user can
-- cause names the culprit and carries a SQLSTATE that says what is wrong;
-- XX000 (internal_error) is for what cannot happen, and appears nowhere here.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
-- Runs a statement: 'accepted', or the error's SQLSTATE, message and detail.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN detail <> '' THEN ' (' || detail || ')' ELSE '' END;
END $$;
CREATE SCHEMA errs;
SET search_path = errs, public;
CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);
SELECT audit_trail.enable('acct');
CREATE TABLE keyless (v text);
SELECT audit_trail.enable('keyless');
CREATE ROLE errs_outsider;
GRANT USAGE ON SCHEMA errs TO errs_outsider;
GRANT ALL ON acct TO errs_outsider;

\echo '1. settings: a bad value is refused when set (22023), naming the setting and the value'
SELECT pg_temp.try('SET audit_trail.client_ip = ''999.1.1.1''');
SELECT pg_temp.try('SET audit_trail.client_ip = ''localhost''');
SELECT pg_temp.try('SET audit_trail.partition_interval = ''2 days''');
SELECT pg_temp.try('SET audit_trail.partition_interval = ''monthly''');
SELECT pg_temp.try('SET audit_trail.log_reads = ''sometimes''');
SELECT pg_temp.try('SET audit_trail.retention = ''-1 day''');
SELECT pg_temp.try('SET audit_trail.retention = ''forever''');
SELECT pg_temp.try('SET audit_trail.archive_retention = ''forever''');
SELECT pg_temp.try('SET audit_trail.notify_channel = ''' || repeat('c', 64) || '''');
SELECT pg_temp.try('SET audit_trail.redact_patterns = ''{password,secret}''');
SELECT pg_temp.try('SET audit_trail.redact_patterns = ''pin,' || repeat('x', 64) || '''');
SELECT pg_temp.try('SET audit_trail.premake = 0');
SELECT pg_temp.try('SET audit_trail.archive = ''sometimes''');
-- What each accepts, as before: blanks around values, any case.
SELECT pg_temp.try('SET audit_trail.client_ip = '' 2001:db8::1 ''');
SELECT pg_temp.try('SET audit_trail.client_ip = ''''');
SELECT pg_temp.try('SET audit_trail.partition_interval = ''7 days''');
SELECT pg_temp.try('SET audit_trail.log_reads = ''ALL''');
SELECT pg_temp.try('SET audit_trail.redact_patterns = ''''');
SELECT pg_temp.try('SET audit_trail.redact_patterns = '' Pin , api key,,' || repeat('x', 63) || '''');
RESET audit_trail.client_ip;
RESET audit_trail.partition_interval;
RESET audit_trail.log_reads;
RESET audit_trail.redact_patterns;
-- A setting pg_audit_trail does not have (42602: its prefix is reserved).
SELECT pg_temp.try('SET audit_trail.bogus = ''x''');
-- The DBA settings are superuser-only (42501).
SET ROLE errs_outsider;
SELECT pg_temp.try('SET audit_trail.log_reads = ''none''');
SELECT pg_temp.try('SET audit_trail.redact_patterns = ''''');
RESET ROLE;
-- _setting() reads only pg_audit_trail's settings (42704).
SELECT pg_temp.try('SELECT audit_trail._setting(''work_mem'')');
SELECT pg_temp.try('SELECT audit_trail._setting(''audit_trail.bogus'')');
-- set_context() takes an inet (22P02).
SELECT pg_temp.try('SELECT audit_trail.set_context(client_ip => ''not-an-ip'')');

\echo '2. enable, disable, log_event: bad arguments'
SELECT pg_temp.try('SELECT audit_trail.enable(NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', redact => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', exclude => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', actions => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''nosuch'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', redact => ''{nosuch}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', label_column => ''nosuch'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', key_columns => ''{}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', actions => ''{}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'', actions => ''{MERGE}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''audit_trail.events'')');
CREATE VIEW acct_view AS SELECT * FROM acct;
SELECT pg_temp.try('SELECT audit_trail.enable(''acct_view'')');
CREATE TABLE sales (id int, region text) PARTITION BY LIST (region);
CREATE TABLE sales_eu PARTITION OF sales FOR VALUES IN ('eu');
SELECT pg_temp.try('SELECT audit_trail.enable(''sales_eu'')');
CREATE TEMP TABLE scratch (id int PRIMARY KEY);
SELECT pg_temp.try('SELECT audit_trail.enable(''scratch'')');
SET ROLE errs_outsider;
SELECT pg_temp.try('SELECT audit_trail.enable(''acct'')');
SELECT pg_temp.try('SELECT audit_trail.disable(''acct'')');
RESET ROLE;
SELECT pg_temp.try('SELECT audit_trail.disable(NULL)');
SELECT pg_temp.try('SELECT audit_trail.log_event(NULL)');
SELECT pg_temp.try('SELECT audit_trail.log_event(''DROP TABLE'')');
BEGIN READ ONLY;
SELECT pg_temp.try('SELECT audit_trail.log_event(''USER_LOGIN'')');
ROLLBACK;

\echo '3. reading the trail: bad arguments, and no right to read'
SELECT pg_temp.try('SELECT * FROM audit_trail.search(page => 0)');
SELECT pg_temp.try('SELECT * FROM audit_trail.search(page_size => 1001)');
SELECT pg_temp.try('SELECT * FROM audit_trail.search(since => ''2026-02-01'', until => ''2026-01-01'')');
SELECT pg_temp.try('SELECT * FROM audit_trail.export(format => ''xml'')');
-- API §12's arguments (all of them in 21_reading).
SELECT pg_temp.try('SELECT * FROM audit_trail.search(before_id => 2, after_id => 1)');
SELECT pg_temp.try('SELECT * FROM audit_trail.search(operations => ''{MERGE}'')');
SELECT pg_temp.try('SELECT * FROM audit_trail.search(exclude_actions => ''{NULL}'')');
SELECT pg_temp.try('SELECT * FROM audit_trail.export(columns => ''{id,colour}'')');
SELECT pg_temp.try('SELECT * FROM audit_trail.export(timezone => ''Mars/Olympus_Mons'')');
SELECT pg_temp.try('SELECT audit_trail.row_as_of(''keyless'', ''1'', now())');
SELECT pg_temp.try('SELECT * FROM audit_trail.apply_retention(keep => ''-1 day'')');
-- Recording a read: only the two read actions (22023), only by a reader
-- of the trail (42501).
SELECT pg_temp.try('SELECT audit_trail._log_read(''AUDIT_ENABLED'', ''{}'')');
SET ROLE errs_outsider;
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.events');
SELECT pg_temp.try('SELECT * FROM audit_trail.search()');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.archived_events');
SELECT pg_temp.try('SELECT audit_trail._log_read(''AUDIT_LOG_ACCESSED'', ''{}'')');
SELECT pg_temp.try('SELECT audit_trail._log_read(''AUDIT_LOG_EXPORTED'', ''{}'', ''a-tenant'')');
RESET ROLE;

\echo '4. the trail is append-only, and closed'
SELECT pg_temp.try('UPDATE audit_trail.events SET actor = ''nobody''');
SELECT pg_temp.try('DELETE FROM audit_trail.events');
SELECT pg_temp.try('TRUNCATE audit_trail.events');
SET ROLE errs_outsider;
SELECT pg_temp.try('INSERT INTO audit_trail.events (action, actor, db_user) VALUES (''FORGED'', ''x'', ''y'')');
SELECT pg_temp.try('SELECT audit_trail._write_event(''FORGED'', NULL, NULL, NULL, NULL)');
RESET ROLE;

\echo '5. capture cannot be switched off or bent (42501, 0A000)'
SELECT pg_temp.try('DROP TRIGGER audit_trail_insert ON acct');
SELECT pg_temp.try('ALTER TABLE acct DISABLE TRIGGER audit_trail_update');
SELECT pg_temp.try('CREATE TABLE acct_child () INHERITS (acct)');

\echo '6. the trigger functions outside their triggers'' shapes, or called directly (39P01)'
SELECT pg_temp.try('SELECT audit_trail.capture()');
SELECT pg_temp.try('SELECT audit_trail._guard()');
CREATE TABLE odd (id int PRIMARY KEY, v text);
INSERT INTO odd VALUES (1, 'a');
-- A trigger of capture() that enable() did not make is refused when made
-- (42501); with the DDL event trigger switched off, capture() refuses to run
-- in the wrong shape (39P01).
SELECT pg_temp.try('CREATE TRIGGER odd_stray AFTER INSERT ON odd REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture()');
ALTER EVENT TRIGGER audit_trail_ddl_end DISABLE;
CREATE TRIGGER odd_before BEFORE INSERT ON odd FOR EACH ROW EXECUTE FUNCTION audit_trail.capture();
SELECT pg_temp.try('INSERT INTO odd VALUES (2, ''b'')');
DROP TRIGGER odd_before ON odd;
CREATE TRIGGER odd_no_table AFTER UPDATE ON odd FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
SELECT pg_temp.try('UPDATE odd SET v = ''b''');
DROP TRIGGER odd_no_table ON odd;
CREATE TRIGGER odd_when AFTER DELETE ON odd FOR EACH ROW WHEN (old.id > 0) EXECUTE FUNCTION audit_trail.capture();
SELECT pg_temp.try('DELETE FROM odd');
DROP TRIGGER odd_when ON odd;
CREATE VIEW odd_view AS SELECT * FROM odd;
CREATE TRIGGER odd_instead INSTEAD OF INSERT ON odd_view FOR EACH ROW EXECUTE FUNCTION audit_trail.capture();
ALTER EVENT TRIGGER audit_trail_ddl_end ENABLE ALWAYS;
SELECT pg_temp.try('INSERT INTO odd_view VALUES (3, ''c'')');

-- Clean up.
SELECT audit_trail.disable('acct');
SELECT audit_trail.disable('keyless');
REVOKE ALL ON acct FROM errs_outsider;
REVOKE ALL ON SCHEMA errs FROM errs_outsider;
DROP ROLE errs_outsider;
RESET search_path;
