-- Partitions ahead, interval switches, retention with archiving, errors.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
-- Coverage has no gap and no overlap: each range ends where the next starts.
CREATE FUNCTION pg_temp.contiguous() RETURNS boolean LANGUAGE sql AS $$
    SELECT coalesce(bool_and(range_end = next_start), true)
    FROM (SELECT range_end, lead(range_start) OVER (ORDER BY range_start) AS next_start
          FROM audit_trail.partitions WHERE NOT archived AND range_start IS NOT NULL) p
    WHERE next_start IS NOT NULL $$;

\echo 'maintain keeps premake partitions ahead of now, and is safe to run again'
SELECT count(*) >= 0 AS ran FROM audit_trail.maintain();
SELECT count(*) AS created_again FROM audit_trail.maintain() WHERE action = 'created';
SELECT count(*) >= 3 AS premade_ahead FROM audit_trail.partitions WHERE range_start > now();
SELECT bool_or(now() >= range_start AND now() < range_end) AS now_covered FROM audit_trail.partitions;
SELECT pg_temp.contiguous();
SELECT actor, details ? 'done' AS says_what_it_did FROM audit_trail.events WHERE action = 'MAINTENANCE' ORDER BY id DESC LIMIT 1;

\echo 'switching to weeks, then days, continues from the last partition'
SELECT max(range_end) AS last_end FROM audit_trail.partitions \gset
SET audit_trail.partition_interval = '1 week';
SET audit_trail.premake = 30;
SELECT count(*) > 0 AS weeks_made FROM audit_trail.maintain() WHERE action = 'created';
SELECT min(range_start) = :'last_end' AS continues_from_last_end,
       bool_and(range_end - range_start <= interval '7 days') AS weekly,
       bool_and(extract(isodow FROM range_end AT TIME ZONE 'UTC') = 1) AS end_on_mondays
FROM audit_trail.partitions WHERE range_start >= :'last_end';
SELECT pg_temp.contiguous();
SELECT max(range_end) AS last_end FROM audit_trail.partitions \gset
SET audit_trail.partition_interval = '1 day';
SET audit_trail.premake = 300;
SELECT count(*) > 0 AS days_made FROM audit_trail.maintain() WHERE action = 'created';
SELECT min(range_start) = :'last_end' AS continues_from_last_end,
       bool_and(range_end - range_start = interval '1 day') AS daily
FROM audit_trail.partitions WHERE range_start >= :'last_end';
SELECT pg_temp.contiguous();
SELECT count(*) AS created_again FROM audit_trail.maintain() WHERE action = 'created';
RESET audit_trail.partition_interval;
RESET audit_trail.premake;

\echo 'retention: expired partitions archived, by their bounds, not their names'
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01') AS jan \gset
SELECT audit_trail._create_partition('2020-02-01', '2020-03-01') AS feb \gset
ALTER TABLE :jan RENAME TO events_p29991231;
-- Old events (the log's owner may insert directly; pg_restore does).
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
SELECT '2020-01-01'::timestamptz + g * interval '1 hour', 'OLD', 'x', 'x' FROM generate_series(0, 24 * 59 - 1) g;
-- Events no partition covers go to the default partition; retention trims it.
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
SELECT '2019-06-01'::timestamptz + g * interval '1 day', 'OLDER', 'x', 'x' FROM generate_series(0, 9) g;
SELECT count(*) AS in_default FROM audit_trail.events_default WHERE action = 'OLDER';
SELECT * FROM audit_trail.apply_retention(keep => '90 days', archive => true) ORDER BY partition;
SELECT partition, range_start, range_end, archived, total_bytes > 0 AS has_bytes
FROM audit_trail.partitions WHERE archived ORDER BY range_start;
SELECT count(*) AS archived_rows FROM audit_trail_archive.events_p29991231;
SELECT count(*) AS old_left_in_log FROM audit_trail.events WHERE action IN ('OLD', 'OLDER');
SELECT action, details->'done' AS done FROM audit_trail.events WHERE action = 'RETENTION_APPLIED' ORDER BY id DESC LIMIT 1;
-- The archive is append-only too.
DELETE FROM audit_trail_archive.events_p29991231;

\echo 'archived partitions older than archive_retention are dropped'
SET audit_trail.archive_retention = '10 years';
SELECT * FROM audit_trail.apply_retention();
SET audit_trail.archive_retention = '1 year';
SELECT * FROM audit_trail.apply_retention() ORDER BY partition;
SELECT count(*) AS archived_left FROM audit_trail.partitions WHERE archived;
RESET audit_trail.archive_retention;

\echo 'archive off drops; retention 0 keeps everything'
SELECT audit_trail._create_partition('2021-01-01', '2021-02-01') AS p2021 \gset
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) VALUES ('2021-01-10', 'OLD', 'x', 'x');
SET audit_trail.retention = 0;
SELECT count(*) AS nothing_done FROM audit_trail.apply_retention();
SELECT count(*) AS nothing_done FROM audit_trail.maintain() WHERE action <> 'created';
SELECT count(*) AS kept FROM audit_trail.events WHERE occurred_at < '2022-01-01';
RESET audit_trail.retention;
SET audit_trail.archive = off;
SELECT * FROM audit_trail.maintain() WHERE action <> 'created';
RESET audit_trail.archive;
SELECT to_regclass(:'p2021') IS NULL AS dropped;

\echo 'a partition made for a range the default partition already holds takes its rows'
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user) VALUES ('2035-06-15', 'FUTURE', 'x', 'x');
SELECT count(*) AS in_default FROM audit_trail.events_default WHERE action = 'FUTURE';
SELECT audit_trail._create_partition('2035-06-01', '2035-07-01');
SELECT tableoid::regclass AS now_in, count(*) FROM audit_trail.events WHERE action = 'FUTURE' GROUP BY 1;

\echo 'index_entities = off: new partitions without the entity index; entity reads still answer'
SET audit_trail.index_entities = off;
SELECT audit_trail._create_partition('2036-01-01', '2036-02-01') AS p2036 \gset
SELECT indexrelid::regclass AS index, indisunique FROM pg_index WHERE indrelid = :'p2036'::regclass ORDER BY 1;
SELECT reloptions FROM pg_class WHERE oid = (:'p2036' || '_id')::regclass;
INSERT INTO audit_trail.events (occurred_at, action, entity_type, entity_id, actor, db_user)
VALUES ('2036-01-10', 'NOINDEX', 'app.thing', '42', 'x', 'x'), ('2036-01-11', 'NOINDEX', 'app.thing', '43', 'x', 'x');
SELECT action, entity_id FROM audit_trail.search(entity_types => '{app.thing}', entity_id => '42');
SELECT audit_trail.count(entity_types => '{app.thing}');
RESET audit_trail.index_entities;
SELECT audit_trail._create_partition('2036-02-01', '2036-03-01') AS p2036b \gset
SELECT count(*) AS indexes_when_on FROM pg_index WHERE indrelid = :'p2036b'::regclass;
SET audit_trail.index_entities = 'sometimes';
\echo 'index_actors = off: new partitions without the actor index; the actor filter still answers'
SET audit_trail.index_actors = off;
SELECT audit_trail._create_partition('2036-03-01', '2036-04-01') AS p2036c \gset
SELECT indexrelid::regclass AS index FROM pg_index WHERE indrelid = :'p2036c'::regclass ORDER BY 1;
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
VALUES ('2036-03-10', 'NOACTORINDEX', 'Rare.Actor@example.com', 'x');
SELECT action, actor FROM audit_trail.search(actors => '{rare.actor@example.com}');
RESET audit_trail.index_actors;
SET audit_trail.index_actors = 'sometimes';

\echo 'invalid settings are refused when set, naming the setting'
SET audit_trail.partition_interval = '2 days';
SET audit_trail.partition_interval = 'monthly';
SET audit_trail.retention = '-1 day';
SET audit_trail.retention = 'forever';
SET audit_trail.archive_retention = '-5 days';
SET audit_trail.premake = 0;
SET audit_trail.notify_channel = 'a_channel_name_that_is_far_too_long_for_postgres_to_accept_it_at_all';
SELECT * FROM audit_trail.apply_retention(keep => '-1 day');
SHOW audit_trail.partition_interval;
SHOW audit_trail.retention;
