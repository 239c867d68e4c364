-- pg_audit_trail: the feed (API §10). A consumer keeps a position and asks
-- for what was committed after it; it misses nothing and sees nothing twice,
-- however transactions interleave and whenever they commit.
--
-- Ids cannot do this: an id is taken at capture, so a transaction that
-- captured first and commits last has a smaller id than events a consumer
-- has already read. A position is a snapshot instead (which transactions had
-- committed), and an event belongs to the batch between two positions when
-- its transaction (events.txid, the top-level transaction id with its epoch)
-- is visible in the later one and not in the earlier one, as PgQ batches
-- events. Only the events of transactions in flight at the earlier position
-- or begun since are looked at (index `<partition>_txid`), never the whole
-- log.
--
-- A position's text: '<snapshot>/<token>', or, in the middle of a batch cut
-- short by max_events, '<snapshot>/<snapshot>/<last id>[c]/<token>' (see
-- feed_position_after; 'c': the batch is in commit-time order, else in id
-- order, kept so that a restart that turns track_commit_timestamp on or off
-- cannot reorder the rest of a batch). The token is this database's
-- (audit_trail.feed_origin).
--
-- The primary only: on a standby, pg_current_snapshot() does not list the
-- transactions in flight (the recovery snapshot keeps them elsewhere), so a
-- position there would call them committed and their events would be lost.
-- Positions and reads are refused there (_feed_now).

-- The current snapshot as feed positions need it. pg_current_snapshot()
-- leaves out the caller's own transaction, which is still in flight: with
-- another transaction finishing after it took its id, the snapshot would
-- call it visible, and a consumer starting there would never read its
-- events. So it is added to the in-flight list.
CREATE FUNCTION audit_trail._feed_now() RETURNS pg_snapshot
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s pg_snapshot;
    me xid8;
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pg_audit_trail: the feed is read on the primary'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A standby''s snapshot does not list the transactions in flight on the primary: a position taken here would call them committed.',
                  HINT = 'Connect to the primary for feed_position() and feed(); a standby serves search() and the rest.';
    END IF;
    s := pg_current_snapshot();
    me := pg_current_xact_id_if_assigned();
    IF me IS NULL OR NOT pg_visible_in_snapshot(me, s) THEN
        RETURN s;
    END IF;
    RETURN format('%s:%s:%s',
                  least(pg_snapshot_xmin(s)::text::bigint, me::text::bigint),
                  pg_snapshot_xmax(s),
                  (SELECT string_agg(x, ',' ORDER BY x::bigint)
                   FROM (SELECT x::text AS x FROM pg_snapshot_xip(s) x UNION SELECT me::text) u))::pg_snapshot;
END
$$;

CREATE FUNCTION audit_trail.feed_position() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._feed_now()::text || '/' || o.token FROM audit_trail.feed_origin o
$$;
COMMENT ON FUNCTION audit_trail.feed_position() IS
  'Where the committed trail stands now: a position for audit_trail.feed().';

-- A position taken apart: base (everything visible in it has been read),
-- and, for a batch cut short, part and last_id (of the events visible in
-- part and not in base, those up to last_id in feed order have been read).
CREATE FUNCTION audit_trail._feed_parse(pos text, what text)
RETURNS TABLE(base pg_snapshot, part pg_snapshot, last_id bigint, by_commit boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bits text[] := string_to_array(pos, '/');
    token text := (SELECT o.token FROM audit_trail.feed_origin o);
    n int := coalesce(array_length(bits, 1), 0);
BEGIN
    IF pos IS NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: % must not be NULL', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'A consumer starts from audit_trail.feed_position().';
    END IF;
    IF n NOT IN (2, 4) THEN
        RAISE EXCEPTION 'pg_audit_trail: % "%" is not a feed position', what, pos
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Positions come from audit_trail.feed_position() or audit_trail.feed_position_after().';
    END IF;
    IF bits[n] IS DISTINCT FROM token THEN
        RAISE EXCEPTION 'pg_audit_trail: % "%" was taken in another database', what, pos
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('This database''s positions end in "/%s"; a restored or copied database starts a new series, since transaction ids are the cluster''s.', token),
                  HINT = 'Start again from audit_trail.feed_position(); the events restored with the database are not fed again.';
    END IF;
    BEGIN
        base := bits[1]::pg_snapshot;
        IF n = 4 THEN
            part := bits[2]::pg_snapshot;
            by_commit := bits[3] LIKE '%c';
            last_id := rtrim(bits[3], 'c')::bigint;
        END IF;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'pg_audit_trail: % "%" is not a feed position', what, pos
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = SQLERRM;
    END;
    RETURN NEXT;
END
$$;

-- Whether everything visible in a is visible in b (b was taken after a).
-- xmax only grows; an xid in flight for b must be so for a too.
CREATE FUNCTION audit_trail._feed_covers(b pg_snapshot, a pg_snapshot) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_snapshot_xmax(a) <= pg_snapshot_xmax(b)
       AND NOT EXISTS (SELECT FROM pg_snapshot_xip(b) x WHERE pg_visible_in_snapshot(x, a))
$$;

-- The transactions in flight at lo that had committed by hi (one still
-- running, a long bulk load, is not read at every poll), and lo's xmax (in
-- the range anyway: a list never empty, with which the planner might pick
-- an index that has nothing to do with txid). Given to _feed_window as a
-- value: computed inside it, the list would be unknown when planning, and
-- the planner would guess it matches most of the log.
CREATE FUNCTION audit_trail._feed_in_flight(lo pg_snapshot, hi pg_snapshot) RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(lo) x WHERE pg_visible_in_snapshot(x, hi)
                 UNION ALL
                 SELECT pg_snapshot_xmax(lo)::text::bigint)
$$;

-- The one rule of which events lie between two positions, for feed() and
-- for seal() and verify() (src/seal.rs): those whose transaction is visible
-- in hi and not in lo, captured from since_at (feed_origin.restored) and
-- before until_at when given, looked for through the (txid) index among
-- in_flight (always _feed_in_flight(lo, hi)) and the transactions begun
-- since lo. LANGUAGE sql without SET clauses, so that the planner inlines
-- it into the caller's query (a set-returning PL/pgSQL function would store
-- every row before returning the first): every name and operator is
-- qualified, so any search_path reads it alike (as _csv, 14_security).
CREATE FUNCTION audit_trail._feed_window(lo pg_snapshot, hi pg_snapshot, in_flight bigint[],
                                        since_at timestamptz, until_at timestamptz)
RETURNS SETOF audit_trail.events
LANGUAGE sql STABLE
AS $$
    SELECT e.*
    FROM audit_trail.events e
    WHERE (e.txid OPERATOR(pg_catalog.=) ANY (in_flight)
           OR (e.txid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmax(lo)::pg_catalog.text::pg_catalog.int8
               AND e.txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax(hi)::pg_catalog.text::pg_catalog.int8))
      AND pg_catalog.pg_visible_in_snapshot(e.txid::pg_catalog.text::pg_catalog.xid8, hi)
      AND NOT pg_catalog.pg_visible_in_snapshot(e.txid::pg_catalog.text::pg_catalog.xid8, lo)
      AND e.occurred_at OPERATOR(pg_catalog.>=) since_at
      AND (until_at IS NULL OR e.occurred_at OPERATOR(pg_catalog.<) until_at)
$$;

-- _feed_window's rule over the archived partitions (audit_trail._archived,
-- through each archive's own (txid) index), for seal() and verify()
-- (src/seal.rs leaves_query): an event archived by retention is sealed and
-- verified where audit_trail.archived_events serves it. The feed does not
-- read archives. Keep the two bodies alike.
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

-- The events visible in hi and not in lo, in feed order, after (after_key,
-- after_id) when given, at most lim. Feed order is commit order when the
-- batch is read by_commit (track_commit_timestamp on: the commit time of
-- each event's transaction), then id; else id.
CREATE FUNCTION audit_trail._feed_batch(lo pg_snapshot, hi pg_snapshot, after_key timestamptz, after_id bigint, lim bigint,
                                       by_commit boolean)
RETURNS SETOF audit_trail.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    in_flight bigint[] := audit_trail._feed_in_flight(lo, hi);
    restored timestamptz := (SELECT o.restored FROM audit_trail.feed_origin o);
BEGIN
    RETURN QUERY
    SELECT e.*
    FROM audit_trail._feed_window(lo, hi, in_flight, restored, NULL) e
    CROSS JOIN LATERAL (SELECT coalesce(CASE WHEN by_commit
                                             THEN pg_xact_commit_timestamp((e.txid % 4294967296)::text::xid) END,
                                        '-infinity') AS k) c
    WHERE after_id IS NULL OR (c.k, e.id) > (after_key, after_id)
    ORDER BY c.k, e.id
    LIMIT lim;
END
$$;

-- The feed-order key of one event of a batch, or NULL when it is not in it.
CREATE FUNCTION audit_trail._feed_key(lo pg_snapshot, hi pg_snapshot, event_id bigint, by_commit boolean) RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(CASE WHEN by_commit
                         THEN pg_xact_commit_timestamp((e.txid % 4294967296)::text::xid) END, '-infinity')
    FROM audit_trail.feed_origin o,
         audit_trail._feed_window(lo, hi, audit_trail._feed_in_flight(lo, hi), o.restored, NULL) e
    WHERE e.id = event_id
$$;

-- The key of the last event read of a batch cut short. Gone (retention took
-- it) the rest of the batch cannot be placed: said, not guessed.
CREATE FUNCTION audit_trail._feed_resume_key(base pg_snapshot, part pg_snapshot, last_id bigint, by_commit boolean)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k timestamptz;
BEGIN
    IF by_commit AND NOT current_setting('track_commit_timestamp')::boolean THEN
        RAISE EXCEPTION 'pg_audit_trail: position since is in a batch read in commit order, and track_commit_timestamp is off now'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Without commit times the rest of that batch cannot be told from what was read.',
                  HINT = format('Turn track_commit_timestamp on again (a restart), or read the whole batch again from position %L (what was read comes twice).',
                                base::text || '/' || (SELECT o.token FROM audit_trail.feed_origin o));
    END IF;
    k := audit_trail._feed_key(base, part, last_id, by_commit);
    IF k IS NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: event % of position since is no longer in the log', last_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Retention removed it, so the rest of its batch cannot be told from what was read.',
                  HINT = format('Go on after its batch from position %L.', part::text || '/' || (SELECT o.token FROM audit_trail.feed_origin o));
    END IF;
    RETURN k;
END
$$;

-- since, upto and the caller's snapshot, checked: positions in order, and
-- upto not newer than what this transaction can read (an event committed
-- in upto but invisible here would be skipped without a word).
CREATE FUNCTION audit_trail._feed_range(since text, upto text)
RETURNS TABLE(base pg_snapshot, part pg_snapshot, last_id bigint, by_commit boolean, hi pg_snapshot)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now pg_snapshot := audit_trail._feed_now();
    u record;
BEGIN
    SELECT * INTO base, part, last_id, by_commit FROM audit_trail._feed_parse(since, 'since');
    IF upto IS NULL THEN
        hi := now;
    ELSE
        SELECT * INTO u FROM audit_trail._feed_parse(upto, 'upto');
        IF u.part IS NOT NULL THEN
            RAISE EXCEPTION 'pg_audit_trail: upto "%" is the middle of a batch', upto
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'upto is a position from audit_trail.feed_position().';
        END IF;
        hi := u.base;
        IF NOT audit_trail._feed_covers(now, hi) THEN
            RAISE EXCEPTION 'pg_audit_trail: upto "%" is newer than this transaction''s snapshot', upto
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('This transaction sees %s; events committed after it would be skipped.', now),
                      HINT = 'In REPEATABLE READ or SERIALIZABLE, take the position in the same transaction.';
        END IF;
    END IF;
    IF NOT audit_trail._feed_covers(coalesce(part, base), base)
       OR NOT audit_trail._feed_covers(hi, coalesce(part, base)) THEN
        RAISE EXCEPTION 'pg_audit_trail: since "%" is after upto "%"', since, coalesce(upto, hi::text)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN upto IS NULL
                              THEN 'since is newer than this transaction''s snapshot: in REPEATABLE READ, take positions in the same transaction.'
                              ELSE 'Ask from the older position to the newer one.' END;
    END IF;
    RETURN NEXT;
END
$$;

CREATE FUNCTION audit_trail.feed(since text, upto text DEFAULT NULL, max_events integer DEFAULT NULL)
RETURNS SETOF audit_trail.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n bigint;
    lim bigint := max_events;
BEGIN
    IF max_events IS NOT NULL AND max_events < 1 THEN
        RAISE EXCEPTION 'pg_audit_trail: max_events must be at least 1, not %', max_events
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_events IS NOT NULL AND upto IS NULL THEN
        -- A batch cut short goes on from feed_position_after(since, upto,
        -- last id), which must be told the same upto: an upto of now that
        -- the caller never saw cannot be.
        RAISE EXCEPTION 'pg_audit_trail: max_events needs upto'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Take upto with audit_trail.feed_position() first, and go on with audit_trail.feed_position_after(since, upto, last id).';
    END IF;
    SELECT * INTO r FROM audit_trail._feed_range(since, upto);
    IF r.part IS NOT NULL THEN
        -- The rest of a batch cut short, then what came after it.
        RETURN QUERY SELECT * FROM audit_trail._feed_batch(r.base, r.part,
            audit_trail._feed_resume_key(r.base, r.part, r.last_id, r.by_commit), r.last_id, lim, r.by_commit);
        GET DIAGNOSTICS n = ROW_COUNT;
        IF lim IS NOT NULL THEN
            lim := lim - n;
            IF lim = 0 THEN
                RETURN;
            END IF;
        END IF;
        r.base := r.part;
    END IF;
    RETURN QUERY SELECT * FROM audit_trail._feed_batch(r.base, r.hi, NULL, NULL, lim,
                                                       current_setting('track_commit_timestamp')::boolean);
END
$$;
COMMENT ON FUNCTION audit_trail.feed(text, text, integer) IS
  'The events committed after position since and visible at upto (default: now), in commit order then id.';

-- Where a consumer stands after reading feed(since, upto) up to event
-- last_id (a batch cut short by max_events): the next call starts there.
CREATE FUNCTION audit_trail.feed_position_after(since text, upto text, last_id bigint) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    token text := (SELECT o.token FROM audit_trail.feed_origin o);
    now_by_commit boolean := current_setting('track_commit_timestamp')::boolean;
BEGIN
    IF upto IS NULL OR last_id IS NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: feed_position_after needs upto and last_id'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'upto is the position the batch was read up to; last_id the id of its last event read.';
    END IF;
    SELECT * INTO r FROM audit_trail._feed_range(since, upto);
    IF r.part IS NOT NULL AND audit_trail._feed_key(r.base, r.part, last_id, r.by_commit) IS NOT NULL THEN
        IF (audit_trail._feed_key(r.base, r.part, last_id, r.by_commit), last_id)
           < (audit_trail._feed_resume_key(r.base, r.part, r.last_id, r.by_commit), r.last_id) THEN
            RAISE EXCEPTION 'pg_audit_trail: event % was read before position since', last_id
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN format('%s/%s/%s%s/%s', r.base, r.part, last_id, CASE WHEN r.by_commit THEN 'c' ELSE '' END, token);
    END IF;
    IF audit_trail._feed_key(coalesce(r.part, r.base), r.hi, last_id, now_by_commit) IS NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: event % is not one feed(since, upto) returns', last_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'last_id is the id of the last event of the batch that was read.';
    END IF;
    RETURN format('%s/%s/%s%s/%s', coalesce(r.part, r.base), r.hi, last_id, CASE WHEN now_by_commit THEN 'c' ELSE '' END, token);
END
$$;
COMMENT ON FUNCTION audit_trail.feed_position_after(text, text, bigint) IS
  'The position after event last_id of feed(since, upto): where to go on after a batch cut short by max_events.';
