-- pg_audit_trail 0.3.0 -> 0.4.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- One definition of the event row (export follows the log's columns); the
-- new column operation (API §9): INSERT/UPDATE/DELETE/TRUNCATE for captured
-- row events, NULL for every other event, which readers of rows use; the
-- DDL event trigger hands its commands to _after_ddl through backend memory
-- (no argument anyone could make up); tracked readable by every role again.
-- Sticky redaction (API §9): config.redact now holds every redacted column
-- (named, or matched by the patterns when enable() ran or when the column
-- appeared), decided by one function (_redacted) and followed through
-- renames; enable() gains reveal (config.reveal, tracked.reveal).
-- Events, settings and partitions are kept; tests/integration/11_upgrade.sh
-- checks that, and that the result has every object exactly as a fresh 0.4.0
-- install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.4.0'" to load this file. \quit

-- The new columns, last (as a fresh install has them): instant, no
-- rewrite. Partitions get operation with the parent; archived partitions
-- (detached) keep their old shape. config gains enable()'s reveal. With
-- DROP VIEW below, these are the commands here the DDL event triggers see,
-- so they run first, under the 0.3.0 functions.
ALTER TABLE audit_trail.events ADD COLUMN operation text;
ALTER TABLE audit_trail.config ADD COLUMN reveal text[] NOT NULL DEFAULT '{}';

-- tracked calls _effective_redact, which goes (its successor is
-- _redacted): the view is made again below, with reveal at its end.
DROP VIEW audit_trail.tracked;

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.4.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION audit_trail._after_ddl(jsonb[]);

-- removed
DROP FUNCTION audit_trail._effective_redact(regclass,text[],text[]);

-- removed
DROP FUNCTION audit_trail._enable(regclass,text[],text[],text[],text,text[],text[],oid);

-- removed
DROP FUNCTION enable(regclass,TEXT[],TEXT[],TEXT[],TEXT,TEXT[]);

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
END
$$;

-- new
CREATE FUNCTION "_redact_json_keys"(doc jsonb, patterns text[])
	RETURNS jsonb
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'redact_json_keys_wrapper';

-- new
CREATE  FUNCTION "_backfill_operation"() RETURNS bigint
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'backfill_operation_wrapper';

-- new
CREATE  FUNCTION "_canonical_text"(
	"value" anyelement
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'canonical_text_wrapper';

-- new
CREATE  FUNCTION "_ddl_described"() RETURNS jsonb[]
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'ddl_described_wrapper';

-- new
CREATE  FUNCTION "_holds_json"(
	"typ" oid
) RETURNS bool
STRICT STABLE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'holds_json_sql_wrapper';

-- new
CREATE  FUNCTION "_matches_redact_patterns"(
	"name" TEXT,
	"patterns" TEXT[]
) RETURNS bool
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'matches_redact_patterns_wrapper';

-- new
CREATE FUNCTION audit_trail._columns_then(target regclass, columns text[])
RETURNS TABLE(attnum int2, name text, was text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH live AS (
        SELECT a.attnum, a.attname::text AS name
        FROM pg_attribute a
        WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped)
    SELECT l.attnum, l.name,
           CASE WHEN l.name = ANY (columns) THEN l.name
                WHEN NOT EXISTS (SELECT 1 FROM live o WHERE o.name = columns[l.attnum]) THEN columns[l.attnum]
           END
    FROM live l
    ORDER BY l.attnum;
$$;

-- new
CREATE FUNCTION audit_trail._redacted(target regclass, redact text[], patterns text[], reveal text[], columns text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(c.name ORDER BY c.attnum), '{}')
    FROM audit_trail._columns_then(target, columns) c
    WHERE CASE WHEN c.was IS NOT NULL THEN coalesce(c.was = ANY (redact), false)
                    -- A rename only ever adds redaction: a column renamed to
                    -- a name the stored patterns match is redacted from then
                    -- on (unless revealed), like a column added under it.
                    OR (c.name IS DISTINCT FROM c.was AND NOT coalesce(c.name = ANY (reveal), false)
                        AND coalesce(audit_trail._matches_redact_patterns(c.name, patterns), false))
               ELSE coalesce(c.name = ANY (redact), false)
                    OR (NOT coalesce(c.name = ANY (reveal), false)
                        AND coalesce(audit_trail._matches_redact_patterns(c.name, patterns), false))
          END;
$$;

-- new
CREATE FUNCTION audit_trail._type_uses(typ oid, used oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE t(oid) AS (
        SELECT typ
        UNION
        SELECT x.oid FROM t JOIN pg_type p ON p.oid = t.oid
        CROSS JOIN LATERAL (
            SELECT p.typbasetype WHERE p.typbasetype <> 0
            UNION ALL SELECT p.typelem WHERE p.typelem <> 0 AND p.typlen = -1
            UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = p.oid
            UNION ALL SELECT m.rngsubtype FROM pg_range m WHERE m.rngmultitypid = p.oid
            UNION ALL SELECT a.atttypid FROM pg_attribute a
                      WHERE a.attrelid = p.typrelid AND p.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped
        ) x(oid)
    )
    SELECT EXISTS (SELECT 1 FROM t WHERE oid = used);
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._contains_bytea(typ oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT audit_trail._type_uses(typ, 'bytea'::regtype) $$;

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
        'actions', c.actions);
$$;

-- new
CREATE FUNCTION audit_trail._enable(
    target regclass, redact text[], exclude text[], key_columns text[],
    label_column text, actions text[], reveal text[], patterns text[], caller oid
) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    cols text[];
    col text;
    acts text[];
    act text;
    why text;
    by_pattern text[];
    redacted text[];
    revealed text[];
    cfg audit_trail.config;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT relkind INTO kind FROM pg_class WHERE oid = target;
    IF target = 'audit_trail.events'::regclass
       OR target IN (SELECT relid FROM pg_partition_tree('audit_trail.events'))
       OR target = 'audit_trail.config'::regclass THEN
        RAISE EXCEPTION 'cannot audit the audit trail itself (%)', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table or partitioned table', target
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    PERFORM audit_trail._check_owner(target, caller, 'enable');
    -- First, so that no partition is attached or detached by another session
    -- between listing the partitions and making their triggers.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);

    -- Shapes whose changes could escape capture (API §8): a temporary
    -- table, a partition (its parent's statements would not be captured; a
    -- partitioned table is audited whole), plain inheritance either way.
    IF (SELECT relispartition FROM pg_class WHERE oid = target) THEN
        RAISE EXCEPTION 'table % is a partition of %: audit the partitioned table instead', target,
                (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = target)
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Changes made through the partitioned table would not be captured by a partition''s settings.',
                  HINT = 'Settings of a partitioned table apply to all its partitions.';
    END IF;
    why := audit_trail._unsafe_shape(target, target);
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail cannot capture every change to %: %', target, why
            USING ERRCODE = 'feature_not_supported';
    END IF;

    cols := audit_trail._columns(target);
    FOREACH col IN ARRAY coalesce(redact, '{}') || coalesce(exclude, '{}')
                         || coalesce(key_columns, '{}')
                         || CASE WHEN label_column IS NULL THEN '{}'::text[] ELSE ARRAY[label_column] END
                         || coalesce(reveal, '{}') LOOP
        IF col IS NULL OR NOT col = ANY (cols) THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', col, target
                USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;
    -- An excluded column is never recorded, in entity_label neither (API §9).
    IF label_column = ANY (coalesce(exclude, '{}')) THEN
        RAISE EXCEPTION 'label_column "%" of table % is excluded: an excluded column is never recorded', label_column, target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Choose another label_column, or stop excluding it.';
    END IF;
    -- Nor in clear: revealing a column asks for what excluding it forbids.
    SELECT r INTO col FROM unnest(reveal) WITH ORDINALITY AS u(r, o) WHERE r = ANY (coalesce(exclude, '{}')) ORDER BY o LIMIT 1;
    IF col IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of table % is both revealed and excluded: an excluded column is never recorded', col, target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name it in reveal or in exclude, not in both.';
    END IF;
    IF key_columns IS NOT NULL AND cardinality(key_columns) = 0 THEN
        RAISE EXCEPTION 'key_columns must name at least one column, or be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF actions IS NULL OR cardinality(actions) = 0 THEN
        RAISE EXCEPTION 'actions must name at least one of INSERT, UPDATE, DELETE, TRUNCATE'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    acts := '{}';
    FOREACH act IN ARRAY actions LOOP
        IF act IS NULL OR upper(act) NOT IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') THEN
            RAISE EXCEPTION 'unknown action "%"', act
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Actions are INSERT, UPDATE, DELETE and TRUNCATE.';
        END IF;
        IF NOT upper(act) = ANY (acts) THEN
            acts := acts || upper(act);
        END IF;
    END LOOP;

    -- Partitions audited on their own until now are now covered by the parent.
    DELETE FROM audit_trail.config
    WHERE relid IN (SELECT relid FROM pg_partition_tree(target) WHERE relid <> target);

    -- Redaction is decided now, for every column (API §9): the ones named,
    -- and those the patterns in force match but reveal exempts not. From
    -- here on it follows each column through renames (_sync_columns); a
    -- column added later is matched against the patterns stored here.
    redacted := audit_trail._redacted(target, coalesce(redact, '{}'), coalesce(patterns, '{}'), reveal, '{}');
    -- Revealed: the columns named in reveal that stay in clear (reveal does
    -- not undo redact), in column order.
    revealed := ARRAY(SELECT c FROM unnest(cols) WITH ORDINALITY AS t(c, o)
                      WHERE c = ANY (reveal) AND NOT c = ANY (redacted) ORDER BY o);
    INSERT INTO audit_trail.config AS c
        (relid, redact, redact_patterns, exclude, key_columns, label_column, actions, columns,
         enabled_at, enabled_by, reveal)
    VALUES (target, redacted, coalesce(patterns, '{}'), coalesce(exclude, '{}'),
            key_columns, label_column, acts, audit_trail._columns_by_attnum(target),
            now(), session_user, revealed)
    ON CONFLICT (relid) DO UPDATE SET
        redact = EXCLUDED.redact, redact_patterns = EXCLUDED.redact_patterns,
        exclude = EXCLUDED.exclude, key_columns = EXCLUDED.key_columns,
        label_column = EXCLUDED.label_column, actions = EXCLUDED.actions,
        columns = EXCLUDED.columns, enabled_at = EXCLUDED.enabled_at,
        enabled_by = EXCLUDED.enabled_by, reveal = EXCLUDED.reveal
    RETURNING * INTO cfg;

    by_pattern := ARRAY(SELECT c FROM unnest(redacted) WITH ORDINALITY AS t(c, o)
                        WHERE NOT c = ANY (coalesce(redact, '{}')) ORDER BY o);
    IF cardinality(by_pattern) > 0 THEN
        RAISE NOTICE 'columns of % redacted by audit_trail.redact_patterns: %',
            target, array_to_string(by_pattern, ', ');
    END IF;
    IF coalesce(key_columns, audit_trail._key_columns(target)) IS NULL THEN
        RAISE WARNING 'table % has no primary key, replica identity index or key_columns', target
            USING DETAIL = 'Its events will have entity_id NULL.';
    END IF;

    -- Triggers for actions no longer wanted go; the others stay (capture
    -- never has a gap) or are made, and all are put in their proper state.
    PERFORM audit_trail._settle_triggers(target, acts);
    PERFORM audit_trail._invalidate(target);
    PERFORM audit_trail._sync_names(target);
    RETURN audit_trail._settings_json(cfg);
END
$$;

-- new
CREATE FUNCTION audit_trail._export_columns()
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
                csv := format('to_char(%s, ''YYYY-MM-DD"T"HH24:MI:SS.US"Z"'')', col);
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
CREATE FUNCTION audit_trail._export_header() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT string_agg(name, ',') FROM audit_trail._export_columns() $$;

-- new
CREATE FUNCTION audit_trail._export_line(fmt text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE fmt
        WHEN 'csv' THEN 'array_to_string(ARRAY[' || string_agg(csv, ', ') || '], '','', '''')'
        ELSE 'json_build_object(' || string_agg(quote_literal(name) || ', ' || json, ', ') || ')::text'
    END
    FROM audit_trail._export_columns()
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.export(
    format       text        DEFAULT 'csv',
    actions      text[]      DEFAULT NULL,
    entity_types text[]      DEFAULT NULL,
    entity_id    text        DEFAULT NULL,
    actor        text        DEFAULT NULL,
    since        timestamptz DEFAULT NULL,
    until        timestamptz DEFAULT NULL,
    q            text        DEFAULT NULL,
    tenant       text        DEFAULT NULL
) RETURNS SETOF text
LANGUAGE plpgsql
-- Every timestamp leaves in UTC, whatever the session's time zone.
SET timezone = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fmt text := lower(coalesce(format, ''));
    cond text;
    line text;
BEGIN
    IF fmt NOT IN ('csv', 'jsonl') THEN
        RAISE EXCEPTION 'format must be csv or jsonl, not %', coalesce(quote_literal(format), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cond := audit_trail._where(actions, entity_types, entity_id, actor, since, until, q, tenant);
    -- The rows go out through the function's result store, which spills to
    -- disk past work_mem: any number of events, bounded memory.
    IF fmt = 'csv' THEN
        RETURN NEXT audit_trail._export_header();
    END IF;
    line := audit_trail._export_line(fmt);
    RETURN QUERY EXECUTE
        'SELECT ' || line || ' FROM (SELECT * FROM audit_trail.events WHERE ' || cond || ' ORDER BY id DESC) e'
        USING audit_trail._upper_all(actions), entity_types, entity_id, actor, since, until, q, tenant;
    -- Recorded after the rows are read, so an export never lists itself.
    IF audit_trail._log_reads_export() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_EXPORTED',
            jsonb_build_object('format', fmt)
            || audit_trail._filters_json(actions, entity_types, entity_id, actor, since, until, q, tenant));
    END IF;
END
$$;

-- new
CREATE FUNCTION audit_trail._canonical_key(target regclass, entity_id text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    typ text;
    k text;
BEGIN
    SELECT s.keys, s.redacted INTO r FROM audit_trail._row_settings(target) s;
    IF cardinality(r.keys) IS DISTINCT FROM 1 OR r.keys[1] = ANY (r.redacted) THEN
        RETURN entity_id;
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO typ
    FROM pg_attribute a
    WHERE a.attrelid = target AND a.attname = r.keys[1] AND NOT a.attisdropped
      AND NOT audit_trail._contains_bytea(a.atttypid);
    IF typ IS NULL THEN
        RETURN entity_id;
    END IF;
    BEGIN
        EXECUTE format('SELECT audit_trail._canonical_text($1::%s)', typ) INTO k USING entity_id;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'entity_id % is not a key of %: %', quote_literal(entity_id), target, SQLERRM
            USING ERRCODE = SQLSTATE, HINT = format('The key of %s is %s, of type %s.', target, r.keys[1], typ);
    END;
    RETURN k;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.history(target regclass, entity_id text)
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
BEGIN
    -- The keys of the row's life, each with the range of event ids in which
    -- it was the row's: found first, so that the events are then read
    -- through the entity index, a key at a time.
    WITH RECURSIVE chain(key, lo, hi) AS (
        -- The key as given and as recorded (they differ for events written
        -- before 0.4.0 under other output settings).
        SELECT DISTINCT k, 0::bigint, 9223372036854775807::bigint
        FROM unnest(ARRAY[canonical, history.entity_id]) k
        UNION
        SELECT step.key, step.lo, step.hi
        FROM chain c
        CROSS JOIN LATERAL (
            -- Back: the key this one was made from, up to the change.
            SELECT e.details ->> 'previous_entity_id' AS key, 0::bigint AS lo, e.id - 1 AS hi
            FROM audit_trail.events e
            WHERE e.entity_type = ANY (types) AND e.entity_id = c.key
              AND e.id BETWEEN c.lo AND c.hi AND e.details ? 'previous_entity_id'
              AND e.operation = 'UPDATE'
            UNION ALL
            -- On: the key this one became, from the change on.
            SELECT e.entity_id, e.id, 9223372036854775807::bigint
            FROM audit_trail.events e
            WHERE e.entity_type = ANY (types) AND e.details ? 'previous_entity_id'
              AND e.details ->> 'previous_entity_id' = c.key AND e.id BETWEEN c.lo AND c.hi
              -- Only captured key changes link keys: an application
              -- event's details cannot splice another row in.
              AND e.operation = 'UPDATE'
        ) step
        WHERE step.key IS NOT NULL
    )
    SELECT array_agg(c.key), array_agg(c.lo), array_agg(c.hi) INTO keys, los, his FROM chain c;

    RETURN QUERY
    -- A range may be listed twice (reached back and on), an event once.
    SELECT DISTINCT ON (e.id) e.*
    FROM unnest(keys, los, his) AS c(key, lo, hi)
    CROSS JOIN LATERAL (
        SELECT x.* FROM audit_trail.events x
        WHERE x.entity_type = ANY (types) AND x.entity_id = c.key AND x.id BETWEEN c.lo AND c.hi
          -- Row events only: an application event naming the row is not
          -- part of its life (API §9: readers of rows go by operation).
          AND x.operation IS NOT NULL
    ) e
    JOIN audit_trail._names_of(target) n
      ON e.entity_type = n.entity_type
     AND e.occurred_at >= n.valid_from AND (n.valid_until IS NULL OR e.occurred_at < n.valid_until)
    ORDER BY e.id;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.diff(event_id bigint)
RETURNS TABLE(column_name text, before jsonb, after jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH e AS (SELECT * FROM audit_trail.events WHERE id = event_id)
    SELECT c.col, e.before -> c.col, e.after -> c.col
    FROM e
    CROSS JOIN LATERAL (
        SELECT col, ord FROM unnest(e.changed) WITH ORDINALITY AS u(col, ord)
        WHERE e.operation = 'UPDATE'
        UNION ALL
        SELECT k, coalesce(a.attnum, 32767)
        FROM jsonb_object_keys(coalesce(e.after, e.before)) AS k
        LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(e.entity_type) AND a.attname = k AND NOT a.attisdropped
        WHERE e.operation IN ('INSERT', 'DELETE') AND e.changed IS NULL
    ) c
    ORDER BY c.ord, c.col;
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._row_settings(target regclass)
RETURNS TABLE(keys text[], excluded text[], redacted text[])
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(c.key_columns, audit_trail._key_columns(target)),
           coalesce(c.exclude, '{}'),
           CASE WHEN c.relid IS NULL
                THEN audit_trail._redacted(target, '{}', audit_trail._redact_patterns(), '{}', '{}')
                ELSE audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns) END
    FROM (SELECT target AS relid) t
    LEFT JOIN audit_trail.config c ON c.relid = t.relid;
$$;

-- new
CREATE FUNCTION audit_trail._redact_row_json(target regclass, live jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    patterns text[];
    col text;
BEGIN
    IF live IS NULL OR audit_trail._setting('audit_trail.redact_json_keys') <> 'on' THEN
        RETURN live;
    END IF;
    SELECT coalesce(c.redact_patterns, audit_trail._redact_patterns()) INTO patterns
    FROM (SELECT target AS relid) t
    LEFT JOIN audit_trail.config c ON c.relid = t.relid;
    FOR col IN
        SELECT a.attname FROM pg_attribute a
        WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
          AND audit_trail._holds_json(a.atttypid) AND live ? a.attname
    LOOP
        live := jsonb_set(live, ARRAY[col], audit_trail._redact_json_keys(live -> col, patterns));
    END LOOP;
    RETURN live;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail.row_as_of(target regclass, entity_id text, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
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
    life := ARRAY(SELECT h FROM audit_trail.history(target, entity_id) h ORDER BY h.id DESC);
    current_key := coalesce(life[1].entity_id, audit_trail._canonical_key(target, entity_id));

    -- The live row, rendered as the trail renders it; a one-column key
    -- compared as its type (canonical text is the type's input too).
    -- The row as a whole through an alias no column has: a column named
    -- like the alias would be taken instead of the row.
    row_alias := 'audit_trail_row';
    WHILE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = target AND a.attname = row_alias) LOOP
        row_alias := row_alias || '_';
    END LOOP;
    EXECUTE format('SELECT to_jsonb(%I) FROM %s %I WHERE %s', row_alias, target, row_alias,
                   CASE WHEN cardinality(keys) = 1 AND key_type IS NOT NULL
                        THEN format('%I = $1::%s', keys[1], key_type)
                        WHEN cardinality(keys) = 1
                        THEN format('%I::text = $1', keys[1])
                        ELSE format('jsonb_build_array(%s) = $1::jsonb',
                                    (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) k)) END)
        INTO live USING current_key;
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
    RETURN state;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._capture_ok(target regclass) RETURNS boolean
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._unsafe_shape(c.relid, c.relid) IS NULL
       AND NOT EXISTS (SELECT 1 FROM audit_trail._relation_tree(c.relid) x,
                       LATERAL audit_trail._capture_problems(x, c.actions))
    FROM audit_trail.config c WHERE c.relid = target
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
        END IF;
    END LOOP;
    UPDATE audit_trail.config
    SET redact = cfg.redact, reveal = cfg.reveal, exclude = cfg.exclude, key_columns = cfg.key_columns,
        label_column = cfg.label_column, columns = now_cols
    WHERE relid = cfg.relid;
    PERFORM audit_trail._invalidate(cfg.relid);
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._on_ddl_end() RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_trail_on_ddl_end';

-- new
CREATE FUNCTION audit_trail._after_ddl() RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cmd record;
    sub jsonb;
    rel regclass;
    root regclass;
    part regclass;
    why text;
    t record;
    fixed regclass[] := '{}';
    named text[];
    switched_all boolean;
    schema_subs jsonb;
    actions text[];
    attached regclass[];
    -- _ddl_subcommands of each command, in pg_event_trigger_ddl_commands() order.
    described jsonb[] := audit_trail._ddl_described();
BEGIN
    IF described IS NULL THEN
        RAISE EXCEPTION 'audit_trail._after_ddl() runs only when the DDL event trigger calls it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Settings or triggers of what this command touches, changed by another
    -- session after this transaction's snapshot: 40001 (see src/ddl.rs).
    PERFORM audit_trail._refuse_if_settings_moved(ARRAY(
        SELECT DISTINCT x FROM (
            SELECT d.objid FROM pg_event_trigger_ddl_commands() d WHERE d.classid = 'pg_class'::regclass
            UNION ALL
            SELECT g.tgrelid FROM pg_event_trigger_ddl_commands() d JOIN pg_trigger g ON g.oid = d.objid
            WHERE d.classid = 'pg_trigger'::regclass
            UNION ALL
            SELECT (s ->> 'relid')::oid FROM unnest(described) u, jsonb_array_elements(u) s WHERE s ? 'relid') r(oid),
        LATERAL (SELECT r.oid UNION ALL SELECT a.relid::oid FROM pg_partition_ancestors(r.oid) a
                 UNION ALL SELECT o.other::oid FROM audit_trail._inheritance_of(r.oid) o) t(x)));
    FOR cmd IN
        SELECT d.classid, d.objid, d.command_tag, d.in_extension, coalesce(described[d.n], '[]') AS subs
        FROM pg_event_trigger_ddl_commands() WITH ORDINALITY AS d(classid, objid, objsubid, command_tag, object_type,
                                                                  schema_name, object_identity, in_extension, command, n)
    LOOP
        CONTINUE WHEN cmd.in_extension;

        -- ALTER TRIGGER (RENAME, DEPENDS ON) of a capture trigger or guard;
        -- CREATE OR REPLACE TRIGGER over a capture trigger: the names
        -- enable() gives are reserved on audited tables (ours cannot be
        -- renamed), so a trigger by one of them that is not a capture
        -- trigger of that name's shape replaced ours, or would pose as it.
        IF cmd.classid = 'pg_trigger'::regclass THEN
            SELECT g.tgname, g.tgrelid::regclass AS rel,
                   audit_trail._own_trigger_state(g.tgfoid, g.tgtype) IS NOT NULL AS ours,
                   EXISTS (SELECT 1 FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) a,
                                         unnest(ARRAY[false, true]) l
                           WHERE g.tgname = 'audit_trail_' || lower(a) || CASE WHEN l THEN '_replica' ELSE '' END
                             AND NOT audit_trail._is_capture_trigger(g, a, l))
                   OR (g.tgname IN ('audit_trail_guard', 'audit_trail_guard_row')
                       AND g.tgfoid <> 'audit_trail._guard()'::regprocedure) AS posing,
                   -- audit_trail.capture() under a name enable() does not
                   -- give: a second copy would record every change twice.
                   g.tgfoid = 'audit_trail.capture()'::regprocedure
                   AND NOT g.tgname = ANY (ARRAY['audit_trail_insert', 'audit_trail_update', 'audit_trail_delete',
                                                 'audit_trail_truncate', 'audit_trail_insert_replica',
                                                 'audit_trail_update_replica', 'audit_trail_delete_replica']) AS stray
              INTO t FROM pg_trigger g WHERE g.oid = cmd.objid;
            IF FOUND AND cmd.command_tag = 'CREATE TRIGGER' AND t.stray THEN
                RAISE EXCEPTION 'trigger % on % would run audit_trail.capture(), which only the triggers audit_trail.enable() makes may run',
                        t.tgname, t.rel
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Use audit_trail.enable() to audit a table.';
            END IF;
            IF FOUND AND ((cmd.command_tag = 'ALTER TRIGGER' AND t.ours)
                          OR (cmd.command_tag = 'CREATE TRIGGER' AND t.posing
                              AND (audit_trail._audited_root(t.rel) IS NOT NULL
                                   OR t.rel IN (SELECT audit_trail._relation_tree('audit_trail.events'))))) THEN
                RAISE EXCEPTION 'trigger % on % belongs to pg_audit_trail and cannot be %',
                        coalesce((SELECT s ->> 'from' FROM jsonb_array_elements(cmd.subs) s WHERE s ? 'from' LIMIT 1), t.tgname),
                        t.rel,
                        CASE WHEN cmd.command_tag = 'CREATE TRIGGER' THEN 'replaced'
                             WHEN cmd.subs @> '[{"type": "RENAME TRIGGER"}]' THEN 'renamed'
                             ELSE 'altered' END
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Use audit_trail.disable() to stop auditing a table.';
            END IF;
            CONTINUE;
        END IF;

        -- ALTER SCHEMA ... RENAME: the audited tables in it have new names.
        IF cmd.classid = 'pg_namespace'::regclass THEN
            FOR rel IN SELECT c.relid FROM audit_trail.config c JOIN pg_class k ON k.oid = c.relid
                       WHERE k.relnamespace = cmd.objid LOOP
                PERFORM audit_trail._sync_names(rel);
            END LOOP;
            CONTINUE;
        END IF;

        -- ALTER TYPE ... RENAME ATTRIBUTE ... CASCADE renames the columns of
        -- the tables of that type (the command names the type, or the
        -- composite type's relation).
        IF cmd.classid = 'pg_type'::regclass
           OR (cmd.classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = cmd.objid) = 'c') THEN
            FOR rel IN
                WITH typ(oid) AS (SELECT CASE WHEN cmd.classid = 'pg_type'::regclass THEN cmd.objid
                                              ELSE (SELECT reltype FROM pg_class WHERE oid = cmd.objid) END)
                SELECT c.relid FROM audit_trail.config c JOIN pg_class k ON k.oid = c.relid, typ
                WHERE k.reloftype = typ.oid
                   OR EXISTS (SELECT 1 FROM audit_trail._relation_tree(c.relid) x
                              JOIN pg_attribute a ON a.attrelid = x AND a.attnum > 0 AND NOT a.attisdropped
                              WHERE audit_trail._type_uses(a.atttypid, typ.oid))
            LOOP
                PERFORM audit_trail._sync_columns(rel);
                PERFORM audit_trail._write_event('SCHEMA_CHANGED', audit_trail._entity_name(rel), NULL,
                    jsonb_build_object('command', cmd.command_tag, 'subcommands', cmd.subs,
                                       'type', (CASE WHEN cmd.classid = 'pg_type'::regclass THEN cmd.objid
                                                     ELSE (SELECT reltype FROM pg_class WHERE oid = cmd.objid) END)::regtype::text),
                    NULL);
            END LOOP;
            CONTINUE;
        END IF;

        CONTINUE WHEN cmd.classid <> 'pg_class'::regclass
                   OR NOT EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = cmd.objid AND k.relkind IN ('r', 'p', 'f'));
        rel := cmd.objid;

        -- What an ATTACH PARTITION attached: known from the catalog, not from
        -- the name in the command (looked up again now, it could resolve to
        -- another table: the partition key's code, run by the ATTACH, may
        -- have changed search_path or made a temporary table of that name).
        -- The children of the table that are not captured yet, and any that
        -- is audited on its own.
        -- (A foreign table never has capture triggers: one counts only when
        -- the command's name still finds it among the children.)
        attached := CASE WHEN cmd.subs @> '[{"type": "ATTACH PARTITION"}]' THEN ARRAY(
            SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
            WHERE i.inhparent = rel
              AND (EXISTS (SELECT 1 FROM audit_trail.config c WHERE c.relid = i.inhrelid)
                   OR (k.relkind IN ('r', 'p') AND audit_trail._audited_root(rel) IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = i.inhrelid
                                       AND g.tgfoid = 'audit_trail.capture()'::regprocedure))
                   OR (k.relkind = 'f' AND i.inhrelid IN (
                           SELECT (s ->> 'relid')::oid FROM jsonb_array_elements(cmd.subs) s
                           WHERE s ->> 'type' = 'ATTACH PARTITION' AND s ? 'relid')))
            ORDER BY i.inhrelid) ELSE '{}' END;

        -- Shapes that would let changes escape capture (0A000), for the
        -- table and for what it attached.
        FOR part IN
            SELECT rel UNION ALL
            SELECT unnest(attached)
        LOOP
            root := audit_trail._audited_root(part);
            IF root IS NULL THEN
                -- Not audited, but inheriting from (or inherited by) a table that is?
                SELECT o.other INTO root FROM audit_trail._inheritance_of(part) o
                WHERE audit_trail._audited_root(o.other) IS NOT NULL LIMIT 1;
                IF FOUND THEN
                    RAISE EXCEPTION '% is audited by pg_audit_trail: % may not inherit from it or be inherited by it', root, part
                        USING ERRCODE = 'feature_not_supported',
                              DETAIL = 'Changes made through an inheritance parent are not captured.';
                END IF;
                CONTINUE;
            END IF;
            IF part <> root AND EXISTS (SELECT 1 FROM audit_trail.config c WHERE c.relid = part) THEN
                why := format('%s is audited on its own and is now a partition of it', part);
            ELSE
                why := audit_trail._unsafe_shape(part, root);
            END IF;
            IF why IS NOT NULL THEN
                RAISE EXCEPTION 'pg_audit_trail cannot capture every change to %: %', root, why
                    USING ERRCODE = 'feature_not_supported',
                          HINT = 'Call audit_trail.disable() on the audited table first.';
            END IF;
        END LOOP;

        root := audit_trail._audited_root(rel);
        -- Capture triggers and guards keep their state. Named in
        -- ENABLE/DISABLE TRIGGER: refused. Switched by ... TRIGGER ALL/USER
        -- (pg_restore --disable-triggers): put back, with a NOTICE.
        -- Only ENABLE/DISABLE TRIGGER subcommands change a trigger's state.
        IF (root IS NOT NULL OR rel IN (SELECT audit_trail._relation_tree('audit_trail.events')))
           AND EXISTS (SELECT 1 FROM jsonb_array_elements(cmd.subs) s
                       WHERE s ->> 'type' ~ '^(ENABLE|DISABLE)( ALWAYS| REPLICA)? TRIGGER') THEN
            named := ARRAY(SELECT s ->> 'name' FROM jsonb_array_elements(cmd.subs) s
                           WHERE s ->> 'type' IN ('ENABLE TRIGGER', 'ENABLE ALWAYS TRIGGER',
                                                  'ENABLE REPLICA TRIGGER', 'DISABLE TRIGGER'));
            switched_all := cmd.subs @> '[{"type": "DISABLE TRIGGER ALL"}]' OR cmd.subs @> '[{"type": "ENABLE TRIGGER ALL"}]'
                         OR cmd.subs @> '[{"type": "DISABLE TRIGGER USER"}]' OR cmd.subs @> '[{"type": "ENABLE TRIGGER USER"}]';
            FOR t IN
                SELECT g.tgrelid::regclass AS rel, g.tgname, g.tgenabled,
                       audit_trail._own_trigger_state(g.tgfoid, g.tgtype) AS want
                FROM audit_trail._relation_tree(rel) r JOIN pg_trigger g ON g.tgrelid = r
                WHERE g.tgenabled <> audit_trail._own_trigger_state(g.tgfoid, g.tgtype)
                ORDER BY 1, 2
            LOOP
                IF t.rel = rel AND t.tgname = ANY (named) THEN
                    RAISE EXCEPTION 'trigger % on % belongs to pg_audit_trail and must stay %',
                            t.tgname, t.rel, audit_trail._trigger_state_name(t.want)
                        USING ERRCODE = 'insufficient_privilege',
                              HINT = 'Use audit_trail.disable() to stop auditing a table.';
                END IF;
                -- Left as they were before this command (check() lists them).
                CONTINUE WHEN NOT switched_all;
                EXECUTE format('ALTER TABLE %s %s TRIGGER %I', t.rel, audit_trail._trigger_state_name(t.want), t.tgname);
                IF NOT t.rel = ANY (fixed) THEN
                    RAISE NOTICE 'the triggers of pg_audit_trail on % stay enabled', t.rel;
                    fixed := fixed || t.rel;
                END IF;
            END LOOP;
        END IF;
        CONTINUE WHEN root IS NULL AND NOT cmd.subs @> '[{"type": "DETACH PARTITION"}]'
                                   AND NOT cmd.subs @> '[{"type": "DETACH PARTITION FINALIZE"}]';

        -- Partitions created in, or attached to, an audited table are
        -- audited with it from their first row; detached ones are released.
        IF root IS NOT NULL THEN
            actions := (SELECT c.actions FROM audit_trail.config c WHERE c.relid = root);
            IF cmd.command_tag IN ('CREATE TABLE', 'CREATE FOREIGN TABLE') AND rel <> root THEN
                PERFORM audit_trail._install_triggers(rel, actions);
                PERFORM audit_trail._write_event('PARTITION_ATTACHED', audit_trail._entity_name(root), NULL,
                    jsonb_build_object('command', cmd.command_tag, 'partition', rel::text, 'rows_estimate', 0), NULL);
            END IF;
        END IF;
        IF root IS NOT NULL THEN
            FOREACH part IN ARRAY attached LOOP
                PERFORM audit_trail._install_triggers(part, actions);
                PERFORM audit_trail._write_event('PARTITION_ATTACHED', audit_trail._entity_name(root), NULL,
                    jsonb_build_object('command', cmd.command_tag, 'partition', part::text,
                                       'rows_estimate', audit_trail._rows_estimate(part)), NULL);
            END LOOP;
        END IF;
        -- A detached partition is released: the one the command names, if
        -- it is a table that carries capture triggers and is no longer under
        -- an audited table (a name that resolves elsewhere now finds nothing
        -- to release; the partition then keeps capturing, check() lists it).
        FOR sub IN SELECT s FROM jsonb_array_elements(cmd.subs) s WHERE s ? 'relid' LOOP
            part := (sub ->> 'relid')::oid::regclass;
            IF sub ->> 'type' IN ('DETACH PARTITION', 'DETACH PARTITION FINALIZE') AND audit_trail._audited_root(part) IS NULL
                  AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid IN (SELECT audit_trail._relation_tree(part))
                              AND g.tgfoid = 'audit_trail.capture()'::regprocedure) THEN
                PERFORM audit_trail._remove_triggers(part);
                PERFORM audit_trail._invalidate(part);
                PERFORM audit_trail._write_event('PARTITION_DETACHED', audit_trail._entity_name(coalesce(root, rel)), NULL,
                    jsonb_build_object('command', cmd.command_tag, 'partition', part::text,
                                       'rows_estimate', audit_trail._rows_estimate(part)), NULL);
            END IF;
        END LOOP;
        CONTINUE WHEN root IS NULL;

        -- Renames and column renames are followed at once.
        IF rel = root THEN
            PERFORM audit_trail._sync_columns(rel);
            PERFORM audit_trail._sync_names(rel);
        END IF;

        -- Any other DDL on an audited table (or one of its partitions) is one
        -- SCHEMA_CHANGED event: data that DDL rewrites or removes leaves a
        -- trace. Not for what pg_audit_trail does to its own triggers, nor
        -- for a table with no capture trigger at all: that is a pg_restore
        -- replaying its post-data DDL (constraints come before triggers).
        IF cmd.command_tag IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER FOREIGN TABLE')
           AND EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = rel
                       AND g.tgfoid = 'audit_trail.capture()'::regprocedure) THEN
            schema_subs := coalesce((SELECT jsonb_agg(s ORDER BY o) FROM jsonb_array_elements(cmd.subs) WITH ORDINALITY AS x(s, o)
                                     WHERE s ->> 'type' NOT IN ('ATTACH PARTITION', 'DETACH PARTITION',
                                                                 'DETACH PARTITION FINALIZE')), '[]');
            IF jsonb_array_length(schema_subs) = 0 AND jsonb_array_length(cmd.subs) > 0 THEN
                CONTINUE;
            END IF;
            CONTINUE WHEN jsonb_array_length(schema_subs) > 0
                AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(schema_subs) s
                                WHERE s ->> 'type' NOT IN ('ENABLE ALWAYS TRIGGER', 'ENABLE REPLICA TRIGGER'))
                AND NOT EXISTS (
                SELECT 1 FROM jsonb_array_elements(schema_subs) s
                WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
                                  WHERE g.tgrelid = rel AND g.tgname = s ->> 'name'
                                    AND audit_trail._own_trigger_state(g.tgfoid, g.tgtype) = g.tgenabled));
            PERFORM audit_trail._write_event('SCHEMA_CHANGED', audit_trail._entity_name(root), NULL,
                jsonb_strip_nulls(jsonb_build_object(
                    'command', cmd.command_tag, 'subcommands', schema_subs,
                    'partition', CASE WHEN rel <> root THEN rel::text END)),
                NULL);
        END IF;
    END LOOP;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    cols jsonb;
    cfg audit_trail.config;
    rel regclass;
    root regclass;
    problem text;
    stash jsonb;
    dropping_extension boolean := EXISTS (
        SELECT 1 FROM pg_event_trigger_dropped_objects() o
        WHERE o.object_type = 'extension' AND o.object_name = 'pg_audit_trail');
BEGIN
    IF dropping_extension THEN
        RETURN;
    END IF;
    -- A partition of the log goes only through retention: a DROP TABLE of
    -- one would erase events wholesale.
    IF NOT audit_trail._retention_active() THEN
        SELECT o.object_identity INTO d FROM pg_event_trigger_dropped_objects() o
        WHERE o.object_type = 'table' AND o.schema_name IN ('audit_trail', 'audit_trail_archive')
          AND o.object_name LIKE 'events%'
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION '% holds audit events: it is removed by audit_trail.apply_retention() only', d.object_identity
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    -- DROP TRIGGER of one of pg_audit_trail's triggers, on a table that
    -- stays and whose capture (or guard) still needs it. Judged by the
    -- triggers noted before the command: in a REPEATABLE READ transaction,
    -- not older than what is committed for those tables (40001 otherwise).
    PERFORM audit_trail._refuse_if_settings_moved(ARRAY(
        SELECT DISTINCT x FROM (
            SELECT k.oid FROM pg_event_trigger_dropped_objects() o
            JOIN pg_namespace n ON n.nspname = o.address_names[1]
            JOIN pg_class k ON k.relnamespace = n.oid AND k.relname = o.address_names[2]
            WHERE o.object_type = 'trigger') r(oid),
        LATERAL (SELECT r.oid UNION ALL SELECT a.relid::oid FROM pg_partition_ancestors(r.oid) a) t(x)));
    stash := audit_trail._stashed_partitions();
    FOR d IN
        SELECT o.objid, o.object_identity, stash -> 'triggers' -> o.objid::text AS t
        FROM pg_event_trigger_dropped_objects() o
        WHERE o.classid = 'pg_trigger'::regclass AND stash -> 'triggers' ? o.objid::text
    LOOP
        rel := (d.t ->> 'rel')::oid;
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = rel);
        IF (d.t ->> 'guard')::boolean THEN
            CONTINUE WHEN rel NOT IN (SELECT audit_trail._relation_tree('audit_trail.events'));
        ELSE
            root := audit_trail._audited_root(rel);
            CONTINUE WHEN root IS NULL;
            -- enable() drops the triggers of actions it no longer records
            CONTINUE WHEN NOT EXISTS (
                SELECT 1 FROM audit_trail.config c, unnest(c.actions) a
                WHERE c.relid = root AND (d.t ->> 'tgtype')::int & audit_trail._trigger_action_bit(a) <> 0);
        END IF;
        RAISE EXCEPTION 'trigger % belongs to pg_audit_trail and cannot be dropped', d.object_identity
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Use audit_trail.disable() to stop auditing a table.';
    END LOOP;

    -- Columns of audited tables dropped along with a type or domain
    -- (DROP ... CASCADE): ALTER TABLE records its own.
    IF TG_TAG <> 'ALTER TABLE' THEN
        FOR rel, cols IN
            SELECT o.objid::regclass, jsonb_agg(o.object_identity ORDER BY o.objsubid)
            FROM pg_event_trigger_dropped_objects() o
            WHERE o.classid = 'pg_class'::regclass AND o.objsubid > 0
              AND EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = o.objid)
            GROUP BY o.objid
        LOOP
            root := audit_trail._audited_root(rel);
            CONTINUE WHEN root IS NULL;
            PERFORM audit_trail._sync_columns(root);
            PERFORM audit_trail._write_event('SCHEMA_CHANGED', audit_trail._entity_name(root), NULL,
                jsonb_strip_nulls(jsonb_build_object('command', TG_TAG, 'dropped_columns', cols,
                                                     'partition', CASE WHEN rel <> root THEN rel::text END)),
                NULL);
        END LOOP;
    END IF;

    FOR d IN
        SELECT o.objid, o.object_identity
        FROM pg_event_trigger_dropped_objects() o
        WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.object_type IN ('table', 'foreign table')
    LOOP
        DELETE FROM audit_trail.table_names WHERE relid = d.objid::regclass;
        DELETE FROM audit_trail.config WHERE relid = d.objid::regclass RETURNING * INTO cfg;
        IF FOUND THEN
            PERFORM audit_trail._write_event(
                'AUDIT_DISABLED', 'audit_trail.config', d.object_identity,
                jsonb_build_object('table', d.object_identity, 'reason', 'DROP TABLE',
                                   'actions', cfg.actions),
                NULL);
        ELSIF stash -> 'partitions' ? d.objid::text
              -- its audited table is still there
              AND EXISTS (SELECT 1 FROM audit_trail.config c WHERE audit_trail._entity_name(c.relid) = stash -> 'partitions' -> d.objid::text ->> 'root') THEN
            PERFORM audit_trail._write_event(
                'PARTITION_DROPPED', stash -> 'partitions' -> d.objid::text ->> 'root', NULL,
                jsonb_build_object('command', TG_TAG, 'partition', d.object_identity,
                                   'rows_estimate', stash -> 'partitions' -> d.objid::text -> 'rows_estimate'),
                NULL);
        END IF;
    END LOOP;
END
$$;

-- new
CREATE  FUNCTION "enable"(
	"target" regclass,
	"redact" TEXT[] DEFAULT '{}',
	"exclude" TEXT[] DEFAULT '{}',
	"key_columns" TEXT[] DEFAULT NULL,
	"label_column" TEXT DEFAULT NULL,
	"actions" TEXT[] DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}',
	"reveal" TEXT[] DEFAULT '{}'
) RETURNS void
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'enable_with_reveal_wrapper';

-- The index history() follows key changes by (see _index_partition), on
-- every partition that has the entity index.
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent = 'audit_trail.events'::regclass
          AND EXISTS (SELECT 1 FROM pg_class x WHERE x.relname = (SELECT relname FROM pg_class WHERE oid = i.inhrelid) || '_entity'
                      AND x.relnamespace = 'audit_trail'::regnamespace)
        ORDER BY 1::text
    LOOP
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, (details ->> ''previous_entity_id''), id) '
                       'WHERE details ? ''previous_entity_id''',
                       (SELECT relname FROM pg_class WHERE oid = p) || '_rekeyed', p);
    END LOOP;
END
$$;

-- Event triggers: ddl_command_start also sees the DROPs that can take a
-- table with them by CASCADE (DROP FUNCTION of a partition key's function).
DROP EVENT TRIGGER audit_trail_ddl_start;
CREATE EVENT TRIGGER audit_trail_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP FOREIGN TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TRIGGER',
                 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE', 'DROP TYPE', 'DROP DOMAIN',
                 'DROP COLLATION', 'DROP OPERATOR', 'DROP OPERATOR CLASS', 'DROP OPERATOR FAMILY',
                 'DROP EXTENSION', 'DROP SERVER', 'DROP FOREIGN DATA WRAPPER', 'DROP ACCESS METHOD',
                 'DROP LANGUAGE')
    EXECUTE FUNCTION audit_trail._on_ddl_start();
ALTER EVENT TRIGGER audit_trail_ddl_start ENABLE ALWAYS;

-- An update from 0.2.0 left this comment out.
COMMENT ON FUNCTION audit_trail.check() IS
  'One row per thing that keeps capture from being whole; empty when all is well.';

-- Each audited table keeps exactly the columns it redacts today: named, or
-- whose name (now) contains a pattern stored at enable() (reveal '{}', and
-- columns '{}': every column judged by its name, as 0.3.0 did), now stored
-- in redact, with the column names brought up to date to follow them by.
-- A setting row whose table is gone (check() reports it) is left alone.
UPDATE audit_trail.config c
SET redact = audit_trail._redacted(c.relid, c.redact, c.redact_patterns, '{}', '{}'),
    columns = audit_trail._columns_by_attnum(c.relid)
WHERE EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = c.relid);
-- Every backend builds their capture metadata again, from _redacted.
SELECT audit_trail._invalidate(c.relid)
FROM audit_trail.config c WHERE EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = c.relid);

-- Views: log gains operation after request_id, as in a fresh install, so it
-- is made anew; changes reads operation instead of action; tracked (dropped
-- above) is made anew.
DROP VIEW audit_trail.log;
CREATE OR REPLACE VIEW audit_trail.log WITH (security_invoker = true) AS
SELECT e.id, e.occurred_at, e.txid, e.action, e.entity_type, e.entity_id, e.entity_label,
       e.changed, e.details, e.actor, e.db_user, e.client_ip, e.user_agent, e.service, e.tenant,
       e.request_id, e.operation,
       d.entity_display,
       concat_ws(' ', e.action, e.entity_type, d.entity_display)
         || CASE WHEN e.changed IS NOT NULL THEN ': ' || array_to_string(e.changed, ', ') ELSE '' END AS summary
FROM audit_trail.events e
CROSS JOIN LATERAL (
    SELECT coalesce(e.entity_label,
                    CASE WHEN length(e.entity_id) > 12 THEN left(e.entity_id, 8) || '…' ELSE e.entity_id END)
           AS entity_display
) d;
COMMENT ON VIEW audit_trail.log IS
  'Every event without its values: with a display name for the entity and a one-line summary.';
CREATE OR REPLACE VIEW audit_trail.changes WITH (security_invoker = true) AS
SELECT e.id AS event_id, e.occurred_at, e.action, e.entity_type, e.entity_id, e.actor,
       c.column_name, e.before -> c.column_name AS before, e.after -> c.column_name AS after
FROM audit_trail.events e
CROSS JOIN LATERAL (
    SELECT u.col AS column_name FROM unnest(e.changed) AS u(col)
    WHERE e.operation = 'UPDATE'
    UNION ALL
    SELECT k FROM jsonb_object_keys(coalesce(e.after, e.before)) AS k
    WHERE e.operation IN ('INSERT', 'DELETE') AND e.changed IS NULL
) c;
COMMENT ON VIEW audit_trail.changes IS
  'One row per recorded column per event (UPDATE: the changed columns only).';
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
       c.reveal
FROM audit_trail.config c;
COMMENT ON VIEW audit_trail.tracked IS 'Audited tables and their effective settings.';

-- Row events written before 0.4.0 get their operation (see
-- _backfill_operation: row images tell captured events from application
-- events that borrowed a row action). This rewrites those events once;
-- VACUUM audit_trail.events afterwards on a large log.
SELECT audit_trail._backfill_operation();

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
-- Reading functions run as the caller; these helpers are theirs.
GRANT EXECUTE ON FUNCTION audit_trail._where(text[], text[], text, text, timestamptz, timestamptz, text, text),
                          audit_trail._upper_all(text[]),
                          audit_trail._filters_json(text[], text[], text, text, timestamptz, timestamptz, text, text),
                          audit_trail._csv(text),
                          audit_trail._export_columns(),
                          audit_trail._export_header(),
                          audit_trail._export_line(text),
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
