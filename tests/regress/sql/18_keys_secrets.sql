-- API §9, keys and secrets: which row and what value an event names must not
-- be bent by an application event. operation, reserved actions, label_column.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE SCHEMA ks;
CREATE TABLE ks.acct (id int PRIMARY KEY, owner text, plan text, note text);
SELECT audit_trail.enable('ks.acct', label_column => 'owner') IS NOT NULL AS enabled;
INSERT INTO ks.acct VALUES (1, 'ann', 'free', 'x'), (2, 'bob', 'pro', 'y');
UPDATE ks.acct SET plan = 'pro' WHERE id = 1;
DELETE FROM ks.acct WHERE id = 2;
TRUNCATE ks.acct;
INSERT INTO ks.acct VALUES (1, 'ann', 'pro', 'x');
SELECT audit_trail.log_event('USER_LOGIN', 'ks.acct', '1') IS NOT NULL AS logged;

-- 1. operation: the row operation of captured events, NULL for the rest.
SELECT action, operation, entity_id FROM audit_trail.events
WHERE entity_type = 'ks.acct' OR (entity_type = 'audit_trail.config' AND entity_id LIKE 'ks.%') ORDER BY id;

-- 2. log_event refuses the actions the extension writes itself, in any case
-- (SQLSTATE 22023), for any role.
CREATE ROLE ks_app LOGIN;
SET ROLE ks_app;
SELECT audit_trail.log_event('DELETE', 'ks.acct', '1');
SELECT audit_trail.log_event('delete', 'ks.acct', '1');
SELECT audit_trail.log_event('Insert', 'ks.acct', '9');
SELECT audit_trail.log_event('update', 'ks.acct', '1');
SELECT audit_trail.log_event('TRUNCATE', 'ks.acct');
SELECT audit_trail.log_event('AUDIT_DISABLED', 'ks.acct');
SELECT audit_trail.log_event('audit_log_exported');
SELECT audit_trail.log_event('Partition_Dropped');
SELECT audit_trail.log_event('SCHEMA_CHANGED');
SELECT audit_trail.log_event('CAPTURE_PROBLEM');
SELECT audit_trail.log_event('RETENTION_APPLIED');
SELECT audit_trail.log_event('MAINTENANCE');
SELECT audit_trail.log_event('alert');
SELECT audit_trail.log_event('ALERT_FIRED');
-- Names that only resemble them are the application's.
SELECT audit_trail.log_event('DELETED_BY_USER', 'ks.acct', '1') IS NOT NULL AS accepted;
SELECT audit_trail.log_event('USER_AUDIT', 'ks.acct', '1') IS NOT NULL AS accepted;
RESET ROLE;

-- 3. Readers trust operation, not action. A row event with a row action but
-- no operation (as only the log's owner can write, or an event logged under
-- 0.3.0) bends neither row_as_of, diff, changes nor the log view's operation.
INSERT INTO audit_trail.events (action, entity_type, entity_id, actor, db_user, before)
VALUES ('DELETE', 'ks.acct', '1', 'mallory', 'mallory', '{"id": 1, "owner": "ann", "plan": "forged"}');
SELECT id AS forged_id, occurred_at AS forged_at FROM audit_trail.events ORDER BY id DESC LIMIT 1 \gset
-- The row just before the forged DELETE: as it is (the forgery is not replayed).
SELECT audit_trail.row_as_of('ks.acct', '1', :'forged_at'::timestamptz - interval '1 microsecond') ->> 'plan' AS plan_before_forgery;
SELECT count(*) AS forged_diff_rows FROM audit_trail.diff(:forged_id);
SELECT count(*) AS forged_change_rows FROM audit_trail.changes WHERE event_id = :forged_id;
SELECT action, operation FROM audit_trail.log WHERE id = :forged_id;
-- A real row event still reads as one.
SELECT column_name, before, after FROM audit_trail.diff(
    (SELECT id FROM audit_trail.events WHERE entity_type = 'ks.acct' AND operation = 'UPDATE' ORDER BY id LIMIT 1));

-- 4. An excluded column cannot be the label (it would be recorded there).
CREATE TABLE ks.users (id int PRIMARY KEY, email text, secret_hint text);
SELECT audit_trail.enable('ks.users', exclude => '{email}', label_column => 'email');
SELECT audit_trail.enable('ks.users', exclude => '{secret_hint}', label_column => 'email') IS NOT NULL AS enabled;

DROP SCHEMA ks CASCADE;
DROP ROLE ks_app;
