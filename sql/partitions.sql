-- Time partitions of audit_trail.events: made ahead by enable() and
-- maintain(), named events_pYYYYMMDD after their start (UTC), judged by
-- their bounds, never by their names.

-- Bounds of every time partition of events (live or archived), parsed from
-- the partition bound expression.
-- pg_get_expr() prints the bounds in the session's DateStyle and TimeZone,
-- and a zone abbreviation need not read back as it was meant (IST): ISO and
-- UTC here, whatever the session says.
CREATE FUNCTION audit_trail._partition_bounds()
RETURNS TABLE(partition regclass, range_start timestamptz, range_end timestamptz, archived boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
    SELECT k.oid::regclass,
           (regexp_match(pg_get_expr(k.relpartbound, k.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
           (regexp_match(pg_get_expr(k.relpartbound, k.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz,
           false
    FROM pg_inherits i
    JOIN pg_class k ON k.oid = i.inhrelid
    WHERE i.inhparent = 'audit_trail.events'::regclass
      AND pg_get_expr(k.relpartbound, k.oid) <> 'DEFAULT';
$$;

-- Periods are laid out in UTC whatever the session's time zone, so every
-- session computes the same bounds.
CREATE FUNCTION audit_trail._period_start(ts timestamptz, kind text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc(kind, ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

-- The start of the period after the one containing ts, plus n-1 more.
CREATE FUNCTION audit_trail._period_after(ts timestamptz, kind text, n int DEFAULT 1) RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc(kind, (ts AT TIME ZONE 'UTC') + n * ('1 ' || kind)::interval) AT TIME ZONE 'UTC' $$;

-- Makes the partition [range_start, range_end). Rows the default partition
-- already holds for that range move into it first, so the attach succeeds.
CREATE FUNCTION audit_trail._create_partition(range_start timestamptz, range_end timestamptz)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    name text := 'events_p' || to_char(range_start AT TIME ZONE 'UTC', 'YYYYMMDD');
    rel regclass;
BEGIN
    EXECUTE format('CREATE TABLE audit_trail.%I (LIKE audit_trail.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    rel := format('audit_trail.%I', name)::regclass;
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', rel);
    LOCK TABLE audit_trail.events_default IN EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM audit_trail.events_default
               WHERE occurred_at >= range_start AND occurred_at < range_end) THEN
        EXECUTE format('INSERT INTO %s SELECT * FROM audit_trail.events_default
                        WHERE occurred_at >= $1 AND occurred_at < $2', rel)
            USING range_start, range_end;
        PERFORM audit_trail._trim_default(range_start, range_end);
    END IF;
    PERFORM audit_trail._index_partition(rel);
    EXECUTE format('ALTER TABLE audit_trail.events ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   rel, range_start, range_end);
    PERFORM audit_trail._guard_table(rel);
    RETURN rel;
END
$$;

-- maintain(), apply_retention() and the making of partitions take turns on
-- this lock. It is a table lock on a table of the extension's that nobody
-- else may lock (LOCK TABLE ... IN SHARE ROW EXCLUSIVE needs UPDATE, DELETE
-- or TRUNCATE on it), unlike an advisory lock, which any role can take and
-- hold to stall maintenance. Readers of archived_partitions (ACCESS SHARE)
-- do not conflict with it.
CREATE FUNCTION audit_trail._lock_maintenance() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ LOCK TABLE audit_trail.archived_partitions IN SHARE ROW EXCLUSIVE MODE $$;

-- Keeps the current period and `premake` periods after it covered, starting
-- where the last partition ends so a change of interval leaves no gap or
-- overlap. When nothing is missing it takes no lock at all (enable() calls
-- it); otherwise it serialises on audit_trail._lock_maintenance().
CREATE FUNCTION audit_trail._premake()
RETURNS TABLE(action text, partition text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text := audit_trail._partition_interval_kind();
    ahead int := audit_trail._setting('audit_trail.premake')::int;
    last_end timestamptz;
    start_at timestamptz;
    goal timestamptz;
BEGIN
    goal := audit_trail._period_after(now(), kind, ahead + 1);
    SELECT max(b.range_end) INTO last_end FROM audit_trail._partition_bounds() b;
    IF last_end >= goal THEN
        RETURN;
    END IF;
    PERFORM audit_trail._lock_maintenance();
    SELECT max(b.range_end) INTO last_end FROM audit_trail._partition_bounds() b;
    start_at := audit_trail._period_start(now(), kind);
    IF last_end IS NOT NULL AND last_end > start_at THEN
        start_at := last_end;
    END IF;
    goal := audit_trail._period_after(now(), kind, ahead + 1);
    WHILE start_at < goal LOOP
        action := 'created';
        partition := audit_trail._create_partition(start_at, audit_trail._period_after(start_at, kind))::text;
        RETURN NEXT;
        start_at := audit_trail._period_after(start_at, kind);
    END LOOP;
END
$$;
