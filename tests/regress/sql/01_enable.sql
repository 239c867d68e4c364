-- enable / disable / tracked, and every bad input to them.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
SELECT coalesce(max(id), 0) AS start_id FROM audit_trail.events \gset

CREATE TABLE users (id int PRIMARY KEY, email text, password_hash text, api_key text, nickname text);
SELECT audit_trail.enable('users', redact => '{nickname}');
SELECT table_name, redact, exclude, key_columns, label_column, actions, enabled_by FROM audit_trail.tracked;

-- Idempotent: a second call replaces the settings.
SELECT audit_trail.enable('users', exclude => '{nickname}', label_column => 'email', actions => '{insert,update}');
SELECT table_name, redact, exclude, key_columns, label_column, actions FROM audit_trail.tracked;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass ORDER BY 1;

-- enable and disable are events themselves, with the settings as details.
SELECT action, entity_type, entity_id, details->'actions' AS actions, details->'redact' AS redact
FROM audit_trail.events WHERE id > :start_id ORDER BY id;

-- No key: accepted with a WARNING; entity_id is NULL.
CREATE TABLE notes (body text);
SELECT audit_trail.enable('notes');
INSERT INTO notes VALUES ('hello');
SELECT action, entity_id, after FROM audit_trail.events WHERE entity_type = 'public.notes';

-- Errors: nothing changes.
CREATE VIEW users_v AS SELECT * FROM users;
SELECT audit_trail.enable('users_v');
CREATE SEQUENCE s;
SELECT audit_trail.enable('s');
SELECT audit_trail.enable('users', redact => '{no_such_column}');
SELECT audit_trail.enable('users', exclude => '{"Email"}');
SELECT audit_trail.enable('users', key_columns => '{nope}');
SELECT audit_trail.enable('users', label_column => 'nope');
SELECT audit_trail.enable('users', actions => '{INSERT,UPSERT}');
SELECT audit_trail.enable('users', actions => '{}');
SELECT audit_trail.enable('audit_trail.events');
SELECT audit_trail.enable('audit_trail.events_default');
SELECT audit_trail.enable('no_such_table');
SELECT audit_trail.enable(NULL);
SELECT table_name, exclude, label_column, actions FROM audit_trail.tracked WHERE table_name = 'users'::regclass;

-- Non-owners can neither enable nor disable.
CREATE ROLE audit_intruder;
GRANT ALL ON users TO audit_intruder;
SET ROLE audit_intruder;
SELECT audit_trail.enable('users');
SELECT audit_trail.disable('users');
RESET ROLE;

-- A role that owns its table may audit it.
CREATE ROLE audit_owner;
GRANT CREATE ON SCHEMA public TO audit_owner;
SET ROLE audit_owner;
CREATE TABLE owned (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('owned');
INSERT INTO owned VALUES (1, 'x');
SELECT audit_trail.disable('owned');
RESET ROLE;
SELECT action, entity_type, entity_id, actor FROM audit_trail.events
WHERE entity_type = 'public.owned' OR entity_id = 'public.owned' ORDER BY id;

-- disable keeps the events and removes the triggers; a second disable is a no-op.
SELECT audit_trail.disable('users');
SELECT audit_trail.disable('users');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'users'::regclass;
SELECT count(*) AS users_events_kept FROM audit_trail.events WHERE entity_id = 'public.users';
SELECT count(*) FROM audit_trail.tracked WHERE table_name = 'users'::regclass;

-- Partitions are made ahead by the first enable().
SELECT count(*) >= 4 AS partitions_ready FROM audit_trail._partition_bounds();

DROP TABLE owned;
REVOKE CREATE ON SCHEMA public FROM audit_owner;
DROP OWNED BY audit_intruder, audit_owner;
DROP ROLE audit_intruder;
DROP ROLE audit_owner;
