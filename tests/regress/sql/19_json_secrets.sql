-- API §9, secrets that stay secret: keys inside json and jsonb documents
-- (audit_trail.redact_json_keys) and statements recorded without their
-- literals (audit_trail.log_statement = normalized).
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
-- Runs a statement: 'accepted', or the error's SQLSTATE, message and hint.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN hint <> '' THEN ' (' || hint || ')' ELSE '' END;
END $$;
CREATE SCHEMA js;
SET search_path = js, public;

-- 1. The settings. Bad values are refused with their SQLSTATE.
SELECT pg_temp.try('SET audit_trail.redact_json_keys = maybe');
SELECT pg_temp.try('SET audit_trail.redact_json_keys = ''''');
SELECT pg_temp.try('SET audit_trail.log_statement = verbatim');
SELECT pg_temp.try('SET audit_trail.log_statement = ''''');
SELECT pg_temp.try('SET audit_trail.log_statement = t');
SELECT name, setting, vartype, context, enumvals FROM pg_settings
WHERE name IN ('audit_trail.redact_json_keys', 'audit_trail.log_statement') ORDER BY name;
-- log_statement was a boolean: its spellings still work, and SHOW names them.
SET audit_trail.log_statement = true;
SHOW audit_trail.log_statement;
SET audit_trail.log_statement = 0;
SHOW audit_trail.log_statement;
SET audit_trail.log_statement = 'YES';
SHOW audit_trail.log_statement;
SET audit_trail.log_statement = 'Normalized';
SHOW audit_trail.log_statement;
RESET audit_trail.log_statement;
-- Both decide what the trail keeps: superusers only (SUSET).
CREATE ROLE js_writer;
SET ROLE js_writer;
SELECT pg_temp.try('SET audit_trail.redact_json_keys = off');
SELECT pg_temp.try('SET audit_trail.log_statement = on');
SELECT pg_temp.try('SET audit_trail.log_statement = normalized');
RESET ROLE;

-- 2. The issue's pod: its env is a jsonb document holding a token.
CREATE DOMAIN js.doc AS jsonb;
CREATE TABLE js.pods (
    id int PRIMARY KEY,
    name text,
    env jsonb,          -- keys redacted at any depth, inside arrays too
    spec json,          -- recorded as jsonb, as to_jsonb renders json
    tags jsonb[],       -- arrays of documents: each document walked
    extra js.doc,       -- a domain over jsonb
    note text           -- JSON in a text column is text: not walked
);
SELECT audit_trail.enable('js.pods') IS NOT NULL AS enabled;
INSERT INTO js.pods VALUES (1, 'trainer',
    '{"HF_TOKEN": "hf_abc123", "CUDA_VISIBLE_DEVICES": "0,1",
      "db": {"host": "db1", "auth": {"Password": "pw1", "port": 5432}},
      "registries": [{"url": "r1", "api_key": "k1"}, {"url": "r2", "creds": [{"secret": {"a": [1, 2]}}]}],
      "tokenizer": "bert", "tok_en": "resembles", "pass_word": "resembles", "api-key": "resembles",
      "mode": "token", "limits": null}',
    '{"image": "trainer:1", "pull": {"registry_token": "t0k"}, "image": "trainer:2"}',
    ARRAY['{"otp": "123456", "kind": "mfa"}', '"token"', '[{"ssn": 1}]']::jsonb[],
    '{"private_key": {"pem": "-----BEGIN"}, "public_key": "ssh-ed25519"}',
    '{"token": "stays, text is not a document"}');
-- Nothing secret reaches the log; values that are not keys stay.
SELECT jsonb_pretty(after) FROM audit_trail.events WHERE entity_type = 'js.pods' AND action = 'INSERT';
-- An UPDATE that changes only a secret: the column is changed, the values
-- on both sides redacted.
UPDATE js.pods SET env = jsonb_set(env, '{db,auth,Password}', '"pw2"') WHERE id = 1;
UPDATE js.pods SET env = env || '{"MODEL": "llama"}', note = 'n' WHERE id = 1;
SELECT before->'env'->'db' AS before_db, after->'env'->'db' AS after_db, changed
FROM audit_trail.events WHERE entity_type = 'js.pods' AND action = 'UPDATE' ORDER BY id;
SELECT after->'env'->>'MODEL' AS model, after->>'note' AS note
FROM audit_trail.events WHERE entity_type = 'js.pods' AND action = 'UPDATE' ORDER BY id DESC LIMIT 1;
DELETE FROM js.pods WHERE id = 1;
SELECT before->'env'->>'HF_TOKEN' AS hf_token, before->'tags' AS tags
FROM audit_trail.events WHERE entity_type = 'js.pods' AND action = 'DELETE';

-- 3. The patterns are the table's, stored at enable(): lowering or changing
-- the setting later changes nothing for it.
SET audit_trail.redact_patterns = 'gpu';
INSERT INTO js.pods (id, env) VALUES (2, '{"HF_TOKEN": "hf_2", "gpu": "A100"}');
RESET audit_trail.redact_patterns;
SELECT after->'env' AS env FROM audit_trail.events WHERE entity_type = 'js.pods' AND entity_id = '2';
-- A table enabled with no patterns has nothing to match.
SET audit_trail.redact_patterns = '';
CREATE TABLE js.open (id int PRIMARY KEY, doc jsonb);
SELECT audit_trail.enable('js.open') IS NOT NULL AS enabled;
RESET audit_trail.redact_patterns;
INSERT INTO js.open VALUES (1, '{"token": "visible: no patterns stored"}');
SELECT after FROM audit_trail.events WHERE entity_type = 'js.open';

-- 4. redact_json_keys = off: documents are recorded as they are (columns
-- matched by name stay redacted).
CREATE TABLE js.creds (id int PRIMARY KEY, api_token text, payload jsonb);
SELECT audit_trail.enable('js.creds') IS NOT NULL AS enabled;
SET audit_trail.redact_json_keys = off;
INSERT INTO js.creds VALUES (1, 'tok', '{"secret": "in clear", "list": [{"password": "p"}]}');
RESET audit_trail.redact_json_keys;
INSERT INTO js.creds VALUES (2, 'tok', '{"secret": "hidden", "list": [{"password": "p"}]}');
SELECT entity_id, after FROM audit_trail.events WHERE entity_type = 'js.creds' ORDER BY id;

-- 5. Readers see what was recorded: export, and row_as_of, whose live row
-- is redacted as capture would record it.
INSERT INTO js.pods (id, env, spec) VALUES (3, '{"HF_TOKEN": "hf_3", "n": [{"apikey": 1}]}', '{"x": {"secret": 1}}');
SELECT (line::jsonb)->'after'->'env' AS exported_env
FROM audit_trail.export('jsonl', entity_types => '{js.pods}', entity_id => '3') AS line;
SELECT audit_trail.row_as_of('js.pods', '3', now()) - 'tags' - 'extra' AS live_row;
SET audit_trail.redact_json_keys = off;
SELECT audit_trail.row_as_of('js.pods', '3', now())->'env' AS live_env_unredacted;
RESET audit_trail.redact_json_keys;
-- A table that is not audited: the current patterns.
CREATE TABLE js.plain (id int PRIMARY KEY, doc json);
INSERT INTO js.plain VALUES (1, '{"b": {"otp": 1}, "a": 2}');
SELECT audit_trail.row_as_of('js.plain', '1', now()) AS plain_row;

-- 6. log_event's details: the patterns in force now (no table).
SELECT audit_trail.log_event('MODEL_DEPLOYED', 'js.pods', '3',
    '{"api_key": "sk-live-1", "config": {"hf_token": "hf_x", "layers": [{"private_key": "---"}, 7]},
      "api-key": "resembles", "note": "api_key"}') IS NOT NULL AS logged;
SET audit_trail.redact_patterns = 'region';
SELECT audit_trail.log_event('MODEL_MOVED', details => '{"region": "eu", "api_key": "not a pattern now"}') IS NOT NULL AS logged;
RESET audit_trail.redact_patterns;
SET audit_trail.redact_json_keys = off;
SELECT audit_trail.log_event('MODEL_DEPLOYED', details => '{"api_key": "kept: off"}') IS NOT NULL AS logged;
RESET audit_trail.redact_json_keys;
SELECT audit_trail.log_event('MODEL_LISTED', details => '[{"token": 1}, "token", {"ok": {"secret": [1]}}]') IS NOT NULL AS logged;
SELECT audit_trail.log_event('MODEL_COUNTED', details => '42') IS NOT NULL AS logged;
SELECT audit_trail.log_event('MODEL_NONE') IS NOT NULL AS logged;
SELECT action, details FROM audit_trail.events WHERE action LIKE 'MODEL\_%' ORDER BY id;
-- Exported as stored.
SELECT (line::jsonb)->'details' AS exported_details
FROM audit_trail.export('jsonl', actions => '{MODEL_MOVED}') AS line;

-- 7. log_statement = normalized: every literal becomes $n.
CREATE TABLE js.stmts (id int PRIMARY KEY, s text, n numeric);
SELECT audit_trail.enable('js.stmts') IS NOT NULL AS enabled;
SET audit_trail.log_statement = normalized;
INSERT INTO js.stmts VALUES (1, 'hunter2', -42.5), (2, E'it\'s a \\secret', 7);
UPDATE js.stmts SET n = n - 1, s = $$dollar 'quoted'$$ WHERE id = -(-1);
UPDATE js.stmts SET s = $tag$tagged $$ body$tag$ || B'101'::text WHERE id IN (1, 2) AND n > -100 AND s <> U&'d\0061t';
/* a comment stays */ DELETE FROM js.stmts WHERE s LIKE 'x%' OR n BETWEEN -5 AND 1e3 OR id = 2;
-- A statement that has parameters already: literals are numbered after them.
PREPARE ins(text) AS INSERT INTO js.stmts VALUES (3, $1, 0) \; EXECUTE ins('from a parameter');
DEALLOCATE ins;
SET audit_trail.log_statement = on;
UPDATE js.stmts SET s = 'verbatim: the warning in the README' WHERE id = 3;
RESET audit_trail.log_statement;
UPDATE js.stmts SET s = 'not recorded' WHERE id = 3;
SELECT action, entity_id, statement FROM audit_trail.events WHERE entity_type = 'js.stmts' ORDER BY id;

DROP ROLE js_writer;
