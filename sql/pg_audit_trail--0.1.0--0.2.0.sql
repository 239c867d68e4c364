-- pg_audit_trail 0.1.0 -> 0.2.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.2.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.2.0'" to load this file. \quit

-- The (id) index of each partition grows only at its right edge: fill its
-- pages to 100% (was 90%; the rest stayed empty for good). And the entity
-- index becomes optional for new partitions (audit_trail.index_entities).
CREATE OR REPLACE FUNCTION audit_trail._index_partition(rel regclass) RETURNS void
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
    -- history(), entity filters and row_as_of(). It is a third of what an
    -- event costs to write, so a DBA whose readers never ask by entity may
    -- leave it out (audit_trail.index_entities). current_setting(), not
    -- _setting(): this also runs inside CREATE EXTENSION, before the
    -- library is loaded, when the setting may be a placeholder ('off' still
    -- casts) or not there at all (NULL: on).
    IF coalesce(nullif(current_setting('audit_trail.index_entities', true), '')::boolean, true) THEN
        EXECUTE format('CREATE INDEX %I ON %s (entity_type, entity_id, id) WITH (deduplicate_items = off)',
                       name || '_entity', rel);
    END IF;
END
$$;

-- Existing partitions (the default one and every time partition) keep their
-- pages; pages split from now on are filled to 100%.
DO $$
DECLARE
    idx regclass;
BEGIN
    FOR idx IN
        SELECT i.indexrelid::regclass
        FROM pg_catalog.pg_inherits h
        JOIN pg_catalog.pg_index i ON i.indrelid = h.inhrelid
        JOIN pg_catalog.pg_attribute a ON a.attrelid = h.inhrelid AND a.attname = 'id'
        WHERE h.inhparent = 'audit_trail.events'::regclass
          AND i.indnatts = 1 AND i.indkey[0] = a.attnum
    LOOP
        EXECUTE format('ALTER INDEX %s SET (fillfactor = 100)', idx);
    END LOOP;
END
$$;
