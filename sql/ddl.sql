-- Keeping auditing right through DDL.

CREATE FUNCTION audit_trail._attached_partitions(pg_ddl_command) RETURNS oid[]
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'audit_trail_attached_partitions';

-- After CREATE/ALTER TABLE: new or attached partitions of an audited table get
-- the capture triggers; RENAME COLUMN is followed in the table's settings; a
-- capture or guard trigger may not be disabled.
-- The event trigger proper: it runs with the search_path of the DDL it
-- follows, because the name in ATTACH PARTITION must resolve as it did there.
-- So it does nothing else, and writes every name out in full; the work is
-- done by _after_ddl, whose search_path is pinned.
CREATE FUNCTION audit_trail._on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
    rels oid[];
    tags text[];
    attached oid[];
BEGIN
    SELECT pg_catalog.array_agg(d.objid), pg_catalog.array_agg(d.command_tag)
      INTO rels, tags
      FROM pg_catalog.pg_event_trigger_ddl_commands() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass;
    SELECT pg_catalog.array_agg(a)
      INTO attached
      FROM pg_catalog.pg_event_trigger_ddl_commands() d,
           pg_catalog.unnest(audit_trail._attached_partitions(d.command)) a;
    PERFORM audit_trail._after_ddl(rels, tags, attached);
END
$$;

-- After CREATE/ALTER TABLE: new or attached partitions of an audited table get
-- the capture triggers; RENAME COLUMN is followed in the table's settings; a
-- capture or guard trigger may not be disabled. Nothing else: a pg_dump
-- replay runs ALTER TABLE on audited tables after their settings are restored
-- and before their dumped triggers are, so creating triggers on any ALTER
-- TABLE would make the dump's own CREATE TRIGGER fail.
CREATE FUNCTION audit_trail._after_ddl(rels oid[], tags text[], attached oid[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    rel regclass;
    root regclass;
    cfg audit_trail.config;
    now_cols text[];
    i int;
    old_name text;
    new_name text;
    bad record;
BEGIN
    FOR c IN
        SELECT DISTINCT r.rel::regclass AS rel, r.tag
        FROM unnest(rels, tags) AS r(rel, tag)
        WHERE EXISTS (SELECT 1 FROM pg_class k WHERE k.oid = r.rel AND k.relkind IN ('r', 'p'))
    LOOP
        SELECT t.tgrelid::regclass AS rel, t.tgname INTO bad
        FROM pg_trigger t
        WHERE t.tgrelid = c.rel AND t.tgenabled = 'D'
          AND (t.tgname = ANY (audit_trail._trigger_names()) OR t.tgname LIKE 'audit\_trail\_guard%');
        IF FOUND THEN
            RAISE EXCEPTION 'trigger % on % belongs to pg_audit_trail and cannot be disabled', bad.tgname, bad.rel
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Use audit_trail.disable() to stop auditing a table.';
        END IF;

        -- RENAME COLUMN: same attnum, new name, and the old name gone.
        CONTINUE WHEN c.tag <> 'ALTER TABLE';
        SELECT * INTO cfg FROM audit_trail.config WHERE relid = c.rel;
        CONTINUE WHEN NOT FOUND;
        now_cols := audit_trail._columns_by_attnum(cfg.relid);
        CONTINUE WHEN now_cols IS NOT DISTINCT FROM cfg.columns;
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
    END LOOP;

    -- A partition created in, or attached to, an audited table is audited
    -- with it from its first row.
    FOR rel IN
        SELECT r.rel FROM unnest(rels, tags) AS r(rel, tag) WHERE r.tag = 'CREATE TABLE'
        UNION
        SELECT unnest(attached)
    LOOP
        root := audit_trail._audited_root(rel);
        IF root IS NOT NULL AND root <> rel THEN
            PERFORM audit_trail._install_triggers(rel, (SELECT actions FROM audit_trail.config WHERE relid = root));
        END IF;
    END LOOP;

    -- RENAME, SET SCHEMA, ALTER SCHEMA ... RENAME: remember the new names.
    PERFORM audit_trail._sync_names();
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
    -- A partition of the log goes only through retention (or with the
    -- extension itself): a DROP TABLE of one would erase events wholesale.
    IF NOT audit_trail._retention_active()
       AND NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() o
                       WHERE o.object_type = 'extension' AND o.object_name = 'pg_audit_trail') THEN
        SELECT o.object_identity INTO d FROM pg_event_trigger_dropped_objects() o
        WHERE o.object_type = 'table' AND o.schema_name IN ('audit_trail', 'audit_trail_archive')
          AND o.object_name LIKE 'events%'
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION '% holds audit events: it is removed by audit_trail.apply_retention() only', d.object_identity
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;

    FOR d IN
        SELECT o.objid, o.object_identity
        FROM pg_event_trigger_dropped_objects() o
        WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0 AND o.object_type = 'table'
    LOOP
        DELETE FROM audit_trail.table_names WHERE relid::oid = d.objid;
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
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER SCHEMA')
    EXECUTE FUNCTION audit_trail._on_ddl_end();

CREATE EVENT TRIGGER audit_trail_sql_drop ON sql_drop
    EXECUTE FUNCTION audit_trail._on_sql_drop();
