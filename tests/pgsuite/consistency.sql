-- pgsuite: after the suite, in its database. Does every audited table that
-- still exists hold as many rows as its events say it should?
--
-- Replay, per table (events found by the names pgsuite.names recorded, each
-- in its id window, so a later table that takes an old name is not mixed in):
--   expected = (rows when pgsuite enabled it, or 0 after a TRUNCATE of the whole table)
--            + INSERT events - DELETE events after the last such TRUNCATE
-- An UPDATE changes no count (a cross-partition UPDATE is one UPDATE event).
-- Partition DDL moves rows in or out without row events: ATTACH of a table
-- that has rows, DETACH, DROP of a partition; their PARTITION_* events carry
-- an estimate only, as does a TRUNCATE of one partition (details.partition):
-- a table with one of these after its last full TRUNCATE is checked with the
-- estimates and reported as approximate, never as a failure.
-- actual = count(*) over the table (all its partitions), as superuser (RLS
-- does not apply).
\set ON_ERROR_STOP 1
SET statement_timeout = '10min';
SET lock_timeout = '30s';
SET client_min_messages = warning;
ALTER EVENT TRIGGER zz_pgsuite_enable DISABLE;

DO $$
BEGIN
    -- 0.3.x records operation in action; §9 adds a column for it.
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'audit_trail.events'::regclass
               AND attname = 'operation' AND NOT attisdropped) THEN
        EXECUTE 'CREATE TEMP VIEW ev_ops AS SELECT id, entity_type, coalesce(operation, action) AS op, details FROM audit_trail.events';
    ELSE
        EXECUTE 'CREATE TEMP VIEW ev_ops AS SELECT id, entity_type, action AS op, details FROM audit_trail.events';
    END IF;
END
$$;

CREATE TEMP TABLE ev AS
SELECT w.relid, e.id, e.op, e.details
FROM (SELECT n.relid, n.name, n.from_id,
             lead(n.from_id) OVER (PARTITION BY n.relid ORDER BY n.seq) AS to_id
      FROM pgsuite.names n WHERE n.relid IN (SELECT oid FROM pg_class)) w
JOIN ev_ops e ON e.entity_type = w.name AND e.id > w.from_id AND (w.to_id IS NULL OR e.id <= w.to_id)
WHERE e.op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
               'PARTITION_ATTACHED', 'PARTITION_DETACHED', 'PARTITION_DROPPED');

CREATE TABLE pgsuite.result (
    relid     oid PRIMARY KEY,
    tbl       text,
    test      text,
    in_config boolean,   -- still in audit_trail.config
    in_ledger boolean,   -- enabled by pgsuite
    baseline  bigint,
    reset_id  bigint,    -- last TRUNCATE of the whole table
    inserts   bigint,
    deletes   bigint,
    updates   bigint,
    estimated bigint,    -- rows moved by partition DDL, as its events estimate them
    inexact   text,
    expected  bigint,
    actual    bigint,
    verdict   text
);

INSERT INTO pgsuite.result (relid, tbl, test, in_config, in_ledger, baseline)
SELECT k.oid, k.oid::regclass::text, a.test,
       EXISTS (SELECT 1 FROM audit_trail.config c WHERE c.relid::oid = k.oid),
       a.relid IS NOT NULL, coalesce(a.baseline, 0)
FROM pg_class k
LEFT JOIN (SELECT DISTINCT ON (relid) * FROM pgsuite.audited ORDER BY relid) a ON a.relid = k.oid
WHERE a.relid IS NOT NULL OR k.oid IN (SELECT c.relid::oid FROM audit_trail.config c);

UPDATE pgsuite.result r SET reset_id = t.reset_id
FROM (SELECT relid, max(id) AS reset_id FROM ev
      WHERE op = 'TRUNCATE' AND NOT coalesce(details ? 'partition', false) GROUP BY relid) t
WHERE t.relid = r.relid;

UPDATE pgsuite.result r SET
    inserts = coalesce(x.inserts, 0), deletes = coalesce(x.deletes, 0), updates = coalesce(x.updates, 0),
    estimated = coalesce(x.estimated, 0), inexact = x.inexact
FROM pgsuite.result r2
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE e.op = 'INSERT') AS inserts,
           count(*) FILTER (WHERE e.op = 'DELETE') AS deletes,
           count(*) FILTER (WHERE e.op = 'UPDATE') AS updates,
           sum(CASE WHEN e.op = 'PARTITION_ATTACHED' THEN 1
                    WHEN e.op IN ('PARTITION_DETACHED', 'PARTITION_DROPPED') THEN -1 END
               * coalesce((e.details ->> 'rows_estimate')::bigint, 0)) AS estimated,
           string_agg(DISTINCT CASE
               WHEN e.op = 'PARTITION_ATTACHED' AND e.details ->> 'command' = 'ALTER TABLE' THEN 'ATTACH PARTITION'
               WHEN e.op IN ('PARTITION_DETACHED', 'PARTITION_DROPPED') THEN e.op
               WHEN e.op = 'TRUNCATE' AND e.details ? 'partition' THEN 'TRUNCATE of a partition' END, ', ') AS inexact
    FROM ev e WHERE e.relid = r2.relid AND e.id > coalesce(r2.reset_id, 0)) x ON true
WHERE r.relid = r2.relid;

UPDATE pgsuite.result SET expected = CASE WHEN reset_id IS NULL THEN baseline ELSE 0 END
                                     + inserts - deletes + estimated;

DO $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT relid FROM pgsuite.result ORDER BY relid LOOP
        BEGIN
            EXECUTE format('SELECT count(*) FROM %s', r.relid::regclass) INTO n;
            UPDATE pgsuite.result SET actual = n WHERE relid = r.relid;
        EXCEPTION WHEN OTHERS THEN
            UPDATE pgsuite.result SET verdict = 'uncountable: ' || SQLERRM WHERE relid = r.relid;
        END;
    END LOOP;
END
$$;

UPDATE pgsuite.result SET verdict = CASE
    WHEN verdict IS NOT NULL THEN verdict
    WHEN NOT in_ledger THEN 'not enabled by pgsuite'
    WHEN NOT in_config THEN 'AUDITING LOST'
    WHEN expected = actual THEN CASE WHEN inexact IS NULL THEN 'ok' ELSE 'ok (approximate)' END
    WHEN inexact IS NOT NULL THEN 'differs (approximate: ' || inexact || ')'
    ELSE 'MISMATCH' END;
