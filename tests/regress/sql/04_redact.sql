-- Secrets never reach the log: redacted by name, by pattern, and bytea.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE accounts (
    id int PRIMARY KEY, login text, password text, "MFA_Secret" text, card text, avatar bytea, note text);
SELECT audit_trail.enable('accounts', redact => '{card}', exclude => '{note}');
SELECT redact FROM audit_trail.tracked WHERE table_name = 'accounts'::regclass;
INSERT INTO accounts VALUES (1, 'ann', 'hunter2', 'JBSWY3DP', '4111-1111', '\x00ff', 'n1');
UPDATE accounts SET password = 'correct horse', card = NULL WHERE id = 1;
UPDATE accounts SET avatar = '\x01' WHERE id = 1;
UPDATE accounts SET note = 'only excluded';
DELETE FROM accounts;
SELECT action, before, after, changed FROM audit_trail.events WHERE entity_type = 'public.accounts' ORDER BY id;
-- No secret, in any form, anywhere in the log.
SELECT count(*) AS leaks FROM audit_trail.events e
WHERE concat_ws(' ', e.before, e.after, e.changed, e.details, e.entity_id, e.entity_label, e.statement)
      ~ '(hunter2|correct horse|JBSWY3DP|4111|only excluded|00ff)';

-- Patterns in force at enable() apply to columns added later too.
ALTER TABLE accounts ADD COLUMN reset_token text;
INSERT INTO accounts (id, login, reset_token) VALUES (2, 'bo', 'tok-123');
SELECT after->'reset_token' AS reset_token FROM audit_trail.events WHERE entity_type = 'public.accounts' AND entity_id = '2';
-- Changing the patterns later does not unredact an enabled table.
SET audit_trail.redact_patterns = '';
UPDATE accounts SET password = 'x', reset_token = 'tok-456' WHERE id = 2;
SELECT after FROM audit_trail.events WHERE entity_type = 'public.accounts' AND entity_id = '2' AND action = 'UPDATE';
-- A key column that is redacted keeps the key secret too.
CREATE TABLE tokens (token text PRIMARY KEY, owner text);
SELECT audit_trail.enable('tokens');
RESET audit_trail.redact_patterns;
SELECT audit_trail.enable('tokens');
INSERT INTO tokens VALUES ('s3cr3t', 'ann');
SELECT entity_id, after FROM audit_trail.events WHERE entity_type = 'public.tokens';
