-- pgsuite: prepares the database PostgreSQL's own regression suite runs in
-- (scripts/test-pgsuite). pg_audit_trail is installed, and an event trigger
-- enables auditing on every table the suite creates, recording what it did
-- in a ledger that the checks read afterwards.
--
-- The ledger is written in the suite's own transactions: what a rolled-back
-- transaction created leaves no row, as the table itself leaves nothing.
-- It is only ever written while the suite runs, never read, and has no
-- index: a SERIALIZABLE transaction of the suite takes no predicate lock on
-- it, so the ledger can cause no serialization failure (only the checks
-- read it, afterwards). Every decision is also RAISEd at LOG level (server
-- log only, so the suite's output does not change), rolled-back ones too.
CREATE EXTENSION pg_audit_trail;
CREATE SCHEMA pgsuite;

-- Tables pgsuite enabled: how many rows they had at that moment (CREATE
-- TABLE AS / SELECT INTO fill the table before ddl_command_end, so those rows
-- have no INSERT event) and which test created them.
CREATE TABLE pgsuite.audited (
    relid    oid NOT NULL,
    name     text NOT NULL,     -- its name then (see pgsuite.names)
    command  text NOT NULL,
    test     text,
    baseline bigint NOT NULL
);

-- The names an audited table had, each from an event id on: events carry
-- the table's name, not its oid, and the suite renames, moves and re-creates
-- tables under old names. A name is valid for ids > from_id up to the next
-- row's from_id. Ids, not timestamps: one statement's events share one
-- occurred_at, and a DO block can create a table and fill it in one statement.
-- A rename holds the table's lock, so no event of that table falls between
-- the name change and the id read here. A row is added after every command
-- that can rename a table (whether it did or not: finding out would mean
-- reading the ledger).
CREATE TABLE pgsuite.names (
    seq     bigserial NOT NULL,
    relid   oid NOT NULL,
    name    text NOT NULL,
    from_id bigint NOT NULL
);

-- Tables pgsuite did not enable, and why.
CREATE TABLE pgsuite.skipped (
    relid    oid,
    name     text,
    command  text,
    test     text,
    reason   text NOT NULL,
    sqlstate text,
    message  text
);

-- The last id taken from the events' sequence, whoever took it.
CREATE FUNCTION pgsuite.id_mark() RETURNS bigint
LANGUAGE sql
AS $$ SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM audit_trail.events_id_seq $$;

CREATE FUNCTION pgsuite.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
-- The suite creates tables as many roles; the ledger and enable() run as
-- the superuser that owns this function, whoever runs the DDL.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- enable()'s NOTICE/WARNING (no primary key, redacted columns) would only add
-- noise to the suite's output; errors are caught below and logged.
SET client_min_messages = error
AS $$
DECLARE
    cmd record;
    k record;
    why text;
    n bigint;
    st text;
    msg text;
    ctx text;
    test text := current_setting('application_name');
BEGIN
    FOR cmd IN
        SELECT d.objid, d.command_tag, d.in_extension
        FROM pg_event_trigger_ddl_commands() d
        WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
          AND d.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    LOOP
        SELECT c.oid, c.relkind, c.relpersistence, c.relispartition, n.nspname,
               format('%I.%I', n.nspname, c.relname) AS name
          INTO k
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = cmd.objid;
        CONTINUE WHEN NOT FOUND OR k.relkind NOT IN ('r', 'p');
        -- What enable() legitimately refuses (API §8) or what is not the
        -- suite's: skipped, and said why.
        why := CASE
            WHEN cmd.in_extension OR EXISTS (
                     SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                       AND d.objid = k.oid AND d.deptype = 'e') THEN 'table of an extension'
            WHEN k.nspname IN ('audit_trail', 'audit_trail_archive', 'pgsuite') THEN 'pg_audit_trail''s or pgsuite''s own'
            WHEN k.relpersistence = 't' THEN 'temporary table'
            WHEN k.relispartition THEN 'partition'
            -- enable() reads and writes pg_audit_trail's tables: in a
            -- SERIALIZABLE transaction of the suite's, running beside
            -- others, that may end in a serialization failure (40001), as
            -- any write may; an application retries, the suite cannot.
            WHEN current_setting('transaction_isolation') = 'serializable' THEN 'serializable transaction'
            WHEN EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = k.oid) THEN 'inheritance child'
            -- A partitioned table made by CREATE SCHEMA ... CREATE TABLE has
            -- its partitions already when this runs: those are no reason.
            WHEN EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                         WHERE i.inhparent = k.oid AND NOT c.relispartition) THEN 'inheritance parent'
        END;
        IF why IS NOT NULL THEN
            INSERT INTO pgsuite.skipped (relid, name, command, test, reason)
            VALUES (k.oid, k.name, cmd.command_tag, test, why);
            RAISE LOG 'pgsuite: skipped % (%): %', k.name, cmd.command_tag, why;
            CONTINUE;
        END IF;
        BEGIN
            PERFORM audit_trail.enable(k.oid::regclass);
            -- Rows already there: CREATE TABLE AS / SELECT INTO (the table is
            -- this command's own; no one else can see it yet).
            n := 0;
            IF cmd.command_tag <> 'CREATE TABLE' THEN
                EXECUTE format('SELECT count(*) FROM %s', k.oid::regclass) INTO n;
            END IF;
            INSERT INTO pgsuite.audited VALUES (k.oid, k.name, cmd.command_tag, test, n);
            INSERT INTO pgsuite.names (relid, name, from_id) VALUES (k.oid, k.name, pgsuite.id_mark());
            RAISE LOG 'pgsuite: enabled % (%, % rows)', k.name, cmd.command_tag, n;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
            INSERT INTO pgsuite.skipped VALUES (k.oid, k.name, cmd.command_tag, test, 'enable() failed', st, msg);
            RAISE LOG 'pgsuite: enable(%) failed: % (%)', k.name, msg, cmd.command_tag
                USING ERRCODE = st, DETAIL = 'context: ' || coalesce(ctx, '');
        END;
    END LOOP;

    -- Renames of any kind: ALTER TABLE/INDEX/VIEW/... RENAME and SET SCHEMA
    -- name the table; ALTER SCHEMA ... RENAME renames all tables in it. The
    -- name after the command, valid from the next event id on.
    INSERT INTO pgsuite.names (relid, name, from_id)
    WITH d AS MATERIALIZED (
        SELECT d.classid, d.objid FROM pg_event_trigger_ddl_commands() d
        WHERE d.objsubid = 0 AND d.command_tag LIKE 'ALTER %'
          AND d.classid IN ('pg_class'::regclass, 'pg_namespace'::regclass))
    SELECT c.oid, format('%I.%I', n.nspname, c.relname), pgsuite.id_mark()
    FROM (SELECT x.oid FROM d JOIN pg_class x ON x.oid = d.objid WHERE d.classid = 'pg_class'::regclass
          UNION
          SELECT x.oid FROM d JOIN pg_class x ON x.relnamespace = d.objid WHERE d.classid = 'pg_namespace'::regclass) t
    JOIN pg_class c ON c.oid = t.oid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p');
END
$$;

-- After pg_audit_trail's own ddl_command_end trigger (event triggers fire in
-- name order), and ALWAYS: the suite sets session_replication_role = replica.
CREATE EVENT TRIGGER zz_pgsuite_enable ON ddl_command_end EXECUTE FUNCTION pgsuite.on_ddl_end();
ALTER EVENT TRIGGER zz_pgsuite_enable ENABLE ALWAYS;
