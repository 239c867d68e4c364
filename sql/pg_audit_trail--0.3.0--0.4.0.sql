-- pg_audit_trail 0.3.0 -> 0.4.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- No table or column changes: export now follows the columns of
-- audit_trail.events (one definition of the event row), through three new
-- helpers. Events, settings and partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.4.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.4.0'" to load this file. \quit

-- Functions: new and changed (same signature: replaced in place).
-- Their text is the 0.4.0 install script's (sql/query.sql).
-- new
CREATE FUNCTION audit_trail._export_columns()
RETURNS TABLE(name text, csv text, json text)
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
                          audit_trail._row_settings(regclass),
                          audit_trail._contains_bytea(oid),
                          audit_trail._key_columns(regclass),
                          audit_trail._columns(regclass),
                          audit_trail._effective_redact(regclass, text[], text[]),
                          audit_trail._log_read(text, jsonb),
                          audit_trail._log_reads_all(),
                          audit_trail._log_reads_export(),
                          audit_trail._setting(text)
   TO PUBLIC;
-- set_context() runs as its caller and asks this harmless question.
GRANT EXECUTE ON FUNCTION audit_trail._in_transaction_block() TO PUBLIC;
-- The DDL event triggers run as whoever runs the DDL. _after_ddl reads the
-- command from pg_event_trigger_ddl_commands() (it answers only inside the
-- event trigger) and _before_drop only notes what the catalog says now, so
-- neither can be made to record anything that did not happen.
GRANT EXECUTE ON FUNCTION audit_trail._after_ddl(jsonb[]), audit_trail._before_drop(text) TO PUBLIC;
-- _on_ddl_end describes the command as the user who ran it (names resolve
-- as they did for the command); a pg_ddl_command exists only there.
GRANT EXECUTE ON FUNCTION audit_trail._ddl_subcommands(pg_ddl_command) TO PUBLIC;
-- Whether capture is whole is no secret either (tracked.capture_ok).
GRANT EXECUTE ON FUNCTION audit_trail.check() TO PUBLIC;
