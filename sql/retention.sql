-- Retention, maintenance and the partitions view.

-- Interval settings: '' or '0' mean "keep everything" (NULL here).
CREATE FUNCTION audit_trail._interval_setting(name text) RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v text := btrim(coalesce(audit_trail._setting(name), ''));
BEGIN
    IF v IN ('', '0') THEN
        RETURN NULL;
    END IF;
    RETURN v::interval;
END
$$;

-- Makes an archived partition a child of audit_trail._archived, so that
-- audit_trail.archived_events and search(archived => true) read it. An
-- archive of an older version lacks the columns the log gained since (0.3.0's
-- have no operation): they are added first, NULL in its rows (a column
-- without a default is a catalog change, not a rewrite).
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

-- Records, before retention removes it, what a partition or an archive
-- holds (the ids as runs), so that verify() tells retention from tampering
-- (sql/seal.sql); returns how many events.
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

-- The work of apply_retention, unrecorded: maintain() and apply_retention()
-- each record what it did in their own event.
--
-- Partitions are judged by their bounds: one expires when its whole range is
-- older than now() - keep. Detaching or dropping a partition is a catalog
-- change, not a rewrite: writers wait only for the moment it takes.
CREATE FUNCTION audit_trail._apply_retention(keep interval, archive boolean)
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

CREATE FUNCTION audit_trail.apply_retention(keep interval DEFAULT NULL, archive boolean DEFAULT NULL)
RETURNS TABLE(action text, partition text, rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    done jsonb := '[]';
BEGIN
    keep := coalesce(keep, audit_trail._interval_setting('audit_trail.retention'));
    archive := coalesce(archive, audit_trail._setting('audit_trail.archive')::boolean);
    FOR r IN SELECT * FROM audit_trail._apply_retention(keep, archive) LOOP
        action := r.action; partition := r.partition; rows := r.rows;
        RETURN NEXT;
        done := done || jsonb_build_object('action', r.action, 'partition', r.partition, 'rows', r.rows);
    END LOOP;
    -- Removing events is itself an event.
    IF jsonb_array_length(done) > 0 THEN
        PERFORM audit_trail._write_event('RETENTION_APPLIED', 'audit_trail.events', NULL,
            jsonb_build_object('keep', keep, 'archive', archive, 'done', done), NULL);
    END IF;
END
$$;

-- Partitions ahead, then retention with the settings; what it did is
-- recorded as a MAINTENANCE event by System, whoever runs it. Then
-- audit_trail.check(): each thing that keeps capture from being whole is a
-- CAPTURE_PROBLEM event, so a scheduled maintain() leaves it in the trail.
CREATE FUNCTION audit_trail.maintain() RETURNS TABLE(action text, partition text)
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

CREATE VIEW audit_trail.partitions AS
SELECT b.partition, b.range_start, b.range_end, false AS archived,
       greatest(k.reltuples, 0)::bigint AS rows_estimate, pg_total_relation_size(b.partition) AS total_bytes
FROM audit_trail._partition_bounds() b JOIN pg_class k ON k.oid = b.partition
UNION ALL
SELECT 'audit_trail.events_default'::regclass, NULL, NULL, false,
       greatest(k.reltuples, 0)::bigint, pg_total_relation_size('audit_trail.events_default')
FROM pg_class k WHERE k.oid = 'audit_trail.events_default'::regclass
UNION ALL
SELECT a.partition, a.range_start, a.range_end, true,
       greatest(k.reltuples, 0)::bigint, pg_total_relation_size(a.partition)
FROM audit_trail.archived_partitions a JOIN pg_class k ON k.oid = a.partition;
COMMENT ON VIEW audit_trail.partitions IS
  'Partitions of audit_trail.events (the default one with no range) and archived ones.';
