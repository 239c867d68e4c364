-- export: CSV and JSON lines.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE x_notes (id int PRIMARY KEY, body text);
SELECT audit_trail.enable('x_notes');
BEGIN;
SELECT audit_trail.set_context(actor => 'Smith, "Agent" J.', user_agent => E'line1\nline2', tenant => 'x-tenant');
INSERT INTO x_notes VALUES (1, 'comma, "quote" and
newline');
UPDATE x_notes SET body = 'plain' WHERE id = 1;
COMMIT;

\echo 'CSV: header, then one RFC 4180 record per event, newest first'
SELECT regexp_replace(line, '^\d+,[^,]+,\d+,', '<id>,<occurred_at>,<txid>,') AS line
FROM audit_trail.export('csv', tenant => 'x-tenant') AS line;
SELECT line ~ '^\d+,[^,]+,\d+,' OR line LIKE 'id,%' AS id_time_txid FROM audit_trail.export('csv', tenant => 'x-tenant') AS line;
\echo 'occurred_at leaves in UTC ISO 8601'
SELECT bool_and(split_part(line, ',', 2) ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$') AS utc_iso
FROM audit_trail.export('csv', tenant => 'x-tenant') AS line WHERE line NOT LIKE 'id,%';
\echo 'JSON lines parse, one object per event'
SELECT (line::jsonb) - 'id' - 'occurred_at' - 'txid' AS event, (line::jsonb)->>'occurred_at' ~ '\+00:00$' AS utc
FROM audit_trail.export('jsonl', tenant => 'x-tenant') AS line;
SELECT count(*) FROM audit_trail.export('JSONL', tenant => 'x-tenant');

\echo 'every export is recorded with its filters, after the rows are read'
SELECT count(*) FROM audit_trail.export('csv', actions => '{AUDIT_LOG_EXPORTED}', tenant => 'x-tenant');
SELECT action, entity_type, details FROM audit_trail.events
WHERE action = 'AUDIT_LOG_EXPORTED' AND details->>'tenant' = 'x-tenant' ORDER BY id;
SET audit_trail.log_reads = 'none';
SELECT count(*) FROM audit_trail.export(tenant => 'none-logged');
RESET audit_trail.log_reads;
SELECT count(*) AS unrecorded FROM audit_trail.events WHERE details->>'tenant' = 'none-logged';

\echo 'a large export streams through'
CREATE TABLE x_bulk (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('x_bulk');
INSERT INTO x_bulk SELECT g, repeat('v', 100) FROM generate_series(1, 20000) g;
SET work_mem = '64kB';
SELECT count(*), sum(length(line)) > 20000 * 100 AS all_there FROM audit_trail.export('jsonl', entity_types => '{public.x_bulk}') line;
RESET work_mem;

\echo 'errors'
SELECT * FROM audit_trail.export('xml');
SELECT * FROM audit_trail.export(NULL);
SELECT * FROM audit_trail.export('csv', since => '2026-02-01', until => '2026-01-01');
