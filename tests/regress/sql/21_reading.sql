-- Reading like the product's pages (API §12): exact actors, request_id, txid,
-- exclude_actions, operations, q in details, keyset both ways, read events
-- left out of totals, reads of diff/history/row_as_of recorded, export's
-- columns and time zone, its tenant, and archives for readers of the log.
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
CREATE SCHEMA rd;
CREATE TABLE rd.matters (id int PRIMARY KEY, title text);
SELECT audit_trail.enable('rd.matters', label_column => 'title');

BEGIN;
SELECT audit_trail.set_context(actor => 'lena@northwind.law', tenant => 'northwind', request_id => 'rd-req-1');
INSERT INTO rd.matters VALUES (1, 'Acme v. Globex'), (2, 'Estate of Doe');
SELECT txid_current() AS tx1 \gset
COMMIT;
BEGIN;
SELECT audit_trail.set_context(actor => 'lena@northwind.law (api key)', tenant => 'northwind', request_id => 'rd-req-2');
UPDATE rd.matters SET title = 'Acme Corp v. Globex' WHERE id = 1;
SELECT audit_trail.log_event('MATTER_SHARED', 'rd.matter', '1', '{"with": "paralegal@northwind.law", "note": "Privileged memo"}') > 0;
COMMIT;
BEGIN;
SELECT audit_trail.set_context(actor => 'LENA@Northwind.LAW', tenant => 'northwind', request_id => 'rd-req-3');
DELETE FROM rd.matters WHERE id = 2;
COMMIT;
BEGIN;
SELECT audit_trail.set_context(actor => 'sam@northwind.law', tenant => 'northwind');
INSERT INTO rd.matters VALUES (3, 'Re: Initech');
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', 'sam') > 0;
COMMIT;
SELECT count(*) AS events FROM audit_trail.events WHERE tenant = 'northwind';

\echo '1. actors: exact, whatever the case; actor stays a substring search'
SELECT action, actor, entity_id FROM audit_trail.search(tenant => 'northwind', actors => '{lena@northwind.law}');
SELECT count(*) AS substring FROM audit_trail.search(tenant => 'northwind', actor => 'lena@northwind.law');
SELECT action, actor FROM audit_trail.search(tenant => 'northwind', actors => '{SAM@northwind.law,lena@northwind.law (API key)}');
SELECT count(*) AS none FROM audit_trail.search(tenant => 'northwind', actors => '{}');

\echo '2. request_id and txid: the events of one request, of one transaction'
SELECT action, entity_id, request_id FROM audit_trail.search(request_id => 'rd-req-2');
SELECT action, entity_id FROM audit_trail.search(txid => :tx1);
SELECT count(*) AS other_tenant FROM audit_trail.search(txid => :tx1, tenant => 'elsewhere');

\echo '3. exclude_actions and operations'
SELECT action, entity_id FROM audit_trail.search(tenant => 'northwind', exclude_actions => '{insert,user_login}');
SELECT action, operation FROM audit_trail.search(tenant => 'northwind', operations => '{update,DELETE}');
-- Application events have no operation: a row's events only.
SELECT count(*) AS row_events FROM audit_trail.search(tenant => 'northwind', operations => '{INSERT,UPDATE,DELETE,TRUNCATE}');

\echo '4. q looks into details too (as its JSON text), case-insensitive'
SELECT action, details->>'note' AS note FROM audit_trail.search(tenant => 'northwind', q => 'privileged');
SELECT action FROM audit_trail.search(tenant => 'northwind', q => 'PARALEGAL@');

\echo '5. search, count and export agree for every filter'
DO $$
DECLARE
    f text;
    n_search bigint;
    n_count bigint;
    n_export bigint;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        $f$tenant => 'northwind'$f$,
        $f$tenant => 'northwind', actors => '{LENA@northwind.law}'$f$,
        $f$tenant => 'northwind', actors => '{LENA@northwind.law,Sam@Northwind.law}'$f$,
        $f$request_id => 'rd-req-3'$f$,
        $f$tenant => 'northwind', exclude_actions => '{INSERT}'$f$,
        $f$tenant => 'northwind', operations => '{insert}'$f$,
        $f$tenant => 'northwind', q => 'memo'$f$,
        $f$tenant => 'northwind', actions => '{user_login}', archived => true$f$]
    LOOP
        EXECUTE format('SELECT count(*) FROM audit_trail.search(%s, page_size => 1000)', f) INTO n_search;
        EXECUTE format('SELECT audit_trail.count(%s)', f) INTO n_count;
        EXECUTE format('SELECT count(*) - 1 FROM audit_trail.export(''csv'', %s)', f) INTO n_export;
        RAISE NOTICE '% -> search %, count %, export %', f, n_search, n_count, n_export;
    END LOOP;
END
$$;

\echo '6. keyset paging both ways: before_id is Next, after_id is Previous, both newest first'
SELECT array_agg(id ORDER BY id DESC) AS p1 FROM audit_trail.search(tenant => 'northwind', page_size => 3) \gset
SELECT array_agg(id ORDER BY id DESC) AS p2
FROM audit_trail.search(tenant => 'northwind', page_size => 3, before_id => (SELECT min(x) FROM unnest(:'p1'::bigint[]) x)) \gset
SELECT array_agg(id ORDER BY id DESC) AS p3
FROM audit_trail.search(tenant => 'northwind', page_size => 3, before_id => (SELECT min(x) FROM unnest(:'p2'::bigint[]) x)) \gset
SELECT cardinality(:'p1'::bigint[]) AS p1, cardinality(:'p2'::bigint[]) AS p2, cardinality(:'p3'::bigint[]) AS p3;
-- Previous of page 3 is page 2, of page 2 page 1, in the same order.
SELECT array_agg(id) = :'p2'::bigint[] AS back_to_p2
FROM audit_trail.search(tenant => 'northwind', page_size => 3, after_id => (SELECT max(x) FROM unnest(:'p3'::bigint[]) x));
SELECT array_agg(id) = :'p1'::bigint[] AS back_to_p1
FROM audit_trail.search(tenant => 'northwind', page_size => 3, after_id => (SELECT max(x) FROM unnest(:'p2'::bigint[]) x));
-- Fewer than a page newer: those; none newer: nothing.
SELECT count(*) AS two_newer
FROM audit_trail.search(tenant => 'northwind', page_size => 3, after_id => (:'p1'::bigint[])[3]);
SELECT count(*) AS nothing_newer
FROM audit_trail.search(tenant => 'northwind', page_size => 3, after_id => (:'p1'::bigint[])[1]);
-- The filters hold on both sides.
SELECT action, actor FROM audit_trail.search(tenant => 'northwind', actors => '{lena@northwind.law}', after_id => 0, page_size => 1);
-- Several actors (each read through the actor index): the same pages as
-- the filter alone, by page, both keyset directions, a repeated actor once.
SELECT array_agg(id ORDER BY id DESC) AS all_three
FROM audit_trail.events WHERE tenant = 'northwind' AND lower(actor) IN ('lena@northwind.law', 'sam@northwind.law') \gset
SELECT array_agg(id) = (:'all_three'::bigint[])[3:4] AS page_2_of_2
FROM audit_trail.search(tenant => 'northwind', actors => '{LENA@northwind.law,sam@northwind.law,lena@northwind.law}', page_size => 2, page => 2);
SELECT array_agg(id) = (:'all_three'::bigint[])[4:5] AS next
FROM audit_trail.search(tenant => 'northwind', actors => '{lena@northwind.law,sam@northwind.law}', page_size => 2, before_id => (:'all_three'::bigint[])[3]);
SELECT array_agg(id) = (:'all_three'::bigint[])[2:3] AS previous
FROM audit_trail.search(tenant => 'northwind', actors => '{lena@northwind.law,sam@northwind.law}', page_size => 2, after_id => (:'all_three'::bigint[])[4]);
SELECT cardinality(:'all_three'::bigint[]) AS both_actors,
       audit_trail.count(tenant => 'northwind', actors => '{lena@northwind.law,sam@northwind.law}') AS counted;

\echo '7. "Z total" does not grow by looking: read events stay out unless actions names them'
-- The page's session says which tenant it reads for: its read events are
-- that tenant's, and would be counted in that tenant's total.
SET audit_trail.log_reads = 'all';
SELECT audit_trail.set_context(tenant => 'northwind', local => false);
SELECT count(*) AS page_rows, audit_trail.count(tenant => 'northwind') AS total FROM audit_trail.search(tenant => 'northwind', page_size => 3);
SELECT count(*) AS page_rows, audit_trail.count(tenant => 'northwind') AS total FROM audit_trail.search(tenant => 'northwind', page_size => 3);
SELECT count(*) AS page_rows, audit_trail.count(tenant => 'northwind') AS total FROM audit_trail.search(tenant => 'northwind', page_size => 3);
SELECT count(*) - 1 AS exported FROM audit_trail.export('csv', tenant => 'northwind');
-- The reads are recorded (three pages; count is not), and found when asked for.
SELECT audit_trail.count(tenant => 'northwind', actions => '{audit_log_accessed}') AS accessed,
       audit_trail.count(tenant => 'northwind', actions => '{AUDIT_LOG_EXPORTED}') AS exported;
SELECT details FROM audit_trail.search(tenant => 'northwind', actions => '{AUDIT_LOG_ACCESSED}', page_size => 1);
SELECT audit_trail.clear_context();

\echo '8. with log_reads = all, diff, history and row_as_of are recorded too'
SELECT max(id) AS upd FROM audit_trail.events WHERE tenant = 'northwind' AND operation = 'UPDATE' \gset
SELECT count(*) AS diff_rows FROM audit_trail.diff(:upd);
SELECT count(*) AS history_rows FROM audit_trail.history('rd.matters', '1');
SELECT audit_trail.row_as_of('rd.matters', '1', '-infinity') AS before_it_existed;
SELECT details - 'at' - 'event_id' AS details, details ? 'at' AS has_at, details ? 'event_id' AS has_event_id FROM audit_trail.events
WHERE action = 'AUDIT_LOG_ACCESSED' AND details->>'function' IN ('diff', 'history', 'row_as_of') AND tenant IS NULL
ORDER BY id;
RESET audit_trail.log_reads;
SELECT count(*) AS unrecorded_history FROM audit_trail.history('rd.matters', '1');
SELECT count(*) AS history_reads FROM audit_trail.events WHERE action = 'AUDIT_LOG_ACCESSED' AND details->>'function' = 'history';

SELECT current_setting('timezone') AS tz0 \gset
\echo '9. export: the columns asked for, in that order; occurred_at in the zone asked for, with its offset'
SELECT line FROM audit_trail.export('csv', request_id => 'rd-req-2', columns => '{action,actor,entity_id}') AS line;
SELECT (SELECT array_agg(k) FROM json_object_keys(line::json) k) AS keys
FROM audit_trail.export('jsonl', request_id => 'rd-req-3', columns => '{request_id,operation,action}') AS line;
-- Asia/Kolkata has no daylight saving time: always +05:30.
SELECT split_part(line, ',', 2) ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+05:30$' AS kolkata,
       split_part(line, ',', 2)::timestamptz = e.occurred_at AS same_instant
FROM audit_trail.export('csv', request_id => 'rd-req-3', columns => '{id,occurred_at}', timezone => 'Asia/Kolkata') AS line
JOIN audit_trail.events e ON e.id::text = split_part(line, ',', 1);
SELECT (line::json->>'occurred_at') ~ '\+05:30$' AS kolkata_json
FROM audit_trail.export('jsonl', request_id => 'rd-req-3', columns => '{occurred_at}', timezone => 'Asia/Kolkata') AS line;
SELECT split_part(line, ',', 1) ~ 'Z$' AS utc_is_z
FROM audit_trail.export('csv', request_id => 'rd-req-3', columns => '{occurred_at}') AS line OFFSET 1;
-- The session's time zone is left as it was.
SELECT current_setting('timezone') = :'tz0' AS session_zone_kept;

\echo '10. AUDIT_LOG_EXPORTED carries the filter tenant (else the session''s)'
SET audit_trail.log_reads = 'export';
SELECT audit_trail.set_context(tenant => 'system-job', local => false);
SELECT count(*) FROM audit_trail.export('csv', tenant => 'northwind', columns => '{id}');
SELECT count(*) FROM audit_trail.export('csv', request_id => 'rd-req-1', columns => '{id}');
SELECT tenant, details FROM audit_trail.events WHERE action = 'AUDIT_LOG_EXPORTED' ORDER BY id DESC LIMIT 2;
SELECT audit_trail.clear_context();
RESET audit_trail.log_reads;

\echo '11. archives: readable by whoever may read audit_trail.events, through archived => true and archived_events'
SELECT audit_trail._create_partition('2020-03-01', '2020-04-01') IS NOT NULL AS made;
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user, tenant, entity_type, entity_id, operation)
SELECT '2020-03-01'::timestamptz + g * interval '1 day', 'RD_OLD', 'lena@northwind.law', 'app', 'northwind-old', 'rd.matters', g::text, 'INSERT'
FROM generate_series(0, 4) g;
SELECT count(*) > 0 AS archived_some FROM audit_trail.apply_retention(keep => '90 days', archive => true) WHERE action = 'archived';
-- An archive of 0.3.0, without the operation column the log gained since.
CREATE TABLE audit_trail_archive.rd_old_shape (LIKE audit_trail._archived);
ALTER TABLE audit_trail_archive.rd_old_shape DROP COLUMN operation;
INSERT INTO audit_trail_archive.rd_old_shape (id, occurred_at, txid, action, actor, db_user, tenant)
VALUES (-1, '2019-05-01', 1, 'RD_OLDER', 'lena@northwind.law', 'app', 'northwind-old');
INSERT INTO audit_trail.archived_partitions VALUES ('audit_trail_archive.rd_old_shape', '2019-05-01', '2019-06-01');
SELECT audit_trail._archive_inherit('audit_trail_archive.rd_old_shape');
SELECT count(*) AS live FROM audit_trail.search(tenant => 'northwind-old');
SELECT action, entity_id, operation FROM audit_trail.search(tenant => 'northwind-old', archived => true);
SELECT audit_trail.count(tenant => 'northwind-old', archived => true) AS total,
       audit_trail.count(tenant => 'northwind-old', archived => true, operations => '{INSERT}') AS inserts;
SELECT count(*) AS in_view FROM audit_trail.archived_events WHERE tenant = 'northwind-old';
-- Keyset paging runs across the log and its archives.
SELECT entity_id FROM audit_trail.search(tenant => 'northwind-old', archived => true, page_size => 2,
                                         before_id => (SELECT min(id) FROM audit_trail.archived_events WHERE action = 'RD_OLD' AND entity_id = '3'));
CREATE ROLE rd_reader;
GRANT SELECT ON audit_trail.events TO rd_reader;
CREATE ROLE rd_outsider;
SET ROLE rd_reader;
SELECT action, entity_id FROM audit_trail.search(tenant => 'northwind-old', archived => true, page_size => 2);
SELECT count(*) AS readable FROM audit_trail.archived_events WHERE tenant = 'northwind-old';
SELECT count(*) - 1 AS exported FROM audit_trail.export('csv', tenant => 'northwind-old', archived => true);
-- Not the archived tables themselves, nor their parent: only the view.
SELECT pg_temp.try('SELECT count(*) FROM audit_trail_archive.rd_old_shape');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail._archived');
RESET ROLE;
-- A function that would leak its argument: it must see no archived row.
CREATE FUNCTION pg_temp.peek(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN RAISE NOTICE 'peeked at %', t; RETURN true; END $$;
SET ROLE rd_outsider;
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.archived_events');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.search(archived => true)');
SELECT pg_temp.try('SELECT audit_trail.count(archived => true)');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.archived_events WHERE pg_temp.peek(actor)');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.archived_events a JOIN (VALUES (1)) v(x) ON pg_temp.peek(a.actor)');
RESET ROLE;
-- Row-level security on the log that limits a reader: its policies cannot
-- filter the archives (read with the view owner's rights), so that reader
-- is refused them, never shown every archived row.
ALTER TABLE audit_trail.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY rd_one_tenant ON audit_trail.events FOR SELECT TO rd_reader USING (tenant = 'northwind');
SET ROLE rd_reader;
SELECT count(*) > 0 AS own_tenant, count(*) FILTER (WHERE tenant IS DISTINCT FROM 'northwind') AS other_tenants
FROM audit_trail.events;
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.archived_events');
SELECT pg_temp.try('SELECT count(*) FROM audit_trail.search(archived => true)');
SELECT pg_temp.try('SELECT audit_trail.count(archived => true)');
SELECT pg_temp.try($$SELECT count(*) FROM audit_trail.export('csv', archived => true)$$);
SELECT count(*) AS live_search_still_works FROM audit_trail.search(tenant => 'northwind', page_size => 1);
RESET ROLE;
-- The log's owner is not limited by the policies: it reads archives as before.
SELECT count(*) AS owner_reads FROM audit_trail.archived_events WHERE tenant = 'northwind-old';
DROP POLICY rd_one_tenant ON audit_trail.events;
ALTER TABLE audit_trail.events DISABLE ROW LEVEL SECURITY;
-- Retention drops an archive with its rows; the view follows.
SET audit_trail.archive_retention = '1 year';
SELECT count(*) > 0 AS dropped_some FROM audit_trail.apply_retention() WHERE action = 'dropped';
RESET audit_trail.archive_retention;
SELECT count(*) AS left_in_view FROM audit_trail.archived_events WHERE tenant = 'northwind-old';
DROP OWNED BY rd_reader;
DROP ROLE rd_reader, rd_outsider;

\echo '12. bad arguments: an error naming them'
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(before_id => 10, after_id => 5)$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(actors => '{a,NULL}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(exclude_actions => ARRAY[NULL])$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(operations => '{insert,merge}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(operations => '{NULL}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(txid => -1)$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.search(archived => NULL)$$);
SELECT pg_temp.try($$SELECT audit_trail.count(archived => NULL)$$);
SELECT pg_temp.try($$SELECT audit_trail.count(operations => '{upsert}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(archived => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(columns => '{id,colour}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(columns => '{id,actor,id}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(columns => '{}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(columns => '{id,NULL}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(timezone => 'Mars/Olympus_Mons')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export(timezone => NULL)$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.export('jsonl', actors => '{NULL}')$$);

\echo '13. calls written for 0.4.0 work unchanged (positional and named)'
SELECT count(*) AS positional FROM audit_trail.search(NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'northwind', 1, 2, NULL);
SELECT audit_trail.count(NULL, NULL, NULL, 'lena', NULL, NULL, NULL, 'northwind') AS positional_count;
SELECT count(*) AS positional_export FROM audit_trail.export('csv', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'northwind');
