-- The capture benchmark's setup: a 10-column table, the do-it-yourself
-- auditing variants, and a timer. Loaded once per bench database.
CREATE TABLE items (
    id       int PRIMARY KEY,
    name     text,
    amount   numeric(12,2),
    qty      int,
    tags     text[],
    created  timestamptz,
    status   text,
    note     text,
    flag     boolean,
    score    float8
);

-- The common do-it-yourself log: one row per changed row, whole rows as jsonb.
CREATE TABLE diy_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL DEFAULT current_user,
    action text NOT NULL,
    tbl text NOT NULL,
    old jsonb,
    new jsonb
);

-- A hand-written PL/pgSQL row trigger storing to_jsonb(NEW)/to_jsonb(OLD).
CREATE FUNCTION diy_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO diy_log (action, tbl, old, new)
    VALUES (TG_OP, TG_TABLE_NAME,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;

-- The fastest do-it-yourself way: statement triggers with transition tables
-- and one INSERT ... SELECT per statement.
CREATE FUNCTION diy_stmt_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO diy_log (action, tbl, new) SELECT 'INSERT', TG_TABLE_NAME, to_jsonb(n) FROM new_rows n;
    RETURN NULL;
END $$;
CREATE FUNCTION diy_stmt_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO diy_log (action, tbl, old, new)
    SELECT 'UPDATE', TG_TABLE_NAME, to_jsonb(o), to_jsonb(n)
    FROM (SELECT row_number() OVER () AS rn, * FROM old_rows) o
    JOIN (SELECT row_number() OVER () AS rn, * FROM new_rows) n USING (rn);
    RETURN NULL;
END $$;
CREATE FUNCTION diy_stmt_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO diy_log (action, tbl, old) SELECT 'DELETE', TG_TABLE_NAME, to_jsonb(o) FROM old_rows o;
    RETURN NULL;
END $$;

-- Not an audit log: the least any log that keeps one jsonb per changed row
-- can cost. One jsonb column, no index, no default, no key; the whole row,
-- written by one INSERT ... SELECT per statement. A lower bound, shown next
-- to the real variants so that targets can be judged against it.
CREATE TABLE floor_log (j jsonb);
CREATE FUNCTION floor_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO floor_log SELECT to_jsonb(n) FROM new_rows n; RETURN NULL; END $$;
CREATE FUNCTION floor_del() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO floor_log SELECT to_jsonb(o) FROM old_rows o; RETURN NULL; END $$;

CREATE FUNCTION set_variant(v text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TRIGGER IF EXISTS diy_row ON items;
    DROP TRIGGER IF EXISTS diy_ins ON items;
    DROP TRIGGER IF EXISTS diy_upd ON items;
    DROP TRIGGER IF EXISTS diy_del ON items;
    DROP TRIGGER IF EXISTS floor_ins ON items;
    DROP TRIGGER IF EXISTS floor_upd ON items;
    DROP TRIGGER IF EXISTS floor_del ON items;
    IF EXISTS (SELECT 1 FROM audit_trail.tracked WHERE table_name = 'items'::regclass) THEN
        PERFORM audit_trail.disable('items');
    END IF;
    CASE v
    WHEN 'none' THEN NULL;
    WHEN 'plpgsql_row' THEN
        CREATE TRIGGER diy_row AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION diy_row();
    WHEN 'diy_statement' THEN
        CREATE TRIGGER diy_ins AFTER INSERT ON items REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION diy_stmt_ins();
        CREATE TRIGGER diy_upd AFTER UPDATE ON items REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION diy_stmt_upd();
        CREATE TRIGGER diy_del AFTER DELETE ON items REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION diy_stmt_del();
    WHEN 'floor' THEN
        CREATE TRIGGER floor_ins AFTER INSERT ON items REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION floor_ins();
        CREATE TRIGGER floor_upd AFTER UPDATE ON items REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION floor_ins();
        CREATE TRIGGER floor_del AFTER DELETE ON items REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION floor_del();
    WHEN 'pg_audit_trail' THEN
        PERFORM audit_trail.enable('items');
    WHEN 'pg_audit_trail_shaped' THEN
        -- API §11: each event's tenant from a column, and one named action
        -- (matching every row of the bulk UPDATE: the worst case).
        PERFORM audit_trail.enable('items', tenant_column => 'name');
        PERFORM audit_trail.name_action('items', 'ITEM_SHIPPED', 'UPDATE',
                                        changed_any => '{status}', after_matches => '{"status": "shipped"}');
    WHEN 'pg_audit_trail_lean' THEN
        -- The first enable() makes the partitions: without the entity and
        -- actor indexes.
        PERFORM set_config('audit_trail.index_entities', 'off', true);
        PERFORM set_config('audit_trail.index_actors', 'off', true);
        PERFORM audit_trail.enable('items');
    END CASE;
END $$;

-- Bytes the log holds now (heap, indexes, TOAST), for the variant's log.
CREATE FUNCTION log_bytes(v text) RETURNS bigint LANGUAGE sql AS $$
    SELECT CASE v
        WHEN 'pg_audit_trail' THEN (SELECT sum(pg_total_relation_size(partition)) FROM audit_trail.partitions)::bigint
        WHEN 'pg_audit_trail_lean' THEN (SELECT sum(pg_total_relation_size(partition)) FROM audit_trail.partitions)::bigint
        WHEN 'pg_audit_trail_shaped' THEN (SELECT sum(pg_total_relation_size(partition)) FROM audit_trail.partitions)::bigint
        WHEN 'none' THEN 0
        WHEN 'floor' THEN pg_total_relation_size('floor_log')
        ELSE pg_total_relation_size('diy_log') END $$;
