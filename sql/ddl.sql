-- Keeping capture whole through DDL (API §8): what DDL may not do to an
-- audited table, what it does that the trail records, and what follows from
-- it (new partitions audited, detached ones released, names and renamed
-- columns followed).
--
-- Event triggers fire ENABLE ALWAYS: a session_replication_role = replica
-- session is no way around them. They act on what the command did, read
-- from pg_event_trigger_ddl_commands() and the catalog afterwards, so a
-- trigger is recognised by its function, whatever it is called.

-- Kept for 0.1.0/0.2.0 objects: the C symbol stays in the library.
CREATE FUNCTION audit_trail._attached_partitions(pg_ddl_command) RETURNS oid[]
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'audit_trail_attached_partitions';

-- The subcommands of one collected command, as jsonb (src/ddl.rs). A name
-- in ATTACH/DETACH PARTITION resolves as the caller's search_path says: it
-- is called by the event trigger, as the user who ran the DDL, with the
-- DDL's search_path ("$user" included).
CREATE FUNCTION audit_trail._ddl_subcommands(pg_ddl_command) RETURNS jsonb
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'audit_trail_ddl_subcommands';

-- A table and, when it is partitioned, all its partitions at every level,
-- from pg_inherits: unlike pg_partition_tree() it locks nothing (DDL on one
-- table must not wait for another's locks) and includes a plain table.
CREATE FUNCTION audit_trail._relation_tree(rel regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE t(r) AS (
        SELECT rel::oid
        UNION
        SELECT i.inhrelid FROM t JOIN pg_inherits i ON i.inhparent = t.r
        JOIN pg_class k ON k.oid = i.inhrelid AND k.relispartition)
    SELECT r::regclass FROM t
$$;


-- The state each of pg_audit_trail's triggers must be in: capture at
-- statement level and the guards fire ALWAYS; capture's row-level triggers
-- (for logical replication's apply worker) fire in REPLICA mode only.
-- NULL: not one of ours.
CREATE FUNCTION audit_trail._own_trigger_state(tgfoid oid, tgtype int2) RETURNS "char"
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN tgfoid = 'audit_trail.capture()'::regprocedure THEN
            CASE WHEN tgtype::int & 1 = 1 THEN 'R' ELSE 'A' END::"char"
        WHEN tgfoid = 'audit_trail._guard()'::regprocedure THEN 'A'::"char"
    END
$$;

CREATE FUNCTION audit_trail._trigger_state_name("char") RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE $1 WHEN 'O' THEN 'ENABLE' WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                     WHEN 'D' THEN 'DISABLE' END $$;

-- Rows of a table (a partitioned one: of all its leaves), as far as the
-- statistics know: for PARTITION_* events.
CREATE FUNCTION audit_trail._rows_estimate(rel regclass) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(greatest(k.reltuples::bigint, pg_stat_get_live_tuples(k.oid), 0)), 0)::bigint
    FROM audit_trail._relation_tree(rel) t JOIN pg_class k ON k.oid = t
    WHERE k.relkind <> 'p'
$$;

-- Tables joined to rel by plain inheritance (not partitioning), either way.
CREATE FUNCTION audit_trail._inheritance_of(rel regclass) RETURNS TABLE(other regclass, is_parent boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.inhparent::regclass, true FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhrelid = rel AND NOT k.relispartition
    UNION ALL
    SELECT i.inhrelid::regclass, false FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = rel AND NOT k.relispartition
$$;

-- Why capture of rel (audited itself, or a partition of the audited root)
-- cannot be guaranteed, or NULL: the shapes §8 refuses.
CREATE FUNCTION audit_trail._unsafe_shape(rel regclass, root regclass) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k pg_class;
    o record;
    parent regclass;
BEGIN
    SELECT * INTO k FROM pg_class WHERE oid = rel;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF k.relpersistence = 't' THEN
        RETURN format('%s is a temporary table', rel);
    END IF;
    SELECT * INTO o FROM audit_trail._inheritance_of(rel) LIMIT 1;
    IF FOUND THEN
        RETURN format('%s %s %s (table inheritance): changes made through %s are not captured',
                      rel, CASE WHEN o.is_parent THEN 'inherits from' ELSE 'is inherited by' END, o.other,
                      CASE WHEN o.is_parent THEN o.other::text ELSE 'it' END);
    END IF;
    IF rel = root AND k.relispartition THEN
        parent := (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = rel);
        IF audit_trail._audited_root(parent) IS NOT NULL THEN
            RETURN format('%s is audited on its own and is a partition of %s, which is audited too', rel, parent);
        END IF;
        RETURN format('%s is audited and is a partition of %s, which is not: changes made through %s are not captured',
                      rel, parent, parent);
    END IF;
    RETURN NULL;
END
$$;

-- What is wrong with the capture of one table governed by an audited table
-- (the table itself or one of its partitions) whose actions are `actions`.
CREATE FUNCTION audit_trail._capture_problems(rel regclass, actions text[]) RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char" := (SELECT relkind FROM pg_class WHERE oid = rel);
    act text;
    t record;
BEGIN
    IF kind = 'f' THEN
        RETURN NEXT 'foreign table partition: changes to its rows cannot be captured';
        RETURN;
    END IF;
    FOREACH act IN ARRAY actions LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger g
                       WHERE g.tgrelid = rel AND audit_trail._is_capture_trigger(g, act, false)) THEN
            RETURN NEXT format('no capture trigger for %s', act);
        END IF;
        -- Row-level ones for logical replication: on each table that holds
        -- rows (a partitioned table holds none).
        IF act <> 'TRUNCATE' AND kind <> 'p'
           AND NOT EXISTS (SELECT 1 FROM pg_trigger g
                           WHERE g.tgrelid = rel AND audit_trail._is_capture_trigger(g, act, true)) THEN
            RETURN NEXT format('no capture trigger for %s by logical replication', act);
        END IF;
    END LOOP;
    FOR t IN
        SELECT g.tgname FROM pg_trigger g
        WHERE g.tgrelid = rel AND g.tgfoid = 'audit_trail.capture()'::regprocedure
          AND NOT EXISTS (SELECT 1 FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) a, unnest(ARRAY[false, true]) l
                          WHERE audit_trail._is_capture_trigger(g, a, l))
        ORDER BY g.tgname
    LOOP
        RETURN NEXT format('trigger %I calls audit_trail.capture() but is not one of its capture triggers (WHEN, UPDATE OF, BEFORE or missing transition tables)', t.tgname);
    END LOOP;
    FOR t IN
        SELECT g.tgname, g.tgenabled, audit_trail._own_trigger_state(g.tgfoid, g.tgtype) AS want
        FROM pg_trigger g
        WHERE g.tgrelid = rel AND g.tgfoid = 'audit_trail.capture()'::regprocedure
          AND g.tgenabled <> audit_trail._own_trigger_state(g.tgfoid, g.tgtype)
        ORDER BY g.tgname
    LOOP
        RETURN NEXT format('capture trigger %I is %s, not %s', t.tgname,
                           audit_trail._trigger_state_name(t.tgenabled), audit_trail._trigger_state_name(t.want));
    END LOOP;
END
$$;

-- Everything that is not as it should be for capture to be whole (§8).
CREATE FUNCTION audit_trail.check() RETURNS TABLE(table_name regclass, problem text)
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
COMMENT ON FUNCTION audit_trail.check() IS
  'One row per thing that keeps capture from being whole; empty when all is well.';

-- Whether capture of one audited table is whole (tracked.capture_ok).
-- SECURITY DEFINER: every role may read tracked, not audit_trail.config.
CREATE FUNCTION audit_trail._capture_ok(target regclass) RETURNS boolean
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._unsafe_shape(c.relid, c.relid) IS NULL
       AND NOT EXISTS (SELECT 1 FROM audit_trail._relation_tree(c.relid) x,
                       LATERAL audit_trail._capture_problems(x, c.actions))
    FROM audit_trail.config c WHERE c.relid = target
$$;

-- RENAME COLUMN (directly, or through ALTER TYPE ... RENAME ATTRIBUTE
-- CASCADE, or recursing from a partitioned table to its partitions): same
-- attnum, new name, the old name gone. ADD COLUMN (directly, or ALTER TYPE
-- ... ADD ATTRIBUTE CASCADE): a new attnum. The table's settings follow at
-- once, in every session (relcache invalidation). Redaction and reveal
-- follow each column as _columns_then recognises it (a column added is
-- matched against the stored patterns, by _redacted); the columns of those
-- lists that are gone are left out of them.
CREATE FUNCTION audit_trail._sync_columns(rel regclass) RETURNS void
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

-- The event trigger proper (src/ddl_end.rs) runs as whoever runs the DDL,
-- with the DDL's search_path (a name in ATTACH/DETACH PARTITION must resolve
-- as it did there): it describes the commands, keeps the description in
-- backend memory and calls _after_ddl, which does the work as the
-- extension's owner. _after_ddl takes no arguments and refuses to run
-- unless that trigger called it, so nobody can make it act on made-up
-- commands, not even from inside their own DDL.
CREATE FUNCTION audit_trail._on_ddl_end() RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_trail_on_ddl_end';

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

-- The name events give a table: format('%I.%I', schema, table).
CREATE FUNCTION audit_trail._entity_name(rel regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, k.relname)
    FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = rel
$$;

-- Before a DROP: which tables are partitions of which audited table, for
-- PARTITION_DROPPED (once dropped, a table's partition bound is gone), or
-- (DROP TRIGGER) which triggers are pg_audit_trail's. Kept in backend memory (src/ddl.rs)
-- for the sql_drop trigger of the same command.
CREATE FUNCTION audit_trail._before_drop(tag text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM audit_trail._stash_partitions(jsonb_build_object(
        -- DROP TABLE and the like: partitions of audited tables, their
        -- audited table and rows (statistics only: no table is read)
        'partitions', CASE WHEN tag <> 'DROP TRIGGER' THEN coalesce((
            SELECT jsonb_object_agg(t.relid::oid::text, jsonb_build_object(
                       'root', audit_trail._entity_name(c.relid), 'partition', t.relid::text,
                       'rows_estimate', greatest(p.reltuples::bigint, pg_stat_get_live_tuples(p.oid), 0)))
            FROM audit_trail.config c
            JOIN pg_class k ON k.oid = c.relid AND k.relkind = 'p'
            CROSS JOIN LATERAL audit_trail._relation_tree(c.relid) t(relid)
            JOIN pg_class p ON p.oid = t.relid
            WHERE t.relid <> c.relid), '{}') ELSE '{}' END,
        -- DROP TRIGGER: pg_audit_trail's triggers by oid (a dropped trigger
        -- is known by its oid only)
        'triggers', CASE WHEN tag = 'DROP TRIGGER' THEN coalesce((
            SELECT jsonb_object_agg(g.oid::text, jsonb_build_object(
                       'rel', g.tgrelid, 'name', g.tgname, 'tgtype', g.tgtype,
                       'guard', g.tgfoid = 'audit_trail._guard()'::regprocedure))
            FROM pg_trigger g
            WHERE g.tgfoid IN ('audit_trail.capture()'::regprocedure, 'audit_trail._guard()'::regprocedure)), '{}')
            ELSE '{}' END));
END
$$;

CREATE FUNCTION audit_trail._on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM audit_trail._before_drop(TG_TAG);
END
$$;

-- DROP TABLE: the triggers go with the table, the events stay; the table's
-- settings are removed and the end of its auditing is recorded. DROP
-- TRIGGER of a capture trigger or guard (recognised by its oid, noted by
-- _before_drop: once dropped, its function is gone) is refused.
CREATE FUNCTION audit_trail._on_sql_drop() RETURNS event_trigger
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

-- Every DROP that can take a table with it: by name, through a schema or
-- an owner, or by CASCADE from what a partition key, a column type or a
-- foreign table depends on (DROP FUNCTION f CASCADE drops a partition whose
-- key calls f).
CREATE EVENT TRIGGER audit_trail_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP FOREIGN TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TRIGGER',
                 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE', 'DROP TYPE', 'DROP DOMAIN',
                 'DROP COLLATION', 'DROP OPERATOR', 'DROP OPERATOR CLASS', 'DROP OPERATOR FAMILY',
                 'DROP EXTENSION', 'DROP SERVER', 'DROP FOREIGN DATA WRAPPER', 'DROP ACCESS METHOD',
                 'DROP LANGUAGE')
    EXECUTE FUNCTION audit_trail._on_ddl_start();

CREATE EVENT TRIGGER audit_trail_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER SCHEMA',
                 'ALTER INDEX', 'ALTER TYPE', 'ALTER TRIGGER', 'CREATE TRIGGER', 'CREATE SCHEMA',
                 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION audit_trail._on_ddl_end();

CREATE EVENT TRIGGER audit_trail_sql_drop ON sql_drop
    EXECUTE FUNCTION audit_trail._on_sql_drop();

-- Audited tables, their effective settings, and whether capture is whole.
CREATE VIEW audit_trail.tracked AS
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

-- A session_replication_role = replica session must not slip past them.
ALTER EVENT TRIGGER audit_trail_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER audit_trail_ddl_end ENABLE ALWAYS;
ALTER EVENT TRIGGER audit_trail_sql_drop ENABLE ALWAYS;
