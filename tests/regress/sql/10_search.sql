-- search and count: every filter, both pagings, each error.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
SELECT coalesce(max(id), 0) AS start_id FROM audit_trail.events \gset
CREATE TABLE s_orders (id int PRIMARY KEY, item text);
CREATE TABLE s_users (id int PRIMARY KEY, email text);
SELECT audit_trail.enable('s_orders', label_column => 'item');
SELECT audit_trail.enable('s_users', label_column => 'email');
BEGIN;
SELECT audit_trail.set_context(actor => 'Alice Admin', tenant => 'acme');
INSERT INTO s_orders VALUES (1, 'Red Pen'), (2, 'Blue Ink');
INSERT INTO s_users VALUES (10, 'alice@example.com');
COMMIT;
BEGIN;
SELECT audit_trail.set_context(actor => 'bob_b%c', tenant => 'globex');
UPDATE s_orders SET item = 'Green Pen' WHERE id = 1;
DELETE FROM s_orders WHERE id = 2;
SELECT audit_trail.log_event('Token.Created', 'app.token', 't-1', '{"scope": "read"}', 'CI token') > 0;
COMMIT;
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', '10') > 0;
SELECT clock_timestamp() AS mid \gset
SELECT audit_trail.log_event('USER_LOGOUT', 'app.user', '10') > 0;
-- Only this file's events from here on.
CREATE TEMP VIEW mine AS SELECT * FROM audit_trail.events WHERE id > :start_id AND action NOT LIKE 'AUDIT%';

\echo 'newest first, no filter'
SELECT action, entity_type, entity_id FROM audit_trail.search(page_size => 4) WHERE id > :start_id;
\echo 'actions: any of, case-insensitive'
SELECT action, entity_id FROM audit_trail.search(actions => '{insert,token.created}') WHERE id > :start_id;
\echo 'entity_types: any of, exact'
SELECT action, entity_type FROM audit_trail.search(entity_types => '{public.s_users,app.token}') WHERE id > :start_id;
SELECT count(*) AS exact_only FROM audit_trail.search(entity_types => '{PUBLIC.S_USERS}') WHERE id > :start_id;
\echo 'entity_id'
SELECT action, entity_type FROM audit_trail.search(entity_id => '10') WHERE id > :start_id;
\echo 'actor: case-insensitive substring; % and _ are plain characters'
SELECT DISTINCT actor FROM audit_trail.search(actor => 'ALICE') WHERE id > :start_id;
SELECT DISTINCT actor FROM audit_trail.search(actor => 'b_b%') WHERE id > :start_id;
SELECT count(*) AS wildcard_is_literal FROM audit_trail.search(actor => 'a%n') WHERE id > :start_id;
\echo 'since inclusive, until exclusive'
SELECT occurred_at AS logout_at FROM mine WHERE action = 'USER_LOGOUT' \gset
SELECT action FROM audit_trail.search(since => :'logout_at') WHERE id > :start_id;
SELECT action FROM audit_trail.search(since => :'mid', until => :'logout_at') WHERE id > :start_id;
SELECT action FROM audit_trail.search(until => :'mid', page_size => 1) WHERE id > :start_id;
\echo 'q: substring of action, actor, entity_type, entity_id, entity_label'
SELECT action, entity_label FROM audit_trail.search(q => 'pen') WHERE id > :start_id;
SELECT action FROM audit_trail.search(q => 'TOKEN') WHERE id > :start_id;
SELECT action FROM audit_trail.search(q => 'bob_') WHERE id > :start_id;
\echo 'tenant, and filters combined with AND'
SELECT action, entity_id FROM audit_trail.search(tenant => 'acme') WHERE id > :start_id;
SELECT action, entity_id FROM audit_trail.search(tenant => 'globex', actions => '{UPDATE,DELETE}', entity_types => '{public.s_orders}') WHERE id > :start_id;

\echo 'Page X of Y (Z total)'
SELECT count(*) AS total FROM mine \gset
SELECT audit_trail.count() - :total AS others FROM audit_trail.events LIMIT 1 \gset
SELECT format('Page %s of %s (%s total)', 2, ceil(:total / 3.0)::int, :total);
SELECT action, entity_id FROM audit_trail.search(page => 2, page_size => 3, since => (SELECT min(occurred_at) FROM mine));
\echo 'count agrees with search for every filter'
SELECT audit_trail.count(actions => '{insert,token.created}', since => (SELECT min(occurred_at) FROM mine)) AS n1,
       (SELECT count(*) FROM audit_trail.search(actions => '{insert,token.created}', page_size => 1000) WHERE id > :start_id) AS n2;
SELECT audit_trail.count(actor => 'b_b%', tenant => 'globex', q => 'pen') AS n;
SELECT audit_trail.count(entity_types => '{app.user}', entity_id => '10', until => :'mid') AS n;

\echo 'keyset paging: before_id, page ignored'
SELECT max(id) AS newest FROM mine \gset
SELECT action FROM audit_trail.search(before_id => :newest, page_size => 2, page => 99);
SELECT count(*) FROM audit_trail.search(before_id => :start_id + 1);

\echo 'errors name the argument'
SELECT * FROM audit_trail.search(page => 0);
SELECT * FROM audit_trail.search(page => NULL);
SELECT * FROM audit_trail.search(page_size => 0);
SELECT * FROM audit_trail.search(page_size => 5000);
SELECT * FROM audit_trail.search(since => '2026-02-01', until => '2026-01-01');
SELECT audit_trail.count(since => '2026-02-01', until => '2026-01-01');
SELECT count(*) BETWEEN 10 AND 1000 AS at_most_a_page FROM audit_trail.search(page_size => 1000);
SELECT count(*) FROM audit_trail.search(page_size => 1);

\echo 'log_reads = all records searches'
SET audit_trail.log_reads = 'all';
SELECT count(*) FROM audit_trail.search(actions => '{USER_LOGIN}', tenant => 'x');
RESET audit_trail.log_reads;
SELECT count(*) FROM audit_trail.search(actions => '{USER_LOGIN}');
SELECT action, entity_type, details FROM audit_trail.events WHERE action = 'AUDIT_LOG_ACCESSED' AND id > :start_id;
SET audit_trail.log_reads = 'sometimes';
