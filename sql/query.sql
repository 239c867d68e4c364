-- Reading the trail: search, count, export, diff, history, row_as_of, and the
-- views log and changes. All run with the caller's rights: reading needs
-- SELECT on audit_trail.events, whatever the entry point.

-- The one place that turns the filters into SQL, so search, count and export
-- can never disagree. Only the filters given become conditions (the planner
-- then sees plain predicates it can use indexes and partition pruning for);
-- values stay parameters ($1..$13 in this order), never text in the query. A bad filter is refused here, naming it.
-- Read events (AUDIT_LOG_ACCESSED, AUDIT_LOG_EXPORTED) are left out unless
-- actions names them: looking at the trail does not change what it shows.
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

-- Upper-cased action list (actions match case-insensitively).
CREATE FUNCTION audit_trail._upper_all(a text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT array_agg(upper(x)) FROM unnest(a) x $$;

-- Lower-cased list (actors match exactly, whatever the case).
CREATE FUNCTION audit_trail._lower_all(a text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT array_agg(lower(x)) FROM unnest(a) x $$;

-- The filters as recorded in AUDIT_LOG_* events: only those given.
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

-- Whether the caller may read the archives: SELECT on audit_trail.events,
-- the one privilege every reader needs, and no row-level security on
-- audit_trail.events that applies to the caller (the view reads the
-- archives with its owner's rights, so the log's policies could not filter
-- them: a reader the policies limit would see every archived row). Raises
-- otherwise, as reading the table would.
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

-- Archived partitions (audit_trail.archive = on) are tables of schema
-- audit_trail_archive that inherit audit_trail._archived, so that reading
-- that parent reads them all, with their indexes, and the planner can limit
-- and prune as for the log. This view is the readers' way in: it reads with
-- its owner's rights (no grant per archived table) and lets through only a
-- caller who may read audit_trail.events (the check is a constant: it runs
-- before any row is read). security_barrier: a caller's function that may
-- leak its arguments is applied only to the rows the view lets through.
CREATE VIEW audit_trail.archived_events WITH (security_barrier = true) AS
SELECT a.id, a.occurred_at, a.txid, a.action, a.entity_type, a.entity_id, a.entity_label, a.before, a.after,
       a.changed, a.details, a.actor, a.db_user, a.client_ip, a.user_agent, a.service, a.tenant, a.request_id,
       a.statement, a.operation
FROM audit_trail._archived a
WHERE audit_trail._may_read_events();
COMMENT ON VIEW audit_trail.archived_events IS
  'Events of archived partitions (schema audit_trail_archive), for whoever may read audit_trail.events.';

-- What search, count and export read: the log, and with archived the
-- archived partitions too (through the view above).
CREATE FUNCTION audit_trail._source(archived boolean) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN archived
                THEN '(SELECT * FROM audit_trail.events UNION ALL SELECT * FROM audit_trail.archived_events) e'
                ELSE 'audit_trail.events e' END
$$;

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

-- One CSV field per RFC 4180: quoted when it holds a comma, quote or line
-- break, quotes doubled; NULL is the empty field.
-- Called once per field, so it is kept inlinable (no SET clause) and names
-- everything in full instead.
CREATE FUNCTION audit_trail._csv(v text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT CASE WHEN v OPERATOR(pg_catalog.~) '[",\r\n]'
                THEN '"' OPERATOR(pg_catalog.||) pg_catalog.replace(v, '"', '""') OPERATOR(pg_catalog.||) '"'
                ELSE v END
$$;

-- Export follows the table: one field per column of audit_trail.events, in
-- table order, rendered by type. A column added to the log is exported
-- without touching this code; a type with no rendering here is an error.
-- occurred_at is rendered in the session's time zone (export sets the one
-- asked for) with its offset, or with "Z" when utc.
-- Not the readers' business to call: it names no event, only the log's shape.
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

-- The columns an export writes, in order: those named (each a column of
-- the log, once), else all of them in table order.
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

-- The entity names a table has had, with when each was current.
-- SECURITY DEFINER: readers of the log need not read the extension's tables;
-- names and column settings are no secret (audit_trail.tracked shows them).
CREATE FUNCTION audit_trail._names_of(target regclass)
RETURNS TABLE(entity_type text, valid_from timestamptz, valid_until timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.entity_type, t.valid_from, t.valid_until FROM audit_trail.table_names t WHERE t.relid = target
    UNION ALL
    -- A table never audited, or audited before names were kept: its current name.
    SELECT format('%I.%I', n.nspname, k.relname), '-infinity', NULL
    FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
    WHERE k.oid = target AND NOT EXISTS (SELECT 1 FROM audit_trail.table_names t WHERE t.relid = target);
$$;

-- A key as the trail records it (API §9): for a one-column key, the value
-- given in any form its type accepts (under the caller's settings), as
-- entity_id renders it (src/canonical.rs); a key of several columns, or one
-- the trail does not show (redacted, binary), as given.
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

-- The row's whole life, across key changes (API §9): the row events of its key
-- (given in any form the key's type accepts), of the keys it had before
-- (each UPDATE that changed the key records the old one in
-- details.previous_entity_id), up to that change, and of the keys it had
-- after, from that change on. PL/pgSQL rather than SQL: its plan is kept for
-- the session.
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

-- history() as readers call it: _history, recorded when log_reads = all.
CREATE FUNCTION audit_trail.history(target regclass, entity_id text)
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

-- The columns of an event, in the table's column order where the table still
-- exists, else by name.
CREATE FUNCTION audit_trail.diff(event_id bigint)
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

-- How row_as_of must render a table's rows: its key, and which columns the
-- trail leaves out or redacts, as capture decides (_redacted). The
-- redaction patterns in force apply to a table that is not audited:
-- row_as_of shows no more than the trail would if it were.
CREATE FUNCTION audit_trail._row_settings(target regclass)
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

-- The live row's json and jsonb columns with the values of their secret keys
-- redacted, as capture redacts them (API §9): keys matching the table's
-- stored patterns (the setting's for a table that is not audited), unless
-- audit_trail.redact_json_keys is off. SECURITY DEFINER to read the stored
-- patterns; it only takes values away from what it is given.
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

-- The row as it was at an instant: the live row, with every change recorded
-- after that instant undone, newest first. Columns are shown as the trail
-- shows them: redacted ones as "[REDACTED]", bytea as "[BINARY DATA]",
-- excluded ones not at all.
CREATE FUNCTION audit_trail.row_as_of(target regclass, entity_id text, at timestamptz)
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

-- For applications that query with their own WHERE. security_invoker: the
-- caller's SELECT on audit_trail.events is what counts, as for the functions.
CREATE VIEW audit_trail.log WITH (security_invoker = true) AS
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

CREATE VIEW audit_trail.changes WITH (security_invoker = true) AS
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
