-- Who may call what. Functions are executable by PUBLIC by default; the
-- internal ones (leading underscore) are not: enable/disable/log_event reach
-- them as the owner after checking the caller.
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
-- archived_events reads the archives with its owner's rights, and lets
-- through only a caller who may read audit_trail.events (_may_read_events).
GRANT SELECT ON audit_trail.archived_events TO PUBLIC;
-- Reading functions run as the caller; these helpers are theirs.
GRANT EXECUTE ON FUNCTION audit_trail._where(text[], text[], text, text, timestamptz, timestamptz, text, text,
                                             text[], text, bigint, text[], text[]),
                          audit_trail._upper_all(text[]),
                          audit_trail._lower_all(text[]),
                          audit_trail._filters_json(text[], text[], text, text, timestamptz, timestamptz, text, text,
                                                    text[], text, bigint, text[], text[]),
                          audit_trail._may_read_events(),
                          audit_trail._source(boolean),
                          audit_trail._csv(text),
                          audit_trail._export_columns(boolean),
                          audit_trail._export_pick(text[], boolean),
                          audit_trail._history(regclass, text, timestamptz),
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
                          audit_trail._log_read(text, jsonb, text),
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
-- The feed (API §10) runs as its caller, who needs SELECT on
-- audit_trail.events: these helpers only take positions apart and compare
-- them, and the token that ends a position is no secret.
GRANT EXECUTE ON FUNCTION audit_trail._feed_now(),
                          audit_trail._feed_parse(text, text),
                          audit_trail._feed_covers(pg_snapshot, pg_snapshot),
                          audit_trail._feed_in_flight(pg_snapshot, pg_snapshot),
                          audit_trail._feed_window(pg_snapshot, pg_snapshot, bigint[], timestamptz, timestamptz),
                          audit_trail._feed_batch(pg_snapshot, pg_snapshot, timestamptz, bigint, bigint, boolean),
                          audit_trail._feed_key(pg_snapshot, pg_snapshot, bigint, boolean),
                          audit_trail._feed_resume_key(pg_snapshot, pg_snapshot, bigint, boolean),
                          audit_trail._feed_range(text, text)
   TO PUBLIC;
GRANT SELECT ON audit_trail.feed_origin TO PUBLIC;
-- The sealed trail (sql/seal.sql): verify(), checkpoint() and
-- verify_checkpoint() run as their caller, who must read the log and the
-- seal tables (_may_verify checks); these helpers compute only from their
-- arguments or read as the caller. _seal_batch (writes seals) and
-- _checkpoint_note (signs with the server's key whatever it is given) are
-- not among them: seal() and checkpoint() are the owner's.
GRANT EXECUTE ON FUNCTION audit_trail._may_seal(), audit_trail._may_verify(),
                          audit_trail._event_leaf(bigint, timestamptz, bigint, text[]),
                          audit_trail._event_bytes(bigint, timestamptz, bigint, text[]),
                          audit_trail._chain_root(smallint, bytea, bigint, timestamptz, bigint, bytea, text, timestamptz,
                                                  bytea, text[], timestamptz[], timestamptz[]),
                          audit_trail._seal_root_of(audit_trail.seal_chain),
                          audit_trail._removed_by_retention(audit_trail.seal_chain, bigint, timestamptz,
                                                            audit_trail.removed_partitions[], int8multirange),
                          audit_trail._removal_fits(audit_trail.removed_partitions),
                          audit_trail._ids_present(int8multirange),
                          audit_trail._partition_bounds(),
                          audit_trail._verify_batch(bigint, text, text, bytea, bytea, timestamptz, timestamptz),
                          audit_trail._archive_window(pg_snapshot, pg_snapshot, bigint[], timestamptz, timestamptz),
                          audit_trail._checkpoint_read(text, text),
                          audit_trail._hex(bytea)
   TO PUBLIC;
-- The view checks the caller's SELECT on audit_trail.seal_chain (security_invoker).
GRANT SELECT ON audit_trail.seals TO PUBLIC;
