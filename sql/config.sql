-- Turning auditing on and off. enable()/disable() are Rust wrappers that take
-- the caller's identity and then run these functions as the extension's
-- owner; nothing here is callable by PUBLIC.

-- The entity key of a table: primary key, else replica identity index.
CREATE FUNCTION audit_trail._key_columns(target regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(a.attname::text ORDER BY k.ord)
    FROM (SELECT i.indkey, i.indisprimary
          FROM pg_index i
          WHERE i.indrelid = target AND (i.indisprimary OR i.indisreplident)
          ORDER BY i.indisprimary DESC
          LIMIT 1) i
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = target AND a.attnum = k.attnum;
$$;

-- Live column names, in column order.
CREATE FUNCTION audit_trail._columns(target regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(attname::text ORDER BY attnum), '{}')
    FROM pg_attribute
    WHERE attrelid = target AND attnum > 0 AND NOT attisdropped;
$$;

-- Names by attnum (NULL for dropped columns), to recognise RENAME COLUMN.
CREATE FUNCTION audit_trail._columns_by_attnum(target regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(CASE WHEN attisdropped THEN NULL ELSE attname::text END ORDER BY attnum), '{}')
    FROM pg_attribute
    WHERE attrelid = target AND attnum > 0;
$$;

-- Each live column of target with the name it had when the settings last
-- followed the table (`columns`: config.columns, names by attnum; '{}' for
-- none): its own name if that was a name then; else, if the name its attnum
-- had then is gone, that name (renamed since, not followed yet); else NULL
-- (a column that appeared since). By name first, so that settings restored
-- by pg_restore, whose attnums may differ, still name the right columns.
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

-- The redacted columns of target, in column order: the one definition
-- (API §9), used by capture (src/meta.rs), enable(), tracked and
-- row_as_of(). Redaction is decided once per column and then follows it:
-- a column the settings knew (`columns`, see _columns_then) is redacted if
-- it was then (its name then is in `redact`), whatever it is called now; a
-- column that appeared since (every column, at enable(), where `columns` is
-- '{}') is redacted if it is named in `redact`, or if its name contains
-- one of `patterns` (case ignored, lower-cased as the setting is:
-- _matches_redact_patterns) and it is not named in `reveal`.
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

-- Whether values of type typ hold values of type used anywhere: typ itself,
-- a domain over it, an array of it, a range or composite containing it
-- (ALTER TYPE ... RENAME VALUE of an enum reaches all of those columns).
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

-- Whether values of a type hold bytea anywhere: bytea itself, a domain over
-- it, an array of it, a range or composite containing it. Such a column is
-- recorded as "[BINARY DATA]" whole.
CREATE FUNCTION audit_trail._contains_bytea(typ oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT audit_trail._type_uses(typ, 'bytea'::regtype) $$;

-- The audited table whose settings govern rel: rel itself, else its topmost
-- audited partition ancestor.
CREATE FUNCTION audit_trail._audited_root(rel regclass) RETURNS regclass
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

-- An action's bit in pg_trigger.tgtype (NULL for anything else).
CREATE FUNCTION audit_trail._trigger_action_bit(action text) RETURNS int
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE upper(action) WHEN 'INSERT' THEN 4 WHEN 'DELETE' THEN 8 WHEN 'UPDATE' THEN 16 WHEN 'TRUNCATE' THEN 32 END $$;

-- Whether g is one of the capture triggers pg_audit_trail installs for
-- `act` at that level: its function, AFTER, for every row and column, no
-- WHEN, and (statement level) the transition tables the action needs.
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

-- The capture triggers (API §8), recognised by their function and shape,
-- whatever their names:
--  * per action, AFTER ... FOR EACH STATEMENT with the action's transition
--    tables (one event per trigger), ENABLE ALWAYS, on the table and on every
--    partition so that DML aimed at a partition directly is captured too:
--    session_replication_role = replica is no way around them;
--  * for INSERT, UPDATE and DELETE, AFTER ... FOR EACH ROW, ENABLE REPLICA:
--    logical replication's apply worker fires row triggers only. They fire
--    in replica mode only, so ordinary sessions do not pay for them. Made on
--    each table that holds rows (not on a partitioned table: PostgreSQL would
--    clone them onto its partitions under their names, so that attaching a
--    table audited on its own would fail on the clash before the DDL event
--    trigger could refuse it properly); partitions made or attached later get
--    them from the DDL event trigger, as they get the statement triggers.
-- Creates only what is missing. A trigger that holds the name we would give
-- but is not the capture trigger we need is an error (42710), not a reason
-- to skip. Foreign-table partitions cannot be captured: skipped, with a
-- WARNING (check() lists them).
CREATE FUNCTION audit_trail._install_triggers(target regclass, actions text[]) RETURNS void
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

-- Every capture trigger on the table and its partitions, whatever its name
-- or level. Any PostgreSQL cloned onto partitions goes with its parent.
CREATE FUNCTION audit_trail._remove_triggers(target regclass) RETURNS void
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

-- Records the current name of an audited table in table_names, closing
-- the previous name at the instant of the change. Called for the tables a
-- command touched only, under the lock that command holds on each, and with
-- the setting row locked: two sessions never both write a current name.
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

-- After enable(): capture triggers of actions not in `actions` dropped
-- (the settings already say so, so the DROP TRIGGER guard lets them go),
-- missing ones made, and every one of pg_audit_trail's triggers on the
-- table and its partitions put back in the state it must have.
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

CREATE FUNCTION audit_trail._check_owner(target regclass, caller oid, verb text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = target AND pg_has_role(caller, relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'must be owner of table % to % auditing', target, verb
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

CREATE FUNCTION audit_trail._settings_json(c audit_trail.config) RETURNS jsonb
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

CREATE FUNCTION audit_trail._disable(target regclass, caller oid) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cfg audit_trail.config;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM audit_trail._check_owner(target, caller, 'disable');
    DELETE FROM audit_trail.config WHERE relid = target RETURNING * INTO cfg;
    -- Stray triggers go in any case; a table that was not audited records
    -- no AUDIT_DISABLED event (NULL tells the caller so).
    PERFORM audit_trail._remove_triggers(target);
    PERFORM audit_trail._invalidate(target);
    IF cfg.relid IS NULL THEN
        RAISE NOTICE 'table % is not audited', target;
        RETURN NULL;
    END IF;
    RETURN audit_trail._settings_json(cfg);
END
$$;

-- The trail shaped like the product (API §11). Tenant column and columns
-- always included: enable()'s last two arguments, set by its Rust side
-- right after _enable() in the same statement (an error here undoes both).
-- Checked against the settings _enable() just stored: a tenant column is
-- recorded in every event's tenant, so it may be neither excluded nor
-- redacted; a column always included may be redacted (it then shows as
-- "[REDACTED]", like any redacted column) but not excluded.
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

-- The rule list with column `old` renamed to `new` in each rule's
-- changed_any and after_matches (RENAME COLUMN, _sync_columns).
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

-- The settings row of a table that name_action()/drop_named_action() may
-- change, locked: the caller owns the table, and the table is audited
-- itself (not a partition of an audited table: its settings are the
-- audited table's).
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

-- name_action()'s SQL side, as the log's owner (the Rust side checked the
-- action's name, and noted the caller): the rule checked against the table
-- and appended to its rules (first match wins, in creation order). Returns
-- the AUDIT_CONFIG_CHANGED event's details.
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

-- drop_named_action()'s SQL side: every rule of the table for that action.
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

-- The view audit_trail.tracked is made in ddl.sql, after what capture_ok needs.

