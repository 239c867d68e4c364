-- The sealed trail (API §13): seal, verify, checkpoint, tampering reported.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
SET client_min_messages = warning;

-- Canonical bytes are fixed forever: these values must never change.
SELECT audit_trail._hex(audit_trail._event_bytes(7, '2026-01-02 03:04:05.678901+00', 4242,
         ARRAY['INSERT', 'public.t', '1', NULL, NULL, '{"a": 1, "b": [true, null, 1.50]}', '{x,"y z"}', NULL,
               'alice', 'postgres', '10.0.0.1/32', '', NULL, NULL, NULL, NULL, 'INSERT'])) AS canonical_bytes;
SELECT audit_trail._hex(audit_trail._event_leaf(7, '2026-01-02 03:04:05.678901+00', 4242,
         ARRAY['INSERT', 'public.t', '1', NULL, NULL, '{"a": 1, "b": [true, null, 1.50]}', '{x,"y z"}', NULL,
               'alice', 'postgres', '10.0.0.1/32', '', NULL, NULL, NULL, NULL, 'INSERT'])) AS leaf;
-- NULL and empty differ; the time zone of the session does not matter.
SELECT audit_trail._event_leaf(1, NULL, NULL, ARRAY[NULL]) <> audit_trail._event_leaf(1, NULL, NULL, ARRAY['']) AS null_is_not_empty;
SET TimeZone = 'Asia/Kolkata';
SELECT audit_trail._hex(audit_trail._event_leaf(7, '2026-01-02 08:34:05.678901+05:30', 4242,
         ARRAY['INSERT', 'public.t', '1', NULL, NULL, '{"a": 1, "b": [true, null, 1.50]}', '{x,"y z"}', NULL,
               'alice', 'postgres', '10.0.0.1/32', '', NULL, NULL, NULL, NULL, 'INSERT'])) AS same_leaf;
RESET TimeZone;

CREATE TABLE seal_t (id int PRIMARY KEY, v text, d jsonb, f float8, b bytea);
SELECT audit_trail.enable('seal_t');
SELECT coalesce(max(seal_id), 0) AS s0 FROM audit_trail.seals \gset
INSERT INTO seal_t SELECT g, 'v' || g, jsonb_build_object('n', g, 'x', 0.1 * g), g / 3.0, '\xdeadbeef' FROM generate_series(1, 6) g;
UPDATE seal_t SET v = 'changed' WHERE id = 2;
DELETE FROM seal_t WHERE id = 6;
SELECT min(id) AS e0 FROM audit_trail.events WHERE entity_type = 'public.seal_t' AND action = 'INSERT' \gset

-- Everything committed is sealed; a second seal has nothing to seal.
SELECT seal_id - :s0 AS seal, events >= 8 AS covers_the_table, length(root) AS hex_len FROM audit_trail.seal();
SELECT count(*) AS nothing_new FROM audit_trail.seal();
SELECT seal_id - :s0 AS seal, events >= 8 AS covers, root ~ '^[0-9a-f]{64}$' AS root_ok,
       (previous_root IS NULL) = (seal_id = 1) AS linked
FROM audit_trail.seals WHERE seal_id > :s0;

-- Intact: verify is empty, whatever the session's settings.
SET TimeZone = 'America/St_Johns';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
SET bytea_output = 'escape';
SET IntervalStyle = 'sql_standard';
SET search_path = pg_temp;
SELECT * FROM audit_trail.verify();
RESET ALL;
SET client_min_messages = warning;

-- A second seal, chained to the first.
INSERT INTO seal_t VALUES (7, 'seven');
SELECT seal_id - :s0 AS seal, events FROM audit_trail.seal();
SELECT s2.previous_root = s1.root AS chained
FROM audit_trail.seals s1 JOIN audit_trail.seals s2 ON s2.seal_id = s1.seal_id + 1 WHERE s1.seal_id = :s0 + 1;
SELECT * FROM audit_trail.verify();
SELECT count(*) AS since_later FROM audit_trail.verify(now() + interval '1 day');

-- In REPEATABLE READ, and with a savepoint rolled back, nothing changes.
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO seal_t VALUES (8, 'eight');
SAVEPOINT a;
INSERT INTO seal_t VALUES (9, 'nine');
ROLLBACK TO a;
-- Its own events are in flight: not sealed by this transaction.
SELECT count(*) AS own_events_not_sealed FROM audit_trail.seal();
COMMIT;
SELECT seal_id - :s0 AS seal, events FROM audit_trail.seal();
SELECT * FROM audit_trail.verify();

-- Tampering as a superuser, through the catalog: the guards switched off
-- in pg_trigger (ALTER TABLE ... DISABLE TRIGGER is refused), seen by the
-- next session.
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
\c
SET client_min_messages = warning;
UPDATE audit_trail.events SET after = after || '{"v": "forged"}' WHERE id = :e0 + 1;
DELETE FROM audit_trail.events WHERE id = :e0 + 2;
-- A forged event, given the transaction of a sealed one.
INSERT INTO audit_trail.events (id, occurred_at, txid, action, actor, db_user)
SELECT 900000000 + :e0, occurred_at, txid, 'FORGED', 'mallory', 'postgres' FROM audit_trail.events WHERE id = :e0;
-- A forged event older than this database's origin: the feed never returns
-- it, so no seal covers it, and no seal's window holds it.
INSERT INTO audit_trail.events (id, occurred_at, txid, action, actor, db_user)
SELECT 900000001 + :e0, o.restored - interval '1 day', 3, 'FORGED', 'mallory', 'postgres' FROM audit_trail.feed_origin o;
-- Forged events whose txid falls in no seal's window (none below 3, none
-- beyond the server's transactions): no seal takes them, verify() names them.
INSERT INTO audit_trail.events (id, occurred_at, txid, action, actor, db_user)
SELECT 900000002 + :e0 + g, occurred_at, (ARRAY[0, -5, 9223372036854775000])[g + 1], 'FORGED', 'mallory', 'postgres'
FROM audit_trail.events, generate_series(0, 2) g WHERE id = :e0;
SELECT count(*) AS sealed_anew FROM audit_trail.seal();
-- A column nobody looks at: the statement.
UPDATE audit_trail.events SET statement = 'SELECT 1' WHERE id = :e0 + 3;
-- NULL made empty.
UPDATE audit_trail.events SET user_agent = '' WHERE id = :e0 + 4 AND user_agent IS NULL;
SELECT seal_id - :s0 AS seal, event_id - :e0 AS event, problem FROM audit_trail.verify() ORDER BY 1, 2;
-- The seal itself edited: its link breaks.
UPDATE audit_trail.seal_chain SET events = events + 1 WHERE seal_id = :s0 + 2;
SELECT seal_id - :s0 AS seal, event_id - :e0 AS event, problem FROM audit_trail.verify() WHERE event_id IS NULL ORDER BY 1, 2;
UPDATE audit_trail.seal_chain SET events = events - 1 WHERE seal_id = :s0 + 2;
-- A seal deleted: the chain is broken there.
CREATE TEMP TABLE kept AS SELECT * FROM audit_trail.seal_chain WHERE seal_id = :s0 + 2;
DELETE FROM audit_trail.seal_chain WHERE seal_id = :s0 + 2;
SELECT seal_id - :s0 AS seal, regexp_replace(problem, 'seal (\d+)', 'seal ' || ((regexp_match(problem, 'seal (\d+)'))[1]::bigint - :s0)) AS problem FROM audit_trail.verify() WHERE event_id IS NULL ORDER BY 1, 2;
INSERT INTO audit_trail.seal_chain SELECT * FROM kept;
-- Put back what can be: the deleted event stays reported.
UPDATE audit_trail.events SET after = after - 'v' || jsonb_build_object('v', 'v2') WHERE id = :e0 + 1;
DELETE FROM audit_trail.events WHERE id BETWEEN 900000000 + :e0 AND 900000004 + :e0;
UPDATE audit_trail.events SET statement = NULL WHERE id = :e0 + 3;
UPDATE audit_trail.events SET user_agent = NULL WHERE id = :e0 + 4;
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
\c
SET client_min_messages = warning;
SELECT seal_id - :s0 AS seal, event_id - :e0 AS event, problem FROM audit_trail.verify() ORDER BY 1, 2;

-- The seal tables are append-only.
UPDATE audit_trail.seal_chain SET events = 0;
DELETE FROM audit_trail.sealed_events;
TRUNCATE audit_trail.removed_partitions;

-- Checkpoints: unsigned without a key.
SELECT split_part(audit_trail.checkpoint(), E'\n', 1) = 'pg_audit_trail/' || current_database() AS origin,
       split_part(audit_trail.checkpoint(), E'\n', 2)::bigint - :s0 AS seal,
       array_length(string_to_array(audit_trail.checkpoint(), E'\n'), 1) AS lines;
SELECT audit_trail.checkpoint() AS cp \gset
SELECT * FROM audit_trail.verify_checkpoint(:'cp');
SELECT seal_id - :s0 AS seal, problem FROM audit_trail.verify_checkpoint(:'cp', '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c');
SELECT regexp_replace(problem, 'seal \d+', 'seal <n>') AS problem FROM audit_trail.verify_checkpoint(regexp_replace(:'cp', E'\n[^\n]+\n$', E'\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n'));
SELECT regexp_replace(problem, 'seal \d+', 'seal <n>') AS problem FROM audit_trail.verify_checkpoint(regexp_replace(:'cp', E'\n[0-9]+\n', E'\n999999\n'));
-- Signed with the key file: 64 hex digits (the seed 0x01 * 32).
DO $$ BEGIN
    EXECUTE format('COPY (SELECT repeat(''01'', 32)) TO %L', current_setting('data_directory') || '/seal_test.key');
    EXECUTE format('COPY (SELECT ''not a key'') TO %L', current_setting('data_directory') || '/seal_bad.key');
END $$;
SELECT set_config('audit_trail.seal_key_file', current_setting('data_directory') || '/seal_test.key', false) IS NOT NULL AS key_set;
SELECT audit_trail.checkpoint() AS signed \gset
SELECT split_part(:'signed', E'\n', 5) ~ '^— pg_audit_trail [A-Za-z0-9+/=]{92}$' AS signature_line;
SELECT count(*) AS ok FROM audit_trail.verify_checkpoint(:'signed', '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c');
SELECT regexp_replace(problem, 'seal \d+', 'seal <n>') AS problem FROM audit_trail.verify_checkpoint(:'signed', '8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394');
\set VERBOSITY sqlstate
SELECT problem FROM audit_trail.verify_checkpoint(replace(:'signed', E'\n', E'\n\n'), NULL);
SELECT * FROM audit_trail.verify_checkpoint(:'signed', 'abc');
SELECT * FROM audit_trail.verify_checkpoint('hello', NULL);
SELECT set_config('audit_trail.seal_key_file', current_setting('data_directory') || '/seal_bad.key', false) IS NOT NULL AS bad_key;
SELECT audit_trail.checkpoint();
SET audit_trail.seal_key_file = '/nonexistent/seal.key';
SELECT audit_trail.checkpoint();
RESET audit_trail.seal_key_file;
\set VERBOSITY default

-- Who may: a role without rights gets 42501; a reader with SELECT may verify.
CREATE ROLE seal_nobody;
CREATE ROLE seal_auditor;
GRANT SELECT ON audit_trail.events, audit_trail.seal_chain, audit_trail.sealed_events,
                audit_trail.removed_partitions TO seal_auditor;
SET ROLE seal_auditor;
\set VERBOSITY sqlstate
-- The archives too (format 2 seals verify archived events).
SELECT count(*) FROM audit_trail.verify();
\set VERBOSITY default
RESET ROLE;
GRANT SELECT ON audit_trail._archived, audit_trail.archived_partitions TO seal_auditor;
SET ROLE seal_nobody;
\set VERBOSITY sqlstate
SELECT * FROM audit_trail.seal();
SELECT * FROM audit_trail.verify();
SELECT audit_trail.checkpoint();
SELECT * FROM audit_trail.seals;
SELECT audit_trail._checkpoint_note('x', 1, '\x00');
SET ROLE seal_auditor;
SELECT * FROM audit_trail.seal();
\set VERBOSITY default
SELECT count(*) AS problems FROM audit_trail.verify();
SELECT count(*) > 0 AS seals_seen FROM audit_trail.seals;
RESET ROLE;
-- Row-level security cannot blind a verifier: a policy that would hide
-- rows of the log from it makes verify() fail (42501), not look clean.
ALTER TABLE audit_trail.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY seal_hide ON audit_trail.events USING (current_user <> 'seal_auditor');
SET ROLE seal_auditor;
\set VERBOSITY sqlstate
SELECT count(*) FROM audit_trail.verify();
SELECT count(*) FROM audit_trail.verify(now() - interval '1 hour');
\set VERBOSITY default
RESET ROLE;
DROP POLICY seal_hide ON audit_trail.events;
ALTER TABLE audit_trail.events DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON audit_trail.events, audit_trail.seal_chain, audit_trail.sealed_events,
              audit_trail.removed_partitions, audit_trail._archived, audit_trail.archived_partitions FROM seal_auditor;
DROP ROLE seal_nobody;
DROP ROLE seal_auditor;

-- maintain() seals, and says so in its MAINTENANCE event.
INSERT INTO seal_t VALUES (10, 'ten');
SELECT count(*) >= 0 AS maintained FROM audit_trail.maintain();
SELECT details -> 'sealed' ->> 'events' IS NOT NULL AS sealed_by_maintain
FROM audit_trail.events WHERE action = 'MAINTENANCE' ORDER BY id DESC LIMIT 1;
SELECT seal_id - :s0 AS seal, event_id - :e0 AS event, problem FROM audit_trail.verify() ORDER BY 1, 2;
SELECT audit_trail.disable('seal_t');
DROP TABLE seal_t;

-- Retention and archives against the seals, in a database of its own whose
-- feed_origin.restored is '-infinity', as in a database updated from 0.4.0:
-- there events of a past month are sealed (a fresh database's origin is its
-- install, and older events are never sealed). feed_origin is append-only.
SELECT current_database() AS home \gset
CREATE DATABASE seal_retention;
\c seal_retention
SET client_min_messages = warning;
CREATE EXTENSION pg_audit_trail;
\set VERBOSITY terse
UPDATE audit_trail.feed_origin SET restored = '-infinity';
\set VERBOSITY default
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
\c
UPDATE audit_trail.feed_origin SET restored = '-infinity';
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
\c
SET client_min_messages = warning;
SELECT count(*) > 0 AS premade FROM audit_trail.maintain();
CREATE TABLE ret_t (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('ret_t');
INSERT INTO ret_t SELECT g, 'v' || g FROM generate_series(1, 3) g;
-- January 2020 (dropped below) and three events before any partition (in
-- the default partition: two trimmed below; one, of March 2019, moved into
-- the partition then made for its month, and dropped with it).
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01') IS NOT NULL AS jan;
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
SELECT d, 'OLD', 'x', 'x' FROM unnest('{2020-01-10,2020-01-20,2019-06-01,2019-06-02,2019-03-10}'::timestamptz[]) d;
SELECT min(id) AS o0 FROM audit_trail.events WHERE action = 'OLD' \gset
SELECT events >= 8 AS sealed FROM audit_trail.seal();
SELECT audit_trail._create_partition('2019-03-01', '2019-04-01') IS NOT NULL AS mar;
SELECT count(*) AS left_in_default FROM audit_trail.events_default;
-- Format 2: the seal names the partitions that held its events, with
-- their ranges (the default one has none).
SELECT format, p, r FROM audit_trail.seal_chain c, unnest(c.partitions, c.ranges) u(p, r)
WHERE c.seal_id = 1 AND (p LIKE '%2020%' OR p LIKE '%default') ORDER BY p;
SELECT action, partition, rows FROM audit_trail.apply_retention(keep => '1 year', archive => false) ORDER BY 2;
SELECT * FROM audit_trail.verify();
-- February 2020, archived.
SELECT audit_trail._create_partition('2020-02-01', '2020-03-01') IS NOT NULL AS feb;
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
SELECT d, 'OLD', 'x', 'x' FROM unnest('{2020-02-10,2020-02-20,2020-02-25}'::timestamptz[]) d;
SELECT min(id) AS f0 FROM audit_trail.events WHERE occurred_at >= '2020-02-01' AND action = 'OLD' \gset
SELECT events FROM audit_trail.seal();
SELECT action, partition, rows FROM audit_trail.apply_retention(keep => '1 year', archive => true) ORDER BY 2;
SELECT * FROM audit_trail.verify();
SELECT partition, action, events FROM audit_trail.removed_partitions ORDER BY removed_at, partition;
-- The archives are append-only, through their parent too.
\set VERBOSITY terse
DELETE FROM audit_trail._archived WHERE id = :f0;
UPDATE audit_trail._archived SET actor = 'mallory' WHERE id = :f0;
\set VERBOSITY default
-- An archive tampered with by a superuser: served by archived_events, so
-- verified too (changed, removed, added, and forged outside every window).
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
\c
SET client_min_messages = warning;
CREATE TEMP TABLE kept AS SELECT * FROM audit_trail_archive.events_p20200201 WHERE id = :f0 + 1;
UPDATE audit_trail_archive.events_p20200201 SET actor = 'mallory' WHERE id = :f0;
DELETE FROM audit_trail_archive.events_p20200201 WHERE id = :f0 + 1;
INSERT INTO audit_trail_archive.events_p20200201 (id, occurred_at, txid, action, actor, db_user)
SELECT :f0 + 100, '2020-02-26', txid, 'FORGED', 'mallory', 'x' FROM audit_trail_archive.events_p20200201 WHERE id = :f0;
INSERT INTO audit_trail_archive.events_p20200201 (id, occurred_at, txid, action, actor, db_user)
VALUES (:f0 + 101, '2020-02-27', 0, 'FORGED', 'mallory', 'x');
SELECT seal_id, event_id - :f0 AS event, regexp_replace(problem, ':.*', '') AS problem FROM audit_trail.verify() ORDER BY 2;
-- Through archived_events, as a reader sees the archive now.
SELECT id - :f0 AS event, action, actor FROM audit_trail.archived_events ORDER BY id;
UPDATE audit_trail_archive.events_p20200201 SET actor = 'x' WHERE id = :f0;
INSERT INTO audit_trail_archive.events_p20200201 SELECT * FROM kept;
DELETE FROM audit_trail_archive.events_p20200201 WHERE id >= :f0 + 100;
SELECT count(*) AS put_back FROM audit_trail.verify();
-- An event deleted from an archive that is still there, with a removal
-- record forged under the partition's old name and range: still removed.
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
VALUES ('audit_trail.events_p20200201', '2020-02-01', '2020-03-01', int8multirange(int8range(:f0 + 1, :f0 + 1, '[]')), 1, 'dropped');
DELETE FROM audit_trail_archive.events_p20200201 WHERE id = :f0 + 1;
SELECT seal_id, event_id - :f0 AS event, problem FROM audit_trail.verify();
INSERT INTO audit_trail_archive.events_p20200201 SELECT * FROM kept;
-- A forged event with txid 0 in an archive made by hand: both reported.
CREATE TABLE public.events_handmade (LIKE audit_trail._archived);
ALTER TABLE public.events_handmade INHERIT audit_trail._archived;
INSERT INTO public.events_handmade (id, occurred_at, txid, action, actor, db_user)
VALUES (:f0 + 200, '2019-12-01', 0, 'FORGED', 'mallory', 'x');
SELECT seal_id, event_id - :f0 AS event, regexp_replace(problem, ':.*', '') AS problem FROM audit_trail.verify() ORDER BY 2, 3;
ALTER TABLE public.events_handmade NO INHERIT audit_trail._archived;
DROP TABLE public.events_handmade;
SELECT count(*) AS put_back FROM audit_trail.verify();
-- A deletion dressed up as retention: removal records added by hand for a
-- sealed event of this month (its partition is still there and its range
-- not over; a partition that never was, over the event's own moment; the
-- default partition, which did not hold it) do not excuse it.
SELECT id AS live FROM audit_trail.events WHERE entity_type = 'public.ret_t' AND entity_id = '2' \gset
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
SELECT b.partition::text, b.range_start, b.range_end, int8multirange(int8range(:live, :live, '[]')), 1, 'dropped'
FROM audit_trail._partition_bounds() b, audit_trail.events e WHERE e.id = :live AND e.occurred_at <@ tstzrange(b.range_start, b.range_end);
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
SELECT 'audit_trail.events_gone', occurred_at, occurred_at + interval '1 microsecond',
       int8multirange(int8range(:live, :live, '[]')), 1, 'dropped', occurred_at + interval '1 second'
FROM audit_trail.events WHERE id = :live;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
VALUES ('audit_trail.events_default', NULL, now(), int8multirange(int8range(:live, :live, '[]')), 1, 'trimmed');
DELETE FROM audit_trail.events WHERE id = :live;
SELECT seal_id, event_id = :live AS the_live_event, problem FROM audit_trail.verify();
-- The archive dropped by archive_retention: recorded, and its sealed
-- events are gone by retention.
SET audit_trail.archive_retention = '1 year';
SELECT action, partition, rows FROM audit_trail.apply_retention(keep => '1 year', archive => true) ORDER BY 2;
SELECT partition, action, events FROM audit_trail.removed_partitions WHERE partition LIKE 'audit_trail_archive.%';
SELECT seal_id, event_id = :live AS the_live_event, problem FROM audit_trail.verify();
-- feed_origin.restored moved (it bounds which events seals take): seen.
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
\c
UPDATE audit_trail.feed_origin SET restored = now() - interval '1 hour';
SELECT problem FROM audit_trail.verify() WHERE problem LIKE 'audit_trail.feed_origin%';
\c :home
DROP DATABASE seal_retention;
-- Deletions dressed up as retention by a superuser, each reported as the
-- removal of that one event (the second review of 0.6.0's seals).
CREATE DATABASE seal_forgery;
\c seal_forgery
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE EXTENSION pg_audit_trail;
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
\c
UPDATE audit_trail.feed_origin SET restored = '-infinity';
UPDATE pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'audit_trail.feed_origin'::regclass;
\c
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT audit_trail._create_partition('2020-01-01', '2020-02-01') IS NOT NULL AS jan,
       audit_trail._create_partition('2020-02-01', '2020-03-01') IS NOT NULL AS feb,
       audit_trail._create_partition('2020-05-01', '2020-06-01') IS NOT NULL AS may;
INSERT INTO audit_trail.events (occurred_at, action, actor, db_user)
SELECT d, 'OLD', 'x', 'x' FROM unnest('{2020-05-01 00:00:00+00,2020-01-10,2020-01-20,2020-02-10,2020-02-20,2019-06-01,2019-06-02,2019-06-03}'::timestamptz[]) WITH ORDINALITY u(d, n) ORDER BY n;
SELECT min(id) - 1 AS o FROM audit_trail.events WHERE action = 'OLD' \gset
SELECT id - :o AS n, occurred_at, tableoid::regclass FROM audit_trail.events WHERE action = 'OLD' ORDER BY id;
SELECT events FROM audit_trail.seal();
SELECT count(*) AS clean FROM audit_trail.verify();
-- A superuser turns every guard and event trigger off.
UPDATE pg_trigger SET tgenabled = 'D' WHERE tgname IN ('audit_trail_guard', 'audit_trail_guard_row');
UPDATE pg_event_trigger SET evtenabled = 'D' WHERE evtname LIKE 'audit_trail%';
\c
SET client_min_messages = warning;
SET TimeZone = 'UTC';
-- One event deleted from an ended partition: the partition detached, its
-- other events put back into the log (into the default partition), a
-- 'dropped' record forged for the one. Reported: the others are still there.
BEGIN;
ALTER TABLE audit_trail.events DETACH PARTITION audit_trail.events_p20200101;
ALTER TABLE audit_trail.events_p20200101 RENAME TO events_p20200101_x;
INSERT INTO audit_trail.events SELECT * FROM audit_trail.events_p20200101_x WHERE id <> :o + 3;
DROP TABLE audit_trail.events_p20200101_x;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
VALUES ('audit_trail.events_p20200101', '2020-01-01', '2020-02-01', int8multirange(int8range(:o + 3, :o + 3, '[]')), 1, 'dropped', now());
COMMIT;
SELECT seal_id, event_id - :o AS event, problem FROM audit_trail.verify() ORDER BY 2;
-- One event deleted from a partition made into an archive by hand, as
-- retention would, with an 'archived' record and a 'dropped' one forged.
BEGIN;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
VALUES ('audit_trail.events_p20200201', '2020-02-01', '2020-03-01', int8multirange(int8range(:o + 4, :o + 5, '[]')), 2, 'archived', now());
ALTER TABLE audit_trail.events DETACH PARTITION audit_trail.events_p20200201;
ALTER TABLE audit_trail.events_p20200201 SET SCHEMA audit_trail_archive;
SELECT audit_trail._archive_inherit('audit_trail_archive.events_p20200201');
INSERT INTO audit_trail.archived_partitions VALUES ('audit_trail_archive.events_p20200201', '2020-02-01', '2020-03-01', now());
DELETE FROM audit_trail_archive.events_p20200201 WHERE id = :o + 5;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
VALUES ('audit_trail.events_p20200201', '2020-02-01', '2020-03-01', int8multirange(int8range(:o + 5, :o + 5, '[]')), 1, 'dropped', now());
COMMIT;
SELECT seal_id, event_id - :o AS event, problem FROM audit_trail.verify() ORDER BY 2;
-- A trim forged for an event of the default partition whose older
-- neighbour was moved out of it (by _create_partition, as maintain() does).
SELECT audit_trail._create_partition('2019-06-01', '2019-06-02') IS NOT NULL AS june_first;
SELECT id - :o AS n, tableoid::regclass FROM audit_trail.events WHERE id BETWEEN :o + 6 AND :o + 8 ORDER BY id;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
VALUES ('audit_trail.events_default', NULL, '2019-06-02 00:00:00.000001+00', int8multirange(int8range(:o + 7, :o + 7, '[]')), 1, 'trimmed', now());
DELETE FROM audit_trail.events WHERE id = :o + 7;
SELECT seal_id, event_id - :o AS event, problem FROM audit_trail.verify() ORDER BY 2;
-- The seal's ranges edited from [) to (]: its event at exactly a
-- partition's start (the first one, so no older default event is left
-- behind by the trim; April has no partition, so no range of the seal ends
-- where May's begins) then looks outside every range it recorded, and a
-- trim is forged for it. Ranges are read as [lower, upper) whatever they say.
UPDATE audit_trail.seal_chain SET ranges = ARRAY(SELECT CASE WHEN x IS NULL THEN NULL ELSE tstzrange(lower(x), upper(x), '(]') END
                                                 FROM unnest(ranges) WITH ORDINALITY u(x, n) ORDER BY n) WHERE seal_id = 1;
INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action, removed_at)
VALUES ('audit_trail.events_default', NULL, '2020-05-01 00:00:00.000001+00', int8multirange(int8range(:o + 1, :o + 1, '[]')), 1, 'trimmed', now());
DELETE FROM audit_trail.events WHERE id = :o + 1;
SELECT seal_id, event_id - :o AS event, problem FROM audit_trail.verify() ORDER BY 2;
\c :home
DROP DATABASE seal_forgery;
