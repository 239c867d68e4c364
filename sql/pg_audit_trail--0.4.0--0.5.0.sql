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

-- Tenants, scope and named actions (API §11): three settings of each
-- audited table, appended as schema.sql has them last. A table enabled
-- before keeps its behaviour: no tenant column, nothing always included, no
-- named actions.
ALTER TABLE audit_trail.config
    ADD COLUMN tenant_column  text,
    ADD COLUMN always_include text[] NOT NULL DEFAULT '{}',
    ADD COLUMN named_actions  jsonb  NOT NULL DEFAULT '[]';

-- Functions: new, changed (same signature: replaced in place) and gone.
-- Their text is the 0.5.0 install script's (sql/*.sql and the Rust side).
-- removed
DROP FUNCTION enable(regclass,TEXT[],TEXT[],TEXT[],TEXT,TEXT[],TEXT[]);

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
