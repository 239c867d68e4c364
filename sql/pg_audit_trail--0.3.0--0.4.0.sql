-- pg_audit_trail 0.3.0 -> 0.4.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- One definition of the event row (export follows the log's columns); the
-- new column operation (API §9): INSERT/UPDATE/DELETE/TRUNCATE for captured
-- row events, NULL for every other event, which readers of rows use; the
-- DDL event trigger hands its commands to _after_ddl through backend memory
-- (no argument anyone could make up); tracked readable by every role again.
-- Events, settings and partitions are kept; tests/integration/11_upgrade.sh
-- checks that, and that the result has every object exactly as a fresh 0.4.0
-- install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.4.0'" to load this file. \quit

-- The new column, last (as a fresh install has it): instant, no rewrite.
-- Partitions get it with the parent; archived partitions (detached) keep
-- their old shape. This is the one command here the DDL event trigger
-- sees, so it runs first, under the 0.3.0 functions.
ALTER TABLE audit_trail.events ADD COLUMN operation text;

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.4.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION audit_trail._after_ddl(jsonb[]);

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

-- changed
CREATE OR REPLACE FUNCTION audit_trail._enable(
    target regclass, redact text[], exclude text[], key_columns text[],
    label_column text, actions text[], patterns text[], caller oid
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
                         || CASE WHEN label_column IS NULL THEN '{}'::text[] ELSE ARRAY[label_column] END LOOP
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

    INSERT INTO audit_trail.config AS c
        (relid, redact, redact_patterns, exclude, key_columns, label_column, actions, columns,
         enabled_at, enabled_by)
    VALUES (target, coalesce(redact, '{}'), coalesce(patterns, '{}'), coalesce(exclude, '{}'),
            key_columns, label_column, acts, audit_trail._columns_by_attnum(target),
            now(), session_user)
    ON CONFLICT (relid) DO UPDATE SET
        redact = EXCLUDED.redact, redact_patterns = EXCLUDED.redact_patterns,
        exclude = EXCLUDED.exclude, key_columns = EXCLUDED.key_columns,
        label_column = EXCLUDED.label_column, actions = EXCLUDED.actions,
        columns = EXCLUDED.columns, enabled_at = EXCLUDED.enabled_at,
        enabled_by = EXCLUDED.enabled_by
    RETURNING * INTO cfg;

    SELECT array_agg(c ORDER BY o) INTO by_pattern
    FROM unnest(cols) WITH ORDINALITY AS t(c, o)
    WHERE NOT c = ANY (cfg.redact)
      AND EXISTS (SELECT 1 FROM unnest(cfg.redact_patterns) p WHERE strpos(lower(c), p) > 0);
    IF by_pattern IS NOT NULL THEN
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

    -- The live row, rendered as the trail renders it.
    EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE %s', target,
                   CASE WHEN cardinality(keys) = 1
                        THEN format('%I::text = $1', keys[1])
                        ELSE format('jsonb_build_array(%s) = $1::jsonb',
                                    (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) k)) END)
        INTO live USING entity_id;
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
        FROM audit_trail.history(target, entity_id) h
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
                       AND g.tgfoid <> 'audit_trail._guard()'::regprocedure) AS posing
              INTO t FROM pg_trigger g WHERE g.oid = cmd.objid;
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
                              WHERE a.atttypid = typ.oid)
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

        -- Shapes that would let changes escape capture (0A000), for the
        -- table and for what it attached.
        FOR part IN
            SELECT rel UNION ALL
            SELECT (s ->> 'relid')::oid::regclass FROM jsonb_array_elements(cmd.subs) s
            WHERE s ->> 'type' = 'ATTACH PARTITION' AND s ? 'relid'
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
        FOR sub IN SELECT s FROM jsonb_array_elements(cmd.subs) s WHERE s ? 'relid' LOOP
            part := (sub ->> 'relid')::oid::regclass;
            IF sub ->> 'type' = 'ATTACH PARTITION' AND root IS NOT NULL THEN
                PERFORM audit_trail._install_triggers(part, actions);
                PERFORM audit_trail._write_event('PARTITION_ATTACHED', audit_trail._entity_name(root), NULL,
                    jsonb_build_object('command', cmd.command_tag, 'partition', part::text,
                                       'rows_estimate', audit_trail._rows_estimate(part)), NULL);
            ELSIF sub ->> 'type' IN ('DETACH PARTITION', 'DETACH PARTITION FINALIZE') AND audit_trail._audited_root(part) IS NULL
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

-- An update from 0.2.0 left this comment out.
COMMENT ON FUNCTION audit_trail.check() IS
  'One row per thing that keeps capture from being whole; empty when all is well.';

-- Views: log gains operation after request_id, as in a fresh install, so it
-- is made anew; changes reads operation instead of action.
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
