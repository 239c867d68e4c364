-- API §11: the trail shaped like the product. enable(..., tenant_column)
-- takes each row event's tenant from its row; enable(..., always_include)
-- puts scope columns in every UPDATE event; name_action() records row
-- changes that match a rule under a product's action, their operation kept.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
-- Runs a statement: 'accepted', or the error's SQLSTATE and message.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- The row events of a table since a mark, in order.
CREATE FUNCTION pg_temp.trail(name text, since bigint DEFAULT 0)
RETURNS TABLE(action text, operation text, tenant text, entity_id text, before jsonb, after jsonb, changed text[])
LANGUAGE sql AS $$
    SELECT e.action, e.operation, e.tenant, e.entity_id, e.before, e.after, e.changed FROM audit_trail.events e
    WHERE e.entity_type = name AND e.operation IS NOT NULL AND e.id > since ORDER BY e.id
$$;
CREATE FUNCTION pg_temp.mark() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(max(id), 0) FROM audit_trail.events
$$;
CREATE SCHEMA shaped;
SET search_path = shaped, public;

\echo '1. tenant_column: each event has its row''s tenant, whatever the context says'
CREATE TABLE sessions (id int PRIMARY KEY, org text, project text, status text, expires_at date, note text);
SELECT audit_trail.enable('sessions', tenant_column => 'org', always_include => '{project}');
SELECT audit_trail.set_context(actor => 'nightly-job', tenant => 'context-tenant', local => false);
INSERT INTO sessions VALUES (1, 'acme', 'p-a', 'running', '2030-01-01', NULL),
                            (2, 'globex', 'p-g', 'running', '2030-01-01', NULL),
                            (3, 'initech', 'p-i', 'running', '2030-01-01', NULL);
-- The issue's case: one statement, rows of several tenants.
SELECT pg_temp.mark() AS m \gset
UPDATE sessions SET expires_at = '2030-02-01';
SELECT action, tenant, entity_id, changed FROM pg_temp.trail('shaped.sessions', :m);
-- Moved to another tenant: the new row's; tenant column set NULL: the old row's.
SELECT pg_temp.mark() AS m \gset
UPDATE sessions SET org = 'umbrella' WHERE id = 2;
UPDATE sessions SET org = NULL WHERE id = 3;
DELETE FROM sessions WHERE id = 3;
SELECT operation, tenant, entity_id FROM pg_temp.trail('shaped.sessions', :m);
UPDATE sessions SET org = 'initech' WHERE id = 2;
SELECT audit_trail.clear_context();
-- No tenant column: the context's tenant, as before.
CREATE TABLE plain (id int PRIMARY KEY, org text);
SELECT audit_trail.enable('plain');
SELECT audit_trail.set_context(tenant => 'context-tenant', local => false);
INSERT INTO plain VALUES (1, 'acme');
SELECT audit_trail.clear_context();
SELECT operation, tenant FROM pg_temp.trail('shaped.plain');
-- The tenant is the column's value as text, rendered as entity ids are:
-- the same whatever the session's output settings.
CREATE TABLE readings (id int PRIMARY KEY, site timestamptz, account int, v int);
SELECT audit_trail.enable('readings', tenant_column => 'site');
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
INSERT INTO readings VALUES (1, '2024-05-01 12:00:00+00', 7, 1);
RESET TimeZone;
RESET DateStyle;
SELECT audit_trail.enable('readings', tenant_column => 'account');
INSERT INTO readings VALUES (2, '2024-05-01 12:00:00+00', 42, 1);
SELECT operation, tenant, entity_id FROM pg_temp.trail('shaped.readings');

\echo '2. always_include: scope columns in every UPDATE, not in changed'
SELECT pg_temp.mark() AS m \gset
UPDATE sessions SET note = 'checked' WHERE id = 1;
-- No change: no event, always_include or not.
UPDATE sessions SET note = 'checked' WHERE id = 1;
SELECT action, before, after, changed FROM pg_temp.trail('shaped.sessions', :m);
-- INSERT and DELETE carry the whole row anyway; diff() shows what changed.
SELECT column_name, before, after FROM audit_trail.diff(:m + 1);
-- A redacted column always included is redacted.
CREATE TABLE projects (id int PRIMARY KEY, account text, api_token text, name text);
SELECT audit_trail.enable('projects', always_include => '{account,api_token,account}');
INSERT INTO projects VALUES (1, 'acc-1', 'tok-1', 'alpha');
UPDATE projects SET name = 'beta';
SELECT operation, before, after, changed FROM pg_temp.trail('shaped.projects');
SELECT table_name, tenant_column, always_include, named_actions FROM audit_trail.tracked
WHERE table_name IN ('sessions'::regclass, 'projects'::regclass, 'plain'::regclass) ORDER BY 1;

\echo '3. Named actions: the product''s words for row changes'
SELECT audit_trail.name_action('sessions', 'SESSION_STOPPED', 'UPDATE',
                               changed_any => '{status}', after_matches => '{"status": "stopped"}');
SELECT audit_trail.name_action('sessions', 'SESSION_EXTENDED', 'update', changed_any => '{expires_at}');
SELECT audit_trail.name_action('sessions', 'SESSION_STARTED', 'INSERT');
SELECT audit_trail.name_action('sessions', 'Session.Purged', 'DELETE', after_matches => '{"status": "stopped"}');
SELECT named_actions FROM audit_trail.tracked WHERE table_name = 'sessions'::regclass;
-- Each change of the rules is an event about the table.
SELECT action, entity_type, entity_id, details -> 'added' AS added, jsonb_array_length(details -> 'named_actions') AS rules
FROM audit_trail.events WHERE action = 'AUDIT_CONFIG_CHANGED' ORDER BY id;
SELECT pg_temp.mark() AS m \gset
INSERT INTO sessions VALUES (4, 'acme', 'p-a', 'running', '2030-01-01', NULL);
UPDATE sessions SET status = 'stopped' WHERE id = 4;
-- Stopped again: status does not change, no rule (and no event).
UPDATE sessions SET status = 'stopped' WHERE id = 4;
-- Both rules would match: the first made wins.
UPDATE sessions SET status = 'running', expires_at = '2031-01-01' WHERE id = 4;
UPDATE sessions SET status = 'stopped', expires_at = '2032-01-01' WHERE id = 4;
-- Neither matches: a plain UPDATE.
UPDATE sessions SET note = 'n' WHERE id = 4;
-- One statement, rows that match and rows that do not, of several tenants.
UPDATE sessions SET status = CASE WHEN id = 1 THEN 'stopped' ELSE 'paused' END WHERE id IN (1, 2);
DELETE FROM sessions WHERE id IN (1, 2);
SELECT action, operation, tenant, entity_id, changed FROM pg_temp.trail('shaped.sessions', :m);

\echo '4. Readers go by operation: history, row_as_of, diff, search, count'
SELECT action, operation, changed FROM audit_trail.history('sessions', '4');
SELECT audit_trail.row_as_of('sessions', '4', now()) ->> 'status' AS status_now;
SELECT column_name, before, after FROM audit_trail.diff(
    (SELECT max(id) FROM audit_trail.events WHERE action = 'SESSION_STOPPED' AND entity_id = '4'));
SELECT action, entity_id, tenant FROM audit_trail.search(actions => ARRAY['SESSION_STOPPED']) ORDER BY id;
SELECT audit_trail.count(actions => ARRAY['SESSION_EXTENDED', 'SESSION_STARTED']) AS extended_or_started;

\echo '5. drop_named_action: the rules of that action go, the others stay'
SELECT audit_trail.drop_named_action('sessions', 'SESSION_EXTENDED');
SELECT pg_temp.mark() AS m \gset
UPDATE sessions SET expires_at = '2033-01-01' WHERE id = 4;
SELECT action, operation FROM pg_temp.trail('shaped.sessions', :m);
SELECT jsonb_path_query_array(named_actions, '$[*].action') AS actions FROM audit_trail.tracked WHERE table_name = 'sessions'::regclass;
SELECT details -> 'dropped' AS dropped FROM audit_trail.events WHERE action = 'AUDIT_CONFIG_CHANGED' ORDER BY id DESC LIMIT 1;
-- Two rules for one action (a token revoked by UPDATE or by DELETE).
CREATE TABLE tokens (id int PRIMARY KEY, account text, revoked boolean NOT NULL DEFAULT false);
SELECT audit_trail.enable('tokens', tenant_column => 'account');
SELECT audit_trail.name_action('tokens', 'TOKEN_REVOKED', 'UPDATE', after_matches => '{"revoked": true}', changed_any => '{revoked}');
SELECT audit_trail.name_action('tokens', 'TOKEN_REVOKED', 'DELETE');
INSERT INTO tokens VALUES (1, 'a1'), (2, 'a2');
UPDATE tokens SET revoked = true WHERE id = 1;
DELETE FROM tokens WHERE id = 2;
SELECT action, operation, tenant, entity_id FROM pg_temp.trail('shaped.tokens');
SELECT audit_trail.drop_named_action('tokens', 'TOKEN_REVOKED');
SELECT named_actions FROM audit_trail.tracked WHERE table_name = 'tokens'::regclass;
-- after_matches is jsonb containment: numbers by value, arrays by element.
CREATE TABLE jobs (id int PRIMARY KEY, gpus numeric, tags text[], spec jsonb);
SELECT audit_trail.enable('jobs');
SELECT audit_trail.name_action('jobs', 'BIG_JOB', 'INSERT', after_matches => '{"gpus": 8, "tags": ["gpu"]}');
SELECT audit_trail.name_action('jobs', 'SPOT_JOB', 'INSERT', after_matches => '{"spec": {"spot": true}}');
INSERT INTO jobs VALUES (1, 8.0, '{gpu,a100}', '{}'), (2, 8, '{cpu}', '{}'), (3, 1, '{}', '{"spot": true, "zone": "b"}'), (4, NULL, NULL, NULL);
SELECT action, entity_id FROM pg_temp.trail('shaped.jobs');

\echo '6. A rule on a partitioned table applies to the rows in its partitions'
CREATE TABLE pods (id int, region text, account text, phase text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE pods_eu PARTITION OF pods FOR VALUES IN ('eu');
CREATE TABLE pods_us PARTITION OF pods FOR VALUES IN ('us');
SELECT audit_trail.enable('pods', tenant_column => 'account', always_include => '{region}');
SELECT audit_trail.name_action('pods', 'Stop', 'UPDATE', changed_any => '{phase}', after_matches => '{"phase": "stopped"}');
INSERT INTO pods VALUES (1, 'eu', 'a1', 'running'), (2, 'us', 'a2', 'running');
-- A partition made after the rule too.
CREATE TABLE pods_ap PARTITION OF pods FOR VALUES IN ('ap');
INSERT INTO pods VALUES (3, 'ap', 'a3', 'running');
UPDATE pods SET phase = 'stopped';
UPDATE pods_eu SET phase = 'running';
UPDATE pods_us SET phase = 'stopped';
UPDATE pods_us SET phase = 'running';
UPDATE pods_us SET phase = 'stopped';
SELECT action, operation, tenant, entity_id, before, after FROM pg_temp.trail('shaped.pods');
-- Rules belong to the audited table, not to a partition.
SELECT pg_temp.try($$SELECT audit_trail.name_action('pods_eu', 'Start', 'UPDATE')$$);

\echo '7. Renames: the tenant column, the columns always included and the rules follow'
ALTER TABLE pods RENAME COLUMN phase TO state;
ALTER TABLE pods RENAME COLUMN account TO owner_account;
ALTER TABLE pods RENAME COLUMN region TO zone;
SELECT tenant_column, always_include, named_actions FROM audit_trail.tracked WHERE table_name = 'pods'::regclass;
SELECT pg_temp.mark() AS m \gset
UPDATE pods SET state = 'running' WHERE id = 1;
UPDATE pods SET state = 'stopped' WHERE id = 1;
SELECT action, tenant, after FROM pg_temp.trail('shaped.pods', :m);
-- A column renamed to a name the redaction patterns match is redacted from
-- then on (API §9): a rule testing it then sees "[REDACTED]" and no longer
-- matches, so no rule can tell its value.
CREATE TABLE devices (id int PRIMARY KEY, code text);
SELECT audit_trail.enable('devices');
SELECT audit_trail.name_action('devices', 'DEVICE_LOCKED', 'UPDATE', after_matches => '{"code": "0000"}');
INSERT INTO devices VALUES (1, 'x');
UPDATE devices SET code = '0000';
ALTER TABLE devices RENAME COLUMN code TO otp_code;
UPDATE devices SET otp_code = 'y';
UPDATE devices SET otp_code = '0000';
SELECT action, after FROM pg_temp.trail('shaped.devices');
SELECT named_actions FROM audit_trail.tracked WHERE table_name = 'devices'::regclass;
-- check() names each rule that can no longer match: that one (a redacted
-- value), and rules whose tested columns were dropped. A changed_any rule
-- with one of its columns left still matches, and is not named.
CREATE TABLE gadgets (id int PRIMARY KEY, state text, color text, size int);
SELECT audit_trail.enable('gadgets');
SELECT audit_trail.name_action('gadgets', 'GADGET_CHANGED', 'UPDATE', changed_any => '{color,state}');
SELECT audit_trail.name_action('gadgets', 'GADGET_RESIZED', 'UPDATE', changed_any => '{size}');
SELECT audit_trail.name_action('gadgets', 'GADGET_RED', 'UPDATE', after_matches => '{"color": "red", "state": "on"}');
SELECT audit_trail.name_action('gadgets', 'GADGET_ON', 'UPDATE', after_matches => '{"state": "on"}');
SELECT count(*) AS problems_before FROM audit_trail.check() WHERE table_name = 'gadgets'::regclass;
ALTER TABLE gadgets DROP COLUMN color, DROP COLUMN size;
SELECT table_name, problem FROM audit_trail.check()
WHERE table_name IN ('devices'::regclass, 'gadgets'::regclass) ORDER BY table_name::text, problem;
INSERT INTO gadgets VALUES (1, 'off');
UPDATE gadgets SET state = 'on';
SELECT action FROM pg_temp.trail('shaped.gadgets') WHERE operation = 'UPDATE';
-- A rule whose operation the table no longer records (enable again with
-- other actions): named too.
SELECT audit_trail.enable('gadgets', actions => '{INSERT,DELETE}');
SELECT problem FROM audit_trail.check() WHERE table_name = 'gadgets'::regclass ORDER BY problem;
SELECT audit_trail.disable('gadgets');
-- A dropped tenant column: the context's tenant again; a dropped column is
-- no longer always included.
CREATE TABLE notes (id int PRIMARY KEY, org text, scope text, body text);
SELECT audit_trail.enable('notes', tenant_column => 'org', always_include => '{scope}');
INSERT INTO notes VALUES (1, 'acme', 's', 'a');
ALTER TABLE notes DROP COLUMN org, DROP COLUMN scope;
SELECT audit_trail.set_context(tenant => 'context-tenant', local => false);
UPDATE notes SET body = 'b';
SELECT audit_trail.clear_context();
SELECT operation, tenant, before, after FROM pg_temp.trail('shaped.notes');
SELECT tenant_column, always_include FROM audit_trail.tracked WHERE table_name = 'notes'::regclass;

\echo '8. Re-enable keeps the rules (its tenant_column and always_include are its own); disable forgets them'
SELECT audit_trail.enable('tokens');
SELECT audit_trail.name_action('tokens', 'TOKEN_REVOKED', 'UPDATE', changed_any => '{revoked}');
SELECT audit_trail.enable('tokens', actions => '{INSERT,UPDATE}');
SELECT tenant_column, jsonb_array_length(named_actions) AS rules FROM audit_trail.tracked WHERE table_name = 'tokens'::regclass;
-- A rule for an operation the table does not record: a warning.
SELECT audit_trail.name_action('tokens', 'TOKEN_DELETED', 'DELETE');
SELECT audit_trail.disable('tokens');
SELECT audit_trail.enable('tokens');
SELECT jsonb_array_length(named_actions) AS rules FROM audit_trail.tracked WHERE table_name = 'tokens'::regclass;

\echo '9. Bad input: an error naming it, with its SQLSTATE, and nothing changed'
SELECT count(*) AS config_events FROM audit_trail.events WHERE action IN ('AUDIT_ENABLED', 'AUDIT_CONFIG_CHANGED') \gset before_
SELECT tenant_column, always_include, named_actions FROM audit_trail.tracked WHERE table_name = 'sessions'::regclass \gset was_
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', tenant_column => 'nope')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', always_include => '{project,nope}')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', always_include => ARRAY[NULL])$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', always_include => NULL)$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', tenant_column => 'org', exclude => '{org}')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', tenant_column => 'org', redact => '{org}')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('projects', tenant_column => 'api_token')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', always_include => '{note}', exclude => '{note}')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', changed_any => '{nope}')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', changed_any => ARRAY[NULL])$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', changed_any => '{}')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'INSERT', changed_any => '{status}')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', after_matches => '{"nope": 1}')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE', after_matches => '["status"]')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('projects', 'TOKEN_SEEN', 'UPDATE', after_matches => '{"api_token": "tok-1"}')$$);
SELECT pg_temp.try(format('SELECT audit_trail.name_action(%L, %L, %L)', 'sessions', a, 'UPDATE'))
FROM unnest(ARRAY['INSERT', 'update', 'Truncate', 'AUDIT_ENABLED', 'audit-config-changed', 'ALERT', 'Alert_Fired',
                  'SCHEMA_CHANGED', 'Token Revoked', '', '1ST']) AS a;
SELECT pg_temp.try(format('SELECT audit_trail.name_action(%L, %L, %L)', 'sessions', 'SESSION_PAUSED', o))
FROM unnest(ARRAY['TRUNCATE', 'SELECT', 'stopped']) AS o;
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', NULL)$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', NULL, 'UPDATE')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action(NULL, 'SESSION_PAUSED', 'UPDATE')$$);
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_STOPPED', 'UPDATE', changed_any => '{status}', after_matches => '{"status": "stopped"}')$$);
CREATE TABLE not_audited (id int PRIMARY KEY);
SELECT pg_temp.try($$SELECT audit_trail.name_action('not_audited', 'SESSION_PAUSED', 'UPDATE')$$);
SELECT pg_temp.try($$SELECT audit_trail.drop_named_action('not_audited', 'SESSION_PAUSED')$$);
SELECT pg_temp.try($$SELECT audit_trail.drop_named_action('sessions', 'SESSION_PAUSED')$$);
SELECT pg_temp.try($$SELECT audit_trail.drop_named_action('sessions', NULL)$$);
-- Only the table's owner.
CREATE ROLE shaped_clerk;
GRANT USAGE ON SCHEMA shaped TO shaped_clerk;
SET ROLE shaped_clerk;
SELECT pg_temp.try($$SELECT audit_trail.name_action('sessions', 'SESSION_PAUSED', 'UPDATE')$$);
SELECT pg_temp.try($$SELECT audit_trail.drop_named_action('sessions', 'SESSION_STOPPED')$$);
SELECT pg_temp.try($$SELECT audit_trail.enable('sessions', tenant_column => 'org')$$);
RESET ROLE;
SELECT count(*) = :before_config_events AS no_config_event,
       tenant_column IS NOT DISTINCT FROM :'was_tenant_column' AS same_tenant_column,
       always_include::text = :'was_always_include' AS same_always_include,
       named_actions::text = :'was_named_actions' AS same_rules
FROM audit_trail.events, audit_trail.tracked
WHERE action IN ('AUDIT_ENABLED', 'AUDIT_CONFIG_CHANGED') AND table_name = 'sessions'::regclass
GROUP BY tenant_column, always_include, named_actions;

DROP OWNED BY shaped_clerk;
DROP ROLE shaped_clerk;
