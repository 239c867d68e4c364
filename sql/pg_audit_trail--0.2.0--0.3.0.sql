-- pg_audit_trail 0.2.0 -> 0.3.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.3.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.3.0'" to load this file. \quit

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.3.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION audit_trail._after_ddl(oid[],text[],oid[]);

-- removed
DROP FUNCTION audit_trail._trigger_names();

-- new
CREATE  FUNCTION "_refuse_if_settings_moved"(
	"rels" oid[]
) RETURNS void
VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'refuse_if_settings_moved_wrapper';

-- new
CREATE  FUNCTION "_stash_partitions"(
	"partitions" jsonb
) RETURNS void
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'stash_partitions_wrapper';

-- new
CREATE  FUNCTION "_stashed_partitions"() RETURNS jsonb
STRICT VOLATILE 
LANGUAGE c
AS 'MODULE_PATHNAME', 'stashed_partitions_wrapper';

-- changed
CREATE OR REPLACE FUNCTION audit_trail._audited_root(rel regclass) RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- rel and its partition ancestors (topmost last), each looked up in
    -- config by its key: the cost does not grow with the number of audited
    -- tables.
    SELECT c.relid
    FROM (SELECT rel::oid AS r, 0::bigint AS ord
          UNION ALL
          SELECT a.relid::oid, a.ord FROM pg_partition_ancestors(rel) WITH ORDINALITY AS a(relid, ord)) x
    JOIN audit_trail.config c ON c.relid = x.r::regclass
    ORDER BY x.ord DESC
    LIMIT 1;
$$;

-- new
CREATE FUNCTION audit_trail._trigger_action_bit(action text) RETURNS int
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE upper(action) WHEN 'INSERT' THEN 4 WHEN 'DELETE' THEN 8 WHEN 'UPDATE' THEN 16 WHEN 'TRUNCATE' THEN 32 END $$;

-- new
CREATE FUNCTION audit_trail._is_capture_trigger(g pg_trigger, act text, row_level boolean) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT g.tgfoid = 'audit_trail.capture()'::regprocedure
       AND (g.tgtype::int & 1 = 1) = row_level
       AND g.tgtype::int & (2 | 64) = 0
       AND g.tgtype::int & coalesce(audit_trail._trigger_action_bit(act), 0) <> 0
       AND g.tgqual IS NULL AND cardinality(g.tgattr::int2[]) = 0
       AND (row_level OR upper(act) = 'TRUNCATE'
            OR ((upper(act) = 'DELETE' OR g.tgnewtable IS NOT NULL)
                AND (upper(act) = 'INSERT' OR g.tgoldtable IS NOT NULL)))
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._install_triggers(target regclass, actions text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    act text;
    row_level boolean;
    trg text;
BEGIN
    FOR r IN
        SELECT x.rel, k.relkind, x.lvl
        FROM (SELECT target AS rel, -1 AS lvl
              UNION ALL
              SELECT t.relid, t.level FROM pg_partition_tree(target) t WHERE t.relid <> target) x
        JOIN pg_class k ON k.oid = x.rel
        ORDER BY x.lvl, x.rel::oid
    LOOP
        IF r.relkind = 'f' THEN
            RAISE WARNING 'pg_audit_trail cannot capture changes to foreign table %, a partition of %', r.rel,
                    (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = r.rel)
                USING DETAIL = 'Its rows are stored by another server; no trigger sees every change to them.',
                      HINT = 'audit_trail.check() lists it.';
            CONTINUE;
        END IF;
        FOREACH act IN ARRAY actions LOOP
            FOREACH row_level IN ARRAY CASE WHEN upper(act) = 'TRUNCATE' OR r.relkind = 'p' THEN ARRAY[false]
                                            ELSE ARRAY[false, true] END LOOP
                -- Ours, of this action and level, AFTER, for every row and column.
                CONTINUE WHEN EXISTS (
                    SELECT 1 FROM pg_trigger g
                    WHERE g.tgrelid = r.rel AND audit_trail._is_capture_trigger(g, act, row_level));
                trg := 'audit_trail_' || lower(act) || CASE WHEN row_level THEN '_replica' ELSE '' END;
                IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = r.rel AND g.tgname = trg) THEN
                    RAISE EXCEPTION 'trigger "%" on table % is not the capture trigger pg_audit_trail needs for % % there',
                            trg, r.rel, act, CASE WHEN row_level THEN 'by logical replication' ELSE 'statements' END
                        USING ERRCODE = 'duplicate_object',
                              DETAIL = 'pg_audit_trail recognises its triggers by their function and shape, not by name; this one has its name.',
                              HINT = 'Drop or rename that trigger, then call audit_trail.enable() again.';
                END IF;
                IF row_level THEN
                    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW EXECUTE FUNCTION audit_trail.capture()',
                                   trg, act, r.rel);
                    EXECUTE format('ALTER TABLE %s ENABLE REPLICA TRIGGER %I', r.rel, trg);
                ELSE
                    EXECUTE format(
                        'CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION audit_trail.capture()',
                        trg, act, r.rel,
                        CASE upper(act)
                            WHEN 'INSERT' THEN 'REFERENCING NEW TABLE AS audit_trail_new'
                            WHEN 'UPDATE' THEN 'REFERENCING OLD TABLE AS audit_trail_old NEW TABLE AS audit_trail_new'
                            WHEN 'DELETE' THEN 'REFERENCING OLD TABLE AS audit_trail_old'
                            ELSE '' END);
                    -- Each made trigger is put in its state at once: the DDL
                    -- event trigger must never see one of ours in another.
                    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', r.rel, trg);
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._remove_triggers(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT t.tgrelid::regclass AS rel, t.tgname
        FROM pg_trigger t
        WHERE t.tgfoid = 'audit_trail.capture()'::regprocedure
          AND t.tgparentid = 0
          AND t.tgrelid IN (SELECT target UNION SELECT relid FROM pg_partition_tree(target))
        ORDER BY t.tgrelid, t.tgname
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    END LOOP;
END
$$;

-- return type, argument names or defaults changed
DROP FUNCTION audit_trail._sync_names(regclass);
CREATE FUNCTION audit_trail._sync_names(only_rel regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    at timestamptz := clock_timestamp();
BEGIN
    FOR r IN
        SELECT c.relid, format('%I.%I', n.nspname, k.relname) AS name
        FROM audit_trail.config c
        JOIN pg_class k ON k.oid = c.relid
        JOIN pg_namespace n ON n.oid = k.relnamespace
        WHERE c.relid = only_rel
        FOR UPDATE OF c
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM audit_trail.table_names t
                              WHERE t.relid = r.relid AND t.entity_type = r.name AND t.valid_until IS NULL);
        UPDATE audit_trail.table_names SET valid_until = at WHERE relid = r.relid AND valid_until IS NULL;
        INSERT INTO audit_trail.table_names VALUES (r.relid, r.name, at, NULL);
    END LOOP;
END
$$;

-- new
CREATE FUNCTION audit_trail._settle_triggers(target regclass, actions text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT g.tgrelid::regclass AS rel, g.tgname
        FROM audit_trail._relation_tree(target) r JOIN pg_trigger g ON g.tgrelid = r
        WHERE g.tgfoid = 'audit_trail.capture()'::regprocedure AND g.tgparentid = 0
          AND NOT EXISTS (SELECT 1 FROM unnest(actions) a
                          WHERE g.tgtype::int & audit_trail._trigger_action_bit(a) <> 0)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
    PERFORM audit_trail._install_triggers(target, actions);
    FOR t IN
        SELECT g.tgrelid::regclass AS rel, g.tgname, audit_trail._own_trigger_state(g.tgfoid, g.tgtype) AS want
        FROM audit_trail._relation_tree(target) r JOIN pg_trigger g ON g.tgrelid = r
        WHERE g.tgfoid = 'audit_trail.capture()'::regprocedure
          AND g.tgenabled <> audit_trail._own_trigger_state(g.tgfoid, g.tgtype)
    LOOP
        EXECUTE format('ALTER TABLE %s %s TRIGGER %I', t.rel, audit_trail._trigger_state_name(t.want), t.tgname);
    END LOOP;
END
$$;

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
CREATE FUNCTION audit_trail._ddl_subcommands(pg_ddl_command) RETURNS jsonb
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'audit_trail_ddl_subcommands';

-- new
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

-- new
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

-- new
CREATE FUNCTION audit_trail._trigger_state_name("char") RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE $1 WHEN 'O' THEN 'ENABLE' WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                     WHEN 'D' THEN 'DISABLE' END $$;

-- new
CREATE FUNCTION audit_trail._rows_estimate(rel regclass) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(greatest(k.reltuples::bigint, pg_stat_get_live_tuples(k.oid), 0)), 0)::bigint
    FROM audit_trail._relation_tree(rel) t JOIN pg_class k ON k.oid = t
    WHERE k.relkind <> 'p'
$$;

-- new
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

-- new
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

-- new
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

-- new
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

-- new
CREATE FUNCTION audit_trail._capture_ok(target regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT audit_trail._unsafe_shape(c.relid, c.relid) IS NULL
       AND NOT EXISTS (SELECT 1 FROM audit_trail._relation_tree(c.relid) x,
                       LATERAL audit_trail._capture_problems(x, c.actions))
    FROM audit_trail.config c WHERE c.relid = target
$$;

-- new
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
    FOR i IN 1 .. least(cardinality(now_cols), cardinality(cfg.columns)) LOOP
        old_name := cfg.columns[i];
        new_name := now_cols[i];
        IF old_name IS NOT NULL AND new_name IS NOT NULL AND old_name <> new_name
           AND array_position(now_cols, old_name) IS NULL THEN
            cfg.redact := array_replace(cfg.redact, old_name, new_name);
            cfg.exclude := array_replace(cfg.exclude, old_name, new_name);
            cfg.key_columns := array_replace(cfg.key_columns, old_name, new_name);
            IF cfg.label_column = old_name THEN
                cfg.label_column := new_name;
            END IF;
        END IF;
    END LOOP;
    UPDATE audit_trail.config
    SET redact = cfg.redact, exclude = cfg.exclude, key_columns = cfg.key_columns,
        label_column = cfg.label_column, columns = now_cols
    WHERE relid = cfg.relid;
    PERFORM audit_trail._invalidate(cfg.relid);
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM audit_trail._after_ddl(ARRAY(
        SELECT audit_trail._ddl_subcommands(d.command) FROM pg_catalog.pg_event_trigger_ddl_commands() d));
END
$$;

-- new
CREATE FUNCTION audit_trail._after_ddl(described jsonb[]) RETURNS void
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
BEGIN
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

-- new
CREATE FUNCTION audit_trail._entity_name(rel regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, k.relname)
    FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE k.oid = rel
$$;

-- new
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

-- new
CREATE FUNCTION audit_trail._on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM audit_trail._before_drop(TG_TAG);
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
                jsonb_build_object('command', 'DROP TABLE', 'partition', d.object_identity,
                                   'rows_estimate', stash -> 'partitions' -> d.objid::text -> 'rows_estimate'),
                NULL);
        END IF;
    END LOOP;
END
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._partition_bounds()
RETURNS TABLE(partition regclass, range_start timestamptz, range_end timestamptz, archived boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
    SELECT k.oid::regclass,
           (regexp_match(pg_get_expr(k.relpartbound, k.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (regexp_match(pg_get_expr(k.relpartbound, k.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz,
           false
    FROM pg_inherits i
    JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = 'audit_trail.events'::regclass
      AND pg_get_expr(k.relpartbound, k.oid) <> 'DEFAULT';
$$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._create_partition(range_start timestamptz, range_end timestamptz)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    name text := 'events_p' || to_char(range_start AT TIME ZONE 'UTC', 'YYYYMMDD');
    rel regclass;
BEGIN
    EXECUTE format('CREATE TABLE audit_trail.%I (LIKE audit_trail.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    rel := format('audit_trail.%I', name)::regclass;
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', rel);
    LOCK TABLE audit_trail.events_default IN EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM audit_trail.events_default
               WHERE occurred_at >= range_start AND occurred_at < range_end) THEN
        EXECUTE format('INSERT INTO %s SELECT * FROM audit_trail.events_default
                        WHERE occurred_at >= $1 AND occurred_at < $2', rel)
            USING range_start, range_end;
        PERFORM audit_trail._trim_default(range_start, range_end);
    END IF;
    PERFORM audit_trail._index_partition(rel);
    EXECUTE format('ALTER TABLE audit_trail.events ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   rel, range_start, range_end);
    PERFORM audit_trail._guard_table(rel);
    RETURN rel;
END
$$;

-- new
CREATE FUNCTION audit_trail._lock_maintenance() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ LOCK TABLE audit_trail.archived_partitions IN SHARE ROW EXCLUSIVE MODE $$;

-- changed
CREATE OR REPLACE FUNCTION audit_trail._premake()
RETURNS TABLE(action text, partition text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := audit_trail._partition_interval_kind();
    ahead int := audit_trail._setting('audit_trail.premake')::int;
    last_end timestamptz;
    start_at timestamptz;
    goal timestamptz;
BEGIN
    goal := audit_trail._period_after(now(), kind, ahead + 1);
    SELECT max(b.range_end) INTO last_end FROM audit_trail._partition_bounds() b;
    IF last_end >= goal THEN
        RETURN;
    END IF;
    PERFORM audit_trail._lock_maintenance();
    SELECT max(b.range_end) INTO last_end FROM audit_trail._partition_bounds() b;
    start_at := audit_trail._period_start(now(), kind);
    IF last_end IS NOT NULL AND last_end > start_at THEN
        start_at := last_end;
    END IF;
    goal := audit_trail._period_after(now(), kind, ahead + 1);
    WHILE start_at < goal LOOP
        action := 'created';
        partition := audit_trail._create_partition(start_at, audit_trail._period_after(start_at, kind))::text;
        RETURN NEXT;
        start_at := audit_trail._period_after(start_at, kind);
    END LOOP;
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
    PERFORM audit_trail._write_system_event('MAINTENANCE', 'audit_trail.events',
        jsonb_build_object('done', done, 'partition_interval', audit_trail._setting('audit_trail.partition_interval'),
                           'premake', audit_trail._setting('audit_trail.premake')::int,
                           'retention', audit_trail._setting('audit_trail.retention'), 'archive', archive,
                           'capture_problems', problems));
END
$$;


-- Event triggers: one more (before DROP and trigger DDL), more tags, all fire ALWAYS.
DROP EVENT TRIGGER audit_trail_ddl_end;
CREATE EVENT TRIGGER audit_trail_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP FOREIGN TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TRIGGER')
    EXECUTE FUNCTION audit_trail._on_ddl_start();
CREATE EVENT TRIGGER audit_trail_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER SCHEMA',
                 'ALTER INDEX', 'ALTER TYPE', 'ALTER TRIGGER', 'CREATE TRIGGER', 'CREATE SCHEMA',
                 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION audit_trail._on_ddl_end();
ALTER EVENT TRIGGER audit_trail_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER audit_trail_ddl_end ENABLE ALWAYS;
ALTER EVENT TRIGGER audit_trail_sql_drop ENABLE ALWAYS;

-- tracked gains capture_ok.
CREATE OR REPLACE VIEW audit_trail.tracked AS
SELECT c.relid AS table_name,
       audit_trail._effective_redact(c.relid, c.redact, c.redact_patterns) AS redact,
       c.exclude,
       coalesce(c.key_columns, audit_trail._key_columns(c.relid)) AS key_columns,
       c.label_column,
       c.actions,
       c.enabled_at,
       c.enabled_by,
       audit_trail._capture_ok(c.relid) AS capture_ok
FROM audit_trail.config c;
COMMENT ON VIEW audit_trail.tracked IS 'Audited tables and their effective settings.';

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

-- Audited tables get what 0.3.0 gives them: the row-level capture triggers
-- for logical replication, every capture trigger in its state.
SELECT audit_trail._settle_triggers(c.relid, c.actions)
FROM audit_trail.config c
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid = c.relid)
ORDER BY c.relid::oid;
