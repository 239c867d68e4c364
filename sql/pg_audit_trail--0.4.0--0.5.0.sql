-- pg_audit_trail 0.4.0 -> 0.5.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.5.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.5.0'" to load this file. \quit

-- Tables, columns, indexes and data first (what build_update lists as
-- leftovers), then what exists per partition, per archived partition or per
-- audited table. Each feature's part has its own section below; keep them in
-- the order the functions that follow need them.

-- == The feed and alerts (API §10) ==
-- feed(): where this database's transaction ids begin for the log. An
-- update keeps every event feedable: '-infinity' (a fresh install, and so a
-- restore, takes its own moment; see sql/schema.sql).
CREATE TABLE audit_trail.feed_origin (
    token    text        NOT NULL,
    restored timestamptz NOT NULL
);
CREATE UNIQUE INDEX feed_origin_one ON audit_trail.feed_origin ((true));
INSERT INTO audit_trail.feed_origin
SELECT substr(md5(random()::text || clock_timestamp()::text || pg_backend_pid()), 1, 12), '-infinity';
REVOKE ALL ON audit_trail.feed_origin FROM PUBLIC;
-- The txid index on every time partition and the default one, as
-- _index_partition (replaced below) now makes it. Archived partitions are
-- outside the feed.
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN
        SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'audit_trail.events'::regclass
    LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (txid)',
                       (SELECT relname FROM pg_class WHERE oid = p) || '_txid', p);
    END LOOP;
END
$$;
-- Alerts: the rules, where check_alerts() stands, the events in windows.
CREATE TABLE audit_trail.alert_rules (
    name         text        PRIMARY KEY,
    -- Upper-cased; an event matches when its action or its operation is one.
    actions      text[]      NOT NULL,
    entity_types text[],
    changed_any  text[],
    threshold    integer     NOT NULL,
    within       interval    NOT NULL,
    per          text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL DEFAULT session_user,
    CHECK (threshold >= 1),
    CHECK (within > interval '0'),
    CHECK (per IN ('actor', 'client_ip', 'tenant', 'entity', 'transaction'))
);
CREATE TABLE audit_trail.alert_state (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    position text    NOT NULL,
    checked_at timestamptz
);
CREATE TABLE audit_trail.alert_window (
    -- (No foreign key: add_alert and drop_alert clear a rule's window.)
    rule        text        NOT NULL,
    key         text        NOT NULL,
    event_id    bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (rule, key, event_id)
);
REVOKE ALL ON audit_trail.alert_rules, audit_trail.alert_state, audit_trail.alert_window FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('audit_trail.alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.alert_window', '');

-- == The sealed trail (API §13) ==
-- The seals, their events' leaf hashes, and what retention removed (see
-- sql/seal.sql); append-only and dumped, as the log. Events written before
-- the update are sealed by the first seal() like any other: their canonical
-- bytes do not depend on the version that wrote them.
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
    partitions        text[]      NOT NULL DEFAULT '{}',
    format            smallint    NOT NULL,
    series_start      timestamptz NOT NULL
);
CREATE TABLE audit_trail.sealed_events (
    seal_id   bigint   NOT NULL,
    chunk     int      NOT NULL,
    event_ids bigint[] NOT NULL,
    leaves    bytea    NOT NULL,
    PRIMARY KEY (seal_id, chunk)
);
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
SELECT audit_trail._guard_table('audit_trail.seal_chain');
SELECT audit_trail._guard_table('audit_trail.sealed_events');
SELECT audit_trail._guard_table('audit_trail.removed_partitions');

-- Tenants, scope and named actions (API §11): three settings of each
-- audited table, appended as schema.sql has them last. A table enabled
-- before keeps its behaviour: no tenant column, nothing always included, no
-- named actions.
ALTER TABLE audit_trail.config
    ADD COLUMN tenant_column  text,
    ADD COLUMN always_include text[] NOT NULL DEFAULT '{}',
    ADD COLUMN named_actions  jsonb  NOT NULL DEFAULT '[]';

-- == Reading (issue 15, API §12) ==
-- search, count and export gain filters, archived and (export) columns and
-- timezone: new arguments at the end, so every call that worked still does,
-- but a changed argument list is a new function: the functions section
-- drops the old ones and makes the new. A view or function of the database
-- that calls one of them would be dropped with it: refuse, naming them.
DO $$
DECLARE
    users text;
BEGIN
    SELECT string_agg(DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                                    THEN (SELECT 'view ' || r.ev_class::regclass FROM pg_rewrite r WHERE r.oid = d.objid)
                                    ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END, ', ') INTO users
    FROM pg_depend d
    WHERE d.refclassid = 'pg_proc'::regclass
      AND d.refobjid IN ('audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint)'::regprocedure,
                         'audit_trail.count(text[], text[], text, text, timestamptz, timestamptz, text, text)'::regprocedure,
                         'audit_trail.export(text, text[], text[], text, text, timestamptz, timestamptz, text, text)'::regprocedure)
      AND d.deptype = 'n';
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail 0.5.0 replaces audit_trail.search, count and export, which % use', users
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop them, update, then make them again (the old calls work unchanged).';
    END IF;
END
$$;
-- Their privileges and comments, given back to the new functions at the
-- end of this script (a DBA may have revoked them from PUBLIC).
-- (Kept in a setting of this transaction: the script makes no object for it.)
SELECT set_config('pg_audit_trail_update.readers', coalesce(jsonb_agg(jsonb_build_object(
           'name', p.proname, 'acl', p.proacl::text, 'comment', obj_description(p.oid, 'pg_proc')))::text, '[]'), true)
FROM pg_proc p
WHERE p.oid IN ('audit_trail.search(text[], text[], text, text, timestamptz, timestamptz, text, text, int, int, bigint)'::regprocedure,
                'audit_trail.count(text[], text[], text, text, timestamptz, timestamptz, text, text)'::regprocedure,
                'audit_trail.export(text, text[], text[], text, text, timestamptz, timestamptz, text, text)'::regprocedure);
-- The indexes of the new filters (audit_trail._index_partition), on every
-- partition of the log: actors and request_id (txid uses the feed's (txid)
-- index). Built here, one partition
-- at a time; each holds a lock that makes writers to that partition wait
-- until its indexes are built (see the README's Upgrades).
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_trail.events'::regclass
        ORDER BY c.relname
    LOOP
        -- (audit_trail.index_actors = off in the updating session: not made.)
        IF coalesce(nullif(current_setting('audit_trail.index_actors', true), '')::boolean, true) THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (lower(actor), id) WITH (deduplicate_items = off)',
                           p.name || '_actor', p.rel);
        END IF;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (request_id, id) WITH (deduplicate_items = off) '
                       'WHERE request_id IS NOT NULL', p.name || '_request', p.rel);
    END LOOP;
END
$$;
-- Archived partitions become children of audit_trail._archived, which
-- audit_trail.archived_events reads. Made LIKE the log as it is now: keep
-- this after any section that adds a column to audit_trail.events. An
-- archive of an older version gets the columns it lacks (0.3.0's have no
-- operation), NULL in its rows.
CREATE TABLE audit_trail._archived (LIKE audit_trail.events);
COMMENT ON TABLE audit_trail._archived IS
  'Parent of the archived partitions (schema audit_trail_archive); empty itself. Read audit_trail.archived_events.';
REVOKE ALL ON audit_trail._archived FROM PUBLIC;
DO $$
DECLARE
    arch regclass;
    c record;
BEGIN
    FOR arch IN
        SELECT a.partition FROM audit_trail.archived_partitions a JOIN pg_class k ON k.oid = a.partition
        ORDER BY a.range_start
    LOOP
        FOR c IN
            SELECT x.attname, format_type(x.atttypid, x.atttypmod) AS typ
            FROM pg_attribute x
            WHERE x.attrelid = 'audit_trail._archived'::regclass AND x.attnum > 0 AND NOT x.attisdropped
              AND NOT EXISTS (SELECT 1 FROM pg_attribute y
                              WHERE y.attrelid = arch AND y.attname = x.attname AND NOT y.attisdropped)
            ORDER BY x.attnum
        LOOP
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', arch, c.attname, c.typ);
        END LOOP;
        EXECUTE format('ALTER TABLE %s INHERIT audit_trail._archived', arch);
    END LOOP;
END
$$;

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.5.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION audit_trail._export_columns();

-- removed
DROP FUNCTION audit_trail._export_header();

-- removed
DROP FUNCTION audit_trail._export_line(text);

-- removed
DROP FUNCTION audit_trail._filters_json(text[],text[],text,text,timestamptz,timestamptz,text,text);

-- removed
DROP FUNCTION audit_trail._where(text[],text[],text,text,timestamptz,timestamptz,text,text);

-- removed
DROP FUNCTION audit_trail.count(text[],text[],text,text,timestamptz,timestamptz,text,text);

-- removed
DROP FUNCTION audit_trail.export(text,text[],text[],text,text,timestamptz,timestamptz,text,text);

-- removed
DROP FUNCTION audit_trail.search(text[],text[],text,text,timestamptz,timestamptz,text,text,int,int,bigint);

-- removed
DROP FUNCTION enable(regclass,TEXT[],TEXT[],TEXT[],TEXT,TEXT[],TEXT[]);

-- changed
CREATE OR REPLACE FUNCTION audit_trail._index_partition(rel regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = rel);
BEGIN
    -- Newest-first listing and keyset paging.
    -- Keys are unique (they end in id), so deduplication would only cost
    -- the writer work at every page split. Ids only ever grow, so the index
    -- grows at its right edge, where a split leaves the left page as full as
    -- fillfactor says and nothing ever fills it further: 100, not 90.
    EXECUTE format('CREATE INDEX %I ON %s (id) WITH (deduplicate_items = off, fillfactor = 100)', name || '_id', rel);
    -- The filters of search() that a newest-first scan cannot serve
    -- (API §12; txid uses the (txid) index below). An actor's events,
    -- newest first, without reading everyone's: actors match whatever the
    -- case, hence lower(actor). Every event pays for it (about a sixth of a
    -- bulk write), so a DBA whose readers never filter by actor may leave it
    -- out (audit_trail.index_actors; read as index_entities is, below).
    IF coalesce(nullif(current_setting('audit_trail.index_actors', true), '')::boolean, true) THEN
        EXECUTE format('CREATE INDEX %I ON %s (lower(actor), id) WITH (deduplicate_items = off)', name || '_actor', rel);
    END IF;
    -- A request's events: only events that carry a request id pay for it.
    EXECUTE format('CREATE INDEX %I ON %s (request_id, id) WITH (deduplicate_items = off) '
                   'WHERE request_id IS NOT NULL', name || '_request', rel);
    -- history(), entity filters and row_as_of(). It is a third of what an
    -- event costs to write, so a DBA whose readers never ask by entity may
    -- leave it out (audit_trail.index_entities). current_setting(), not
    -- _setting(): this also runs inside CREATE EXTENSION, before the
    -- library is loaded, when the setting may be a placeholder ('off' still
    -- casts) or not there at all (NULL: on).
    IF coalesce(nullif(current_setting('audit_trail.index_entities', true), '')::boolean, true) THEN
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, entity_id, id) WITH (deduplicate_items = off)',
                       name || '_entity', rel);
        -- history() from a row's old key on to its new one: only the
        -- UPDATEs that changed a key are in it (details.previous_entity_id).
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, (details ->> ''previous_entity_id''), id) '
                       'WHERE details ? ''previous_entity_id''', name || '_rekeyed', rel);
    END IF;
    -- feed() and seal(): the events of given transactions (API §10). Many
    -- events share a transaction, so deduplication keeps it small.
    EXECUTE format('CREATE INDEX %I ON %s (txid)', name || '_txid', rel);
END
$$;

-- new
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

-- new
CREATE FUNCTION audit_trail.feed_position() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._feed_now()::text || '/' || o.token FROM audit_trail.feed_origin o
$$;
COMMENT ON FUNCTION audit_trail.feed_position() IS
  'Where the committed trail stands now: a position for audit_trail.feed().';

-- new
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

-- new
CREATE FUNCTION audit_trail._feed_covers(b pg_snapshot, a pg_snapshot) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_snapshot_xmax(a) <= pg_snapshot_xmax(b)
       AND NOT EXISTS (SELECT FROM pg_snapshot_xip(b) x WHERE pg_visible_in_snapshot(x, a))
$$;

-- new
CREATE FUNCTION audit_trail._feed_in_flight(lo pg_snapshot, hi pg_snapshot) RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(lo) x WHERE pg_visible_in_snapshot(x, hi)
                 UNION ALL
                 SELECT pg_snapshot_xmax(lo)::text::bigint)
$$;

-- new
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

-- new
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

-- new
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

-- new
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

-- new
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

-- new
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

-- new
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

-- new
CREATE  FUNCTION "_checkpoint_note"(
	"origin" TEXT,
	"seal_id" bigint,
	"root" bytea
) RETURNS TEXT
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'checkpoint_note_wrapper';

-- new
CREATE  FUNCTION "_checkpoint_read"(
	"note" TEXT,
	"public_key" TEXT
) RETURNS TABLE (
	"seal_id" bigint,
	"root" bytea,
	"signed" bool,
	"signature_ok" bool
)
IMMUTABLE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'checkpoint_read_wrapper';

-- new
CREATE  FUNCTION "_event_bytes"(
	"id" bigint,
	"occurred_at" timestamp with time zone,
	"txid" bigint,
	"rest" TEXT[]
) RETURNS bytea
IMMUTABLE PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'event_bytes_wrapper';

-- new
CREATE  FUNCTION "_event_leaf"(
	"id" bigint,
	"occurred_at" timestamp with time zone,
	"txid" bigint,
	"rest" TEXT[]
) RETURNS bytea
IMMUTABLE PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'event_leaf_wrapper';

-- new
CREATE  FUNCTION "_hex"(
	"bytes" bytea
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'hex_sql_wrapper';

-- new
CREATE  FUNCTION "_log_read"(
	"action" TEXT,
	"details" jsonb,
	"tenant" TEXT
) RETURNS bigint
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'log_read_for_tenant_wrapper';

-- changed
CREATE OR REPLACE FUNCTION audit_trail._settings_json(c audit_trail.config) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'table', c.relid::text,
        'redact', audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns),
        'reveal', c.reveal,
        'exclude', c.exclude,
        'key_columns', coalesce(c.key_columns, audit_trail._key_columns(c.relid)),
        'label_column', c.label_column,
        'actions', c.actions,
        'tenant_column', c.tenant_column,
        'always_include', c.always_include,
        'named_actions', c.named_actions);
$$;

-- new
CREATE FUNCTION audit_trail._set_shape(target regclass, tenant_column text, always_include text[]) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config;
    cols text[] := audit_trail._columns(target);
    col text;
    keep text[] := '{}';
BEGIN
    SELECT * INTO cfg FROM audit_trail.config WHERE relid = target FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not audited', target USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF tenant_column IS NOT NULL THEN
        IF NOT tenant_column = ANY (cols) THEN
            RAISE EXCEPTION 'tenant_column "%" of table % does not exist', tenant_column, target
                USING ERRCODE = 'undefined_column';
        END IF;
        IF tenant_column = ANY (cfg.exclude) THEN
            RAISE EXCEPTION 'tenant_column "%" of table % is excluded: an excluded column is never recorded', tenant_column, target
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose another tenant_column, or stop excluding it.';
        END IF;
        IF tenant_column = ANY (audit_trail._redacted(cfg.relid, cfg.redact, cfg.redact_patterns, cfg.reveal, cfg.columns)) THEN
            RAISE EXCEPTION 'tenant_column "%" of table % is redacted: its values would be recorded in clear as each event''s tenant', tenant_column, target
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Choose another tenant_column, or reveal it (enable(..., reveal => ...)) if it is no secret.';
        END IF;
    END IF;
    FOREACH col IN ARRAY always_include LOOP
        IF col IS NULL OR NOT col = ANY (cols) THEN
            RAISE EXCEPTION 'always_include column "%" of table % does not exist', col, target
                USING ERRCODE = 'undefined_column';
        END IF;
        IF col = ANY (cfg.exclude) THEN
            RAISE EXCEPTION 'always_include column "%" of table % is excluded: an excluded column is never recorded', col, target
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name it in always_include or in exclude, not in both.';
        END IF;
        IF NOT col = ANY (keep) THEN
            keep := keep || col;
        END IF;
    END LOOP;
    UPDATE audit_trail.config c SET tenant_column = _set_shape.tenant_column, always_include = keep
    WHERE c.relid = target
    RETURNING * INTO cfg;
    PERFORM audit_trail._invalidate(target);
    RETURN audit_trail._settings_json(cfg);
END
$$;

-- new
CREATE FUNCTION audit_trail._rename_in_rules(rules jsonb, old text, new text) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_agg(
        r || jsonb_strip_nulls(jsonb_build_object(
            'changed_any', CASE WHEN jsonb_typeof(r -> 'changed_any') = 'array' THEN
                (SELECT jsonb_agg(CASE WHEN e = to_jsonb(old) THEN to_jsonb(new) ELSE e END ORDER BY o)
                 FROM jsonb_array_elements(r -> 'changed_any') WITH ORDINALITY AS x(e, o)) END,
            'after_matches', CASE WHEN jsonb_typeof(r -> 'after_matches') = 'object' THEN
                (SELECT jsonb_object_agg(CASE WHEN k = old THEN new ELSE k END, v)
                 FROM jsonb_each(r -> 'after_matches') AS y(k, v)) END))
        ORDER BY o), '[]')
    FROM jsonb_array_elements(rules) WITH ORDINALITY AS t(r, o);
$$;

-- new
CREATE FUNCTION audit_trail._rules_of(target regclass, caller oid, verb text) RETURNS audit_trail.config
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config;
    root regclass;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM audit_trail._check_owner(target, caller, verb);
    SELECT * INTO cfg FROM audit_trail.config WHERE relid = target FOR UPDATE;
    IF FOUND THEN
        RETURN cfg;
    END IF;
    root := audit_trail._audited_root(target);
    IF root IS NOT NULL THEN
        RAISE EXCEPTION 'table % is a partition of %: name actions on the audited table', target, root
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Rules of a partitioned table apply to the rows of all its partitions.';
    END IF;
    RAISE EXCEPTION 'table % is not audited', target
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Call audit_trail.enable() on it first.';
END
$$;

-- new
CREATE FUNCTION audit_trail._name_action(
    target regclass, as_action text, operation text, changed_any text[], after_matches jsonb, caller oid
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config := audit_trail._rules_of(target, caller, 'change');
    cols text[] := audit_trail._columns(target);
    op text := upper(operation);
    col text;
    changed text[];
    rule jsonb;
BEGIN
    IF operation IS NULL THEN
        RAISE EXCEPTION 'operation must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF op NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
        RAISE EXCEPTION 'operation "%" cannot be named: it must be INSERT, UPDATE or DELETE', operation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Named actions are for row changes.';
    END IF;
    IF changed_any IS NOT NULL THEN
        IF op <> 'UPDATE' THEN
            RAISE EXCEPTION 'changed_any applies to UPDATE only, not to %', op
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF cardinality(changed_any) = 0 THEN
            RAISE EXCEPTION 'changed_any must name at least one column, or be NULL'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        changed := '{}';
        FOREACH col IN ARRAY changed_any LOOP
            IF col IS NULL OR NOT col = ANY (cols) THEN
                RAISE EXCEPTION 'changed_any column "%" of table % does not exist', col, target
                    USING ERRCODE = 'undefined_column';
            END IF;
            IF NOT col = ANY (changed) THEN
                changed := changed || col;
            END IF;
        END LOOP;
    END IF;
    IF after_matches IS NOT NULL THEN
        IF jsonb_typeof(after_matches) <> 'object' THEN
            RAISE EXCEPTION 'after_matches must be a JSON object of column names and values, not %', after_matches
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR col IN SELECT k FROM jsonb_object_keys(after_matches) AS k ORDER BY k LOOP
            IF NOT col = ANY (cols) THEN
                RAISE EXCEPTION 'after_matches column "%" of table % does not exist', col, target
                    USING ERRCODE = 'undefined_column';
            END IF;
            -- Its value is never recorded: a rule must not tell it either.
            IF col = ANY (audit_trail._redacted(cfg.relid, cfg.redact, cfg.redact_patterns, cfg.reveal, cfg.columns)) THEN
                RAISE EXCEPTION 'after_matches column "%" of table % is redacted: a rule may not test its value', col, target
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Test whether it changed with changed_any instead.';
            END IF;
        END LOOP;
    END IF;
    rule := jsonb_build_object('action', as_action, 'operation', op,
                               'changed_any', to_jsonb(changed), 'after_matches', after_matches);
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(cfg.named_actions) AS t(r) WHERE t.r = rule) THEN
        RAISE EXCEPTION 'table % already has this rule for action "%"', target, as_action
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF NOT op = ANY (cfg.actions) THEN
        RAISE WARNING 'table % does not record %: the rule for action "%" applies once it does', target, op, as_action
            USING HINT = 'enable(..., actions => ...) says which operations are recorded.';
    END IF;
    UPDATE audit_trail.config SET named_actions = named_actions || jsonb_build_array(rule)
    WHERE relid = target
    RETURNING * INTO cfg;
    PERFORM audit_trail._invalidate(target);
    RETURN jsonb_build_object('table', target::text, 'added', rule, 'named_actions', cfg.named_actions);
END
$$;

-- new
CREATE FUNCTION audit_trail._drop_named_action(target regclass, as_action text, caller oid) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config := audit_trail._rules_of(target, caller, 'change');
    dropped jsonb;
    kept jsonb;
BEGIN
    SELECT coalesce(jsonb_agg(r ORDER BY o) FILTER (WHERE r ->> 'action' = as_action), '[]'),
           coalesce(jsonb_agg(r ORDER BY o) FILTER (WHERE r ->> 'action' IS DISTINCT FROM as_action), '[]')
    INTO dropped, kept
    FROM jsonb_array_elements(cfg.named_actions) WITH ORDINALITY AS t(r, o);
    IF jsonb_array_length(dropped) = 0 THEN
        RAISE EXCEPTION 'table % has no named action "%"', target, as_action
            USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE audit_trail.config SET named_actions = kept WHERE relid = target;
    PERFORM audit_trail._invalidate(target);
    RETURN jsonb_build_object('table', target::text, 'dropped', dropped, 'named_actions', kept);
END
$$;

-- new
CREATE  FUNCTION "_seal_events"(
	"seal_id" bigint,
	"since" TEXT,
	"upto" TEXT
) RETURNS TABLE (
	"events" bigint,
	"tree_root" bytea,
	"first_id" bigint,
	"last_id" bigint,
	"first_at" timestamp with time zone,
	"last_at" timestamp with time zone
)
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'seal_events_wrapper';

-- new
CREATE  FUNCTION "_seal_root"(
	"previous_root" bytea,
	"seal_id" bigint,
	"sealed_at" timestamp with time zone,
	"events" bigint,
	"tree_root" bytea,
	"position" TEXT
) RETURNS bytea
IMMUTABLE PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'seal_root_wrapper';

-- new
CREATE FUNCTION audit_trail._where(
    actions text[], entity_types text[], entity_id text, actor text,
    since timestamptz, until timestamptz, q text, tenant text,
    actors text[], request_id text, txid bigint, exclude_actions text[], operations text[]
) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w text[] := ARRAY['true'];
    bad text;
BEGIN
    IF since IS NOT NULL AND until IS NOT NULL AND until < since THEN
        RAISE EXCEPTION 'until (%) is before since (%)', until, since
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(actors, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'actors must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(exclude_actions, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'exclude_actions must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(operations, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'operations must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT o INTO bad FROM unnest(operations) o WHERE upper(o) NOT IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'operations: % is not an operation', quote_literal(bad)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The operations of captured row events are INSERT, UPDATE, DELETE and TRUNCATE.';
    END IF;
    IF txid < 0 THEN
        RAISE EXCEPTION 'txid must not be negative, not %', txid USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF actions IS NOT NULL THEN
        w := array_append(w, 'upper(action) = ANY ($1)');
    ELSE
        w := array_append(w, 'upper(action) <> ALL (''{AUDIT_LOG_ACCESSED,AUDIT_LOG_EXPORTED}'')');
    END IF;
    IF entity_types IS NOT NULL THEN w := array_append(w, 'entity_type = ANY ($2)'); END IF;
    IF entity_id IS NOT NULL THEN w := array_append(w, 'entity_id = $3'); END IF;
    -- strpos, not LIKE: % and _ in what the user typed are plain characters.
    IF actor IS NOT NULL THEN w := array_append(w, 'strpos(lower(actor), lower($4)) > 0'); END IF;
    IF since IS NOT NULL THEN w := array_append(w, 'occurred_at >= $5'); END IF;
    IF until IS NOT NULL THEN w := array_append(w, 'occurred_at < $6'); END IF;
    IF q IS NOT NULL THEN
        w := array_append(w, '(strpos(lower(action), lower($7)) > 0 OR strpos(lower(actor), lower($7)) > 0
                    OR strpos(lower(entity_type), lower($7)) > 0 OR strpos(lower(entity_id), lower($7)) > 0
                    OR strpos(lower(entity_label), lower($7)) > 0 OR strpos(lower(details::text), lower($7)) > 0)');
    END IF;
    IF tenant IS NOT NULL THEN w := array_append(w, 'tenant = $8'); END IF;
    -- Exact, whatever the case: $9 is the list lower-cased. One actor (the
    -- usual page) is an equality, which the actor index reads newest first
    -- (up to PostgreSQL 16, = ANY cannot be read in index order).
    IF cardinality(actors) = 1 THEN
        w := array_append(w, 'lower(actor) = ($9)[1]');
    ELSIF actors IS NOT NULL THEN
        w := array_append(w, 'lower(actor) = ANY ($9)');
    END IF;
    IF request_id IS NOT NULL THEN w := array_append(w, 'request_id = $10'); END IF;
    IF txid IS NOT NULL THEN w := array_append(w, 'txid = $11'); END IF;
    IF exclude_actions IS NOT NULL THEN w := array_append(w, 'upper(action) <> ALL ($12)'); END IF;
    IF operations IS NOT NULL THEN w := array_append(w, 'operation = ANY ($13)'); END IF;
    RETURN array_to_string(w, ' AND ');
END
$$;

-- new
CREATE FUNCTION audit_trail._lower_all(a text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT array_agg(lower(x)) FROM unnest(a) x $$;

-- new
CREATE FUNCTION audit_trail._filters_json(
    actions text[], entity_types text[], entity_id text, actor text,
    since timestamptz, until timestamptz, q text, tenant text,
    actors text[], request_id text, txid bigint, exclude_actions text[], operations text[]
) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'actions', actions, 'entity_types', entity_types, 'entity_id', entity_id, 'actor', actor,
        'since', since, 'until', until, 'q', q, 'tenant', tenant,
        'actors', actors, 'request_id', request_id, 'txid', txid, 'exclude_actions', exclude_actions,
        'operations', operations));
$$;

-- new
CREATE FUNCTION audit_trail._may_read_events() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege('audit_trail.events', 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table events'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Archived events are readable by whoever may SELECT from audit_trail.events.';
    END IF;
    IF row_security_active('audit_trail.events') THEN
        RAISE EXCEPTION 'row-level security on audit_trail.events applies to role %, and archived events cannot be filtered by its policies', current_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Archived partitions are read with the view owner''s rights; reading them would show every archived row.',
                  HINT = 'Read archives as a role the policies do not apply to (BYPASSRLS, or the table''s owner), or search without archived => true.';
    END IF;
    RETURN true;
END
$$;

-- new
CREATE FUNCTION audit_trail._source(archived boolean) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN archived
                THEN '(SELECT * FROM audit_trail.events UNION ALL SELECT * FROM audit_trail.archived_events) e'
                ELSE 'audit_trail.events e' END
$$;

-- new
CREATE FUNCTION audit_trail.search(
    actions         text[]      DEFAULT NULL,
    entity_types    text[]      DEFAULT NULL,
    entity_id       text        DEFAULT NULL,
    actor           text        DEFAULT NULL,
    since           timestamptz DEFAULT NULL,
    until           timestamptz DEFAULT NULL,
    q               text        DEFAULT NULL,
    tenant          text        DEFAULT NULL,
    page            int         DEFAULT 1,
    page_size       int         DEFAULT 50,
    before_id       bigint      DEFAULT NULL,
    actors          text[]      DEFAULT NULL,
    request_id      text        DEFAULT NULL,
    txid            bigint      DEFAULT NULL,
    exclude_actions text[]      DEFAULT NULL,
    operations      text[]      DEFAULT NULL,
    archived        boolean     DEFAULT false,
    after_id        bigint      DEFAULT NULL
) RETURNS SETOF audit_trail.events
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sql text;
    keyset text;
BEGIN
    IF page IS NULL OR page < 1 THEN
        RAISE EXCEPTION 'page must be 1 or more, not %', coalesce(page::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF page_size IS NULL OR page_size < 1 OR page_size > 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000, not %', coalesce(page_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF before_id IS NOT NULL AND after_id IS NOT NULL THEN
        RAISE EXCEPTION 'give before_id or after_id, not both'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'before_id is the next (older) page, after_id the previous (newer) one.';
    END IF;
    IF archived IS NULL THEN
        RAISE EXCEPTION 'archived must be true or false, not NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    keyset := CASE WHEN after_id IS NOT NULL THEN ' AND id > $15'
                   WHEN before_id IS NOT NULL THEN ' AND id < $14' ELSE '' END;
    sql := audit_trail._where(actions, entity_types, entity_id, actor, since, until, q, tenant,
                              actors, request_id, txid, exclude_actions, operations);
    IF cardinality(actors) > 1 THEN
        -- Several actors: each one's newest events through the actor index
        -- (= ANY cannot be read in index order), then the page of them all:
        -- the other filters, and lower(actor) equal to each of the list
        -- (lower-cased in $9) in turn, are exactly the rows of the filter.
        sql := 'SELECT x.* FROM (SELECT DISTINCT k FROM unnest($9) k) a(actor_key) CROSS JOIN LATERAL (SELECT e.* FROM '
            || audit_trail._source(archived) || ' WHERE '
            || audit_trail._where(actions, entity_types, entity_id, actor, since, until, q, tenant,
                                  NULL, request_id, txid, exclude_actions, operations)
            || keyset || ' AND lower(actor) = a.actor_key ORDER BY id '
            || CASE WHEN after_id IS NOT NULL THEN '' ELSE 'DESC' END || ' LIMIT $18) x';
    ELSE
        sql := 'SELECT e.* FROM ' || audit_trail._source(archived) || ' WHERE ' || sql || keyset;
    END IF;
    -- Keyset paging ignores page: its cost does not grow with depth.
    IF after_id IS NOT NULL THEN
        -- "Previous": the page_size events just newer than after_id, read
        -- upwards from it, then shown newest first like every page.
        sql := 'SELECT p.* FROM (' || sql || ' ORDER BY id LIMIT $16) p ORDER BY p.id DESC';
    ELSIF before_id IS NOT NULL THEN
        sql := sql || ' ORDER BY id DESC LIMIT $16';
    ELSE
        sql := sql || ' ORDER BY id DESC LIMIT $16 OFFSET $17';
    END IF;
    RETURN QUERY EXECUTE sql
        USING audit_trail._upper_all(actions), entity_types, entity_id, actor, since, until, q, tenant,
              audit_trail._lower_all(actors), request_id, txid, audit_trail._upper_all(exclude_actions),
              audit_trail._upper_all(operations),
              before_id, after_id, page_size, (page - 1)::bigint * page_size,
              CASE WHEN before_id IS NULL AND after_id IS NULL THEN page::bigint * page_size ELSE page_size END;
    IF audit_trail._log_reads_all() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_ACCESSED',
            jsonb_build_object('function', 'search')
            || audit_trail._filters_json(actions, entity_types, entity_id, actor, since, until, q, tenant,
                                         actors, request_id, txid, exclude_actions, operations)
            || jsonb_strip_nulls(jsonb_build_object('page', page, 'page_size', page_size, 'before_id', before_id,
                                                    'after_id', after_id, 'archived', nullif(archived, false))));
    END IF;
END
$$;

-- new
CREATE FUNCTION audit_trail.count(
    actions         text[]      DEFAULT NULL,
    entity_types    text[]      DEFAULT NULL,
    entity_id       text        DEFAULT NULL,
    actor           text        DEFAULT NULL,
    since           timestamptz DEFAULT NULL,
    until           timestamptz DEFAULT NULL,
    q               text        DEFAULT NULL,
    tenant          text        DEFAULT NULL,
    actors          text[]      DEFAULT NULL,
    request_id      text        DEFAULT NULL,
    txid            bigint      DEFAULT NULL,
    exclude_actions text[]      DEFAULT NULL,
    operations      text[]      DEFAULT NULL,
    archived        boolean     DEFAULT false
) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF archived IS NULL THEN
        RAISE EXCEPTION 'archived must be true or false, not NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE 'SELECT count(*) FROM ' || audit_trail._source(archived) || ' WHERE '
            || audit_trail._where(actions, entity_types, entity_id, actor, since, until, q, tenant,
                                  actors, request_id, txid, exclude_actions, operations)
        INTO n
        USING audit_trail._upper_all(actions), entity_types, entity_id, actor, since, until, q, tenant,
              audit_trail._lower_all(actors), request_id, txid, audit_trail._upper_all(exclude_actions),
              audit_trail._upper_all(operations);
    RETURN n;
END
$$;

-- new
CREATE FUNCTION audit_trail._export_columns(utc boolean)
RETURNS TABLE(name text, csv text, "json" text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
    col text;
BEGIN
    FOR a IN
        SELECT attname::text AS attname, atttypid::regtype AS typ FROM pg_attribute
        WHERE attrelid = 'audit_trail.events'::regclass AND attnum > 0 AND NOT attisdropped
        ORDER BY attnum
    LOOP
        col := quote_ident(a.attname);
        name := a.attname;
        json := col;
        CASE a.typ
            WHEN 'bigint'::regtype THEN csv := col || '::text';
            WHEN 'timestamp with time zone'::regtype THEN
                csv := format('to_char(%s, ''YYYY-MM-DD"T"HH24:MI:SS.US%s'')', col,
                              CASE WHEN utc THEN '"Z"' ELSE 'TZH:TZM' END);
            WHEN 'text'::regtype THEN csv := format('audit_trail._csv(%s)', col);
            WHEN 'jsonb'::regtype THEN csv := format('audit_trail._csv(%s::text)', col);
            WHEN 'text[]'::regtype THEN csv := format('audit_trail._csv(to_jsonb(%s)::text)', col);
            WHEN 'inet'::regtype THEN
                csv := format('audit_trail._csv(host(%s))', col);
                json := format('host(%s)', col);
            ELSE
                RAISE EXCEPTION 'pg_audit_trail: export has no rendering for column % of type %', a.attname, a.typ
                    USING ERRCODE = 'feature_not_supported';
        END CASE;
        RETURN NEXT;
    END LOOP;
END
$$;

-- new
CREATE FUNCTION audit_trail._export_pick(columns text[], utc boolean)
RETURNS TABLE(name text, csv text, "json" text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF columns IS NULL THEN
        RETURN QUERY SELECT x.name, x.csv, x.json FROM audit_trail._export_columns(utc) x;
        RETURN;
    END IF;
    IF cardinality(columns) = 0 THEN
        RAISE EXCEPTION 'columns must name at least one column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'columns must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT u.c INTO bad FROM unnest(columns) u(c)
    WHERE NOT EXISTS (SELECT 1 FROM audit_trail._export_columns(utc) x WHERE x.name = u.c) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of columns is not a column of audit_trail.events', bad
            USING ERRCODE = 'undefined_column',
                  HINT = 'The columns are: ' || (SELECT string_agg(x.name, ', ') FROM audit_trail._export_columns(utc) x) || '.';
    END IF;
    SELECT u.c INTO bad FROM unnest(columns) u(c) GROUP BY u.c HAVING count(*) > 1 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" is named more than once in columns', bad USING ERRCODE = 'duplicate_column';
    END IF;
    RETURN QUERY
        SELECT x.name, x.csv, x.json
        FROM unnest(columns) WITH ORDINALITY u(c, ord) JOIN audit_trail._export_columns(utc) x ON x.name = u.c
        ORDER BY u.ord;
END
$$;

-- new
CREATE FUNCTION audit_trail.export(
    format          text        DEFAULT 'csv',
    actions         text[]      DEFAULT NULL,
    entity_types    text[]      DEFAULT NULL,
    entity_id       text        DEFAULT NULL,
    actor           text        DEFAULT NULL,
    since           timestamptz DEFAULT NULL,
    until           timestamptz DEFAULT NULL,
    q               text        DEFAULT NULL,
    tenant          text        DEFAULT NULL,
    actors          text[]      DEFAULT NULL,
    request_id      text        DEFAULT NULL,
    txid            bigint      DEFAULT NULL,
    exclude_actions text[]      DEFAULT NULL,
    operations      text[]      DEFAULT NULL,
    archived        boolean     DEFAULT false,
    columns         text[]      DEFAULT NULL,
    timezone        text        DEFAULT 'UTC'
) RETURNS SETOF text
LANGUAGE plpgsql
-- Timestamps leave in the zone asked for (UTC unless told), whatever the
-- session's: set below, put back when the function returns.
SET timezone = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fmt text := lower(coalesce(format, ''));
    utc boolean := lower(timezone) = 'utc';
    cond text;
    cols record;
BEGIN
    IF fmt NOT IN ('csv', 'jsonl') THEN
        RAISE EXCEPTION 'format must be csv or jsonl, not %', coalesce(quote_literal(format), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF archived IS NULL THEN
        RAISE EXCEPTION 'archived must be true or false, not NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF timezone IS NULL THEN
        RAISE EXCEPTION 'timezone must be a time zone, not NULL' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT utc THEN
        BEGIN
            PERFORM set_config('timezone', timezone, true);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'timezone % is not a time zone', quote_literal(timezone)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give a name of pg_timezone_names, such as Europe/Paris, or an offset such as +02:00.';
        END;
    END IF;
    cond := audit_trail._where(actions, entity_types, entity_id, actor, since, until, q, tenant,
                               actors, request_id, txid, exclude_actions, operations);
    SELECT string_agg(p.name, ',') AS header,
           CASE fmt
               WHEN 'csv' THEN 'array_to_string(ARRAY[' || string_agg(p.csv, ', ') || '], '','', '''')'
               ELSE 'json_build_object(' || string_agg(quote_literal(p.name) || ', ' || p.json, ', ') || ')::text'
           END AS line
        INTO cols
    FROM audit_trail._export_pick(columns, utc) p;
    -- The rows go out through the function's result store, which spills to
    -- disk past work_mem: any number of events, bounded memory.
    IF fmt = 'csv' THEN
        RETURN NEXT cols.header;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT ' || cols.line || ' FROM (SELECT e.* FROM ' || audit_trail._source(archived) || ' WHERE ' || cond
        || ' ORDER BY id DESC) e'
        USING audit_trail._upper_all(actions), entity_types, entity_id, actor, since, until, q, tenant,
              audit_trail._lower_all(actors), request_id, txid, audit_trail._upper_all(exclude_actions),
              audit_trail._upper_all(operations);
    -- Recorded after the rows are read, so an export never lists itself;
    -- under the filter's tenant when it has one (a job exporting tenant by
    -- tenant records each export as that tenant's).
    IF audit_trail._log_reads_export() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_EXPORTED',
            jsonb_build_object('format', fmt)
            || audit_trail._filters_json(actions, entity_types, entity_id, actor, since, until, q, tenant,
                                         actors, request_id, txid, exclude_actions, operations)
            || jsonb_strip_nulls(jsonb_build_object('archived', nullif(archived, false), 'columns', columns,
                                                    'timezone', CASE WHEN NOT utc THEN timezone END)),
            tenant);
    END IF;
END
$$;

-- new
CREATE FUNCTION audit_trail._history(target regclass, entity_id text, at timestamptz DEFAULT NULL)
RETURNS SETOF audit_trail.events
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Index probes of a few keys: compiling them (the plan's cost grows with the
-- number of partitions) takes longer than running them.
SET jit = off
AS $$
DECLARE
    canonical text := audit_trail._canonical_key(target, entity_id);
    -- The names the table has had (RENAME, SET SCHEMA).
    types text[] := ARRAY(SELECT DISTINCT n.entity_type FROM audit_trail._names_of(target) n);
    keys text[];
    los bigint[];
    his bigint[];
    end_tx bigint[];
    end_at timestamptz[];
BEGIN
    -- A row's life as segments: (key, first and last event id, and the
    -- statements that began and ended it). A key may name several rows over
    -- time (a row deleted and another inserted with its key; a row moved
    -- to another key and a new row taking the old one; two rows swapping
    -- keys in one statement), so a segment runs from the event that gave a
    -- row the key (INSERT, or an UPDATE into it) to the one that took it
    -- away (DELETE, or an UPDATE out of it), and a row's life is followed
    -- from a segment's first event back to the segment that ended there,
    -- and from the event that ended it on to the segment it began. A
    -- statement is (txid, occurred_at): one writer, one time. Within the
    -- statement that ended a segment, only that row's event belongs to it
    -- (in a swap, the other row moves into the key in the same statement).
    -- The key's segments, each followed back and on: every row that held
    -- the key, each with its whole life. With `at`, the one row that held
    -- it then (the last segment begun by then; else the first).
    WITH RECURSIVE seg_start AS (
        -- The key as given and as recorded (they differ for events written
        -- before 0.4.0 under other output settings); where its segments
        -- begin, and 0 for events of it before any (enabled on a table
        -- whose rows existed).
        SELECT k.k AS key, st.id, st.txid, st.occurred_at
        FROM (SELECT DISTINCT k FROM unnest(ARRAY[canonical, _history.entity_id]) k) k
        CROSS JOIN LATERAL (
            SELECT e.id, e.txid, e.occurred_at FROM audit_trail.events e
            WHERE e.entity_type = ANY (types) AND e.entity_id = k.k
              AND (e.operation = 'INSERT' OR (e.operation = 'UPDATE' AND e.details ? 'previous_entity_id'))
            UNION ALL
            SELECT 0, NULL, '-infinity' WHERE EXISTS (
                SELECT FROM audit_trail.events e
                WHERE e.entity_type = ANY (types) AND e.entity_id = k.k AND e.operation IS NOT NULL)
        ) st
    ), segs AS (
        SELECT s.key, s.id AS lo, coalesce(en.id, 9223372036854775807::bigint) AS hi, s.txid AS s_tx,
               s.occurred_at AS s_at, en.txid AS e_tx, en.occurred_at AS e_at
        FROM seg_start s
        LEFT JOIN LATERAL (
            -- Where it ends: the first DELETE of the key, or UPDATE out of
            -- it, after its start and in another statement.
            SELECT n.id, n.txid, n.occurred_at FROM audit_trail.events n
            WHERE n.entity_type = ANY (types) AND n.id > s.id
              AND (n.txid, n.occurred_at) IS DISTINCT FROM (s.txid, s.occurred_at)
              AND ((n.entity_id = s.key AND n.operation = 'DELETE')
                   OR (n.details ->> 'previous_entity_id' = s.key AND n.details ? 'previous_entity_id'
                       AND n.operation = 'UPDATE'))
            ORDER BY n.id LIMIT 1
        ) en ON true
    ), chain(key, lo, hi, s_tx, s_at, e_tx, e_at) AS (
        SELECT g.key, g.lo, g.hi, g.s_tx, g.s_at, g.e_tx, g.e_at FROM segs g
        WHERE at IS NULL
           OR g.lo = coalesce((SELECT max(x.lo) FROM segs x WHERE x.key = g.key AND x.s_at <= at),
                              (SELECT min(x.lo) FROM segs x WHERE x.key = g.key))
        UNION
        SELECT step.*
        FROM chain c
        CROSS JOIN LATERAL (
            -- Back: the segment's first event moved the row here from
            -- another key; that key's segment ended with it and began at
            -- the last start of that key before it, in another statement.
            SELECT x.prev, coalesce(ps.id, 0::bigint), x.id, ps.txid, ps.occurred_at, x.txid, x.occurred_at
            FROM (
                SELECT e.id, e.txid, e.occurred_at, e.details ->> 'previous_entity_id' AS prev
                FROM audit_trail.events e
                WHERE e.entity_type = ANY (types) AND e.entity_id = c.key AND e.id = c.lo
                  AND e.details ? 'previous_entity_id'
                  -- Only captured key changes link keys: an application
                  -- event's details cannot splice another row in.
                  AND e.operation = 'UPDATE'
            ) x
            LEFT JOIN LATERAL (
                SELECT p.id, p.txid, p.occurred_at FROM audit_trail.events p
                WHERE p.entity_type = ANY (types) AND p.entity_id = x.prev AND p.id < x.id
                  AND (p.operation = 'INSERT' OR (p.operation = 'UPDATE' AND p.details ? 'previous_entity_id'))
                  AND (p.txid, p.occurred_at) IS DISTINCT FROM (x.txid, x.occurred_at)
                ORDER BY p.id DESC LIMIT 1
            ) ps ON true
            UNION ALL
            -- On: the event that moved the row out of this segment's key
            -- (not in the statement that began the segment), and the
            -- segment it began, up to the event that ended that one.
            SELECT y.entity_id, y.id, coalesce(ye.id, 9223372036854775807::bigint), y.txid, y.occurred_at,
                   ye.txid, ye.occurred_at
            FROM (
                SELECT e.id, e.entity_id, e.txid, e.occurred_at
                FROM audit_trail.events e
                WHERE e.entity_type = ANY (types) AND e.details ? 'previous_entity_id'
                  AND e.details ->> 'previous_entity_id' = c.key AND e.id BETWEEN c.lo AND c.hi
                  AND e.operation = 'UPDATE'
                  AND (e.txid, e.occurred_at) IS DISTINCT FROM (c.s_tx, c.s_at)
                ORDER BY e.id LIMIT 1
            ) y
            LEFT JOIN LATERAL (
                SELECT n.id, n.txid, n.occurred_at FROM audit_trail.events n
                WHERE n.entity_type = ANY (types) AND n.id > y.id
                  AND (n.txid, n.occurred_at) IS DISTINCT FROM (y.txid, y.occurred_at)
                  AND ((n.entity_id = y.entity_id AND n.operation = 'DELETE')
                       OR (n.details ->> 'previous_entity_id' = y.entity_id AND n.details ? 'previous_entity_id'
                           AND n.operation = 'UPDATE'))
                ORDER BY n.id LIMIT 1
            ) ye ON true
        ) step
        WHERE step.prev IS NOT NULL
    )
    SELECT array_agg(c.key), array_agg(c.lo), array_agg(c.hi), array_agg(c.e_tx), array_agg(c.e_at)
    INTO keys, los, his, end_tx, end_at FROM chain c;

    RETURN QUERY
    -- A segment may be listed twice (reached back and on), an event once.
    SELECT DISTINCT ON (e.id) e.*
    FROM unnest(keys, los, his, end_tx, end_at) AS c(key, lo, hi, e_tx, e_at)
    CROSS JOIN LATERAL (
        SELECT x.* FROM audit_trail.events x
        WHERE x.entity_type = ANY (types) AND x.entity_id = c.key AND x.id BETWEEN c.lo AND c.hi
          -- Row events only: an application event naming the row is not
          -- part of its life (API §9: readers of rows go by operation).
          AND x.operation IS NOT NULL
          -- Of the statement that ended the segment, its last event only.
          AND ((x.txid, x.occurred_at) IS DISTINCT FROM (c.e_tx, c.e_at) OR x.id = c.hi)
    ) e
    JOIN audit_trail._names_of(target) n
      ON e.entity_type = n.entity_type
     AND e.occurred_at >= n.valid_from AND (n.valid_until IS NULL OR e.occurred_at < n.valid_until)
    ORDER BY e.id;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.history(target regclass, entity_id text)
RETURNS SETOF audit_trail.events
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM audit_trail._history(target, entity_id);
    IF audit_trail._log_reads_all() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_ACCESSED',
            jsonb_build_object('function', 'history', 'target', target::text, 'entity_id', entity_id));
    END IF;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.diff(event_id bigint)
RETURNS TABLE(column_name text, before jsonb, after jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH e AS (SELECT * FROM audit_trail.events x WHERE x.id = diff.event_id)
    SELECT c.col, e.before -> c.col, e.after -> c.col
    FROM e
    CROSS JOIN LATERAL (
        SELECT u.col, u.ord FROM unnest(e.changed) WITH ORDINALITY AS u(col, ord)
        WHERE e.operation = 'UPDATE'
        UNION ALL
        SELECT k, coalesce(a.attnum, 32767)
        FROM jsonb_object_keys(coalesce(e.after, e.before)) AS k
        LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(e.entity_type) AND a.attname = k AND NOT a.attisdropped
        WHERE e.operation IN ('INSERT', 'DELETE') AND e.changed IS NULL
    ) c
    ORDER BY c.ord, c.col;
    IF audit_trail._log_reads_all() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_ACCESSED', jsonb_build_object('function', 'diff', 'event_id', event_id));
    END IF;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.row_as_of(target regclass, entity_id text, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    excluded text[];
    redacted text[];
    state jsonb;
    ev record;
    live jsonb;
    col text;
    current_key text;
    key_type text;
    row_alias text;
    life audit_trail.events[];
BEGIN
    IF target IS NULL OR entity_id IS NULL OR at IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT r.keys, r.excluded, r.redacted INTO keys, excluded, redacted FROM audit_trail._row_settings(target) r;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'table % has no key: its rows cannot be told apart', target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give key_columns to audit_trail.enable().';
    END IF;

    -- A one-column key the trail shows as it is is compared as its type.
    SELECT format_type(a.atttypid, a.atttypmod) INTO key_type
    FROM pg_attribute a
    WHERE cardinality(keys) = 1 AND a.attrelid = target AND a.attname = keys[1] AND NOT a.attisdropped
      AND NOT audit_trail._contains_bytea(a.atttypid) AND NOT keys[1] = ANY (redacted);

    -- The row's life across key changes, and its key now: that of its
    -- newest event (the key given, if it has none).
    -- Read once: its newest event names the key now, its events after `at`
    -- are what is undone below.
    life := ARRAY(SELECT h FROM audit_trail._history(target, entity_id, at) h ORDER BY h.id DESC);
    current_key := coalesce(life[1].entity_id, audit_trail._canonical_key(target, entity_id));

    -- The live row, rendered as the trail renders it; a one-column key
    -- compared as its type (canonical text is the type's input too).
    -- The row as a whole through an alias no column has: a column named
    -- like the alias would be taken instead of the row.
    row_alias := 'audit_trail_row';
    WHILE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = target AND a.attname = row_alias) LOOP
        row_alias := row_alias || '_';
    END LOOP;
    -- A life that ended in a DELETE has no live row (the row now in the
    -- table under that key, if any, is another one).
    IF life[1].operation IS DISTINCT FROM 'DELETE' THEN
    EXECUTE format('SELECT to_jsonb(%I) FROM %s %I WHERE %s', row_alias, target, row_alias,
                   CASE WHEN cardinality(keys) = 1 AND key_type IS NOT NULL
                        THEN format('%I = $1::%s', keys[1], key_type)
                        WHEN cardinality(keys) = 1
                        THEN format('%I::text = $1', keys[1])
                        ELSE format('jsonb_build_array(%s) = $1::jsonb',
                                    (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) k)) END)
        INTO live USING current_key;
    END IF;
    IF live IS NOT NULL THEN
        FOREACH col IN ARRAY excluded LOOP
            live := live - col;
        END LOOP;
        FOREACH col IN ARRAY redacted LOOP
            live := jsonb_set(live, ARRAY[col], '"[REDACTED]"');
        END LOOP;
        FOR col IN
            SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
              AND audit_trail._contains_bytea(a.atttypid) AND live ? a.attname AND live -> a.attname <> 'null'
        LOOP
            live := jsonb_set(live, ARRAY[col], '"[BINARY DATA]"');
        END LOOP;
        live := audit_trail._redact_row_json(target, live);
    END IF;
    state := live;

    FOR ev IN
        SELECT h.operation, h.before, h.after
        FROM unnest(life) h
        WHERE h.occurred_at > at AND h.operation IN ('INSERT', 'UPDATE', 'DELETE')
        ORDER BY h.id DESC
    LOOP
        state := CASE ev.operation
                     WHEN 'INSERT' THEN NULL                 -- it did not exist before
                     WHEN 'DELETE' THEN ev.before             -- it was as deleted
                     ELSE coalesce(state, ev.after) || ev.before
                 END;
    END LOOP;
    IF audit_trail._log_reads_all() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_ACCESSED',
            jsonb_build_object('function', 'row_as_of', 'target', target::text, 'entity_id', entity_id, 'at', at));
    END IF;
    RETURN state;
END
$$;

-- new
CREATE  FUNCTION "_verify_events"(
	"seal_id" bigint,
	"since" TEXT,
	"upto" TEXT,
	"tree_root" bytea,
	"series_from" timestamp with time zone DEFAULT NULL,
	"series_until" timestamp with time zone DEFAULT NULL
) RETURNS TABLE (
	"event_id" bigint,
	"problem" TEXT
)
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'verify_events_wrapper';

-- changed
CREATE OR REPLACE FUNCTION audit_trail.check() RETURNS TABLE(table_name regclass, problem text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c audit_trail.config;
    t regclass;
    p text;
    bad record;
BEGIN
    FOR c IN SELECT * FROM audit_trail.config ORDER BY relid::oid LOOP
        table_name := c.relid;
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = c.relid) THEN
            problem := 'stale setting row: the table no longer exists';
            RETURN NEXT;
            CONTINUE;
        END IF;
        p := audit_trail._unsafe_shape(c.relid, c.relid);
        IF p IS NOT NULL THEN
            problem := p;
            RETURN NEXT;
        END IF;
        IF c.columns IS DISTINCT FROM audit_trail._columns_by_attnum(c.relid) THEN
            problem := 'stale setting row: its column names are not the table''s';
            RETURN NEXT;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM audit_trail.table_names n
                       WHERE n.relid = c.relid AND n.valid_until IS NULL
                         AND n.entity_type = (SELECT format('%I.%I', s.nspname, k.relname)
                                              FROM pg_class k JOIN pg_namespace s ON s.oid = k.relnamespace
                                              WHERE k.oid = c.relid)) THEN
            problem := 'stale name: history() does not know the table''s current name';
            RETURN NEXT;
        END IF;
        -- Named actions (API §11) that can no longer match: their operation
        -- is no longer recorded, every column of changed_any is dropped, or
        -- a column of after_matches is dropped or redacted now (rules test
        -- values as the trail renders them). Their events keep the plain
        -- action.
        FOR bad IN
            SELECT r.rule ->> 'action' AS action, r.rule ->> 'operation' AS operation,
                   NOT (r.rule ->> 'operation') = ANY (c.actions) AS unrecorded,
                   (SELECT string_agg(a.col, ', ' ORDER BY a.col)
                    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.rule -> 'changed_any') = 'array'
                                                        THEN r.rule -> 'changed_any' ELSE '[]' END) AS a(col)
                    HAVING bool_and(array_position(now_cols, a.col) IS NULL)) AS changed_gone,
                   (SELECT string_agg(m.col, ', ' ORDER BY m.col)
                    FROM jsonb_object_keys(CASE WHEN jsonb_typeof(r.rule -> 'after_matches') = 'object'
                                                THEN r.rule -> 'after_matches' ELSE '{}' END) AS m(col)
                    WHERE array_position(now_cols, m.col) IS NULL) AS matches_gone,
                   (SELECT string_agg(m.col, ', ' ORDER BY m.col)
                    FROM jsonb_object_keys(CASE WHEN jsonb_typeof(r.rule -> 'after_matches') = 'object'
                                                THEN r.rule -> 'after_matches' ELSE '{}' END) AS m(col)
                    WHERE m.col = ANY (secret)) AS matches_redacted
            FROM jsonb_array_elements(c.named_actions) WITH ORDINALITY AS r(rule, n),
                 LATERAL (SELECT audit_trail._columns_by_attnum(c.relid) AS now_cols,
                                 audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns) AS secret) AS k
            ORDER BY r.n
        LOOP
            IF bad.unrecorded THEN
                problem := format('named action %s is for %s, which the table does not record: it never matches',
                                  quote_literal(bad.action), bad.operation);
                RETURN NEXT;
            END IF;
            IF coalesce(bad.changed_gone, bad.matches_gone) IS NOT NULL THEN
                problem := format('named action %s tests columns the table no longer has (%s): it never matches',
                                  quote_literal(bad.action), concat_ws(', ', bad.changed_gone, bad.matches_gone));
                RETURN NEXT;
            END IF;
            IF bad.matches_redacted IS NOT NULL THEN
                problem := format('named action %s tests the value of redacted columns (%s): it never matches',
                                  quote_literal(bad.action), bad.matches_redacted);
                RETURN NEXT;
            END IF;
        END LOOP;
        FOR t IN SELECT r FROM audit_trail._relation_tree(c.relid) r ORDER BY r::oid LOOP
            table_name := t;
            FOR problem IN SELECT * FROM audit_trail._capture_problems(t, c.actions) LOOP
                RETURN NEXT;
            END LOOP;
        END LOOP;
    END LOOP;

    -- The log's guards: the row guard on events (cloned onto every
    -- partition) and a statement guard on events and each partition.
    FOR t IN SELECT r FROM audit_trail._relation_tree('audit_trail.events') r ORDER BY r::oid LOOP
        table_name := t;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t AND g.tgfoid = 'audit_trail._guard()'::regprocedure
                         AND g.tgtype::int & 1 = 0) THEN
            problem := 'no append-only guard for UPDATE, DELETE and TRUNCATE';
            RETURN NEXT;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t AND g.tgfoid = 'audit_trail._guard()'::regprocedure
                         AND g.tgtype::int & 1 = 1) THEN
            problem := 'no append-only row guard';
            RETURN NEXT;
        END IF;
        FOR bad IN SELECT x.tgname, x.tgenabled FROM pg_trigger x
                 WHERE x.tgrelid = t AND x.tgfoid = 'audit_trail._guard()'::regprocedure AND x.tgenabled <> 'A'
                 ORDER BY x.tgname LOOP
            problem := format('append-only guard %I is %s, not ENABLE ALWAYS', bad.tgname, audit_trail._trigger_state_name(bad.tgenabled));
            RETURN NEXT;
        END LOOP;
    END LOOP;

    table_name := NULL;
    FOR bad IN
        SELECT e.evtname, e.evtenabled FROM pg_event_trigger e
        JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid AND d.deptype = 'e'
        JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'pg_audit_trail'
        WHERE e.evtenabled <> 'A'
        ORDER BY e.evtname
    LOOP
        problem := format('event trigger %I is %s, not ENABLE ALWAYS: DDL is not followed',
                          bad.evtname, audit_trail._trigger_state_name(bad.evtenabled));
        RETURN NEXT;
    END LOOP;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._sync_columns(rel regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config;
    now_cols text[];
    i int;
    old_name text;
    new_name text;
BEGIN
    SELECT * INTO cfg FROM audit_trail.config WHERE relid = rel FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    now_cols := audit_trail._columns_by_attnum(cfg.relid);
    IF now_cols IS NOT DISTINCT FROM cfg.columns THEN
        RETURN;
    END IF;
    -- Both read cfg.columns as it was: before it is brought up to date.
    cfg.reveal := ARRAY(SELECT c.name FROM audit_trail._columns_then(cfg.relid, cfg.columns) c
                        WHERE c.was = ANY (cfg.reveal) ORDER BY c.attnum);
    cfg.redact := audit_trail._redacted(cfg.relid, cfg.redact, cfg.redact_patterns, cfg.reveal, cfg.columns);
    FOR i IN 1 .. least(cardinality(now_cols), cardinality(cfg.columns)) LOOP
        old_name := cfg.columns[i];
        new_name := now_cols[i];
        IF old_name IS NOT NULL AND new_name IS NOT NULL AND old_name <> new_name
           AND array_position(now_cols, old_name) IS NULL THEN
            cfg.exclude := array_replace(cfg.exclude, old_name, new_name);
            cfg.key_columns := array_replace(cfg.key_columns, old_name, new_name);
            IF cfg.label_column = old_name THEN
                cfg.label_column := new_name;
            END IF;
            -- API §11: the tenant column, the columns always included and
            -- the named actions' columns follow too.
            IF cfg.tenant_column = old_name THEN
                cfg.tenant_column := new_name;
            END IF;
            cfg.always_include := array_replace(cfg.always_include, old_name, new_name);
            cfg.named_actions := audit_trail._rename_in_rules(cfg.named_actions, old_name, new_name);
        END IF;
    END LOOP;
    -- A dropped tenant column leaves the tenant to the context again; a
    -- dropped column is no longer always included.
    IF array_position(now_cols, cfg.tenant_column) IS NULL THEN
        cfg.tenant_column := NULL;
    END IF;
    cfg.always_include := ARRAY(SELECT a FROM unnest(cfg.always_include) WITH ORDINALITY AS t(a, o)
                                WHERE array_position(now_cols, a) IS NOT NULL ORDER BY o);
    UPDATE audit_trail.config
    SET redact = cfg.redact, reveal = cfg.reveal, exclude = cfg.exclude, key_columns = cfg.key_columns,
        label_column = cfg.label_column, columns = now_cols,
        tenant_column = cfg.tenant_column, always_include = cfg.always_include, named_actions = cfg.named_actions
    WHERE relid = cfg.relid;
    PERFORM audit_trail._invalidate(cfg.relid);
END
$$;

-- new
CREATE FUNCTION audit_trail._archive_inherit(archive regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = archive AND inhparent = 'audit_trail._archived'::regclass) THEN
        RETURN;
    END IF;
    FOR c IN
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS typ
        FROM pg_attribute a
        WHERE a.attrelid = 'audit_trail._archived'::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND NOT EXISTS (SELECT 1 FROM pg_attribute b
                          WHERE b.attrelid = archive AND b.attname = a.attname AND NOT b.attisdropped)
        ORDER BY a.attnum
    LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', archive, c.attname, c.typ);
    END LOOP;
    EXECUTE format('ALTER TABLE %s INHERIT audit_trail._archived', archive);
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
            -- What it holds is recorded first, so that verify() tells
            -- retention from tampering (sql/seal.sql).
            EXECUTE format('SELECT count(*), coalesce(range_agg(int8range(id, id, ''[]'')), ''{}'') FROM %s', p.partition)
                INTO n, ids;
            INSERT INTO audit_trail.removed_partitions (partition, range_start, range_end, ids, events, action)
            VALUES (p.partition::text, p.range_start, p.range_end, ids, n, CASE WHEN archive THEN 'archived' ELSE 'dropped' END);
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
            SELECT a.partition, a.range_end FROM audit_trail.archived_partitions a
            WHERE a.range_end <= now() - keep_archived
            ORDER BY a.range_start
        LOOP
            EXECUTE format('SELECT count(*) FROM %s', p.partition) INTO n;
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
CREATE OR REPLACE FUNCTION audit_trail.maintain() RETURNS TABLE(action text, partition text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    done jsonb := '[]';
    keep interval := audit_trail._interval_setting('audit_trail.retention');
    archive boolean := audit_trail._setting('audit_trail.archive')::boolean;
    problems int := 0;
    sealed jsonb;
BEGIN
    FOR r IN
        SELECT p.action, p.partition, NULL::bigint AS rows FROM audit_trail._premake() p
        UNION ALL
        SELECT * FROM audit_trail._apply_retention(keep, archive)
    LOOP
        action := r.action; partition := r.partition;
        RETURN NEXT;
        done := done || jsonb_strip_nulls(jsonb_build_object('action', r.action, 'partition', r.partition, 'rows', r.rows));
    END LOOP;
    FOR r IN SELECT c.table_name, c.problem FROM audit_trail.check() c LOOP
        PERFORM audit_trail._write_system_event('CAPTURE_PROBLEM',
            coalesce(audit_trail._entity_name(r.table_name), 'audit_trail.events'),
            jsonb_build_object('table', r.table_name::text, 'problem', r.problem));
        problems := problems + 1;
    END LOOP;
    -- Seal what was committed until now (this transaction's own events,
    -- the MAINTENANCE one below included, go into the next seal).
    FOR r IN SELECT * FROM audit_trail.seal() LOOP
        sealed := jsonb_build_object('seal_id', r.seal_id, 'events', r.events, 'root', r.root);
    END LOOP;
    PERFORM audit_trail._write_system_event('MAINTENANCE', 'audit_trail.events',
        jsonb_build_object('done', done, 'sealed', sealed, 'partition_interval', audit_trail._setting('audit_trail.partition_interval'),
                           'premake', audit_trail._setting('audit_trail.premake')::int,
                           'retention', audit_trail._setting('audit_trail.retention'), 'archive', archive,
                           'capture_problems', problems));
END
$$;

-- new
CREATE  FUNCTION "_write_system_event_about"(
	"action" TEXT,
	"entity_type" TEXT,
	"entity_id" TEXT,
	"details" jsonb
) RETURNS bigint
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'write_system_event_about_wrapper';

-- new
CREATE FUNCTION audit_trail.add_alert(
    name text,
    actions text[],
    entity_types text[] DEFAULT NULL,
    changed_any text[] DEFAULT NULL,
    threshold integer DEFAULT 1,
    within interval DEFAULT '1 minute',
    per text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- The rule as recorded is the same whatever the session's settings.
SET IntervalStyle = 'iso_8601'
AS $$
DECLARE
    acts text[];
    rule jsonb;
    replaced boolean;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'pg_audit_trail: an alert needs a name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF actions IS NULL OR cardinality(actions) = 0 OR array_position(actions, NULL) IS NOT NULL
       OR EXISTS (SELECT FROM unnest(actions) a WHERE btrim(a) = '') THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%" needs actions, each a name', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Action names (LOGIN_FAILED) or row operations (INSERT, UPDATE, DELETE, TRUNCATE), in any case.';
    END IF;
    IF cardinality(entity_types) = 0 OR array_position(entity_types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": entity_types is NULL (any) or a list of names', name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(changed_any) = 0 OR array_position(changed_any, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": changed_any is NULL (any change) or a list of column names', name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    acts := ARRAY(SELECT DISTINCT upper(btrim(a)) FROM unnest(actions) a ORDER BY 1);
    IF 'ALERT' = ANY (acts) THEN
        -- Its own firings would match it: it would fire at every run.
        RAISE EXCEPTION 'pg_audit_trail: alert "%" cannot match ALERT events', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Alerts are announced on audit_trail.alert_channel and returned by check_alerts().';
    END IF;
    IF changed_any IS NOT NULL AND NOT 'UPDATE' = ANY (acts) THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": changed_any applies to UPDATE events only', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add UPDATE to actions.';
    END IF;
    IF threshold IS NULL OR threshold < 1 THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": threshold must be at least 1, not %', name, coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF within IS NULL OR within <= interval '0' THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": within must be a positive interval, not %', name, coalesce(within::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF per IS NOT NULL AND per NOT IN ('actor', 'client_ip', 'tenant', 'entity', 'transaction') THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": per "%" is not one of actor, client_ip, tenant, entity, transaction', name, per
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'NULL counts all matching events together.';
    END IF;
    -- First rule: the alerts start reading here (no backlog).
    INSERT INTO audit_trail.alert_state (position) VALUES (audit_trail.feed_position())
    ON CONFLICT (one) DO NOTHING;
    replaced := EXISTS (SELECT FROM audit_trail.alert_rules r WHERE r.name = add_alert.name);
    -- A replaced rule starts over: its window held events of the old rule.
    DELETE FROM audit_trail.alert_rules r WHERE r.name = add_alert.name;
    DELETE FROM audit_trail.alert_window w WHERE w.rule = add_alert.name;
    INSERT INTO audit_trail.alert_rules (name, actions, entity_types, changed_any, threshold, within, per)
    VALUES (add_alert.name, acts, add_alert.entity_types, add_alert.changed_any, add_alert.threshold, add_alert.within, add_alert.per);
    rule := jsonb_build_object('actions', acts, 'entity_types', entity_types, 'changed_any', changed_any,
                               'threshold', threshold, 'within', within::text, 'per', per);
    PERFORM audit_trail._write_system_event_about('AUDIT_CONFIG_CHANGED', 'audit_trail.alert', name,
        jsonb_build_object('alert', name, 'change', CASE WHEN replaced THEN 'replaced' ELSE 'added' END, 'rule', rule));
END
$$;
COMMENT ON FUNCTION audit_trail.add_alert(text, text[], text[], text[], integer, interval, text) IS
  'Adds (or replaces) an alert rule that check_alerts() applies.';

-- new
CREATE FUNCTION audit_trail.drop_alert(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM audit_trail.alert_rules r WHERE r.name = drop_alert.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pg_audit_trail: there is no alert "%"', name
            USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM audit_trail.alert_window w WHERE w.rule = drop_alert.name;
    PERFORM audit_trail._write_system_event_about('AUDIT_CONFIG_CHANGED', 'audit_trail.alert', name,
        jsonb_build_object('alert', name, 'change', 'dropped'));
END
$$;
COMMENT ON FUNCTION audit_trail.drop_alert(text) IS 'Drops an alert rule.';

-- new
CREATE FUNCTION audit_trail._alert_horizon() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_prepared_xacts) THEN '-infinity'::timestamptz
        ELSE least(clock_timestamp(),
                   (SELECT min(a.xact_start) FROM pg_stat_activity a
                    WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()))
        END
$$;

-- new
CREATE FUNCTION audit_trail._alert_key(per text, e audit_trail.events) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE per
        WHEN 'actor' THEN e.actor
        WHEN 'client_ip' THEN coalesce(host(e.client_ip), '')
        WHEN 'tenant' THEN coalesce(e.tenant, '')
        -- A JSON pair: ('a b', 'c') and ('a', 'b c') stay apart.
        WHEN 'entity' THEN jsonb_build_array(e.entity_type, e.entity_id)::text
        WHEN 'transaction' THEN e.txid::text
        ELSE '' END
$$;

-- new
CREATE FUNCTION audit_trail.check_alerts()
RETURNS TABLE(alert text, key text, events bigint, first_id bigint, last_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- An ALERT event's details read the same whatever the session's settings.
SET IntervalStyle = 'iso_8601'
SET TimeZone = 'UTC'
AS $$
DECLARE
    st record;
    upto text;
    g record;
    ts timestamptz[];
    ids bigint[];
    i int;
    j int;
    n int;
    fired_id bigint;
    channel text := audit_trail._setting('audit_trail.alert_channel');
    horizon timestamptz;
BEGIN
    -- One run at a time: a second one waits here, then reads from where the
    -- first stopped (READ COMMITTED re-reads the locked row).
    SELECT s.position INTO st FROM audit_trail.alert_state s WHERE s.one FOR UPDATE;
    IF NOT FOUND THEN
        -- No rule was ever added here, or the database was restored (the
        -- position is not dumped): from now on.
        IF EXISTS (SELECT FROM audit_trail.alert_rules) THEN
            INSERT INTO audit_trail.alert_state (position) VALUES (audit_trail.feed_position())
            ON CONFLICT (one) DO NOTHING;
        END IF;
        RETURN;
    END IF;
    upto := audit_trail.feed_position();
    horizon := audit_trail._alert_horizon();
    IF split_part(st.position, '/', -1) IS DISTINCT FROM split_part(upto, '/', -1) THEN
        -- A position of another cluster (restored, copied): what was
        -- restored was checked there; go on from now.
        RAISE NOTICE 'pg_audit_trail: check_alerts() starts again from now: its position was taken in another database';
        st.position := upto;
    END IF;
    -- The new matching events, by rule and key, with what the window still
    -- holds; then each group scanned in time order.
    FOR g IN
        WITH new AS (
            SELECT r.name AS rule, audit_trail._alert_key(r.per, e) AS key, e.id, e.occurred_at
            FROM audit_trail.feed(st.position, upto) e
            JOIN audit_trail.alert_rules r
              ON (upper(e.action) = ANY (r.actions) OR upper(e.operation) = ANY (r.actions))
             AND (r.entity_types IS NULL OR e.entity_type = ANY (r.entity_types))
             AND (r.changed_any IS NULL OR (e.operation = 'UPDATE' AND e.changed && r.changed_any))
        ), held AS (
            DELETE FROM audit_trail.alert_window w
            USING (SELECT DISTINCT new.rule, new.key FROM new) k
            WHERE w.rule = k.rule AND w.key = k.key
            RETURNING w.rule, w.key, w.event_id AS id, w.occurred_at
        )
        SELECT a.rule, a.key, r.threshold, r.within,
               array_agg(a.occurred_at ORDER BY a.occurred_at, a.id) AS ts,
               array_agg(a.id ORDER BY a.occurred_at, a.id) AS ids
        FROM (SELECT * FROM new UNION SELECT * FROM held) a
        JOIN audit_trail.alert_rules r ON r.name = a.rule
        GROUP BY a.rule, a.key, r.threshold, r.within
        ORDER BY a.rule, a.key
    LOOP
        ts := g.ts;
        ids := g.ids;
        n := cardinality(ids);
        i := 1;
        FOR j IN 1 .. n LOOP
            WHILE ts[j] - ts[i] > g.within LOOP
                i := i + 1;
            END LOOP;
            IF j - i + 1 >= g.threshold THEN
                alert := g.rule;
                key := g.key;
                events := j - i + 1;
                first_id := (SELECT min(x) FROM unnest(ids[i:j]) x);
                last_id := (SELECT max(x) FROM unnest(ids[i:j]) x);
                fired_id := audit_trail._write_system_event_about('ALERT', 'audit_trail.alert', g.rule,
                    jsonb_build_object('rule', g.rule, 'key', g.key, 'count', events, 'window', g.within::text,
                                       'first_id', first_id, 'last_id', last_id,
                                       'first_at', ts[i], 'last_at', ts[j]));
                IF channel IS NOT NULL AND channel <> '' THEN
                    -- No key, actor or entity here: NOTIFY has no access
                    -- control. The event says the rest to whoever may read it.
                    PERFORM pg_notify(channel, jsonb_build_object('alert', g.rule, 'event_id', fired_id, 'events', events)::text);
                END IF;
                RETURN NEXT;
                i := j + 1;
            END IF;
        END LOOP;
        -- What may still be part of a later firing.
        IF i <= n THEN
            INSERT INTO audit_trail.alert_window (rule, key, event_id, occurred_at)
            SELECT g.rule, g.key, ids[k], ts[k] FROM generate_series(i, n) k
            WHERE ts[k] >= least(ts[n], horizon) - g.within;
        END IF;
    END LOOP;
    -- Events no window can reach any more: older than the window before
    -- the horizon (now, or the start of the oldest open transaction).
    DELETE FROM audit_trail.alert_window w
    USING audit_trail.alert_rules r
    WHERE w.rule = r.name AND w.occurred_at < horizon - r.within;
    UPDATE audit_trail.alert_state s SET position = upto, checked_at = clock_timestamp() WHERE s.one;
END
$$;
COMMENT ON FUNCTION audit_trail.check_alerts() IS
  'Applies the alert rules to the events committed since the last run; records and returns each firing.';

-- new
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

-- new
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

-- new
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

-- new
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

-- new
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

-- new
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

-- new
CREATE  FUNCTION "drop_named_action"(
	"target" regclass,
	"as_action" TEXT
) RETURNS void
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'drop_named_action_wrapper';

-- new
CREATE  FUNCTION "enable"(
	"target" regclass,
	"redact" TEXT[] DEFAULT '{}',
	"exclude" TEXT[] DEFAULT '{}',
	"key_columns" TEXT[] DEFAULT NULL,
	"label_column" TEXT DEFAULT NULL,
	"actions" TEXT[] DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}',
	"reveal" TEXT[] DEFAULT '{}',
	"tenant_column" TEXT DEFAULT NULL,
	"always_include" TEXT[] DEFAULT '{}'
) RETURNS void
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'enable_shaped_wrapper';

-- new
CREATE  FUNCTION "name_action"(
	"target" regclass,
	"as_action" TEXT,
	"operation" TEXT,
	"changed_any" TEXT[] DEFAULT NULL,
	"after_matches" jsonb DEFAULT NULL
) RETURNS void
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', 'name_action_wrapper';

-- Views.
CREATE VIEW audit_trail.archived_events WITH (security_barrier = true) AS
SELECT a.id, a.occurred_at, a.txid, a.action, a.entity_type, a.entity_id, a.entity_label, a.before, a.after,
       a.changed, a.details, a.actor, a.db_user, a.client_ip, a.user_agent, a.service, a.tenant, a.request_id,
       a.statement, a.operation
FROM audit_trail._archived a
WHERE audit_trail._may_read_events();
COMMENT ON VIEW audit_trail.archived_events IS
  'Events of archived partitions (schema audit_trail_archive), for whoever may read audit_trail.events.';
CREATE OR REPLACE VIEW audit_trail.tracked AS
SELECT c.relid AS table_name,
       audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns) AS redact,
       c.exclude,
       coalesce(c.key_columns, audit_trail._key_columns(c.relid)) AS key_columns,
       c.label_column,
       c.actions,
       c.enabled_at,
       c.enabled_by,
       audit_trail._capture_ok(c.relid) AS capture_ok,
       c.reveal,
       c.tenant_column,
       c.always_include,
       c.named_actions
FROM audit_trail.config c;
COMMENT ON VIEW audit_trail.tracked IS 'Audited tables and their effective settings.';
CREATE VIEW audit_trail.alerts AS
SELECT r.name, r.actions, r.entity_types, r.changed_any, r.threshold, r.within, r.per,
       r.created_at, r.created_by,
       (SELECT count(*) FROM audit_trail.alert_window w WHERE w.rule = r.name) AS pending_events
FROM audit_trail.alert_rules r;
COMMENT ON VIEW audit_trail.alerts IS
  'The alert rules check_alerts() applies, and how many matching events each holds in its window.';
CREATE VIEW audit_trail.seals WITH (security_invoker = true) AS
SELECT c.seal_id, c.sealed_at, c.events, audit_trail._hex(c.root) AS root,
       audit_trail._hex(c.previous_root) AS previous_root
FROM audit_trail.seal_chain c;
COMMENT ON VIEW audit_trail.seals IS
  'One row per seal of the trail: how many events it covers, its root (chained to the previous seal''s), hex.';

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
-- arguments or read as the caller. _seal_events (writes seals) and
-- _checkpoint_note (signs with the server's key whatever it is given) are
-- not among them: seal() and checkpoint() are the owner's.
GRANT EXECUTE ON FUNCTION audit_trail._may_seal(), audit_trail._may_verify(),
                          audit_trail._event_leaf(bigint, timestamptz, bigint, text[]),
                          audit_trail._event_bytes(bigint, timestamptz, bigint, text[]),
                          audit_trail._seal_root(bytea, bigint, timestamptz, bigint, bytea, text),
                          audit_trail._verify_events(bigint, text, text, bytea, timestamptz, timestamptz),
                          audit_trail._checkpoint_read(text, text),
                          audit_trail._hex(bytea)
   TO PUBLIC;
-- The view checks the caller's SELECT on audit_trail.seal_chain (security_invoker).
GRANT SELECT ON audit_trail.seals TO PUBLIC;

-- == Reading (issue 15): the privileges and comments of the old search,
-- count and export, on the new ones (nothing to do where they were the
-- defaults: EXECUTE for PUBLIC, no comment).
DO $$
DECLARE
    r record;
    fn regprocedure;
    g record;
BEGIN
    FOR r IN
        SELECT x.name, x.acl::aclitem[] AS acl, x.comment
        FROM jsonb_to_recordset(current_setting('pg_audit_trail_update.readers')::jsonb) AS x(name text, acl text, comment text)
    LOOP
        fn := (SELECT p.oid FROM pg_proc p
               WHERE p.pronamespace = 'audit_trail'::regnamespace AND p.proname = r.name);
        IF r.acl IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
            FOR g IN SELECT * FROM aclexplode(r.acl) LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s', fn,
                               CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                               CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END IF;
        IF r.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON FUNCTION %s IS %L', fn, r.comment);
        END IF;
    END LOOP;
END
$$;
