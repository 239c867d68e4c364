-- API §10: the feed (positions, batches cut short, bad positions) and
-- alerts (each kind fires once and only where it should, windows across
-- runs). Several sessions (out-of-order commits, pgbench writers, LISTEN,
-- two check_alerts at once, the SIEM recipe): tests/integration/17_feed.sh.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    -- Snapshots, event ids inside positions and this database's token vary
    -- from run to run.
    RETURN SQLSTATE || ': ' ||
        regexp_replace(
            regexp_replace(
                regexp_replace(SQLERRM, '\d+:\d+:[\d,]*', '<snapshot>', 'g'),
                '>/\d+/', '>/<id>/', 'g'),
            '/(?!0123456789ab)[0-9a-f]{12}', '/<token>', 'g');
END $$;
CREATE SCHEMA fa;
CREATE TABLE fa.roles (id int PRIMARY KEY, name text, permissions text[], note text);
CREATE TABLE fa.api_tokens (id int PRIMARY KEY, owner text);
CREATE TABLE fa.docs (id int PRIMARY KEY, body text);
SELECT audit_trail.enable('fa.roles') IS NOT NULL, audit_trail.enable('fa.api_tokens') IS NOT NULL,
       audit_trail.enable('fa.docs') IS NOT NULL;

\echo '1. a position is a snapshot of this database; the batch between two positions is what committed in between'
SELECT audit_trail.feed_position() AS p0 \gset
SELECT :'p0' ~ '^\d+:\d+:[\d,]*/[0-9a-f]{12}$' AS looks_like_a_position;
INSERT INTO fa.docs SELECT g, 'doc ' || g FROM generate_series(1, 5) g;
SELECT audit_trail.log_event('DOC_SHARED', 'fa.docs', '1') IS NOT NULL AS logged;
SELECT audit_trail.feed_position() AS p1 \gset
UPDATE fa.docs SET body = body || '!' WHERE id <= 2;
SELECT audit_trail.feed_position() AS p2 \gset
SELECT action, entity_id FROM audit_trail.feed(:'p0', :'p1');
SELECT action, entity_id FROM audit_trail.feed(:'p1', :'p2');
-- Consecutive batches are the whole, once each; and the events since p0 are
-- exactly those with an id after the last one before p0 (one session here).
SELECT (SELECT count(*) FROM audit_trail.feed(:'p0', :'p1')) + (SELECT count(*) FROM audit_trail.feed(:'p1', :'p2'))
       = (SELECT count(*) FROM audit_trail.feed(:'p0', :'p2')) AS batches_add_up,
       (SELECT array_agg(id ORDER BY id) FROM audit_trail.feed(:'p0', :'p2'))
       = (SELECT array_agg(id ORDER BY id) FROM audit_trail.events
          WHERE entity_type = 'fa.docs' AND action IN ('INSERT', 'UPDATE', 'DOC_SHARED')) AS exactly_the_events;
-- upto defaults to now; nothing after p2 yet.
SELECT count(*) AS since_p2 FROM audit_trail.feed(:'p2');
-- The events a transaction writes are fed once it commits, never before.
BEGIN;
DELETE FROM fa.docs WHERE id = 5;
SELECT count(*) AS own_uncommitted_not_fed FROM audit_trail.feed(:'p2');
SELECT audit_trail.feed_position() AS p_in \gset
COMMIT;
SELECT action, entity_id FROM audit_trail.feed(:'p_in');
SELECT action, entity_id FROM audit_trail.feed(:'p2');

\echo '2. max_events cuts a batch short; feed_position_after says where to go on'
SELECT array_agg(id ORDER BY id) AS all_ids FROM audit_trail.feed(:'p0', :'p2') \gset
SELECT array_agg(id) AS first3 FROM audit_trail.feed(:'p0', :'p2', 3) \gset
SELECT :'first3'::bigint[] = (:'all_ids'::bigint[])[1:3] AS first_three_in_order;
SELECT audit_trail.feed_position_after(:'p0', :'p2', (:'first3'::bigint[])[3]) AS pa \gset
SELECT :'pa' ~ '^\d+:\d+:[\d,]*/\d+:\d+:[\d,]*/\d+/[0-9a-f]{12}$' AS looks_like_a_resume_position;
SELECT array_agg(id) AS next3 FROM audit_trail.feed(:'pa', :'p2', 3) \gset
SELECT :'next3'::bigint[] = (:'all_ids'::bigint[])[4:6] AS next_three;
SELECT audit_trail.feed_position_after(:'pa', :'p2', (:'next3'::bigint[])[3]) AS pb \gset
SELECT array_agg(id) = (:'all_ids'::bigint[])[7:] AS the_rest FROM audit_trail.feed(:'pb', :'p2');
-- A resume position with a later upto: the rest of its batch, then what
-- came after (the DELETE).
SELECT array_agg(action ORDER BY id) AS rest_then_later FROM audit_trail.feed(:'pb');
-- The last event of a batch: the same as going on from upto.
SELECT audit_trail.feed_position_after(:'p0', :'p2', (:'all_ids'::bigint[])[cardinality(:'all_ids'::bigint[])]) AS pz \gset
SELECT count(*) = 0 AS nothing_left FROM audit_trail.feed(:'pz', :'p2');

\echo '3. bad positions and arguments: refused, naming them'
SELECT pg_temp.try($$SELECT * FROM audit_trail.feed(NULL)$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.feed('42')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.feed('1:2:3/abc/def')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.feed('x:y:/' || (SELECT token FROM audit_trail.feed_origin))$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.feed('700:700:/0123456789ab')$$);
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L, %L)', :'p2', :'p0'));
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L, %L)', :'p0', :'pa'));
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L, NULL, 0)', :'p0'));
-- A batch cut short needs the upto its continuation will be given.
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L, NULL, 3)', :'p0'));
-- A position in a commit-ordered batch, with track_commit_timestamp off now.
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L)', regexp_replace(:'pa', '/(\d+)/', '/\1c/')));
SELECT pg_temp.try(format('SELECT audit_trail.feed_position_after(%L, %L, -1)', :'p0', :'p2'));
SELECT pg_temp.try(format('SELECT audit_trail.feed_position_after(%L, NULL, 1)', :'p0'));
-- A position from the future (its xmax ahead of every transaction here).
SELECT pg_temp.try(format('SELECT * FROM audit_trail.feed(%L, %L)', :'p0',
       '99999999:99999999:/' || (SELECT token FROM audit_trail.feed_origin)));

\echo '4. the feed reads with the caller''s rights'
CREATE ROLE fa_reader;
CREATE ROLE fa_nobody;
GRANT SELECT ON audit_trail.events TO fa_reader;
SET ROLE fa_reader;
SELECT count(*) > 0 AS reader_reads FROM audit_trail.feed(:'p0', :'p2');
SET ROLE fa_nobody;
SELECT pg_temp.try(format('SELECT count(*) FROM audit_trail.feed(%L, %L)', :'p0', :'p2'));
SELECT audit_trail.feed_position() IS NOT NULL AS anyone_may_take_a_position;
RESET ROLE;

\echo '5. alerts: bad rules are refused, nothing changed'
SELECT pg_temp.try($$SELECT audit_trail.add_alert(NULL, '{X}')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{}')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', ARRAY['X', NULL])$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{X}', threshold => 0)$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{X}', within => '-1 minute')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{X}', per => 'user')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{DELETE}', changed_any => '{x}')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{UPDATE}', changed_any => '{}')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{X}', entity_types => '{}')$$);
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{Alert}')$$);
SELECT pg_temp.try($$SELECT audit_trail.drop_alert('nope')$$);
SET ROLE fa_reader;
SELECT pg_temp.try($$SELECT audit_trail.add_alert('a', '{X}')$$);
SELECT pg_temp.try($$SELECT * FROM audit_trail.check_alerts()$$);
RESET ROLE;
SELECT count(*) AS rules FROM audit_trail.alerts;

\echo '6. the README''s four rules'
SELECT audit_trail.add_alert('failed_logins', ARRAY['login_failed'], threshold => 5, within => '10 minutes', per => 'actor');
SELECT audit_trail.add_alert('mass_delete', ARRAY['DELETE'], entity_types => ARRAY['fa.docs'],
                             threshold => 100, within => '1 hour', per => 'transaction');
SELECT audit_trail.add_alert('permission_change', ARRAY['UPDATE'], entity_types => ARRAY['fa.roles'],
                             changed_any => ARRAY['permissions']);
SELECT audit_trail.add_alert('new_api_token', ARRAY['INSERT'], entity_types => ARRAY['fa.api_tokens']);
SELECT name, actions, entity_types, changed_any, threshold, within, per, pending_events FROM audit_trail.alerts ORDER BY name;
-- Adding a rule is recorded.
SELECT action, entity_id, details->>'change' AS change FROM audit_trail.events
WHERE entity_type = 'audit_trail.alert' ORDER BY id;
-- Nothing yet.
SELECT * FROM audit_trail.check_alerts();

-- Failed logins: 5 by ann over three runs fire once; 4 by bob never; a
-- login that succeeded does not count.
SELECT audit_trail.set_context(actor => 'ann', local => false);
SELECT count(audit_trail.log_event('LOGIN_FAILED')) FROM generate_series(1, 2);
SELECT audit_trail.log_event('LOGIN_OK') IS NOT NULL AS logged;
SELECT audit_trail.set_context(actor => 'bob', local => false);
SELECT count(audit_trail.log_event('LOGIN_FAILED')) FROM generate_series(1, 2);
SELECT audit_trail.clear_context();
SELECT alert, key, events FROM audit_trail.check_alerts();
SELECT audit_trail.set_context(actor => 'ann', local => false);
SELECT count(audit_trail.log_event('login_failed')) FROM generate_series(1, 2);
SELECT audit_trail.set_context(actor => 'bob', local => false);
SELECT count(audit_trail.log_event('LOGIN_FAILED')) FROM generate_series(1, 2);
SELECT audit_trail.clear_context();
SELECT alert, key, events FROM audit_trail.check_alerts();
SELECT name, pending_events FROM audit_trail.alerts WHERE name = 'failed_logins';
SELECT audit_trail.set_context(actor => 'ann', local => false);
SELECT audit_trail.log_event('LOGIN_FAILED') IS NOT NULL AS logged;
SELECT audit_trail.clear_context();
SELECT alert, key, events,
       first_id = (SELECT min(id) FROM audit_trail.events WHERE upper(action) = 'LOGIN_FAILED' AND actor = 'ann') AS first_is_anns_first,
       last_id = (SELECT max(id) FROM audit_trail.events WHERE upper(action) = 'LOGIN_FAILED' AND actor = 'ann') AS last_is_anns_last
FROM audit_trail.check_alerts();
-- Once: the run after finds nothing new, and ann's five left the window.
SELECT * FROM audit_trail.check_alerts();
SELECT name, pending_events FROM audit_trail.alerts WHERE name = 'failed_logins';

-- Mass deletion per transaction: 120 rows in one statement fire; 60 + 60 in
-- two transactions do not.
INSERT INTO fa.docs SELECT g, 'bulk' FROM generate_series(100, 339) g;
DELETE FROM fa.docs WHERE id BETWEEN 100 AND 219;
DELETE FROM fa.docs WHERE id BETWEEN 220 AND 279;
DELETE FROM fa.docs WHERE id BETWEEN 280 AND 339;
SELECT alert, key = (SELECT txid::text FROM audit_trail.events WHERE entity_type = 'fa.docs' AND entity_id = '100' AND operation = 'DELETE') AS key_is_its_txid,
       events FROM audit_trail.check_alerts();

-- Permission escalation: only an UPDATE that changed permissions.
INSERT INTO fa.roles VALUES (1, 'admin', '{read}', 'x'), (2, 'viewer', '{read}', 'y');
UPDATE fa.roles SET note = 'z';
UPDATE fa.roles SET permissions = '{read,write}' WHERE id = 2;
SELECT alert, key, events,
       last_id = (SELECT max(id) FROM audit_trail.events WHERE entity_type = 'fa.roles' AND 'permissions' = ANY (changed)) AS it_is_that_update
FROM audit_trail.check_alerts();

-- New API tokens: every INSERT, each its own firing (threshold 1).
INSERT INTO fa.api_tokens VALUES (1, 'ann'), (2, 'bob');
UPDATE fa.api_tokens SET owner = 'cy' WHERE id = 2;
SELECT alert, key, events FROM audit_trail.check_alerts();

-- Each firing recorded once, as an ALERT event by System with its details.
SELECT entity_id AS rule, actor, details->>'count' AS count,
       CASE WHEN entity_id = 'mass_delete' THEN details->>'key' ~ '^\d+$' ELSE details ? 'key' END AS key_ok,
       CASE WHEN entity_id = 'mass_delete' THEN '(a txid)' ELSE details->>'key' END AS key, details->>'window' AS window
FROM audit_trail.events WHERE action = 'ALERT' ORDER BY id;
SELECT (details->>'last_id')::bigint - (details->>'first_id')::bigint >= 99 AS spans_the_deletes
FROM audit_trail.events WHERE action = 'ALERT' AND entity_id = 'mass_delete';
-- log_event cannot pass for an alert.
SELECT pg_temp.try($$SELECT audit_trail.log_event('ALERT', 'audit_trail.alert', 'failed_logins')$$);

\echo '7. a window: events further apart than it never add up'
SELECT audit_trail.add_alert('burst', ARRAY['PING'], threshold => 2, within => '1 second');
SELECT audit_trail.log_event('PING') IS NOT NULL AS logged;
SELECT pg_sleep(1.5);
SELECT audit_trail.log_event('PING') IS NOT NULL AS logged;
SELECT count(*) AS burst_firings FROM audit_trail.check_alerts();
SELECT count(audit_trail.log_event('PING')) FROM generate_series(1, 2);
SELECT alert, events FROM audit_trail.check_alerts();
-- Replacing a rule starts it over; dropping one forgets its window.
SELECT audit_trail.log_event('PING') IS NOT NULL AS logged;
SELECT audit_trail.add_alert('burst', ARRAY['PING'], threshold => 3, within => '1 hour');
SELECT audit_trail.drop_alert('burst');
SELECT action, entity_id, details->>'change' AS change FROM audit_trail.events
WHERE entity_type = 'audit_trail.alert' AND entity_id = 'burst' AND action <> 'ALERT' ORDER BY id;
SELECT count(*) AS burst_window_rows FROM audit_trail.alert_window WHERE rule = 'burst';
SELECT * FROM audit_trail.check_alerts();

\echo '8. per entity: the key is the pair, as JSON'
SELECT audit_trail.add_alert('doc_churn', ARRAY['UPDATE'], entity_types => ARRAY['fa.docs'], threshold => 2, within => '1 hour', per => 'entity');
UPDATE fa.docs SET body = 'a' WHERE id = 1;
UPDATE fa.docs SET body = 'b' WHERE id IN (1, 2);
SELECT alert, key, events FROM audit_trail.check_alerts();
SELECT audit_trail.drop_alert('doc_churn');
