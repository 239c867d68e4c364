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
SELECT audit_trail.log_event('AUDIT-ENABLED', 'ks.acct');
SELECT audit_trail.log_event('audit.log_exported');
SELECT audit_trail.log_event('Partition:Dropped');
SELECT audit_trail.log_event('USER_NOTE', 'audit_trail.config', 'ks.acct');
-- Names that only resemble them are the application's.
SELECT audit_trail.log_event('DELETED_BY_USER', 'ks.acct', '1') IS NOT NULL AS accepted;
SELECT audit_trail.log_event('USER_AUDIT', 'ks.acct', '1') IS NOT NULL AS accepted;
RESET ROLE;

-- An application event naming a row is not part of the row's history.
SELECT string_agg(action || '/' || coalesce(operation, '-'), ' ' ORDER BY id) AS life_of_1
FROM audit_trail.history('ks.acct', '1');

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

-- 5. entity_id is canonical (DateStyle ISO, TimeZone UTC, ...): one
-- timestamptz key written under three sessions' settings is one id, and the
-- readers take the key in any form its type accepts.
CREATE TABLE ks.slots (at timestamptz PRIMARY KEY, what text);
SELECT audit_trail.enable('ks.slots') IS NOT NULL AS enabled;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';
INSERT INTO ks.slots VALUES ('2026-11-23 10:00:00+00', 'a');
SET TimeZone = 'Europe/Paris';
UPDATE ks.slots SET what = 'b';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
UPDATE ks.slots SET what = 'c';
SELECT operation, entity_id FROM audit_trail.events WHERE entity_type = 'ks.slots' ORDER BY id;
SELECT count(*) AS found_by_session_text FROM audit_trail.history('ks.slots', '23/11/2026 11:00:00 CET');
RESET DateStyle;
RESET extra_float_digits;
SET TimeZone = 'America/New_York';
SELECT count(*) AS found_by_other_zone FROM audit_trail.history('ks.slots', '2026-11-23 05:00:00-05');
SELECT audit_trail.row_as_of('ks.slots', '2026-11-23 11:00:00+01', clock_timestamp()) ->> 'what' AS what_now;
RESET TimeZone;
-- A key that is not a value of the key's type: the error names it.
SELECT count(*) FROM audit_trail.history('ks.slots', 'not a time');

-- 6. A key change is recorded (details.previous_entity_id); history() of
-- any of the row's keys is its whole life; row_as_of() is right before and
-- after each change.
CREATE TABLE ks.k (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('ks.k') IS NOT NULL AS enabled;
INSERT INTO ks.k VALUES (1, 'one');
SELECT clock_timestamp() AS t1 \gset
UPDATE ks.k SET v = 'uno';
SELECT clock_timestamp() AS t2 \gset
UPDATE ks.k SET id = 2 WHERE id = 1;
SELECT clock_timestamp() AS t3 \gset
UPDATE ks.k SET id = 3, v = 'tres' WHERE id = 2;
INSERT INTO ks.k VALUES (9, 'other');
SELECT operation, entity_id, details, changed FROM audit_trail.events WHERE entity_type = 'ks.k' ORDER BY id;
SELECT k, (SELECT string_agg(operation || ' ' || entity_id, ', ' ORDER BY id) FROM audit_trail.history('ks.k', k)) AS life
FROM unnest(ARRAY['1', '2', '3', '9']) k;
SELECT audit_trail.row_as_of('ks.k', '1', :'t1') AS as_inserted,
       audit_trail.row_as_of('ks.k', '1', :'t2') AS before_first_change,
       audit_trail.row_as_of('ks.k', '2', :'t2') AS same_by_later_key,
       audit_trail.row_as_of('ks.k', '2', :'t3') AS between_changes,
       audit_trail.row_as_of('ks.k', '3', clock_timestamp()) AS now_by_key,
       audit_trail.row_as_of('ks.k', '1', clock_timestamp()) AS now_by_first_key;

-- 7. (Found by attacking 0.4.0.) row_as_of() reads the live row as a whole
-- even when a column is named like the alias it uses; an application event
-- whose details name a previous_entity_id splices no other row into a
-- row's history; a column renamed to a name the patterns match is redacted
-- from then on.
CREATE TABLE ks.aliased (id int PRIMARY KEY, audit_trail_row jsonb, t text, secret_note text);
SELECT audit_trail.enable('ks.aliased', redact => '{audit_trail_row}') IS NOT NULL AS enabled;
INSERT INTO ks.aliased VALUES (1, '{"a": "WHOLE"}', 'tee', 'shh');
SELECT audit_trail.row_as_of('ks.aliased', '1', clock_timestamp()) AS live_row;
CREATE TABLE ks.spliced (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('ks.spliced') IS NOT NULL AS enabled;
INSERT INTO ks.spliced VALUES (1, 'x'), (5, 'other');
SELECT audit_trail.log_event('NOTE', 'ks.spliced', '1', '{"previous_entity_id": "5"}') IS NOT NULL AS logged;
UPDATE ks.spliced SET v = 'y' WHERE id = 1;
SELECT string_agg(operation || ' ' || entity_id, ', ' ORDER BY id) AS life_of_1 FROM audit_trail.history('ks.spliced', '1');
SELECT audit_trail.row_as_of('ks.spliced', '5', clock_timestamp()) AS row_5;
CREATE TABLE ks.renamed (id int PRIMARY KEY, notes text);
SELECT audit_trail.enable('ks.renamed') IS NOT NULL AS enabled;
ALTER TABLE ks.renamed RENAME COLUMN notes TO api_token;
ALTER TABLE ks.renamed ADD COLUMN tmp text;
ALTER TABLE ks.renamed RENAME COLUMN tmp TO password;
INSERT INTO ks.renamed VALUES (1, 'tok-CLEAR', 'pass-CLEAR');
SELECT after FROM audit_trail.events WHERE entity_type = 'ks.renamed' AND operation = 'INSERT';
SELECT redact FROM audit_trail.tracked WHERE table_name = 'ks.renamed'::regclass;

-- 8. (Found by attacking 0.4.0, fixed in 0.5.0.) A key another row takes
-- after a key change, and keys two rows swap in one statement: a key's
-- history lists every row that held it, each with its whole life and
-- nothing of another's (10's is A's alone); row_as_of() takes the row that
-- held the key at that instant (0.4.0 gave A for key 1 now, and the other
-- row after a swap).
CREATE TABLE ks.reuse (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('ks.reuse') IS NOT NULL AS enabled;
INSERT INTO ks.reuse VALUES (1, 'A');
UPDATE ks.reuse SET v = 'A2' WHERE id = 1;
UPDATE ks.reuse SET id = 10 WHERE id = 1;
INSERT INTO ks.reuse VALUES (1, 'B');
UPDATE ks.reuse SET v = 'B2' WHERE id = 1;
SELECT k, string_agg(operation || ' ' || entity_id || coalesce(' ' || (after ->> 'v'), ''), ', ' ORDER BY id) AS life
FROM unnest(ARRAY['1', '10']) k, audit_trail.history('ks.reuse', k) GROUP BY k ORDER BY k;
SELECT audit_trail.row_as_of('ks.reuse', '1', clock_timestamp()) ->> 'v' AS now_1,
       audit_trail.row_as_of('ks.reuse', '10', clock_timestamp()) ->> 'v' AS now_10;
CREATE TABLE ks.swap (id int, v text, CONSTRAINT swap_pk PRIMARY KEY (id) DEFERRABLE);
SELECT audit_trail.enable('ks.swap') IS NOT NULL AS enabled;
INSERT INTO ks.swap VALUES (2, 'C'), (3, 'D');
UPDATE ks.swap SET v = v || '1';
SELECT clock_timestamp() AS before_swaps \gset
UPDATE ks.swap SET id = 5 - id;
SELECT k, string_agg(operation || ' ' || entity_id || coalesce(' ' || (after ->> 'v'), ''), ', ' ORDER BY id) AS life
FROM unnest(ARRAY['2', '3']) k, audit_trail.history('ks.swap', k) GROUP BY k ORDER BY k;
UPDATE ks.swap SET v = 'D2' WHERE id = 2;
UPDATE ks.swap SET id = 5 - id;
SELECT k, string_agg(operation || ' ' || entity_id || coalesce(' ' || (after ->> 'v'), ''), ', ' ORDER BY id) AS life
FROM unnest(ARRAY['2', '3']) k, audit_trail.history('ks.swap', k) GROUP BY k ORDER BY k;
SELECT k, audit_trail.row_as_of('ks.swap', k, clock_timestamp()) ->> 'v' AS now,
       audit_trail.row_as_of('ks.swap', k, :'before_swaps') ->> 'v' AS before_swaps
FROM unnest(ARRAY['2', '3']) k ORDER BY k;

DROP SCHEMA ks CASCADE;
DROP ROLE ks_app;
