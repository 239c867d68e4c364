-- Partitioned targets and awkward names.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE measurements (id int, region text, v numeric, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE measurements_eu PARTITION OF measurements FOR VALUES IN ('eu');
CREATE TABLE measurements_us PARTITION OF measurements FOR VALUES IN ('us');
SELECT audit_trail.enable('measurements');
INSERT INTO measurements VALUES (1, 'eu', 1), (2, 'us', 2);
-- Aimed at a partition directly.
INSERT INTO measurements_eu VALUES (3, 'eu', 3);
UPDATE measurements_us SET v = 20;
-- Moving a row between partitions is one UPDATE.
UPDATE measurements SET region = 'us' WHERE id = 1;
-- A partition made later, and one attached later, are audited too.
CREATE TABLE measurements_ap PARTITION OF measurements FOR VALUES IN ('ap');
INSERT INTO measurements VALUES (4, 'ap', 4);
CREATE TABLE measurements_sa (LIKE measurements);
ALTER TABLE measurements ATTACH PARTITION measurements_sa FOR VALUES IN ('sa');
INSERT INTO measurements_sa VALUES (5, 'sa', 5);
DELETE FROM measurements WHERE id = 3;
TRUNCATE measurements_us;
SELECT action, entity_type, entity_id, before, after, changed FROM audit_trail.events
WHERE entity_type = 'public.measurements' ORDER BY id;
SELECT count(*) AS events_naming_partitions FROM audit_trail.events WHERE entity_type LIKE 'public.measurements\_%';
-- A partition of an audited table cannot be enabled on its own.
SELECT audit_trail.enable('measurements_eu');
-- disable removes the triggers of every partition.
SELECT audit_trail.disable('measurements');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'audit_trail_%'
  AND tgrelid IN (SELECT relid FROM pg_partition_tree('measurements'));

-- Quoted, spaced, mixed-case, unicode and reserved names.
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."Order Lines; DROP" ("select" int PRIMARY KEY, "Ünïcode ""col""" text, "user" text);
SELECT audit_trail.enable('"Odd Schema"."Order Lines; DROP"', redact => '{user}', label_column => 'Ünïcode "col"');
INSERT INTO "Odd Schema"."Order Lines; DROP" VALUES (1, 'ä', 'secret');
UPDATE "Odd Schema"."Order Lines; DROP" SET "Ünïcode ""col""" = 'ö';
SELECT action, entity_type, entity_id, entity_label, before, after, changed FROM audit_trail.events
WHERE entity_type = '"Odd Schema"."Order Lines; DROP"' ORDER BY id;
