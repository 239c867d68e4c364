-- Shared by every benchmark database.

-- Milliseconds to run one statement, its AFTER triggers included.
CREATE FUNCTION time_ms(stmt text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE stmt;
    RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;
