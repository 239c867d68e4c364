-- The sealed trail (API §13): seal(), verify(), checkpoint(),
-- verify_checkpoint() and the seals view. src/seal.rs computes (canonical
-- bytes, Merkle tree, chain, signatures); this file keeps the seals.
--
-- A seal covers the events audit_trail.feed(P_last, P_now) returns: those
-- whose transaction is visible in the position P_now (feed_position(), taken
-- by seal()) and was not in the previous seal's position P_last. Event ids
-- are not commit order; transaction visibility is: an event captured before
-- a seal and committed after it is in the next seal, and in one seal only.

-- One row per seal. root = SHA-256 over (format, seal_id, previous_root,
-- tree_root, events, sealed_at, position) and, from format 2 on (0.6.0),
-- series_start, times_root, partitions and ranges (src/seal.rs chain_root,
-- chain_root_v2): it commits to every seal before it. previous_position is the previous seal's
-- position ('1:1:/<token>', where nothing is visible, for the first of a
-- series), kept here so
-- that a seal can be verified even when the one before it was tampered with.
CREATE TABLE audit_trail.seal_chain (
    seal_id           bigint      PRIMARY KEY,
    sealed_at         timestamptz NOT NULL,
    events            bigint      NOT NULL,
    tree_root         bytea       NOT NULL,
    root              bytea       NOT NULL,
    previous_root     bytea,
    position          text        NOT NULL,
    previous_position text        NOT NULL,
    first_id          bigint,
    last_id           bigint,
    -- The partitions that held the seal's events when it was made (verify
    -- reports one that is gone other than by retention): format 1, the time
    -- partitions whose range met the events' times; format 2, exactly those
    -- that held one, the default partition and archives included, in the
    -- order of ranges.
    partitions        text[]      NOT NULL DEFAULT '{}',
    format            smallint    NOT NULL,
    -- audit_trail.feed_origin.restored when the seal was made: where the
    -- series of transaction ids its positions belong to begins (a restored
    -- database starts a new one, API §10).
    series_start      timestamptz NOT NULL,
    -- Format 2: SHA-256 of the sealed events' occurred_at (8 bytes each, in
    -- id order, as sealed_events.times holds them), and the range of each
    -- of partitions (NULL for the default partition).
    times_root        bytea,
    ranges            tstzrange[]
);

-- The ids and leaf hashes of each seal's events, in id order, up to 100,000
-- a row: leaves is their 32-byte leaf hashes end to end.
CREATE TABLE audit_trail.sealed_events (
    seal_id   bigint   NOT NULL,
    chunk     int      NOT NULL,
    event_ids bigint[] NOT NULL,
    leaves    bytea    NOT NULL,
    -- Format 2: their occurred_at, 8 bytes each (microseconds since
    -- 2000-01-01 UTC, big-endian): verify() tells by it whether retention
    -- could have removed an event that is gone.
    times     bytea,
    PRIMARY KEY (seal_id, chunk)
);

-- What retention removed (dropped, archived, or trimmed from the default
-- partition; an archive dropped by archive_retention is 'dropped'): the ids
-- it held, as runs. A sealed event whose id is here is gone by retention,
-- not by tampering, when the record fits the seal and the catalog
-- (_removed_by_retention): a row added by hand does not excuse a deletion.
CREATE TABLE audit_trail.removed_partitions (
    partition   text           NOT NULL,
    range_start timestamptz,
    range_end   timestamptz,
    ids         int8multirange NOT NULL,
    events      bigint         NOT NULL,
    action      text           NOT NULL,
    removed_at  timestamptz    NOT NULL DEFAULT now()
);

REVOKE ALL ON audit_trail.seal_chain, audit_trail.sealed_events, audit_trail.removed_partitions FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('audit_trail.seal_chain', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.sealed_events', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.removed_partitions', '');
-- Append-only, as the log.
SELECT audit_trail._guard_table('audit_trail.seal_chain');
SELECT audit_trail._guard_table('audit_trail.sealed_events');
SELECT audit_trail._guard_table('audit_trail.removed_partitions');
-- Where this database's transaction ids begin: made by the install script
-- (a restore makes its own), never changed; seals record it.
SELECT audit_trail._guard_table('audit_trail.feed_origin');
-- The parent of every archive: an UPDATE or DELETE through it would fire no
-- archive's statement guard.
SELECT audit_trail._guard_table('audit_trail._archived');

-- Who may seal: the owner of the log (or a member of its role) and
-- superusers, as for maintain().
CREATE FUNCTION audit_trail._may_seal() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'audit_trail.events'::regclass), 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to seal audit_trail.events'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'seal() is for the owner of audit_trail.events, the members of its role and superusers (maintain() seals too).';
    END IF;
END
$$;

-- Who may verify: whoever may read the log and its seals.
CREATE FUNCTION audit_trail._may_verify() RETURNS void
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

-- A seal's root as its contents give it (src/seal.rs chain_root and
-- chain_root_v2): NULL for an unknown format.
CREATE FUNCTION audit_trail._seal_root_of(s audit_trail.seal_chain) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._chain_root(s.format, s.previous_root, s.seal_id, s.sealed_at, s.events, s.tree_root, s.position,
                                   s.series_start, s.times_root, s.partitions,
                                   ARRAY(SELECT lower(u.x) FROM unnest(s.ranges) WITH ORDINALITY u(x, n) ORDER BY u.n),
                                   ARRAY(SELECT upper(u.x) FROM unnest(s.ranges) WITH ORDINALITY u(x, n) ORDER BY u.n))
$$;

-- Whether an event whose id is in ids is in the log or in an archive, read
-- through the (id) index of each partition and archive.
CREATE FUNCTION audit_trail._ids_present(ids int8multirange) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(ids) g(rg), audit_trail.events e
                   WHERE e.id >= lower(g.rg) AND e.id < upper(g.rg))
        OR EXISTS (SELECT 1 FROM unnest(ids) g(rg), audit_trail._archived e
                   WHERE e.id >= lower(g.rg) AND e.id < upper(g.rg))
$$;

-- Whether retention removed event event_id of seal s, which is gone:
-- whether a record of audit_trail.removed_partitions names it and fits what
-- retention does and what the seal recorded. Retention removes a time
-- partition (dropped, or archived: its events then are read in the archive,
-- so a format 2 seal does not excuse them by that record) or an archive
-- (dropped) once its whole range is past, or trims the default partition
-- below a cutoff, in that order, whole, and records that as it happens.
-- What a record must fit by itself is _removal_fits (verify() reads the
-- records that do once, into fits); here, what concerns the event:
--  * format 2: no record that archived it names an event still in the log
--    or an archive (kept: their ids): a range goes whole (a format 1 seal's
--    archived events are not read in the archive: their record excuses
--    them, as in 0.5.0);
--  * for a format 2 seal, the event's occurred_at as sealed (at) is in the
--    removed range, a range of a partition that held the seal's events (or,
--    for an event the default partition held, which a partition made later
--    for its time takes in, any range), or, for a trim, below the cutoff
--    and in none of those ranges.
-- A format 1 seal (0.5.0) recorded no times nor exact partitions: its
-- checks are those that need neither. Ranges are read as [lower, upper),
-- as partitions have them, whatever a stored range says (README "Sealing
-- the trail", limits).
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

-- Whether a removal record fits what retention does, by itself:
--  * its range ended before the removal, which is not in the future;
--  * no event it names is in the log or in an archive (a range goes whole);
--  * dropped: the partition or archive is gone (its name is neither a
--    partition of the log nor an archive); no partition of the log and no
--    archive retention made (archived_partitions) holds its range; no event
--    of the default partition captured before it is older than its end
--    (the same run would have trimmed it);
--  * trimmed: the default partition; no event of it older than the cutoff
--    captured before the trim, and no partition of the log whose range
--    ended by the cutoff (the same run would have removed it);
--  * archived: the partition is no longer one of the log.
-- Relations are compared by name as regclass prints them here (qualified:
-- search_path is pg_catalog), never looked up by name: a verifier need not
-- have USAGE on audit_trail_archive.
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

CREATE FUNCTION audit_trail.seal() RETURNS TABLE(seal_id bigint, events bigint, root text)
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

CREATE FUNCTION audit_trail.verify(since timestamptz DEFAULT NULL)
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

-- The latest seal as a signed note (src/seal.rs _checkpoint_note).
CREATE FUNCTION audit_trail.checkpoint() RETURNS text
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

-- A checkpoint kept elsewhere, against this database: one row per problem
-- (signature, seal gone, root changed); empty when the seal it names is in
-- the chain with its root and, if public_key is given, the note is signed
-- by that key. verify() then checks the chain from there on.
CREATE FUNCTION audit_trail.verify_checkpoint(note text, public_key text DEFAULT NULL)
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

CREATE VIEW audit_trail.seals WITH (security_invoker = true) AS
SELECT c.seal_id, c.sealed_at, c.events, audit_trail._hex(c.root) AS root,
       audit_trail._hex(c.previous_root) AS previous_root
FROM audit_trail.seal_chain c;
COMMENT ON VIEW audit_trail.seals IS
  'One row per seal of the trail: how many events it covers, its root (chained to the previous seal''s), hex.';
