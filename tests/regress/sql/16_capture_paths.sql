-- The ways a change reaches an audited table (API §8): TRUNCATE of a
-- partition tree, a session_replication_role = replica session, COPY;
-- the capture triggers pg_audit_trail makes and recognises (by function and
-- shape, not name), and the firings capture() refuses.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- The capture triggers of a table and its partitions: name, level, state,
-- and whether PostgreSQL cloned it from the parent's.
CREATE FUNCTION pg_temp.capture_triggers(rel regclass)
RETURNS TABLE(tbl regclass, tgname name, level text, tgenabled "char", clone boolean) LANGUAGE sql AS $$
    SELECT g.tgrelid::regclass, g.tgname, CASE WHEN g.tgtype & 1 = 1 THEN 'row' ELSE 'statement' END,
           g.tgenabled, g.tgparentid <> 0
    FROM pg_trigger g
    WHERE g.tgfoid = 'audit_trail.capture()'::regprocedure
      AND g.tgrelid IN (SELECT rel UNION SELECT relid FROM pg_partition_tree(rel))
    ORDER BY g.tgrelid::regclass::text, g.tgname $$;
CREATE FUNCTION pg_temp.events_since(since bigint)
RETURNS TABLE(action text, entity_type text, entity_id text, details jsonb) LANGUAGE sql AS $$
    SELECT action, entity_type, entity_id, details FROM audit_trail.events
    WHERE id > since AND action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') ORDER BY id $$;
CREATE TEMP TABLE mark AS SELECT 0::bigint AS id;
CREATE FUNCTION pg_temp.mark() RETURNS void LANGUAGE sql AS $$
    UPDATE mark SET id = (SELECT coalesce(max(id), 0) FROM audit_trail.events) $$;

\echo '1. the capture triggers: statement level ALWAYS, row level REPLICA (on the tables that hold rows)'
CREATE TABLE cp_sales (id int, region text, amount int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE cp_sales_eu PARTITION OF cp_sales FOR VALUES IN ('eu');
CREATE TABLE cp_sales_us PARTITION OF cp_sales FOR VALUES IN ('us') PARTITION BY RANGE (id);
CREATE TABLE cp_sales_us_low PARTITION OF cp_sales_us FOR VALUES FROM (0) TO (100);
CREATE TABLE cp_sales_us_high PARTITION OF cp_sales_us FOR VALUES FROM (100) TO (1000);
SELECT audit_trail.enable('cp_sales');
SELECT * FROM pg_temp.capture_triggers('cp_sales');
SELECT * FROM audit_trail.check() WHERE table_name::text LIKE 'cp_sales%';
-- enable() again makes nothing twice.
SELECT audit_trail.enable('cp_sales');
SELECT count(*) FROM pg_temp.capture_triggers('cp_sales');

\echo '2. TRUNCATE of a partition tree: one event, naming the audited table'
INSERT INTO cp_sales VALUES (1, 'eu', 10), (2, 'us', 20), (200, 'us', 30);
SELECT pg_temp.mark();
TRUNCATE cp_sales;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
SELECT pg_temp.mark();
TRUNCATE cp_sales_eu;
TRUNCATE cp_sales_us;
TRUNCATE cp_sales_us_high;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- Two statements in one transaction: two events; a rolled-back one: none.
SELECT pg_temp.mark();
BEGIN;
TRUNCATE cp_sales;
TRUNCATE cp_sales_us_low;
SAVEPOINT s;
TRUNCATE cp_sales;
ROLLBACK TO s;
TRUNCATE cp_sales_eu;
COMMIT;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- Two audited tables in one statement: one event each.
CREATE TABLE cp_notes (id int PRIMARY KEY, body text);
SELECT audit_trail.enable('cp_notes');
SELECT pg_temp.mark();
TRUNCATE cp_sales, cp_notes;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- A partition named before its table in the same statement fires first:
-- its own event, then the table's (nothing is lost).
SELECT pg_temp.mark();
TRUNCATE cp_sales_eu, cp_sales;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- A partition made later is covered too.
CREATE TABLE cp_sales_asia PARTITION OF cp_sales FOR VALUES IN ('asia');
SELECT pg_temp.mark();
TRUNCATE cp_sales;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- A TRUNCATE in a function, twice: each statement its event.
CREATE FUNCTION pg_temp.truncate_twice() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE cp_sales;
    TRUNCATE cp_sales_us;
END $$;
SELECT pg_temp.mark();
SELECT pg_temp.truncate_twice();
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));

\echo '3. a session_replication_role = replica session: captured once, by the statement triggers'
SET session_replication_role = replica;
SELECT pg_temp.mark();
INSERT INTO cp_sales VALUES (3, 'eu', 30), (4, 'us', 40);
UPDATE cp_sales SET amount = amount + 1;
UPDATE cp_sales SET amount = amount WHERE id = 3;
DELETE FROM cp_sales WHERE id = 4;
COPY cp_notes FROM STDIN;
1	copied in replica mode
\.
TRUNCATE cp_notes;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
RESET session_replication_role;
SELECT pg_temp.mark();
COPY cp_notes FROM STDIN;
2	copied
3	copied too
\.
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));

\echo '4. capture() refuses firings that are not its triggers'' shapes (39P01)'
CREATE TABLE cp_odd (id int PRIMARY KEY, v text);
-- Such triggers are refused when made (15_integrity); with the DDL event
-- trigger switched off by a superuser, capture() still refuses to run in them.
ALTER EVENT TRIGGER audit_trail_ddl_end DISABLE;
CREATE TRIGGER cp_odd_before BEFORE UPDATE ON cp_odd FOR EACH ROW EXECUTE FUNCTION audit_trail.capture();
INSERT INTO cp_odd VALUES (1, 'a');
SELECT pg_temp.try($$UPDATE cp_odd SET v = 'b'$$);
DROP TRIGGER cp_odd_before ON cp_odd;
CREATE TRIGGER cp_odd_no_table AFTER INSERT ON cp_odd FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
SELECT pg_temp.try($$INSERT INTO cp_odd VALUES (2, 'b')$$);
DROP TRIGGER cp_odd_no_table ON cp_odd;
CREATE TRIGGER cp_odd_when AFTER UPDATE ON cp_odd REFERENCING OLD TABLE AS o NEW TABLE AS n
    FOR EACH STATEMENT WHEN (pg_backend_pid() <> 0) EXECUTE FUNCTION audit_trail.capture();
SELECT pg_temp.try($$UPDATE cp_odd SET v = 'c'$$);
DROP TRIGGER cp_odd_when ON cp_odd;
-- A row trigger of capture() outside replica mode records nothing (the
-- statement triggers do), nor in replica mode outside logical replication.
SELECT audit_trail.enable('cp_odd');
CREATE TRIGGER cp_odd_row AFTER INSERT ON cp_odd FOR EACH ROW EXECUTE FUNCTION audit_trail.capture();
ALTER EVENT TRIGGER audit_trail_ddl_end ENABLE ALWAYS;
SELECT pg_temp.mark();
INSERT INTO cp_odd VALUES (3, 'c');
SET session_replication_role = replica;
INSERT INTO cp_odd VALUES (4, 'd');
RESET session_replication_role;
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
SELECT audit_trail.disable('cp_odd');

\echo '5. capture triggers are recognised by function and shape, not by name'
-- A decoy holding one of the names: enable() says so rather than skip it.
CREATE TABLE cp_decoy (id int PRIMARY KEY, v text);
CREATE FUNCTION pg_temp.nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER audit_trail_update AFTER UPDATE ON cp_decoy FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.nothing();
SELECT pg_temp.try($$SELECT audit_trail.enable('cp_decoy')$$);
SELECT count(*) FROM audit_trail.tracked WHERE table_name = 'cp_decoy'::regclass;
DROP TRIGGER audit_trail_update ON cp_decoy;
CREATE TRIGGER audit_trail_delete_replica AFTER DELETE ON cp_decoy FOR EACH ROW EXECUTE FUNCTION pg_temp.nothing();
SELECT pg_temp.try($$SELECT audit_trail.enable('cp_decoy')$$);
DROP TRIGGER audit_trail_delete_replica ON cp_decoy;
-- A capture trigger of another name and the right shape counts; one that
-- fires for some columns only does not. (Since 0.4.0 such triggers are
-- refused when made (15_integrity); these stand for ones made before, or
-- while a superuser had the DDL event trigger off.)
ALTER EVENT TRIGGER audit_trail_ddl_end DISABLE;
CREATE TRIGGER my_insert_capture AFTER INSERT ON cp_decoy REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture();
CREATE TRIGGER my_update_capture AFTER UPDATE OF v ON cp_decoy
    FOR EACH ROW EXECUTE FUNCTION audit_trail.capture();
ALTER EVENT TRIGGER audit_trail_ddl_end ENABLE ALWAYS;
SELECT audit_trail.enable('cp_decoy');
SELECT * FROM pg_temp.capture_triggers('cp_decoy');
SELECT pg_temp.mark();
INSERT INTO cp_decoy VALUES (1, 'once');
SELECT * FROM pg_temp.events_since((SELECT id FROM mark));
-- disable() removes every capture trigger, whatever its name or level.
SELECT audit_trail.disable('cp_decoy');
SELECT * FROM pg_temp.capture_triggers('cp_decoy');
-- A partition holding one of the names.
CREATE TABLE cp_parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE cp_parted_1 PARTITION OF cp_parted FOR VALUES FROM (0) TO (10);
CREATE TRIGGER audit_trail_insert_replica AFTER INSERT ON cp_parted_1 FOR EACH ROW EXECUTE FUNCTION pg_temp.nothing();
SELECT pg_temp.try($$SELECT audit_trail.enable('cp_parted')$$);
DROP TABLE cp_parted;

\echo '6. a foreign-table partition is skipped with a WARNING'
CREATE EXTENSION postgres_fdw;
CREATE SERVER nowhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '192.0.2.1', dbname 'none');
CREATE TABLE cp_mixed (id int, region text) PARTITION BY LIST (region);
CREATE TABLE cp_mixed_local PARTITION OF cp_mixed FOR VALUES IN ('local');
CREATE FOREIGN TABLE cp_mixed_remote PARTITION OF cp_mixed FOR VALUES IN ('remote') SERVER nowhere;
SELECT audit_trail.enable('cp_mixed', key_columns => '{id}');
SELECT * FROM pg_temp.capture_triggers('cp_mixed') WHERE level = 'statement';
SELECT * FROM audit_trail.check() WHERE table_name::text LIKE 'cp_mixed%';
-- ... and so is one attached later.
CREATE FOREIGN TABLE cp_mixed_far (id int, region text) SERVER nowhere;
ALTER TABLE cp_mixed ATTACH PARTITION cp_mixed_far FOR VALUES IN ('far');
SELECT * FROM pg_temp.capture_triggers('cp_mixed') WHERE level = 'statement';
SELECT audit_trail.disable('cp_mixed');
SELECT count(*) FROM pg_temp.capture_triggers('cp_mixed');
DROP TABLE cp_mixed;
DROP SERVER nowhere;
DROP EXTENSION postgres_fdw;

DROP TABLE cp_sales, cp_notes, cp_odd, cp_decoy;
