-- diff, history, row_as_of, and the views.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE d_items (id int PRIMARY KEY, name text, qty int, secret_code text, photo bytea, noise int);
SELECT audit_trail.enable('d_items', redact => '{secret_code}', exclude => '{noise}', label_column => 'name');
SELECT clock_timestamp() AS t0 \gset
INSERT INTO d_items VALUES (1, 'bolt', 10, 's1', '\x01', 0);
SELECT clock_timestamp() AS t1 \gset
UPDATE d_items SET qty = 9, secret_code = 's2' WHERE id = 1;
SELECT clock_timestamp() AS t2 \gset
UPDATE d_items SET name = 'hex bolt', noise = 5 WHERE id = 1;
SELECT clock_timestamp() AS t3 \gset
DELETE FROM d_items WHERE id = 1;
SELECT clock_timestamp() AS t4 \gset
INSERT INTO d_items VALUES (1, 'bolt v2', 1, 's3', NULL, 0);
SELECT clock_timestamp() AS t5 \gset
UPDATE d_items SET qty = 2 WHERE id = 1;

\echo 'diff: INSERT every column, UPDATE the changed ones, DELETE every column'
SELECT dense_rank() OVER (ORDER BY h.id) AS ev, h.action, d.* FROM audit_trail.history('d_items', '1') h, audit_trail.diff(h.id) d ORDER BY h.id;
SELECT count(*) AS app_event_diff FROM audit_trail.diff(audit_trail.log_event('PING'));
SELECT count(*) AS no_such_event FROM audit_trail.diff(-1);

\echo 'row_as_of around inserts, updates, deletes and re-inserts'
SELECT 't0 before insert' AS at, audit_trail.row_as_of('d_items', '1', :'t0')
UNION ALL SELECT 't1 after insert', audit_trail.row_as_of('d_items', '1', :'t1')
UNION ALL SELECT 't2 after update', audit_trail.row_as_of('d_items', '1', :'t2')
UNION ALL SELECT 't3 after 2nd update', audit_trail.row_as_of('d_items', '1', :'t3')
UNION ALL SELECT 't4 after delete', audit_trail.row_as_of('d_items', '1', :'t4')
UNION ALL SELECT 't5 after re-insert', audit_trail.row_as_of('d_items', '1', :'t5')
UNION ALL SELECT 'now', audit_trail.row_as_of('d_items', '1', now() + interval '1 hour')
UNION ALL SELECT 'other row', audit_trail.row_as_of('d_items', '2', :'t3');

\echo 'row_as_of works for rows that existed before auditing began'
CREATE TABLE d_legacy (a int, b text, PRIMARY KEY (a, b), v text);
INSERT INTO d_legacy VALUES (1, 'x', 'original');
SELECT clock_timestamp() AS before_audit \gset
SELECT audit_trail.enable('d_legacy');
UPDATE d_legacy SET v = 'changed';
SELECT audit_trail.row_as_of('d_legacy', '[1,"x"]', :'before_audit') AS then_,
       audit_trail.row_as_of('d_legacy', '[1,"x"]', clock_timestamp()) AS now_;
CREATE TABLE d_nokey (v text);
SELECT audit_trail.row_as_of('d_nokey', '1', now());

\echo 'history follows the table through renames, and not a new table with an old name'
ALTER TABLE d_items RENAME TO d_things;
UPDATE d_things SET qty = 3 WHERE id = 1;
CREATE SCHEMA d_archive;
ALTER TABLE d_things SET SCHEMA d_archive;
UPDATE d_archive.d_things SET qty = 4 WHERE id = 1;
CREATE TABLE d_items (id int PRIMARY KEY, name text);
SELECT audit_trail.enable('d_items');
INSERT INTO d_items VALUES (1, 'impostor');
SELECT action, entity_type, changed FROM audit_trail.history('d_archive.d_things', '1');
SELECT action, entity_type, after FROM audit_trail.history('d_items', '1');
SELECT audit_trail.row_as_of('d_archive.d_things', '1', :'t3') AS as_of_t3_after_renames;

\echo 'views: log and changes'
SELECT action, entity_display, summary FROM audit_trail.log
WHERE entity_type IN ('public.d_items', 'public.d_things', 'd_archive.d_things') ORDER BY id;
SELECT audit_trail.log_event('LONG_KEY', 'app.x', 'abcdefghijklmnopqrstuvwxyz') AS long_id \gset
SELECT entity_display, summary FROM audit_trail.log WHERE id = :long_id;
SELECT action, column_name, before, after FROM audit_trail.changes
WHERE entity_type IN ('public.d_items', 'public.d_things', 'd_archive.d_things') ORDER BY event_id, column_name;

\echo 'reading needs SELECT on the log, through any entry point'
CREATE ROLE d_reader;
SET ROLE d_reader;
SELECT count(*) FROM audit_trail.search();
SELECT audit_trail.count();
SELECT count(*) FROM audit_trail.history('d_items', '1');
SELECT count(*) FROM audit_trail.diff(1);
SELECT count(*) FROM audit_trail.log;
SELECT count(*) FROM audit_trail.changes;
SELECT count(*) FROM audit_trail.export();
SELECT audit_trail.row_as_of('d_items', '1', now());
RESET ROLE;
GRANT SELECT ON audit_trail.events TO d_reader;
GRANT SELECT ON d_items TO d_reader;
SET ROLE d_reader;
SELECT count(*) > 0 AS can_search FROM audit_trail.search();
SELECT count(*) > 0 AS can_use_views FROM audit_trail.log;
SELECT count(*) AS history_rows FROM audit_trail.history('d_items', '1');
SELECT audit_trail.row_as_of('d_items', '1', now()) IS NOT NULL AS can_time_travel;
RESET ROLE;
REVOKE ALL ON audit_trail.events FROM d_reader;
REVOKE ALL ON d_items FROM d_reader;
DROP ROLE d_reader;
