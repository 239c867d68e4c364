-- pg_audit_trail: tables. CREATE EXTENSION has already made schema audit_trail
-- (control file), and runs this file before any function is defined.

CREATE SCHEMA audit_trail_archive;
COMMENT ON SCHEMA audit_trail_archive IS
  'Expired partitions of audit_trail.events, detached by retention (audit_trail.archive = on).';
REVOKE ALL ON SCHEMA audit_trail_archive FROM PUBLIC;

-- One sequence, no cache: ids increase in capture order across sessions, which
-- newest-first paging (ORDER BY id DESC) relies on.
CREATE SEQUENCE audit_trail.events_id_seq;

CREATE TABLE audit_trail.events (
    id           bigint      NOT NULL DEFAULT nextval('audit_trail.events_id_seq'),
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    txid         bigint      NOT NULL DEFAULT txid_current(),
    action       text        NOT NULL,
    entity_type  text,
    entity_id    text,
    entity_label text,
    before       jsonb,
    after        jsonb,
    changed      text[],
    details      jsonb,
    actor        text        NOT NULL,
    db_user      text        NOT NULL,
    client_ip    inet,
    user_agent   text,
    service      text,
    tenant       text,
    request_id   text,
    statement    text,
    -- INSERT, UPDATE, DELETE or TRUNCATE for a captured row event, NULL for
    -- every other event: what readers of rows trust (action is also what
    -- log_event names). Last because 0.4.0 added it (ALTER TABLE appends).
    operation    text
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE audit_trail.events_id_seq OWNED BY audit_trail.events.id;
COMMENT ON TABLE audit_trail.events IS
  'The audit trail: one row per changed row or application event. Append-only.';

-- Takes whatever no time partition covers, so a write never fails for want
-- of a partition; maintain() moves its rows out when it makes their partition.
CREATE TABLE audit_trail.events_default PARTITION OF audit_trail.events DEFAULT;

-- Indexes live on each partition, not on the partitioned table: an index on
-- the parent (an extension object) would make every ATTACH in a pg_dump
-- replay create its own copy and then collide with the dumped one.
CREATE FUNCTION audit_trail._index_partition(rel regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = rel);
BEGIN
    -- Newest-first listing and keyset paging.
    -- Keys are unique (they end in id), so deduplication would only cost
    -- the writer work at every page split. Ids only ever grow, so the index
    -- grows at its right edge, where a split leaves the left page as full as
    -- fillfactor says and nothing ever fills it further: 100, not 90.
    EXECUTE format('CREATE INDEX %I ON %s (id) WITH (deduplicate_items = off, fillfactor = 100)', name || '_id', rel);
    -- The filters of search() that a newest-first scan cannot serve
    -- (API §12; txid uses the (txid) index below). An actor's events,
    -- newest first, without reading everyone's: actors match whatever the
    -- case, hence lower(actor). Every event pays for it (about a sixth of a
    -- bulk write), so a DBA whose readers never filter by actor may leave it
    -- out (audit_trail.index_actors; read as index_entities is, below).
    IF coalesce(nullif(current_setting('audit_trail.index_actors', true), '')::boolean, true) THEN
        EXECUTE format('CREATE INDEX %I ON %s (lower(actor), id) WITH (deduplicate_items = off)', name || '_actor', rel);
    END IF;
    -- A request's events: only events that carry a request id pay for it.
    EXECUTE format('CREATE INDEX %I ON %s (request_id, id) WITH (deduplicate_items = off) '
                   'WHERE request_id IS NOT NULL', name || '_request', rel);
    -- history(), entity filters and row_as_of(). It is a third of what an
    -- event costs to write, so a DBA whose readers never ask by entity may
    -- leave it out (audit_trail.index_entities). current_setting(), not
    -- _setting(): this also runs inside CREATE EXTENSION, before the
    -- library is loaded, when the setting may be a placeholder ('off' still
    -- casts) or not there at all (NULL: on).
    IF coalesce(nullif(current_setting('audit_trail.index_entities', true), '')::boolean, true) THEN
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, entity_id, id) WITH (deduplicate_items = off)',
                       name || '_entity', rel);
        -- history() from a row's old key on to its new one: only the
        -- UPDATEs that changed a key are in it (details.previous_entity_id).
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, (details ->> ''previous_entity_id''), id) '
                       'WHERE details ? ''previous_entity_id''', name || '_rekeyed', rel);
    END IF;
    -- feed() and seal(): the events of given transactions (API §10). Many
    -- events share a transaction, so deduplication keeps it small.
    EXECUTE format('CREATE INDEX %I ON %s (txid)', name || '_txid', rel);
END
$$;
SELECT audit_trail._index_partition('audit_trail.events_default');

-- Per-table settings written by enable(). Column lists are names; "columns"
-- remembers each attnum's name at the last sync so RENAME COLUMN can be followed.
-- redact holds every redacted column, named or matched by redact_patterns
-- when enable() ran or when the column appeared (audit_trail._redacted);
-- reveal the columns enable() exempted from the patterns. Both follow their
-- columns through renames (_sync_columns).
CREATE TABLE audit_trail.config (
    relid           regclass    PRIMARY KEY,
    redact          text[]      NOT NULL DEFAULT '{}',
    redact_patterns text[]      NOT NULL DEFAULT '{}',
    exclude         text[]      NOT NULL DEFAULT '{}',
    key_columns     text[],
    label_column    text,
    actions         text[]      NOT NULL,
    columns         text[]      NOT NULL DEFAULT '{}',
    enabled_at      timestamptz NOT NULL DEFAULT now(),
    enabled_by      text        NOT NULL DEFAULT session_user,
    reveal          text[]      NOT NULL DEFAULT '{}',
    -- 0.5.0 (API §11), last because ALTER TABLE appends: the column whose
    -- value is each row event's tenant; the columns every UPDATE event
    -- carries; the named actions, in creation order (name_action()). All
    -- follow their columns through renames (_sync_columns).
    tenant_column   text,
    always_include  text[]      NOT NULL DEFAULT '{}',
    named_actions   jsonb       NOT NULL DEFAULT '[]'
);

-- Every name an audited table has had, and when: history() and row_as_of()
-- follow the table through RENAME and SET SCHEMA, and not a later table that
-- happens to take an old name.
CREATE TABLE audit_trail.table_names (
    relid       regclass    NOT NULL,
    entity_type text        NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_until timestamptz,
    PRIMARY KEY (relid, valid_from)
);

-- Partitions retention detached into schema audit_trail_archive, with the
-- range they covered (a detached table no longer has a partition bound).
CREATE TABLE audit_trail.archived_partitions (
    partition   regclass    PRIMARY KEY,
    range_start timestamptz NOT NULL,
    range_end   timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- Where this database's transaction ids begin for the log (API §10): feed
-- positions are snapshots, meaningful only among the transactions of the
-- cluster that took them. The install script fills it and pg_dump does not
-- carry it, so a database restored elsewhere gets a new token (positions
-- taken before the restore are refused, not misread) and the time before
-- which every event came with the restore (their txid values belong to the
-- old cluster: feed() never returns them). An update from 0.4.0 keeps every
-- event: '-infinity'.
CREATE TABLE audit_trail.feed_origin (
    token    text        NOT NULL,
    restored timestamptz NOT NULL
);
CREATE UNIQUE INDEX feed_origin_one ON audit_trail.feed_origin ((true));
INSERT INTO audit_trail.feed_origin
SELECT substr(md5(random()::text || clock_timestamp()::text || pg_backend_pid()), 1, 12),
       -- A fresh install has no events: whatever a restore then brings in
       -- was captured before this moment.
       clock_timestamp();

-- The parent every archived partition inherits (retention attaches it when
-- it archives): reading this table reads every archive, through one
-- privilege check, with each archive's own indexes. It holds no row itself.
-- Readers go through the view audit_trail.archived_events (sql/query.sql).
-- Made LIKE the log, so that it has the log's columns; an update script
-- that adds a column to the log adds it here too (ALTER TABLE recurses to
-- the archives).
CREATE TABLE audit_trail._archived (LIKE audit_trail.events);
COMMENT ON TABLE audit_trail._archived IS
  'Parent of the archived partitions (schema audit_trail_archive); empty itself. Read audit_trail.archived_events.';

REVOKE ALL ON audit_trail.events, audit_trail.events_default, audit_trail.config,
              audit_trail.table_names, audit_trail.archived_partitions, audit_trail.events_id_seq,
              audit_trail.feed_origin, audit_trail._archived FROM PUBLIC;

-- pg_dump carries the data of these extension tables; time partitions are
-- ordinary tables (made by maintain(), not by this script) and dumped as such.
SELECT pg_catalog.pg_extension_config_dump('audit_trail.config', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.table_names', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.archived_partitions', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.events_default', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.events_id_seq', '');
