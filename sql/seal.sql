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
-- tree_root, events, sealed_at, position) (src/seal.rs chain_root): it
-- commits to every seal before it. previous_position is the previous seal's
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
    -- The time partitions that covered the seal's events when it was made
    -- (verify reports one that is gone other than by retention).
    partitions        text[]      NOT NULL DEFAULT '{}',
    format            smallint    NOT NULL,
    -- audit_trail.feed_origin.restored when the seal was made: where the
    -- series of transaction ids its positions belong to begins (a restored
    -- database starts a new one, API §10).
    series_start      timestamptz NOT NULL
);

-- The ids and leaf hashes of each seal's events, in id order, up to 100,000
-- a row: leaves is their 32-byte leaf hashes end to end.
CREATE TABLE audit_trail.sealed_events (
    seal_id   bigint   NOT NULL,
    chunk     int      NOT NULL,
    event_ids bigint[] NOT NULL,
    leaves    bytea    NOT NULL,
    PRIMARY KEY (seal_id, chunk)
);

-- What retention removed (dropped, archived, or trimmed from the default
-- partition): the ids it held, as runs. Sealed events whose ids are here
-- are gone by retention, not by tampering.
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
                             'audit_trail.removed_partitions'] LOOP
        IF NOT has_table_privilege(t, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to verify the audit trail: SELECT on % is needed', t
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'GRANT SELECT ON audit_trail.events, audit_trail.seal_chain, audit_trail.sealed_events, audit_trail.removed_partitions to the auditor.';
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION audit_trail.seal() RETURNS TABLE(seal_id bigint, events bigint, root text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
    at timestamptz;
    chained bytea;
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
        SELECT * INTO r FROM audit_trail._seal_events(id, since, pos);
    EXCEPTION WHEN unique_violation THEN
        -- REPEATABLE READ: a seal committed after this transaction's
        -- snapshot took this seal_id.
        RAISE EXCEPTION 'another seal() made seal % after this transaction''s snapshot was taken', id
            USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
    END;
    IF r.events = 0 THEN
        RETURN;  -- nothing committed since the last seal: no seal
    END IF;
    at := clock_timestamp();
    chained := audit_trail._seal_root(last.root, id, at, r.events, r.tree_root, pos);
    INSERT INTO audit_trail.seal_chain
    VALUES (id, at, r.events, r.tree_root, chained, last.root, pos, since, r.first_id, r.last_id,
            coalesce((SELECT array_agg(b.partition::text ORDER BY b.range_start)
                      FROM audit_trail._partition_bounds() b
                      WHERE b.range_start <= r.last_at AND b.range_end > r.first_at), '{}'),
            1, (SELECT o.restored FROM audit_trail.feed_origin o));
    seal_id := id;
    events := r.events;
    root := audit_trail._hex(chained);
    RETURN NEXT;
END
$$;

CREATE FUNCTION audit_trail.verify(since timestamptz DEFAULT NULL)
RETURNS TABLE(seal_id bigint, event_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
    part text;
    reported text[] := '{}';
    token text := substring(audit_trail.feed_position() FROM '[^/]*$');
    current_restored timestamptz := (SELECT o.restored FROM audit_trail.feed_origin o);
    series_until timestamptz;
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
        IF s.format <> 1 THEN
            problem := format('unknown seal format %s', s.format);
            RETURN NEXT;
        ELSIF s.root IS DISTINCT FROM audit_trail._seal_root(s.previous_root, s.seal_id, s.sealed_at, s.events, s.tree_root, s.position) THEN
            problem := 'broken link: the root does not match the seal''s contents';
            RETURN NEXT;
        END IF;
        -- The events: changed and added, then those that are gone.
        missing := '{}';
        IF substring(s.position FROM '[^/]*$') = token THEN
            series_until := NULL;
        ELSE
            -- A seal of an earlier series (made before a restore): its
            -- events are those of that series, captured before the next began.
            series_until := coalesce((SELECT min(c.series_start) FROM audit_trail.seal_chain c
                                      WHERE c.series_start > s.series_start), current_restored);
        END IF;
        FOR v IN SELECT * FROM audit_trail._verify_events(s.seal_id, s.previous_position, s.position, s.tree_root,
                                                           CASE WHEN series_until IS NOT NULL THEN s.series_start END, series_until) LOOP
            IF v.problem = 'missing' THEN
                missing := missing || v.event_id;
            ELSE
                event_id := v.event_id;
                problem := v.problem;
                RETURN NEXT;
            END IF;
        END LOOP;
        FOR v IN
            SELECT m.id, EXISTS (SELECT 1 FROM audit_trail.events e WHERE e.id = m.id) AS present
            FROM unnest(missing) m(id)
            WHERE NOT EXISTS (SELECT 1 FROM audit_trail.removed_partitions r WHERE r.ids @> m.id)
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
            CONTINUE WHEN part = ANY (reported);
            IF NOT EXISTS (SELECT 1 FROM pg_inherits i
                           WHERE i.inhparent = 'audit_trail.events'::regclass AND i.inhrelid = to_regclass(part))
               AND NOT EXISTS (SELECT 1 FROM audit_trail.removed_partitions r WHERE r.partition = part) THEN
                problem := format('partition %s is missing: not removed by retention', part);
                reported := reported || part;
                RETURN NEXT;
            END IF;
        END LOOP;
        prev := s;
        expected := s.seal_id + 1;
    END LOOP;
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
            FROM audit_trail.events e
            WHERE (e.txid < 3 OR e.txid >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
              AND e.occurred_at >= current_restored
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
            FROM audit_trail.events e
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
    END IF;
END
$$;

-- The latest seal as a signed note (src/seal.rs _checkpoint_note).
CREATE FUNCTION audit_trail.checkpoint() RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
