-- pg_audit_trail 0.5.0 -> 0.6.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.6.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.6.0'" to load this file. \quit

-- Tables, columns, indexes and data first (what build_update lists as
-- leftovers), then what exists per archived partition.

-- == The sealed trail, format 2 (API §13) ==
-- Seals made from now on commit to their events' times and to the
-- partitions that held them (sql/seal.sql); the seals 0.5.0 made keep
-- format 1 and verify as they were made (NULL in the new columns).
ALTER TABLE audit_trail.seal_chain ADD COLUMN times_root bytea, ADD COLUMN ranges tstzrange[];
ALTER TABLE audit_trail.sealed_events ADD COLUMN times bytea;
-- Made by the install script (a restore makes its own) and never changed.
SELECT audit_trail._guard_table('audit_trail.feed_origin');
-- The parent of every archive: an UPDATE or DELETE through it would fire no
-- archive's statement guard.
SELECT audit_trail._guard_table('audit_trail._archived');
-- Seals read the archives by transaction, through each archive's (txid)
-- index: an archive made before 0.5.0 has none (archives are not
-- partitions of the log, so 0.5.0's update did not reach them).
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent = 'audit_trail._archived'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                          WHERE x.indrelid = i.inhrelid AND x.indnatts = 1 AND a.attname = 'txid' AND x.indpred IS NULL)
    LOOP
        EXECUTE format('CREATE INDEX %I ON %s (txid)', (SELECT relname FROM pg_class WHERE oid = p) || '_txid', p);
    END LOOP;
END
$$;

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.6.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION _seal_events(bigint,TEXT,TEXT);

-- removed
DROP FUNCTION _seal_root(bytea,bigint,timestamp with time zone,bigint,bytea,TEXT);

-- removed
DROP FUNCTION _verify_events(bigint,TEXT,TEXT,bytea,timestamp with time zone,timestamp with time zone);

-- new
CREATE FUNCTION audit_trail._archive_window(lo pg_snapshot, hi pg_snapshot, in_flight bigint[],
                                           since_at timestamptz, until_at timestamptz)
RETURNS SETOF audit_trail._archived
LANGUAGE sql STABLE
AS $$
    SELECT e.*
    FROM audit_trail._archived e
    WHERE (e.txid OPERATOR(pg_catalog.=) ANY (in_flight)
           OR (e.txid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(lo)::pg_catalog.text::pg_catalog.int8
               AND e.txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax(hi)::pg_catalog.text::pg_catalog.int8))
      AND pg_catalog.pg_visible_in_snapshot(e.txid::pg_catalog.text::pg_catalog.xid8, hi)
      AND NOT pg_catalog.pg_visible_in_snapshot(e.txid::pg_catalog.text::pg_catalog.xid8, lo)
      AND e.occurred_at OPERATOR(pg_catalog.>=) since_at
      AND (until_at IS NULL OR e.occurred_at OPERATOR(pg_catalog.<) until_at)
$$;

-- new
CREATE  FUNCTION "_chain_root"(
	"format" smallint,
	"previous_root" bytea,
	"seal_id" bigint,
	"sealed_at" timestamp with time zone,
	"events" bigint,
	"tree_root" bytea,
	"position" TEXT,
	"series_start" timestamp with time zone,
	"times_root" bytea,
	"partitions" TEXT[],
	"range_starts" timestamp with time zone[],
	"range_ends" timestamp with time zone[]
) RETURNS bytea
IMMUTABLE PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'chain_root_sql_wrapper';

-- new
CREATE  FUNCTION "_seal_batch"(
	"seal_id" bigint,
	"since" TEXT,
	"upto" TEXT
) RETURNS TABLE (
	"events" bigint,
	"tree_root" bytea,
	"first_id" bigint,
	"last_id" bigint,
	"first_at" timestamp with time zone,
	"last_at" timestamp with time zone,
	"times_root" bytea,
	"partitions" TEXT[],
	"range_starts" timestamp with time zone[],
	"range_ends" timestamp with time zone[]
)
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'seal_batch_wrapper';

-- new
CREATE  FUNCTION "_verify_batch"(
	"seal_id" bigint,
	"since" TEXT,
	"upto" TEXT,
	"tree_root" bytea,
	"times_root" bytea,
	"series_from" timestamp with time zone,
	"series_until" timestamp with time zone
) RETURNS TABLE (
	"event_id" bigint,
	"problem" TEXT,
	"occurred_at" timestamp with time zone
)
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'verify_batch_wrapper';

-- new
CREATE FUNCTION audit_trail._record_removal(rel regclass, range_start timestamptz, range_end timestamptz, action text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    ids int8multirange;
BEGIN
    EXECUTE format('SELECT count(*), coalesce(range_agg(int8range(id, id, ''[]'')), ''{}'') FROM %s', rel) INTO n, ids;
    INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
    VALUES (rel::text, range_start, range_end, ids, n, action);
    RETURN n;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._apply_retention(keep interval, archive boolean)
RETURNS TABLE(action text, partition text, rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    keep_archived interval := audit_trail._interval_setting('audit_trail.archive_retention');
    p record;
    target text;
    n bigint;
    ids int8multirange;
BEGIN
    IF keep IS NOT NULL AND keep < interval '0' THEN
        RAISE EXCEPTION 'keep must not be negative, not %', keep
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_trail._lock_maintenance();

    IF keep IS NOT NULL AND keep > interval '0' THEN
        cutoff := now() - keep;
        FOR p IN
            SELECT b.partition, b.range_start, b.range_end
            FROM audit_trail._partition_bounds() b
            WHERE b.range_end <= cutoff
            ORDER BY b.range_start
        LOOP
            n := audit_trail._record_removal(p.partition, p.range_start, p.range_end,
                                             CASE WHEN archive THEN 'archived' ELSE 'dropped' END);
            IF archive THEN
                EXECUTE format('ALTER TABLE audit_trail.events DETACH PARTITION %s', p.partition);
                target := (SELECT relname FROM pg_class WHERE oid = p.partition);
                WHILE to_regclass(format('audit_trail_archive.%I', target)) IS NOT NULL LOOP
                    target := target || '_';
                END LOOP;
                IF target <> (SELECT relname FROM pg_class WHERE oid = p.partition) THEN
                    EXECUTE format('ALTER TABLE %s RENAME TO %I', p.partition, target);
                END IF;
                EXECUTE format('ALTER TABLE %s SET SCHEMA audit_trail_archive', p.partition);
                -- Readable with the log from now on (audit_trail.archived_events).
                PERFORM audit_trail._archive_inherit(p.partition);
                INSERT INTO audit_trail.archived_partitions VALUES (p.partition, p.range_start, p.range_end, now());
                action := 'archived';
                partition := p.partition::text;
            ELSE
                partition := p.partition::text;
                PERFORM audit_trail._retention_drop(p.partition);
                action := 'dropped';
            END IF;
            rows := n;
            RETURN NEXT;
        END LOOP;

        SELECT coalesce(range_agg(int8range(d.id, d.id, '[]')), '{}'), count(*) INTO ids, n
        FROM audit_trail.events_default d WHERE d.occurred_at < cutoff;
        IF n > 0 THEN
            INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
            VALUES ('audit_trail.events_default', NULL, cutoff, ids, n, 'trimmed');
        END IF;
        n := audit_trail._trim_default(NULL, cutoff);
        IF n > 0 THEN
            action := 'trimmed';
            partition := 'audit_trail.events_default';
            rows := n;
            RETURN NEXT;
        END IF;
    END IF;

    IF keep_archived IS NOT NULL AND keep_archived > interval '0' THEN
        FOR p IN
            SELECT a.partition, a.range_start, a.range_end FROM audit_trail.archived_partitions a
            WHERE a.range_end <= now() - keep_archived
            ORDER BY a.range_start
        LOOP
            -- Recorded as for a partition of the log: the archive's events
            -- were sealed, and are gone by retention.
            n := audit_trail._record_removal(p.partition, p.range_start, p.range_end, 'dropped');
            partition := p.partition::text;
            DELETE FROM audit_trail.archived_partitions a WHERE a.partition = p.partition;
            PERFORM audit_trail._retention_drop(p.partition);
            action := 'dropped';
            rows := n;
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._may_verify() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit_trail.events', 'audit_trail.seal_chain', 'audit_trail.sealed_events',
                             'audit_trail.removed_partitions', 'audit_trail._archived',
                             'audit_trail.archived_partitions'] LOOP
        IF NOT has_table_privilege(t, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to verify the audit trail: SELECT on % is needed', t
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'GRANT SELECT ON audit_trail.events, audit_trail.seal_chain, audit_trail.sealed_events, audit_trail.removed_partitions, audit_trail._archived, audit_trail.archived_partitions to the auditor (_archived: every archived partition).';
        END IF;
    END LOOP;
END
$$;

-- new
CREATE FUNCTION audit_trail._seal_root_of(s audit_trail.seal_chain) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._chain_root(s.format, s.previous_root, s.seal_id, s.sealed_at, s.events, s.tree_root, s.position,
                                   s.series_start, s.times_root, s.partitions,
                                   ARRAY(SELECT lower(u.x) FROM unnest(s.ranges) WITH ORDINALITY u(x, n) ORDER BY u.n),
                                   ARRAY(SELECT upper(u.x) FROM unnest(s.ranges) WITH ORDINALITY u(x, n) ORDER BY u.n))
$$;

-- new
CREATE FUNCTION audit_trail._ids_present(ids int8multirange) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(ids) g(rg), audit_trail.events e
                   WHERE e.id >= lower(g.rg) AND e.id < upper(g.rg))
        OR EXISTS (SELECT 1 FROM unnest(ids) g(rg), audit_trail._archived e
                   WHERE e.id >= lower(g.rg) AND e.id < upper(g.rg))
$$;

-- new
CREATE FUNCTION audit_trail._removed_by_retention(s audit_trail.seal_chain, event_id bigint, at timestamptz,
                                                 fits audit_trail.removed_partitions[], kept int8multirange)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH held AS (SELECT tstzrange(lower(x), upper(x)) AS x FROM unnest(s.ranges) u(x) WHERE x IS NOT NULL)
    SELECT (s.format = 1 OR NOT coalesce(kept @> event_id, false)) AND EXISTS (
        SELECT 1
        FROM unnest(fits) r
        CROSS JOIN LATERAL (SELECT tstzrange(r.range_start, r.range_end) AS span) g
        WHERE r.ids @> event_id
          AND CASE r.action
              WHEN 'trimmed' THEN
                  s.format = 1 OR ('audit_trail.events_default' = ANY (s.partitions) AND at < r.range_end
                                   AND NOT EXISTS (SELECT 1 FROM held WHERE at <@ held.x))
              WHEN 'dropped' THEN
                  s.format = 1 OR (at <@ g.span
                                   AND (g.span IN (SELECT x FROM held)
                                        -- an event of the default partition moves to the
                                        -- partition made for its time (_create_partition)
                                        OR ('audit_trail.events_default' = ANY (s.partitions)
                                            AND NOT EXISTS (SELECT 1 FROM held WHERE at <@ held.x))))
              WHEN 'archived' THEN s.format = 1
              ELSE false
          END)
$$;

-- new
CREATE FUNCTION audit_trail._removal_fits(r audit_trail.removed_partitions) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.range_end <= r.removed_at AND r.removed_at <= now()
       AND (r.action = 'archived'
            OR (NOT audit_trail._ids_present(r.ids)
                -- (the default partition read through the log: a verifier
                -- may read it, not necessarily its partitions)
                AND NOT EXISTS (SELECT 1 FROM audit_trail.events d
                                WHERE d.tableoid = 'audit_trail.events_default'::regclass
                                  AND d.occurred_at < r.range_end AND d.id < upper(r.ids))))
       AND CASE r.action
           WHEN 'trimmed' THEN
               r.partition = 'audit_trail.events_default'
               AND NOT EXISTS (SELECT 1 FROM audit_trail._partition_bounds() b WHERE b.range_end <= r.range_end)
           WHEN 'dropped' THEN
               NOT EXISTS (SELECT 1 FROM pg_inherits i
                           WHERE i.inhrelid::regclass::text = r.partition
                             AND i.inhparent IN ('audit_trail.events'::regclass, 'audit_trail._archived'::regclass))
               AND NOT EXISTS (SELECT 1 FROM audit_trail._partition_bounds() b
                               WHERE tstzrange(b.range_start, b.range_end) && tstzrange(r.range_start, r.range_end))
               AND NOT EXISTS (SELECT 1 FROM audit_trail.archived_partitions k
                               JOIN pg_inherits i ON i.inhrelid = k.partition AND i.inhparent = 'audit_trail._archived'::regclass
                               WHERE tstzrange(k.range_start, k.range_end) && tstzrange(r.range_start, r.range_end))
           WHEN 'archived' THEN
               NOT EXISTS (SELECT 1 FROM pg_inherits i
                           WHERE i.inhrelid::regclass::text = r.partition AND i.inhparent = 'audit_trail.events'::regclass)
           ELSE false
       END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.seal() RETURNS TABLE(seal_id bigint, events bigint, root text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Row-level security never hides a row from a seal or a verification: a
-- policy that would is an error (42501) rather than a blind spot (README).
SET row_security = off
SET work_mem = '64MB'
-- A seal's events are read whole (src/seal.rs leaves_query): the cheapest
-- plan in total, not the fastest to a first row (index scans in id order).
SET cursor_tuple_fraction = 1
AS $$
DECLARE
    last audit_trail.seal_chain;
    pos text;
    since text;
    id bigint;
    r record;
    made audit_trail.seal_chain;
    token text;
BEGIN
    PERFORM audit_trail._may_seal();
    -- One seal at a time: a lock no writer of events takes, that conflicts
    -- with itself, and that nobody but the owner can take (it needs UPDATE,
    -- DELETE or TRUNCATE on the table), unlike an advisory lock.
    LOCK TABLE audit_trail.seal_chain IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO last FROM audit_trail.seal_chain c ORDER BY c.seal_id DESC LIMIT 1;
    pos := audit_trail.feed_position();
    token := substring(pos FROM '[^/]*$');
    -- From the last seal, or, for the first seal of this database's series
    -- of transaction ids (the first ever, or the first since a restore),
    -- from a snapshot in which nothing is visible.
    since := CASE WHEN substring(last.position FROM '[^/]*$') = token THEN last.position ELSE '1:1:/' || token END;
    id := coalesce(last.seal_id, 0) + 1;
    BEGIN
        SELECT * INTO r FROM audit_trail._seal_batch(id, since, pos);
    EXCEPTION WHEN unique_violation THEN
        -- REPEATABLE READ: a seal committed after this transaction's
        -- snapshot took this seal_id.
        RAISE EXCEPTION 'another seal() made seal % after this transaction''s snapshot was taken', id
            USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
    END;
    IF r.events = 0 THEN
        RETURN;  -- nothing committed since the last seal: no seal
    END IF;
    made := ROW(id, clock_timestamp(), r.events, r.tree_root, NULL, last.root, pos, since, r.first_id, r.last_id,
                r.partitions, 2, (SELECT o.restored FROM audit_trail.feed_origin o), r.times_root,
                ARRAY(SELECT CASE WHEN u.s IS NOT NULL THEN tstzrange(u.s, u.e) END
                      FROM unnest(r.range_starts, r.range_ends) WITH ORDINALITY u(s, e, n) ORDER BY u.n));
    -- The root as verify() computes it, from the row as stored.
    made.root := audit_trail._seal_root_of(made);
    INSERT INTO audit_trail.seal_chain SELECT made.*;
    seal_id := id;
    events := r.events;
    root := audit_trail._hex(made.root);
    RETURN NEXT;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.verify(since timestamptz DEFAULT NULL)
RETURNS TABLE(seal_id bigint, event_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET row_security = off
SET work_mem = '64MB'
-- A seal's events are read whole (src/seal.rs leaves_query): the cheapest
-- plan in total, not the fastest to a first row (index scans in id order).
SET cursor_tuple_fraction = 1
AS $$
DECLARE
    s audit_trail.seal_chain;
    prev audit_trail.seal_chain;
    expected bigint := 1;
    v record;
    missing bigint[];
    missing_at timestamptz[];
    part text;
    reported text[] := '{}';
    token text := substring(audit_trail.feed_position() FROM '[^/]*$');
    current_restored timestamptz := (SELECT o.restored FROM audit_trail.feed_origin o);
    series_until timestamptz;
    -- The removal records that fit retention, and the ids of the archived
    -- ranges that are not gone whole; read when a sealed event is first
    -- found missing.
    fits audit_trail.removed_partitions[];
    kept int8multirange;
BEGIN
    PERFORM audit_trail._may_verify();
    IF since IS NOT NULL THEN
        SELECT * INTO prev FROM audit_trail.seal_chain c WHERE c.sealed_at < since ORDER BY c.seal_id DESC LIMIT 1;
        expected := coalesce(prev.seal_id + 1, (SELECT min(c.seal_id) FROM audit_trail.seal_chain c WHERE c.sealed_at >= since));
    END IF;
    FOR s IN SELECT * FROM audit_trail.seal_chain c WHERE since IS NULL OR c.sealed_at >= since ORDER BY c.seal_id LOOP
        seal_id := s.seal_id;
        event_id := NULL;
        -- The links.
        IF s.seal_id > expected THEN
            problem := CASE WHEN s.seal_id = expected + 1 THEN format('seal %s is missing: the chain is broken', expected)
                            ELSE format('seals %s to %s are missing: the chain is broken', expected, s.seal_id - 1) END;
            RETURN NEXT;
        ELSIF s.seal_id = 1 AND (s.previous_root IS NOT NULL OR s.previous_position NOT LIKE '1:1:/%') THEN
            problem := 'broken link: the first seal names a previous seal';
            RETURN NEXT;
        ELSIF prev.seal_id = s.seal_id - 1 AND (s.previous_root IS DISTINCT FROM prev.root
                                                 OR (s.previous_position IS DISTINCT FROM prev.position
                                                     -- the first seal after a restore starts its series afresh
                                                     AND NOT (s.previous_position = '1:1:/' || substring(s.position FROM '[^/]*$')
                                                              AND substring(prev.position FROM '[^/]*$')
                                                                  <> substring(s.position FROM '[^/]*$')))) THEN
            problem := format('broken link: previous_root or position is not that of seal %s', prev.seal_id);
            RETURN NEXT;
        END IF;
        IF s.format NOT IN (1, 2) THEN
            problem := format('unknown seal format %s', s.format);
            RETURN NEXT;
        ELSIF s.root IS DISTINCT FROM audit_trail._seal_root_of(s) THEN
            problem := 'broken link: the root does not match the seal''s contents';
            RETURN NEXT;
        END IF;
        -- The events: changed and added, then those that are gone.
        missing := '{}';
        missing_at := '{}';
        IF substring(s.position FROM '[^/]*$') = token THEN
            series_until := NULL;
        ELSE
            -- A seal of an earlier series (made before a restore): its
            -- events are those of that series, captured before the next began.
            series_until := coalesce((SELECT min(c.series_start) FROM audit_trail.seal_chain c
                                      WHERE c.series_start > s.series_start), current_restored);
        END IF;
        -- Format 2 reads the archives too, and checks the sealed times.
        FOR v IN SELECT * FROM audit_trail._verify_batch(s.seal_id, s.previous_position, s.position, s.tree_root,
                                                          CASE WHEN s.format >= 2 THEN coalesce(s.times_root, '') END,
                                                          CASE WHEN series_until IS NOT NULL THEN s.series_start END, series_until) LOOP
            IF v.problem = 'missing' THEN
                missing := missing || v.event_id;
                missing_at := missing_at || v.occurred_at;
            ELSE
                event_id := v.event_id;
                problem := v.problem;
                RETURN NEXT;
            END IF;
        END LOOP;
        IF cardinality(missing) > 0 AND fits IS NULL THEN
            fits := ARRAY(SELECT r FROM audit_trail.removed_partitions r WHERE audit_trail._removal_fits(r));
            kept := (SELECT coalesce(range_agg(a.ids), '{}') FROM audit_trail.removed_partitions a
                     WHERE a.action = 'archived' AND audit_trail._ids_present(a.ids));
        END IF;
        FOR v IN
            SELECT m.id, EXISTS (SELECT 1 FROM audit_trail.events e WHERE e.id = m.id)
                         OR (s.format >= 2 AND EXISTS (SELECT 1 FROM audit_trail._archived a WHERE a.id = m.id)) AS present
            FROM unnest(missing, missing_at) m(id, at)
            WHERE NOT audit_trail._removed_by_retention(s, m.id, m.at, fits, kept)
            ORDER BY m.id
        LOOP
            event_id := v.id;
            -- Still there under its id, but no longer in this seal's range:
            -- its txid was changed.
            problem := CASE WHEN v.present THEN 'changed' ELSE 'removed' END;
            RETURN NEXT;
        END LOOP;
        -- Partitions that held the seal's events and are gone, not by retention.
        event_id := NULL;
        FOREACH part IN ARRAY s.partitions LOOP
            CONTINUE WHEN part = ANY (reported) OR part = 'audit_trail._archived';
            IF NOT EXISTS (SELECT 1 FROM pg_inherits i
                           WHERE i.inhparent IN ('audit_trail.events'::regclass, 'audit_trail._archived'::regclass)
                             AND i.inhrelid::regclass::text = part)
               AND NOT EXISTS (SELECT 1 FROM audit_trail.removed_partitions r WHERE r.partition = part) THEN
                problem := format('partition %s is missing: not removed by retention', part);
                reported := reported || part;
                RETURN NEXT;
            END IF;
        END LOOP;
        prev := s;
        expected := s.seal_id + 1;
    END LOOP;
    -- Where this database's series of transaction ids begins
    -- (feed_origin.restored) is what its seals recorded (format 2 hashes
    -- it): moved, it would hide events from the reports below and from
    -- seals.
    SELECT * INTO s FROM audit_trail.seal_chain c
    WHERE substring(c.position FROM '[^/]*$') = token ORDER BY c.seal_id DESC LIMIT 1;
    IF FOUND AND s.series_start IS DISTINCT FROM current_restored THEN
        seal_id := s.seal_id;
        event_id := NULL;
        problem := format('audit_trail.feed_origin.restored is not the series_start seal %s recorded: it was changed',
                          s.seal_id);
        RETURN NEXT;
    END IF;
    -- The whole trail only: events older than this database's origin
    -- (feed_origin.restored: its install, or its restore) that no seal
    -- covers. The feed never returns them, so no seal of this series can
    -- take them, nor report them as added: an event forged with an old
    -- occurred_at would go unseen. A seal made before the restore covers
    -- the events of its series (occurred_at from its series_start to the
    -- next one's) visible in the series' last position; any other event
    -- this old is in no seal. Only the partitions older than the origin
    -- are read.
    IF since IS NULL THEN
        seal_id := NULL;
        -- Events whose txid no transaction of this server can have: below
        -- 3 (the first normal xid), or at or past the snapshot's xmax (every
        -- committed transaction this snapshot sees has a smaller xid; the
        -- caller's own transaction aside). Their txid falls in no seal's
        -- window, so no seal takes them and none reports them as added:
        -- only a hand-made row has one. Events older than the origin are
        -- the report below's (a restored event's txid is its old server's).
        -- Read through the txid index of each partition.
        FOR v IN
            SELECT e.id, e.txid
            FROM (SELECT l.id, l.txid, l.occurred_at FROM audit_trail.events l
                  UNION ALL
                  SELECT a.id, a.txid, a.occurred_at FROM audit_trail._archived a) e
            WHERE (e.txid < 3
                   OR (e.txid >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
                       AND e.occurred_at >= current_restored))
              AND e.txid IS DISTINCT FROM pg_current_xact_id_if_assigned()::text::bigint
            ORDER BY e.id
        LOOP
            event_id := v.id;
            problem := format('not sealed: its txid %s is no transaction of this server (below 3, or not '
                              'reached yet), so no seal can take it: forged', v.txid);
            RETURN NEXT;
        END LOOP;
        FOR v IN
            WITH series AS MATERIALIZED (
                SELECT l.seal_id AS last_seal, l.series_start AS from_at,
                       coalesce((SELECT min(c.series_start) FROM audit_trail.seal_chain c
                                 WHERE c.series_start > l.series_start), current_restored) AS until_at,
                       split_part(l.position, '/', 1)::pg_snapshot AS last_snapshot
                FROM audit_trail.seal_chain l
                WHERE substring(l.position FROM '[^/]*$') <> token
                  AND NOT EXISTS (SELECT 1 FROM audit_trail.seal_chain c
                                  WHERE c.series_start = l.series_start AND c.seal_id > l.seal_id)
            )
            SELECT e.id, w.last_seal
            FROM (SELECT l.id, l.txid, l.occurred_at FROM audit_trail.events l
                  UNION ALL
                  SELECT a.id, a.txid, a.occurred_at FROM audit_trail._archived a) e
            LEFT JOIN series w ON e.occurred_at >= w.from_at AND e.occurred_at < w.until_at
            WHERE e.occurred_at < current_restored
              AND (w.last_seal IS NULL OR NOT pg_visible_in_snapshot(e.txid::text::xid8, w.last_snapshot))
            ORDER BY e.id
        LOOP
            event_id := v.id;
            problem := CASE WHEN v.last_seal IS NULL
                THEN 'not sealed: older than this database''s origin (feed_origin.restored) and than its seals: '
                     'forged, unless it came with a restore of a database that had not sealed it'
                ELSE format('not sealed: captured before this database was restored (feed_origin.restored) '
                            'and committed after seal %s, the last before the dump: expected for the events '
                            'committed between that seal and the dump, otherwise forged', v.last_seal) END;
            RETURN NEXT;
        END LOOP;
        -- Archives retention did not make: a table made a child of
        -- audit_trail._archived by hand is served by archived_events.
        FOR v IN
            SELECT i.inhrelid::regclass::text AS archive FROM pg_inherits i
            WHERE i.inhparent = 'audit_trail._archived'::regclass
              AND NOT EXISTS (SELECT 1 FROM audit_trail.archived_partitions k WHERE k.partition = i.inhrelid)
            ORDER BY 1
        LOOP
            event_id := NULL;
            problem := format('archive %s is not one retention made (not in audit_trail.archived_partitions), '
                              'yet archived_events serves its rows', v.archive);
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.checkpoint() RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET row_security = off
AS $$
DECLARE
    s record;
BEGIN
    PERFORM audit_trail._may_verify();
    SELECT c.seal_id, c.root INTO s FROM audit_trail.seal_chain c ORDER BY c.seal_id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'there is no seal to checkpoint'
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Run audit_trail.seal() (or maintain()) first.';
    END IF;
    RETURN audit_trail._checkpoint_note('pg_audit_trail/' || current_database(), s.seal_id, s.root);
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.verify_checkpoint(note text, public_key text DEFAULT NULL)
RETURNS TABLE(seal_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET row_security = off
AS $$
DECLARE
    n record;
    stored bytea;
BEGIN
    PERFORM audit_trail._may_verify();
    SELECT * INTO n FROM audit_trail._checkpoint_read(note, public_key);
    seal_id := n.seal_id;
    IF public_key IS NOT NULL AND NOT n.signed THEN
        problem := 'the checkpoint is not signed';
        RETURN NEXT;
    ELSIF public_key IS NOT NULL AND NOT n.signature_ok THEN
        problem := 'the signature does not verify with this public key';
        RETURN NEXT;
    END IF;
    SELECT c.root INTO stored FROM audit_trail.seal_chain c WHERE c.seal_id = n.seal_id;
    IF NOT FOUND THEN
        problem := format('seal %s is not in the chain', n.seal_id);
        RETURN NEXT;
    ELSIF stored <> n.root THEN
        problem := format('seal %s has another root than the checkpoint', n.seal_id);
        RETURN NEXT;
    END IF;
END
$$;

-- Who may call what: as a fresh install has it (sql/grants.sql).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'audit_trail'::regnamespace AND p.proname LIKE '\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;
GRANT USAGE ON SCHEMA audit_trail TO PUBLIC;
-- The capture and guard triggers run as any user who changes an audited table.
GRANT EXECUTE ON FUNCTION audit_trail.capture() TO PUBLIC;
GRANT EXECUTE ON FUNCTION audit_trail._guard() TO PUBLIC;
GRANT SELECT ON audit_trail.tracked TO PUBLIC;
-- The views check the caller's SELECT on audit_trail.events (security_invoker).
GRANT SELECT ON audit_trail.log, audit_trail.changes TO PUBLIC;
-- archived_events reads the archives with its owner's rights, and lets
-- through only a caller who may read audit_trail.events (_may_read_events).
GRANT SELECT ON audit_trail.archived_events TO PUBLIC;
-- Reading functions run as the caller; these helpers are theirs.
GRANT EXECUTE ON FUNCTION audit_trail._where(text[], text[], text, text, timestamptz, timestamptz, text, text,
                                             text[], text, bigint, text[], text[]),
                          audit_trail._upper_all(text[]),
                          audit_trail._lower_all(text[]),
                          audit_trail._filters_json(text[], text[], text, text, timestamptz, timestamptz, text, text,
                                                    text[], text, bigint, text[], text[]),
                          audit_trail._may_read_events(),
                          audit_trail._source(boolean),
                          audit_trail._csv(text),
                          audit_trail._export_columns(boolean),
                          audit_trail._export_pick(text[], boolean),
                          audit_trail._history(regclass, text, timestamptz),
                          audit_trail._names_of(regclass),
                          audit_trail._canonical_key(regclass, text),
                          audit_trail._canonical_text(anyelement),
                          audit_trail._row_settings(regclass),
                          audit_trail._contains_bytea(oid),
                          audit_trail._type_uses(oid, oid),
                          audit_trail._key_columns(regclass),
                          audit_trail._columns(regclass),
                          audit_trail._columns_then(regclass, text[]),
                          audit_trail._redacted(regclass, text[], text[], text[], text[]),
                          audit_trail._matches_redact_patterns(text, text[]),
                          audit_trail._log_read(text, jsonb),
                          audit_trail._log_read(text, jsonb, text),
                          audit_trail._log_reads_all(),
                          audit_trail._log_reads_export(),
                          audit_trail._setting(text)
   TO PUBLIC;
-- row_as_of() runs as its caller, and redacts the keys of the live row's
-- documents with this SECURITY DEFINER helper (it reads the stored
-- patterns): it gives back what it is given, values only taken out, and the
-- patterns are no secret (SHOW shows the setting they were taken from).
GRANT EXECUTE ON FUNCTION audit_trail._redact_row_json(regclass, jsonb) TO PUBLIC;
-- set_context() runs as its caller and asks this harmless question.
GRANT EXECUTE ON FUNCTION audit_trail._in_transaction_block() TO PUBLIC;
-- The DDL event triggers run as whoever runs the DDL. _after_ddl acts only
-- on the commands of the firing that called it (src/ddl_end.rs keeps their
-- description where no SQL can put one; called otherwise it refuses), and
-- _before_drop only notes what the catalog says now, so neither can be made
-- to record anything that did not happen.
GRANT EXECUTE ON FUNCTION audit_trail._after_ddl(), audit_trail._before_drop(text) TO PUBLIC;
-- _on_ddl_end describes the command as the user who ran it (names resolve
-- as they did for the command); a pg_ddl_command exists only there.
GRANT EXECUTE ON FUNCTION audit_trail._ddl_subcommands(pg_ddl_command) TO PUBLIC;
-- Whether capture is whole is no secret either (tracked.capture_ok).
GRANT EXECUTE ON FUNCTION audit_trail.check(), audit_trail._capture_ok(regclass) TO PUBLIC;
-- The feed (API §10) runs as its caller, who needs SELECT on
-- audit_trail.events: these helpers only take positions apart and compare
-- them, and the token that ends a position is no secret.
GRANT EXECUTE ON FUNCTION audit_trail._feed_now(),
                          audit_trail._feed_parse(text, text),
                          audit_trail._feed_covers(pg_snapshot, pg_snapshot),
                          audit_trail._feed_in_flight(pg_snapshot, pg_snapshot),
                          audit_trail._feed_window(pg_snapshot, pg_snapshot, bigint[], timestamptz, timestamptz),
                          audit_trail._feed_batch(pg_snapshot, pg_snapshot, timestamptz, bigint, bigint, boolean),
                          audit_trail._feed_key(pg_snapshot, pg_snapshot, bigint, boolean),
                          audit_trail._feed_resume_key(pg_snapshot, pg_snapshot, bigint, boolean),
                          audit_trail._feed_range(text, text)
   TO PUBLIC;
GRANT SELECT ON audit_trail.feed_origin TO PUBLIC;
-- The sealed trail (sql/seal.sql): verify(), checkpoint() and
-- verify_checkpoint() run as their caller, who must read the log and the
-- seal tables (_may_verify checks); these helpers compute only from their
-- arguments or read as the caller. _seal_batch (writes seals) and
-- _checkpoint_note (signs with the server's key whatever it is given) are
-- not among them: seal() and checkpoint() are the owner's.
GRANT EXECUTE ON FUNCTION audit_trail._may_seal(), audit_trail._may_verify(),
                          audit_trail._event_leaf(bigint, timestamptz, bigint, text[]),
                          audit_trail._event_bytes(bigint, timestamptz, bigint, text[]),
                          audit_trail._chain_root(smallint, bytea, bigint, timestamptz, bigint, bytea, text, timestamptz,
                                                  bytea, text[], timestamptz[], timestamptz[]),
                          audit_trail._seal_root_of(audit_trail.seal_chain),
                          audit_trail._removed_by_retention(audit_trail.seal_chain, bigint, timestamptz,
                                                            audit_trail.removed_partitions[], int8multirange),
                          audit_trail._removal_fits(audit_trail.removed_partitions),
                          audit_trail._ids_present(int8multirange),
                          audit_trail._partition_bounds(),
                          audit_trail._verify_batch(bigint, text, text, bytea, bytea, timestamptz, timestamptz),
                          audit_trail._archive_window(pg_snapshot, pg_snapshot, bigint[], timestamptz, timestamptz),
                          audit_trail._checkpoint_read(text, text),
                          audit_trail._hex(bytea)
   TO PUBLIC;
-- The view checks the caller's SELECT on audit_trail.seal_chain (security_invoker).
GRANT SELECT ON audit_trail.seals TO PUBLIC;
