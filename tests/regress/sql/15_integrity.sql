-- Capture that cannot be switched off unseen (API §8): what DDL may not do
-- to an audited table, what DDL leaves in the trail, and check().
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
-- Runs a statement; says whether it was refused, with its SQLSTATE.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.triggers(rel regclass) RETURNS TABLE(tgname name, tgenabled "char") LANGUAGE sql AS $$
    SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = rel AND NOT tgisinternal ORDER BY tgname $$;
-- Objects of this file live in a schema of their own.
CREATE SCHEMA integrity;
SET search_path = integrity, public;
CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);
SELECT audit_trail.enable('acct');
SELECT * FROM audit_trail.check() WHERE table_name = 'acct'::regclass;
SELECT capture_ok FROM audit_trail.tracked WHERE table_name = 'acct'::regclass;

\echo '1. the table owner cannot switch capture off, by any name, in any session'
CREATE ROLE acct_owner;
ALTER TABLE acct OWNER TO acct_owner;
GRANT USAGE ON SCHEMA integrity TO acct_owner;
SET ROLE acct_owner;
SELECT pg_temp.try('ALTER TABLE acct ENABLE REPLICA TRIGGER audit_trail_update');
SELECT pg_temp.try('ALTER TABLE acct ENABLE TRIGGER audit_trail_insert');
SELECT pg_temp.try('ALTER TABLE acct DISABLE TRIGGER audit_trail_delete');
SELECT pg_temp.try('DROP TRIGGER audit_trail_delete ON acct');
SELECT pg_temp.try('ALTER TRIGGER audit_trail_insert ON acct RENAME TO x');
-- CREATE OR REPLACE TRIGGER over one of them, with another function or a
-- WHEN that never holds; ALTER TRIGGER ... DEPENDS ON.
CREATE FUNCTION pg_temp.nop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
SELECT pg_temp.try('CREATE OR REPLACE TRIGGER audit_trail_insert AFTER INSERT ON acct FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.nop()');
SELECT pg_temp.try('CREATE OR REPLACE TRIGGER audit_trail_update AFTER UPDATE ON acct REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION audit_trail.capture()');
RESET ROLE;
SELECT pg_temp.try('ALTER TRIGGER audit_trail_insert ON acct DEPENDS ON EXTENSION pg_audit_trail');
-- ... nor a superuser, in a session_replication_role = replica session.
SET session_replication_role = replica;
SELECT pg_temp.try('ALTER TABLE acct DISABLE TRIGGER audit_trail_update');
SELECT pg_temp.try('DROP TRIGGER audit_trail_truncate ON acct');
RESET session_replication_role;
-- ENABLE ALWAYS (what pg_dump writes) is no change and is accepted.
SELECT pg_temp.try('ALTER TABLE acct ENABLE ALWAYS TRIGGER audit_trail_insert');
-- DISABLE TRIGGER ALL / USER (pg_restore --disable-triggers) is accepted:
-- the table's other triggers go off, capture stays on.
CREATE TRIGGER users_own AFTER INSERT ON acct FOR EACH ROW EXECUTE FUNCTION pg_temp.nop();
ALTER TABLE acct DISABLE TRIGGER ALL;
SELECT * FROM pg_temp.triggers('acct');
INSERT INTO acct VALUES (1, 'ann', 10);
ALTER TABLE acct ENABLE TRIGGER ALL;
ALTER TABLE acct DISABLE TRIGGER USER;
SELECT * FROM pg_temp.triggers('acct');
ALTER TABLE acct ENABLE TRIGGER USER;
SELECT * FROM pg_temp.triggers('acct');
-- A trigger of the user's own comes and goes as it likes.
DROP TRIGGER users_own ON acct;
SELECT action, entity_id, details FROM audit_trail.events WHERE entity_type = 'integrity.acct' ORDER BY id;
-- The log's guards are protected the same way.
SELECT pg_temp.try('ALTER TABLE audit_trail.events ENABLE REPLICA TRIGGER audit_trail_guard_row');
SELECT pg_temp.try('DROP TRIGGER audit_trail_guard ON audit_trail.events_default');
SELECT pg_temp.try('ALTER TRIGGER audit_trail_guard ON audit_trail.events_default RENAME TO g');
ALTER TABLE audit_trail.events_default DISABLE TRIGGER ALL;
SELECT * FROM pg_temp.triggers('audit_trail.events_default');
SELECT pg_temp.try('DELETE FROM audit_trail.events_default');
-- A superuser can still write the catalog by hand: check() sees it, and
-- enable() puts the table right.
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'acct'::regclass AND tgname = 'audit_trail_update';
SELECT * FROM audit_trail.check() WHERE table_name = 'acct'::regclass;
SELECT capture_ok FROM audit_trail.tracked WHERE table_name = 'acct'::regclass;
SELECT count(*) >= 0 AS ran FROM audit_trail.maintain();
SELECT action, actor, entity_type, details FROM audit_trail.events WHERE action = 'CAPTURE_PROBLEM' AND entity_type = 'integrity.acct' ORDER BY id;
SELECT audit_trail.enable('acct');
SELECT * FROM audit_trail.check() WHERE table_name = 'acct'::regclass;
-- enable() with fewer actions drops the triggers it no longer needs.
SELECT audit_trail.enable('acct', actions => '{INSERT,UPDATE}');
SELECT * FROM pg_temp.triggers('acct');
SELECT audit_trail.enable('acct');

\echo '3. shapes whose changes would escape capture are refused (0A000)'
CREATE TEMP TABLE scratch (id int);
SELECT pg_temp.try('SELECT audit_trail.enable(''scratch'')');
CREATE TABLE base (id int NOT NULL);
CREATE TABLE derived () INHERITS (base);
SELECT pg_temp.try('SELECT audit_trail.enable(''base'')');
SELECT pg_temp.try('SELECT audit_trail.enable(''derived'')');
SELECT pg_temp.try('CREATE TABLE acct_child () INHERITS (acct)');
CREATE TABLE lookalike (id int NOT NULL, owner text, balance int);
SELECT pg_temp.try('ALTER TABLE lookalike INHERIT acct');
SELECT pg_temp.try('ALTER TABLE acct INHERIT base');
CREATE TABLE sales (id int, sold date, card text, PRIMARY KEY (id, sold)) PARTITION BY RANGE (sold);
CREATE TABLE sales_2020 PARTITION OF sales FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
SELECT pg_temp.try('SELECT audit_trail.enable(''sales_2020'')');
SELECT audit_trail.enable('sales', redact => '{}');
-- A table audited with settings of its own cannot become a partition of
-- an audited table (its redaction would silently give way to the parent's).
CREATE TABLE sales_2021 (id int NOT NULL, sold date NOT NULL, card text);
SELECT audit_trail.enable('sales_2021', redact => '{card}');
SELECT pg_temp.try($$ALTER TABLE sales ATTACH PARTITION sales_2021 FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')$$);
-- Nor an audited table a partition of a table that is not audited.
CREATE TABLE all_sales (id int, sold date, card text) PARTITION BY RANGE (sold);
SELECT pg_temp.try($$ALTER TABLE all_sales ATTACH PARTITION sales FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')$$);
SELECT audit_trail.disable('sales_2021');

\echo '5. partition DDL and data-rewriting DDL leave their trace'
ALTER TABLE sales ATTACH PARTITION sales_2021 FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE SCHEMA archive2022 CREATE TABLE sales_2022 PARTITION OF integrity.sales FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
SELECT * FROM pg_temp.triggers('archive2022.sales_2022');
INSERT INTO sales VALUES (1, '2020-05-05'), (2, '2021-05-05'), (3, '2022-05-05');
INSERT INTO archive2022.sales_2022 VALUES (4, '2022-06-06');
ALTER TABLE sales DETACH PARTITION sales_2020;
SELECT * FROM pg_temp.triggers('sales_2020');
INSERT INTO sales_2020 VALUES (5, '2020-07-07');
DROP TABLE archive2022.sales_2022;
ALTER TABLE sales ADD COLUMN note text;
ALTER TABLE sales_2021 ALTER COLUMN card SET STORAGE EXTERNAL;
ALTER TABLE acct ALTER COLUMN balance TYPE bigint USING balance * 100;
ALTER TABLE acct DROP COLUMN owner;
ALTER TABLE acct SET UNLOGGED;
ALTER TABLE acct SET LOGGED;
-- A dropped partition's rows_estimate counts its rows from the statistics,
-- which a backend reports when it is idle a moment: 0 to 2 here, by timing.
SELECT action, entity_type, entity_id,
       CASE WHEN action = 'PARTITION_DROPPED' THEN details || jsonb_build_object('rows_estimate', (details->>'rows_estimate')::int BETWEEN 0 AND 2)
            ELSE details END AS details
FROM audit_trail.events
WHERE entity_type IN ('integrity.sales', 'integrity.acct') AND action NOT IN ('INSERT', 'UPDATE', 'DELETE')
  AND id > (SELECT max(id) FROM audit_trail.events WHERE action = 'AUDIT_ENABLED' AND entity_id = 'integrity.acct')
ORDER BY id;
SELECT action, entity_id, after FROM audit_trail.events WHERE entity_type = 'integrity.sales' AND action = 'INSERT' ORDER BY id;

-- An owner whose search_path starts with "$user" attaches the table of its
-- own schema: that one is the partition, and gets capture.
CREATE ROLE sales_owner;
CREATE SCHEMA sales_owner AUTHORIZATION sales_owner;
GRANT USAGE, CREATE ON SCHEMA integrity TO sales_owner;
ALTER TABLE sales OWNER TO sales_owner;
SET ROLE sales_owner;
SET search_path = "$user", integrity;
CREATE TABLE sales_2023 (id int NOT NULL, sold date NOT NULL, card text, note text);
ALTER TABLE sales ATTACH PARTITION sales_2023 FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
INSERT INTO sales_owner.sales_2023 VALUES (6, '2023-03-03');
SET search_path = integrity, public;
RESET ROLE;
SELECT action, entity_id, details FROM audit_trail.events
WHERE entity_type = 'integrity.sales' AND (action = 'PARTITION_ATTACHED' OR entity_id LIKE '[6,%') ORDER BY id DESC LIMIT 2;
ALTER TABLE sales DETACH PARTITION sales_owner.sales_2023;
DROP TABLE sales_owner.sales_2023;
DROP SCHEMA sales_owner;
-- Columns removed along with a domain, or changed through a type.
CREATE DOMAIN pincode AS text;
CREATE TYPE money_pair AS (amount int, currency text);
CREATE TABLE wallet (id int PRIMARY KEY, pin pincode, funds money_pair);
SELECT audit_trail.enable('wallet');
DROP DOMAIN pincode CASCADE;
ALTER TYPE money_pair DROP ATTRIBUTE currency CASCADE;
SELECT details FROM audit_trail.events WHERE entity_type = 'integrity.wallet' AND action = 'SCHEMA_CHANGED' ORDER BY id;
SELECT * FROM audit_trail.check() WHERE table_name = 'wallet'::regclass;
DROP TABLE wallet;
DROP TYPE money_pair;

\echo '7. every kind of rename is followed at once'
ALTER INDEX acct RENAME TO ledger;
INSERT INTO ledger VALUES (2, 5);
SELECT action, entity_type, entity_id FROM audit_trail.history('ledger', '2');
SELECT entity_type, valid_until IS NULL AS current FROM audit_trail.table_names
WHERE relid = 'ledger'::regclass ORDER BY valid_from;
CREATE TYPE person AS (id int, nickname text, pin text);
CREATE TABLE people OF person (PRIMARY KEY (id));
SELECT audit_trail.enable('people', redact => '{nickname}');
ALTER TYPE person RENAME ATTRIBUTE nickname TO alias CASCADE;
SELECT redact FROM audit_trail.tracked WHERE table_name = 'people'::regclass;
INSERT INTO people VALUES (1, 'shadow', '1234');
SELECT after FROM audit_trail.events WHERE entity_type = 'integrity.people' AND action = 'INSERT';
SELECT details FROM audit_trail.events WHERE entity_type = 'integrity.people' AND action = 'SCHEMA_CHANGED';

\echo '8. enable() takes no lock that outlives it, once partitions exist; nobody else can take maintenance''s'
BEGIN;
SELECT audit_trail.enable('people', redact => '{alias}');
SELECT count(*) AS advisory_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT count(*) AS maintenance_locks FROM pg_locks
WHERE relation = 'audit_trail.archived_partitions'::regclass AND pid = pg_backend_pid();
COMMIT;
CREATE ROLE stranger;
SET ROLE stranger;
SELECT pg_temp.try('LOCK TABLE audit_trail.archived_partitions IN SHARE ROW EXCLUSIVE MODE');
RESET ROLE;
DROP ROLE stranger;

\echo '11. partition bounds do not depend on the session''s DateStyle and TimeZone'
SELECT string_agg(extract(epoch FROM range_start)::text, ',' ORDER BY range_start) AS iso_bounds
FROM audit_trail._partition_bounds() \gset
SET datestyle = 'Postgres, DMY';
SET timezone = 'Asia/Kolkata';
SELECT string_agg(extract(epoch FROM range_start)::text, ',' ORDER BY range_start) = :'iso_bounds' AS same_bounds
FROM audit_trail._partition_bounds();
SELECT count(*) >= 0 AS maintained FROM audit_trail.maintain();
RESET datestyle;
RESET timezone;
-- A client_ip with blanks around it is the address; all blanks are none.
CREATE TABLE pings (id int PRIMARY KEY);
SELECT audit_trail.enable('pings');
SET audit_trail.client_ip = ' 203.0.113.9 ';
INSERT INTO pings VALUES (1);
SET audit_trail.client_ip = '   ';
INSERT INTO pings VALUES (2);
RESET audit_trail.client_ip;
SELECT entity_id, client_ip IS NOT DISTINCT FROM (CASE entity_id WHEN '1' THEN '203.0.113.9'::inet ELSE inet_client_addr() END) AS right_ip
FROM audit_trail.events WHERE entity_type = 'integrity.pings' ORDER BY id;
-- NULL where a list is expected names the argument.
SELECT pg_temp.try('SELECT audit_trail.enable(''pings'', redact => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''pings'', exclude => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''pings'', actions => NULL)');
SELECT pg_temp.try('SELECT audit_trail.enable(''pings'', redact => ''{NULL}'')');

\echo '12. all is well again'
SELECT * FROM audit_trail.check();
SELECT table_name, capture_ok FROM audit_trail.tracked
WHERE (SELECT relnamespace FROM pg_class WHERE oid = table_name) = 'integrity'::regnamespace ORDER BY table_name::text;

DROP SCHEMA archive2022;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA integrity CASCADE;
RESET client_min_messages;
DROP FUNCTION pg_temp.nop();
DROP ROLE acct_owner;

DROP ROLE sales_owner;

-- What an ATTACH PARTITION attached is read from the catalog, not from the
-- name in the command looked up again afterwards: the partition key's code,
-- which the ATTACH runs over the partition's rows, may change search_path so
-- that the name resolves to another table. Before: that table (not the
-- owner's) got the capture triggers and a PARTITION_ATTACHED event; the
-- partition really attached got none.
CREATE SCHEMA att_m;
CREATE TABLE public.att_victim (id int PRIMARY KEY);
CREATE FUNCTION att_m.f(a int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM set_config('search_path', 'public', false); RETURN a; END $$;
SET search_path = att_m, public;
CREATE TABLE att_m.p (a int) PARTITION BY RANGE (att_m.f(a));
SELECT audit_trail.enable('att_m.p') IS NOT NULL AS enabled;
CREATE TABLE att_m.att_victim (a int);
INSERT INTO att_m.att_victim VALUES (5);
ALTER TABLE att_m.p ATTACH PARTITION att_victim FOR VALUES FROM (0) TO (10);
RESET search_path;
SELECT count(*) AS triggers_on_the_other_table FROM pg_trigger WHERE tgrelid = 'public.att_victim'::regclass;
SELECT count(*) > 0 AS attached_partition_captured FROM pg_trigger
WHERE tgrelid = 'att_m.att_victim'::regclass AND tgfoid = 'audit_trail.capture()'::regprocedure;
SELECT details ->> 'partition' AS recorded_partition FROM audit_trail.events
WHERE action = 'PARTITION_ATTACHED' AND entity_type = 'att_m.p';
INSERT INTO att_m.att_victim VALUES (6);
SELECT operation, entity_type FROM audit_trail.events WHERE entity_type = 'att_m.p' AND operation IS NOT NULL ORDER BY id;
SELECT count(*) AS problems FROM audit_trail.check();
SELECT audit_trail.disable('att_m.p');
DROP SCHEMA att_m CASCADE;
DROP TABLE public.att_victim;

-- A DROP that takes partitions with it by CASCADE (here: of the function a
-- sub-partitioned partition's key calls) records PARTITION_DROPPED like a
-- DROP TABLE, and never with the stash of an earlier command.
CREATE SCHEMA dropc;
CREATE FUNCTION dropc.h3(a int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a';
CREATE TABLE dropc.u (a int) PARTITION BY RANGE (a);
CREATE TABLE dropc.u0 PARTITION OF dropc.u FOR VALUES FROM (100) TO (200);
SELECT audit_trail.enable('dropc.u', key_columns => '{a}') IS NOT NULL AS enabled;
CREATE TABLE dropc.u2 PARTITION OF dropc.u FOR VALUES FROM (200) TO (300) PARTITION BY RANGE (dropc.h3(a));
CREATE TABLE dropc.u2a PARTITION OF dropc.u2 FOR VALUES FROM (200) TO (300);
INSERT INTO dropc.u SELECT g FROM generate_series(100, 299) g;
DROP TABLE IF EXISTS dropc.nothing;
DROP FUNCTION dropc.h3 CASCADE;
SELECT count(*) AS rows_left FROM dropc.u;
SELECT details ->> 'command' AS command, details ->> 'partition' AS partition FROM audit_trail.events
WHERE action = 'PARTITION_DROPPED' AND entity_type = 'dropc.u' ORDER BY id;
SELECT audit_trail.disable('dropc.u');
DROP SCHEMA dropc CASCADE;

-- audit_trail.capture() runs only in the triggers enable() makes: a copy
-- under another name would record every change twice (and an action the
-- table's settings leave out).
CREATE TABLE twice (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('twice', actions => '{INSERT}') IS NOT NULL AS enabled;
CREATE TRIGGER zz AFTER INSERT ON twice REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
CREATE TRIGGER zu AFTER UPDATE ON twice REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
CREATE TABLE not_audited (id int);
CREATE TRIGGER zz AFTER INSERT ON not_audited REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
INSERT INTO twice VALUES (1, 'a');
UPDATE twice SET v = 'b';
SELECT operation, count(*) FROM audit_trail.events WHERE entity_type = 'public.twice' AND operation IS NOT NULL GROUP BY 1;
SELECT audit_trail.disable('twice');
DROP TABLE twice, not_audited;

-- ALTER TYPE ... RENAME VALUE changes every value of the enum in audited
-- columns, also through a domain, an array or a composite over it: each
-- such table records SCHEMA_CHANGED.
CREATE TYPE lvl AS ENUM ('user', 'admin');
CREATE DOMAIN lvl_d AS lvl;
CREATE TYPE lvl_c AS (l lvl);
CREATE TABLE lvl_direct (id int PRIMARY KEY, l lvl);
CREATE TABLE lvl_arr (id int PRIMARY KEY, l lvl[]);
CREATE TABLE lvl_dom (id int PRIMARY KEY, l lvl_d);
CREATE TABLE lvl_comp (id int PRIMARY KEY, l lvl_c);
SELECT count(audit_trail.enable(t)) FROM unnest(ARRAY['lvl_direct', 'lvl_arr', 'lvl_dom', 'lvl_comp']::regclass[]) t;
ALTER TYPE lvl RENAME VALUE 'user' TO 'member';
SELECT entity_type, details ->> 'command' AS command FROM audit_trail.events
WHERE action = 'SCHEMA_CHANGED' AND entity_type LIKE 'public.lvl%' ORDER BY entity_type;
SELECT count(audit_trail.disable(t)) FROM unnest(ARRAY['lvl_direct', 'lvl_arr', 'lvl_dom', 'lvl_comp']::regclass[]) t;
DROP TABLE lvl_direct, lvl_arr, lvl_dom, lvl_comp;
DROP TYPE lvl_c;
DROP DOMAIN lvl_d;
DROP TYPE lvl;
