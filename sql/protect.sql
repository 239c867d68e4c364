-- The trail is append-only: UPDATE, DELETE and TRUNCATE fail for everyone,
-- the owner included, even when they would touch no row. Only retention
-- removes events (its own flag, set in C, lets it trim the default
-- partition).
--
-- Statement triggers fire only for the table a statement names, so every
-- partition gets its own (audit_trail._create_partition adds them); the row
-- trigger on the partitioned table is cloned onto every partition, present
-- and future, including one attached by hand.

CREATE FUNCTION audit_trail._guard_table(rel regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_trail_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail._guard()', rel);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_trail_guard', rel);
END
$$;

CREATE TRIGGER audit_trail_guard_row
    BEFORE UPDATE OR DELETE ON audit_trail.events
    FOR EACH ROW EXECUTE FUNCTION audit_trail._guard();
ALTER TABLE audit_trail.events ENABLE ALWAYS TRIGGER audit_trail_guard_row;
SELECT audit_trail._guard_table('audit_trail.events');
SELECT audit_trail._guard_table('audit_trail.events_default');
