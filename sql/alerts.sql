-- pg_audit_trail: alerts on critical actions (API §10). check_alerts() reads
-- what was committed since its last run through feed(), so every event is
-- looked at exactly once whatever the interleaving; each rule keeps the
-- matching events still inside its window (alert_window), so a window spans
-- runs; a firing is recorded as one ALERT event and the events that made it
-- leave the window, so they never fire twice.

CREATE TABLE audit_trail.alert_rules (
    name         text        PRIMARY KEY,
    -- Upper-cased; an event matches when its action or its operation is one.
    actions      text[]      NOT NULL,
    entity_types text[],
    changed_any  text[],
    threshold    integer     NOT NULL,
    within       interval    NOT NULL,
    per          text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL DEFAULT session_user,
    CHECK (threshold >= 1),
    CHECK (within > interval '0'),
    CHECK (per IN ('actor', 'client_ip', 'tenant', 'entity', 'transaction'))
);

-- Where check_alerts() has read up to: one row, made by the first add_alert.
CREATE TABLE audit_trail.alert_state (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    position text    NOT NULL,
    checked_at timestamptz
);

-- The matching events of each rule and key not yet part of a firing and not
-- yet out of the rule's window.
CREATE TABLE audit_trail.alert_window (
    -- (No foreign key: add_alert and drop_alert clear a rule's window.)
    rule        text        NOT NULL,
    key         text        NOT NULL,
    event_id    bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (rule, key, event_id)
);

REVOKE ALL ON audit_trail.alert_rules, audit_trail.alert_state, audit_trail.alert_window FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('audit_trail.alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('audit_trail.alert_window', '');
-- alert_state is not dumped: its position belongs to this cluster's
-- transactions. A restored database's first check_alerts() starts from then.

CREATE VIEW audit_trail.alerts AS
SELECT r.name, r.actions, r.entity_types, r.changed_any, r.threshold, r.within, r.per,
       r.created_at, r.created_by,
       (SELECT count(*) FROM audit_trail.alert_window w WHERE w.rule = r.name) AS pending_events
FROM audit_trail.alert_rules r;
COMMENT ON VIEW audit_trail.alerts IS
  'The alert rules check_alerts() applies, and how many matching events each holds in its window.';

CREATE FUNCTION audit_trail.add_alert(
    name text,
    actions text[],
    entity_types text[] DEFAULT NULL,
    changed_any text[] DEFAULT NULL,
    threshold integer DEFAULT 1,
    within interval DEFAULT '1 minute',
    per text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- The rule as recorded is the same whatever the session's settings.
SET IntervalStyle = 'iso_8601'
AS $$
DECLARE
    acts text[];
    rule jsonb;
    replaced boolean;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'pg_audit_trail: an alert needs a name'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF actions IS NULL OR cardinality(actions) = 0 OR array_position(actions, NULL) IS NOT NULL
       OR EXISTS (SELECT FROM unnest(actions) a WHERE btrim(a) = '') THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%" needs actions, each a name', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Action names (LOGIN_FAILED) or row operations (INSERT, UPDATE, DELETE, TRUNCATE), in any case.';
    END IF;
    IF cardinality(entity_types) = 0 OR array_position(entity_types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": entity_types is NULL (any) or a list of names', name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(changed_any) = 0 OR array_position(changed_any, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": changed_any is NULL (any change) or a list of column names', name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    acts := ARRAY(SELECT DISTINCT upper(btrim(a)) FROM unnest(actions) a ORDER BY 1);
    IF 'ALERT' = ANY (acts) THEN
        -- Its own firings would match it: it would fire at every run.
        RAISE EXCEPTION 'pg_audit_trail: alert "%" cannot match ALERT events', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Alerts are announced on audit_trail.alert_channel and returned by check_alerts().';
    END IF;
    IF changed_any IS NOT NULL AND NOT 'UPDATE' = ANY (acts) THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": changed_any applies to UPDATE events only', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add UPDATE to actions.';
    END IF;
    IF threshold IS NULL OR threshold < 1 THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": threshold must be at least 1, not %', name, coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF within IS NULL OR within <= interval '0' THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": within must be a positive interval, not %', name, coalesce(within::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF per IS NOT NULL AND per NOT IN ('actor', 'client_ip', 'tenant', 'entity', 'transaction') THEN
        RAISE EXCEPTION 'pg_audit_trail: alert "%": per "%" is not one of actor, client_ip, tenant, entity, transaction', name, per
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'NULL counts all matching events together.';
    END IF;
    -- First rule: the alerts start reading here (no backlog).
    INSERT INTO audit_trail.alert_state (position) VALUES (audit_trail.feed_position())
    ON CONFLICT (one) DO NOTHING;
    replaced := EXISTS (SELECT FROM audit_trail.alert_rules r WHERE r.name = add_alert.name);
    -- A replaced rule starts over: its window held events of the old rule.
    DELETE FROM audit_trail.alert_rules r WHERE r.name = add_alert.name;
    DELETE FROM audit_trail.alert_window w WHERE w.rule = add_alert.name;
    INSERT INTO audit_trail.alert_rules (name, actions, entity_types, changed_any, threshold, within, per)
    VALUES (add_alert.name, acts, add_alert.entity_types, add_alert.changed_any, add_alert.threshold, add_alert.within, add_alert.per);
    rule := jsonb_build_object('actions', acts, 'entity_types', entity_types, 'changed_any', changed_any,
                               'threshold', threshold, 'within', within::text, 'per', per);
    PERFORM audit_trail._write_system_event_about('AUDIT_CONFIG_CHANGED', 'audit_trail.alert', name,
        jsonb_build_object('alert', name, 'change', CASE WHEN replaced THEN 'replaced' ELSE 'added' END, 'rule', rule));
END
$$;
COMMENT ON FUNCTION audit_trail.add_alert(text, text[], text[], text[], integer, interval, text) IS
  'Adds (or replaces) an alert rule that check_alerts() applies.';

CREATE FUNCTION audit_trail.drop_alert(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM audit_trail.alert_rules r WHERE r.name = drop_alert.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pg_audit_trail: there is no alert "%"', name
            USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM audit_trail.alert_window w WHERE w.rule = drop_alert.name;
    PERFORM audit_trail._write_system_event_about('AUDIT_CONFIG_CHANGED', 'audit_trail.alert', name,
        jsonb_build_object('alert', name, 'change', 'dropped'));
END
$$;
COMMENT ON FUNCTION audit_trail.drop_alert(text) IS 'Drops an alert rule.';

-- How far back a window must keep its events: a transaction still open
-- may commit events that occurred then. The start of the oldest open
-- transaction that has written (pg_stat_activity; a prepared transaction's
-- start is unknown: all of time), else now. Without the right to see other
-- sessions' transactions (pg_read_all_stats), now.
CREATE FUNCTION audit_trail._alert_horizon() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_prepared_xacts) THEN '-infinity'::timestamptz
        ELSE least(clock_timestamp(),
                   (SELECT min(a.xact_start) FROM pg_stat_activity a
                    WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()))
        END
$$;

-- The key of an event under a rule's per.
CREATE FUNCTION audit_trail._alert_key(per text, e audit_trail.events) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE per
        WHEN 'actor' THEN e.actor
        WHEN 'client_ip' THEN coalesce(host(e.client_ip), '')
        WHEN 'tenant' THEN coalesce(e.tenant, '')
        -- A JSON pair: ('a b', 'c') and ('a', 'b c') stay apart.
        WHEN 'entity' THEN jsonb_build_array(e.entity_type, e.entity_id)::text
        WHEN 'transaction' THEN e.txid::text
        ELSE '' END
$$;

CREATE FUNCTION audit_trail.check_alerts()
RETURNS TABLE(alert text, key text, events bigint, first_id bigint, last_id bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- An ALERT event's details read the same whatever the session's settings.
SET IntervalStyle = 'iso_8601'
SET TimeZone = 'UTC'
AS $$
DECLARE
    st record;
    upto text;
    g record;
    ts timestamptz[];
    ids bigint[];
    i int;
    j int;
    n int;
    fired_id bigint;
    channel text := audit_trail._setting('audit_trail.alert_channel');
    horizon timestamptz;
BEGIN
    -- One run at a time: a second one waits here, then reads from where the
    -- first stopped (READ COMMITTED re-reads the locked row).
    SELECT s.position INTO st FROM audit_trail.alert_state s WHERE s.one FOR UPDATE;
    IF NOT FOUND THEN
        -- No rule was ever added here, or the database was restored (the
        -- position is not dumped): from now on.
        IF EXISTS (SELECT FROM audit_trail.alert_rules) THEN
            INSERT INTO audit_trail.alert_state (position) VALUES (audit_trail.feed_position())
            ON CONFLICT (one) DO NOTHING;
        END IF;
        RETURN;
    END IF;
    upto := audit_trail.feed_position();
    horizon := audit_trail._alert_horizon();
    IF split_part(st.position, '/', -1) IS DISTINCT FROM split_part(upto, '/', -1) THEN
        -- A position of another cluster (restored, copied): what was
        -- restored was checked there; go on from now.
        RAISE NOTICE 'pg_audit_trail: check_alerts() starts again from now: its position was taken in another database';
        st.position := upto;
    END IF;
    -- The new matching events, by rule and key, with what the window still
    -- holds; then each group scanned in time order.
    FOR g IN
        WITH new AS (
            SELECT r.name AS rule, audit_trail._alert_key(r.per, e) AS key, e.id, e.occurred_at
            FROM audit_trail.feed(st.position, upto) e
            JOIN audit_trail.alert_rules r
              ON (upper(e.action) = ANY (r.actions) OR upper(e.operation) = ANY (r.actions))
             AND (r.entity_types IS NULL OR e.entity_type = ANY (r.entity_types))
             AND (r.changed_any IS NULL OR (e.operation = 'UPDATE' AND e.changed && r.changed_any))
        ), held AS (
            DELETE FROM audit_trail.alert_window w
            USING (SELECT DISTINCT new.rule, new.key FROM new) k
            WHERE w.rule = k.rule AND w.key = k.key
            RETURNING w.rule, w.key, w.event_id AS id, w.occurred_at
        )
        SELECT a.rule, a.key, r.threshold, r.within,
               array_agg(a.occurred_at ORDER BY a.occurred_at, a.id) AS ts,
               array_agg(a.id ORDER BY a.occurred_at, a.id) AS ids
        FROM (SELECT * FROM new UNION SELECT * FROM held) a
        JOIN audit_trail.alert_rules r ON r.name = a.rule
        GROUP BY a.rule, a.key, r.threshold, r.within
        ORDER BY a.rule, a.key
    LOOP
        ts := g.ts;
        ids := g.ids;
        n := cardinality(ids);
        i := 1;
        FOR j IN 1 .. n LOOP
            WHILE ts[j] - ts[i] > g.within LOOP
                i := i + 1;
            END LOOP;
            IF j - i + 1 >= g.threshold THEN
                alert := g.rule;
                key := g.key;
                events := j - i + 1;
                first_id := (SELECT min(x) FROM unnest(ids[i:j]) x);
                last_id := (SELECT max(x) FROM unnest(ids[i:j]) x);
                fired_id := audit_trail._write_system_event_about('ALERT', 'audit_trail.alert', g.rule,
                    jsonb_build_object('rule', g.rule, 'key', g.key, 'count', events, 'window', g.within::text,
                                       'first_id', first_id, 'last_id', last_id,
                                       'first_at', ts[i], 'last_at', ts[j]));
                IF channel IS NOT NULL AND channel <> '' THEN
                    -- No key, actor or entity here: NOTIFY has no access
                    -- control. The event says the rest to whoever may read it.
                    PERFORM pg_notify(channel, jsonb_build_object('alert', g.rule, 'event_id', fired_id, 'events', events)::text);
                END IF;
                RETURN NEXT;
                i := j + 1;
            END IF;
        END LOOP;
        -- What may still be part of a later firing.
        IF i <= n THEN
            INSERT INTO audit_trail.alert_window (rule, key, event_id, occurred_at)
            SELECT g.rule, g.key, ids[k], ts[k] FROM generate_series(i, n) k
            WHERE ts[k] >= least(ts[n], horizon) - g.within;
        END IF;
    END LOOP;
    -- Events no window can reach any more: older than the window before
    -- the horizon (now, or the start of the oldest open transaction).
    DELETE FROM audit_trail.alert_window w
    USING audit_trail.alert_rules r
    WHERE w.rule = r.name AND w.occurred_at < horizon - r.within;
    UPDATE audit_trail.alert_state s SET position = upto, checked_at = clock_timestamp() WHERE s.one;
END
$$;
COMMENT ON FUNCTION audit_trail.check_alerts() IS
  'Applies the alert rules to the events committed since the last run; records and returns each firing.';
