-- Keeping auditing right through DDL.

-- After CREATE/ALTER TABLE: new or attached partitions of an audited table get
-- the capture triggers; RENAME COLUMN is followed in the table's settings; a
-- capture or guard trigger may not be disabled.
CREATE FUNCTION audit_trail._on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
    root regclass;
    cfg audit_trail.config;
    now_cols text[];
    i int;
    old_name text;
    new_name text;
    bad record;
BEGIN
    FOR rel IN
        SELECT DISTINCT c.objid::regclass
        FROM pg_event_trigger_ddl_commands() c
        WHERE c.classid = 'pg_class'::regclass
          AND c.command_tag IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
          AND EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = c.objid AND k.relkind IN ('r', 'p'))
    LOOP
        SELECT t.tgrelid::regclass AS rel, t.tgname INTO bad
        FROM pg_trigger t
        WHERE t.tgrelid = rel AND t.tgenabled = 'D'
          AND (t.tgname = ANY (audit_trail._trigger_names()) OR t.tgname LIKE 'audit_trail_guard%');
        IF FOUND THEN
            RAISE EXCEPTION 'trigger % on % belongs to pg_audit_trail and cannot be disabled', bad.tgname, bad.rel
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Use audit_trail.disable() to stop auditing a table.';
        END IF;

        root := audit_trail._audited_root(rel);
        CONTINUE WHEN root IS NULL;
        SELECT * INTO cfg FROM audit_trail.config WHERE relid = root;
        PERFORM audit_trail._install_triggers(root, cfg.actions);

        now_cols := audit_trail._columns_by_attnum(root);
        IF now_cols IS DISTINCT FROM cfg.columns THEN
            FOR i IN 1 .. least(cardinality(now_cols), cardinality(cfg.columns)) LOOP
                old_name := cfg.columns[i];
                new_name := now_cols[i];
                -- A rename: same attnum, new name, and the old name gone.
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
            WHERE relid = root;
            PERFORM audit_trail._invalidate(root);
        END IF;
    END LOOP;
END
$$;

-- DROP TABLE: the triggers go with the table, the events stay; the table's
-- settings are removed and the end of its auditing is recorded.
CREATE FUNCTION audit_trail._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    cfg audit_trail.config;
BEGIN
    FOR d IN
        SELECT o.objid, o.object_identity
        FROM pg_event_trigger_dropped_objects() o
        WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.object_type = 'table'
    LOOP
        DELETE FROM audit_trail.config WHERE relid::oid = d.objid RETURNING * INTO cfg;
        IF FOUND THEN
            PERFORM audit_trail._write_event(
                'AUDIT_DISABLED', 'audit_trail.config', d.object_identity,
                jsonb_build_object('table', d.object_identity, 'reason', 'DROP TABLE',
                                   'actions', cfg.actions),
                NULL);
        END IF;
    END LOOP;
END
$$;

CREATE EVENT TRIGGER audit_trail_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION audit_trail._on_ddl_end();

CREATE EVENT TRIGGER audit_trail_sql_drop ON sql_drop
    EXECUTE FUNCTION audit_trail._on_sql_drop();
