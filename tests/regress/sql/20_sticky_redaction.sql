-- API §9: redaction is sticky. A column redacted at enable() (named, or
-- matched by audit_trail.redact_patterns) stays redacted through every kind
-- of rename until enable() is called again; a column added later is matched
-- against the patterns stored at enable(); reveal exempts named columns from
-- the patterns (not from redact). Capture, tracked and row_as_of() agree:
-- one definition decides (audit_trail._redacted).
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
-- The row events of a table (under any of its names), in order.
CREATE FUNCTION pg_temp.trail(VARIADIC names text[])
RETURNS TABLE(entity_type text, operation text, entity_id text, before jsonb, after jsonb)
LANGUAGE sql AS $$
    SELECT e.entity_type, e.operation, e.entity_id, e.before, e.after FROM audit_trail.events e
    WHERE e.entity_type = ANY (names) AND e.operation IS NOT NULL ORDER BY e.id
$$;
CREATE SCHEMA sticky;
SET search_path = sticky, public;

\echo '1. RENAME COLUMN: a column the patterns matched stays redacted, under every later name'
CREATE TABLE clients (id int PRIMARY KEY, name text, api_token text, notes text);
SELECT audit_trail.enable('clients', redact => '{notes}');
INSERT INTO clients VALUES (1, 'acme', 'tok-1', 'note-1');
ALTER TABLE clients RENAME COLUMN api_token TO api_credential;
UPDATE clients SET api_credential = 'tok-2' WHERE id = 1;
ALTER TABLE clients RENAME COLUMN notes TO remarks;
UPDATE clients SET remarks = 'note-2', api_credential = 'tok-3' WHERE id = 1;
-- The table renamed, then moved to another schema, then the column again.
ALTER TABLE clients RENAME TO customers;
UPDATE customers SET api_credential = 'tok-4' WHERE id = 1;
CREATE SCHEMA sticky2;
ALTER TABLE customers SET SCHEMA sticky2;
ALTER TABLE sticky2.customers RENAME COLUMN api_credential TO credential;
UPDATE sticky2.customers SET credential = 'tok-5', name = 'acme corp' WHERE id = 1;
SELECT * FROM pg_temp.trail('sticky.clients', 'sticky.customers', 'sticky2.customers');
SELECT redact, reveal FROM audit_trail.tracked WHERE table_name = 'sticky2.customers'::regclass;
-- row_as_of renders the live row as capture does.
SELECT audit_trail.row_as_of('sticky2.customers', '1', now()) AS row_now;
SELECT count(*) AS leaks FROM audit_trail.events e
WHERE concat_ws(' ', e.before, e.after, e.details) ~ '(tok-|note-)';

\echo '2. ALTER TYPE ... RENAME ATTRIBUTE ... CASCADE on a typed table'
CREATE TYPE login AS (id int, username text, password_hash text, otp_seed text);
CREATE TABLE logins OF login (PRIMARY KEY (id));
SELECT audit_trail.enable('logins');
INSERT INTO logins VALUES (1, 'ann', 'hash-1', 'seed-1');
ALTER TYPE login RENAME ATTRIBUTE password_hash TO digest CASCADE;
ALTER TYPE login RENAME ATTRIBUTE otp_seed TO seed CASCADE;
UPDATE logins SET digest = 'hash-2', seed = 'seed-2', username = 'anne';
-- A column added through the type is matched against the stored patterns.
ALTER TYPE login ADD ATTRIBUTE recovery_token text CASCADE;
UPDATE logins SET recovery_token = 'rec-1';
SELECT * FROM pg_temp.trail('sticky.logins');
SELECT redact FROM audit_trail.tracked WHERE table_name = 'logins'::regclass;
SELECT audit_trail.row_as_of('logins', '1', now()) AS row_now;

\echo '3. A partitioned table: RENAME COLUMN recurses from it to every partition'
CREATE TABLE payments (id int, region text, card_token text, amount int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE payments_eu PARTITION OF payments FOR VALUES IN ('eu');
CREATE TABLE payments_us PARTITION OF payments FOR VALUES IN ('us') PARTITION BY LIST (region);
CREATE TABLE payments_us_all PARTITION OF payments_us DEFAULT;
SELECT audit_trail.enable('payments');
INSERT INTO payments VALUES (1, 'eu', 'card-1', 10), (2, 'us', 'card-2', 20);
-- PostgreSQL lets no partition, and not ONLY the parent, rename a column
-- by itself (42P16): every rename of these columns goes through the
-- audited table.
SELECT pg_temp.try('ALTER TABLE payments_eu RENAME COLUMN card_token TO card_ref');
SELECT pg_temp.try('ALTER TABLE payments_us RENAME COLUMN card_token TO card_ref');
SELECT pg_temp.try('ALTER TABLE ONLY payments RENAME COLUMN card_token TO card_ref');
ALTER TABLE payments RENAME COLUMN card_token TO card_ref;
UPDATE payments SET card_ref = card_ref || '-x', amount = amount + 1;
-- Aimed at a partition directly, and at one attached later whose column
-- numbers differ from the parent's.
INSERT INTO payments_eu VALUES (3, 'eu', 'card-3', 30);
CREATE TABLE payments_fr (gone int, id int NOT NULL, region text NOT NULL, card_ref text, amount int);
ALTER TABLE payments_fr DROP COLUMN gone;
ALTER TABLE payments ATTACH PARTITION payments_fr FOR VALUES IN ('fr');
INSERT INTO payments_fr VALUES (4, 'fr', 'card-4', 40);
SELECT * FROM pg_temp.trail('sticky.payments');
SELECT redact FROM audit_trail.tracked WHERE table_name = 'payments'::regclass;
SELECT audit_trail.row_as_of('payments', '[4,"fr"]', now()) AS row_now;

\echo '4. reveal: an admin sees MFA switched off; secrets stay redacted'
CREATE TABLE admins (id int PRIMARY KEY, email text, mfa_enabled boolean, otp_secret text,
                     cpu_hotplug boolean, password text);
-- The patterns alone: "mfa" and "otp" (in cpu_hotplug) catch harmless flags.
SELECT audit_trail.enable('admins');
INSERT INTO admins VALUES (1, 'ann@example.com', true, 'otp-1', false, 'pw-1');
UPDATE admins SET mfa_enabled = false WHERE id = 1;
SELECT audit_trail.enable('admins', reveal => '{mfa_enabled,cpu_hotplug}');
UPDATE admins SET mfa_enabled = true, cpu_hotplug = true, otp_secret = 'otp-2' WHERE id = 1;
UPDATE admins SET mfa_enabled = false, otp_secret = NULL, password = 'pw-2' WHERE id = 1;
SELECT redact, reveal FROM audit_trail.tracked WHERE table_name = 'admins'::regclass;
-- A revealed column renamed stays revealed; a column added later is
-- matched against the patterns (reveal names columns that exist).
ALTER TABLE admins RENAME COLUMN mfa_enabled TO second_factor;
ALTER TABLE admins ADD COLUMN mfa_backup_codes text;
UPDATE admins SET second_factor = true, mfa_backup_codes = 'codes-1' WHERE id = 1;
SELECT * FROM pg_temp.trail('sticky.admins');
SELECT redact, reveal FROM audit_trail.tracked WHERE table_name = 'admins'::regclass;
SELECT audit_trail.row_as_of('admins', '1', now()) AS row_now;
-- reveal does not undo redact: a column named in both stays redacted.
SELECT audit_trail.enable('admins', redact => '{second_factor}', reveal => '{second_factor,cpu_hotplug}');
UPDATE admins SET second_factor = false, cpu_hotplug = false WHERE id = 1;
SELECT after FROM audit_trail.events WHERE entity_type = 'sticky.admins' ORDER BY id DESC LIMIT 1;
SELECT redact, reveal FROM audit_trail.tracked WHERE table_name = 'admins'::regclass;
SELECT details -> 'redact' AS redact, details -> 'reveal' AS reveal FROM audit_trail.events
WHERE action = 'AUDIT_ENABLED' AND entity_id = 'sticky.admins' ORDER BY id DESC LIMIT 1;
SELECT count(*) AS leaks FROM audit_trail.events e
WHERE concat_ws(' ', e.before, e.after) ~ '(otp-|pw-|codes-|hash-|seed-|rec-|card-)';

\echo '5. Until enable() is called again: then decided anew'
SET audit_trail.redact_patterns = 'secret';
-- Lowering the setting changes nothing for tables already enabled ...
ALTER TABLE sticky2.customers ADD COLUMN support_token text;
UPDATE sticky2.customers SET credential = 'tok-6', support_token = 'tok-7' WHERE id = 1;
SELECT after FROM audit_trail.events WHERE entity_type = 'sticky2.customers' ORDER BY id DESC LIMIT 1;
-- ... until enable() runs again, with the patterns then in force.
SELECT audit_trail.enable('sticky2.customers');
SELECT redact FROM audit_trail.tracked WHERE table_name = 'sticky2.customers'::regclass;
RESET audit_trail.redact_patterns;
-- Positional calls of the six arguments enable() had before reveal still work.
SELECT audit_trail.enable('sticky2.customers', '{credential}', '{}', NULL, NULL, '{INSERT,UPDATE}');
SELECT redact, actions FROM audit_trail.tracked WHERE table_name = 'sticky2.customers'::regclass;

\echo '6. Case is ignored, the same way for capture, tracked and row_as_of'
SET audit_trail.redact_patterns = 'geheim,ÜBER';
CREATE TABLE notes (id int PRIMARY KEY, "Geheimnis" text, "ÜBERWEISUNG" text, "Übersicht" text, body text);
SELECT audit_trail.enable('notes');
RESET audit_trail.redact_patterns;
INSERT INTO notes VALUES (1, 'g-1', 'u-1', 's-1', 'b-1');
SELECT after FROM audit_trail.events WHERE entity_type = 'sticky.notes';
SELECT redact FROM audit_trail.tracked WHERE table_name = 'notes'::regclass;
SELECT audit_trail.row_as_of('notes', '1', now()) AS row_now;

\echo '7. Bad reveal arguments, refused as enable() refuses its other lists; nothing changes'
SELECT pg_temp.try('SELECT audit_trail.enable(''admins'', reveal => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''admins'', reveal => ''{nosuch}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''admins'', reveal => ''{NULL}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''admins'', reveal => ''{Second_Factor}'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''admins'', exclude => ''{email,cpu_hotplug}'', reveal => ''{cpu_hotplug}'')');
SELECT redact, exclude, reveal FROM audit_trail.tracked WHERE table_name = 'admins'::regclass;

\echo '8. Every audited table: capture triggers whole, nothing stale'
SELECT c.* FROM audit_trail.check() c JOIN pg_class k ON k.oid = c.table_name
WHERE k.relnamespace IN ('sticky'::regnamespace, 'sticky2'::regnamespace);

\echo '9. ... whatever the locale of the database (under C, lower() in SQL changes ASCII letters only)'
SELECT current_database() AS home \gset
CREATE DATABASE sticky_c_locale TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C';
\c sticky_c_locale
SET client_min_messages = warning;
CREATE EXTENSION pg_audit_trail;
RESET client_min_messages;
SET audit_trail.redact_patterns = 'über';
CREATE TABLE transfers (id int PRIMARY KEY, "ÜBERWEISUNG" text, amount int);
SELECT audit_trail.enable('transfers');
RESET audit_trail.redact_patterns;
INSERT INTO transfers VALUES (1, 'iban-1', 10);
SELECT after FROM audit_trail.events WHERE entity_type = 'public.transfers';
SELECT redact FROM audit_trail.tracked;
SELECT audit_trail.row_as_of('transfers', '1', now()) AS row_now;
\c :home
DROP DATABASE sticky_c_locale;
