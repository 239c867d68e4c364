-- pg_audit_trail 0.4.0 -> 0.5.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.5.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.5.0'" to load this file. \quit

-- Tables, columns, indexes and data first (what build_update lists as
-- leftovers), then what exists per partition, per archived partition or per
-- audited table. Each feature's part has its own section below; keep them in
-- the order the functions that follow need them.

-- @TABLES@ (none yet)

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
-- partition of the log: actors, request_id, txid. Built here, one partition
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
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (lower(actor), id) WITH (deduplicate_items = off)',
                       p.name || '_actor', p.rel);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (request_id, id) WITH (deduplicate_items = off) '
                       'WHERE request_id IS NOT NULL', p.name || '_request', p.rel);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING brin (txid) WITH (pages_per_range = 32, autosummarize = on)',
                       p.name || '_txid', p.rel);
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
    -- The filters of search() that a newest-first scan cannot serve
    -- (API §12). An actor's events, newest first, without reading
    -- everyone's: actors match whatever the case, hence lower(actor).
    EXECUTE format('CREATE INDEX %I ON %s (lower(actor), id) WITH (deduplicate_items = off)', name || '_actor', rel);
    -- A request's events: only events that carry a request id pay for it.
    EXECUTE format('CREATE INDEX %I ON %s (request_id, id) WITH (deduplicate_items = off) '
                   'WHERE request_id IS NOT NULL', name || '_request', rel);
    -- A transaction's events. Transaction ids grow with the log, so a block
    -- range index finds them for almost nothing per write.
    EXECUTE format('CREATE INDEX %I ON %s USING brin (txid) WITH (pages_per_range = 32, autosummarize = on)',
                   name || '_txid', rel);
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
CREATE  FUNCTION "_log_read"(
	"action" TEXT,
	"details" jsonb,
	"tenant" TEXT
) RETURNS bigint
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'log_read_for_tenant_wrapper';

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
CREATE FUNCTION audit_trail._history(target regclass, entity_id text)
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
        FROM unnest(ARRAY[canonical, _history.entity_id]) k
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
    life := ARRAY(SELECT h FROM audit_trail._history(target, entity_id) h ORDER BY h.id DESC);
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
    IF audit_trail._log_reads_all() THEN
        PERFORM audit_trail._log_read('AUDIT_LOG_ACCESSED',
            jsonb_build_object('function', 'row_as_of', 'target', target::text, 'entity_id', entity_id, 'at', at));
    END IF;
    RETURN state;
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
            EXECUTE format('SELECT count(*) FROM %s', p.partition) INTO n;
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

-- Views.
CREATE VIEW audit_trail.archived_events WITH (security_barrier = true) AS
SELECT a.id, a.occurred_at, a.txid, a.action, a.entity_type, a.entity_id, a.entity_label, a.before, a.after,
       a.changed, a.details, a.actor, a.db_user, a.client_ip, a.user_agent, a.service, a.tenant, a.request_id,
       a.statement, a.operation
FROM audit_trail._archived a
WHERE audit_trail._may_read_events();
COMMENT ON VIEW audit_trail.archived_events IS
  'Events of archived partitions (schema audit_trail_archive), for whoever may read audit_trail.events.';

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
                          audit_trail._history(regclass, text),
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
