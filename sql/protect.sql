-- The trail is append-only: UPDATE, DELETE and TRUNCATE fail for everyone,
-- the owner included. Only retention removes events (its own flag, set in C,
-- lets it trim the default partition). Row triggers on the partitioned table
-- are cloned onto every partition, present and future; TRUNCATE triggers are
-- not, so partitions get their own when they are made.

CREATE TRIGGER audit_trail_guard_row
    BEFORE UPDATE OR DELETE ON audit_trail.events
    FOR EACH ROW EXECUTE FUNCTION audit_trail._guard();
CREATE TRIGGER audit_trail_guard_truncate
    BEFORE TRUNCATE ON audit_trail.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail._guard();
CREATE TRIGGER audit_trail_guard_truncate
    BEFORE TRUNCATE ON audit_trail.events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail._guard();
ALTER TABLE audit_trail.events ENABLE ALWAYS TRIGGER audit_trail_guard_row;
ALTER TABLE audit_trail.events ENABLE ALWAYS TRIGGER audit_trail_guard_truncate;
ALTER TABLE audit_trail.events_default ENABLE ALWAYS TRIGGER audit_trail_guard_truncate;
