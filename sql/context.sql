-- Who is acting: set_context() and clear_context() over the audit_trail.*
-- context settings, so SET LOCAL, connection options and ALTER ROLE ... SET
-- work the same as the functions.

CREATE FUNCTION audit_trail.set_context(
    actor      text    DEFAULT NULL,
    client_ip  inet    DEFAULT NULL,
    user_agent text    DEFAULT NULL,
    service    text    DEFAULT NULL,
    tenant     text    DEFAULT NULL,
    request_id text    DEFAULT NULL,
    local      boolean DEFAULT true
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF local AND NOT audit_trail._in_transaction_block() THEN
        RAISE WARNING 'audit_trail.set_context(local => true) outside a transaction block lasts only for this statement'
            USING HINT = 'Call it after BEGIN, or pass local => false for the session.';
    END IF;
    -- A NULL argument leaves that value as it is; clear_context() empties all.
    -- client_ip is validated by its type: a malformed address fails here.
    IF actor IS NOT NULL THEN PERFORM set_config('audit_trail.actor', actor, local); END IF;
    IF client_ip IS NOT NULL THEN PERFORM set_config('audit_trail.client_ip', client_ip::text, local); END IF;
    IF user_agent IS NOT NULL THEN PERFORM set_config('audit_trail.user_agent', user_agent, local); END IF;
    IF service IS NOT NULL THEN PERFORM set_config('audit_trail.service', service, local); END IF;
    IF tenant IS NOT NULL THEN PERFORM set_config('audit_trail.tenant', tenant, local); END IF;
    IF request_id IS NOT NULL THEN PERFORM set_config('audit_trail.request_id', request_id, local); END IF;
END
$$;
COMMENT ON FUNCTION audit_trail.set_context IS
  'Sets who is acting for the transaction (local => true) or the session; NULL arguments leave a value unchanged.';

CREATE FUNCTION audit_trail.clear_context() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT set_config(n, '', false)
    FROM unnest(ARRAY['audit_trail.actor', 'audit_trail.client_ip', 'audit_trail.user_agent',
                      'audit_trail.service', 'audit_trail.tenant', 'audit_trail.request_id']) AS n;
$$;
COMMENT ON FUNCTION audit_trail.clear_context IS
  'Empties every context value, for the session and the current transaction.';
