-- Application events.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
SELECT audit_trail.log_event('USER_LOGIN', 'app.user', '42', '{"method": "password"}', 'ann@example.com') > 0 AS got_id;
SELECT audit_trail.set_context(actor => 'ann@example.com', client_ip => '198.51.100.4', local => false);
SELECT audit_trail.log_event('EXPORT') > 0 AS got_id;
SELECT audit_trail.log_event('token.created:v2-x') > 0 AS got_id;
SELECT audit_trail.clear_context();
SELECT action, entity_type, entity_id, entity_label, details, actor, client_ip, before, after, changed
FROM audit_trail.events WHERE action IN ('USER_LOGIN', 'EXPORT', 'token.created:v2-x') ORDER BY id;
-- The id returned is the event's.
SELECT audit_trail.log_event('LOGIN_FAILED', details => '{"attempt": 3}') AS id \gset
SELECT action, details FROM audit_trail.events WHERE id = :id;
-- Bad names.
SELECT audit_trail.log_event('');
SELECT audit_trail.log_event(NULL);
SELECT audit_trail.log_event('1LOGIN');
SELECT audit_trail.log_event('USER LOGIN');
SELECT audit_trail.log_event('DROP;TABLE');
SELECT audit_trail.log_event(repeat('A', 65));
SELECT audit_trail.log_event(repeat('A', 64)) > 0 AS sixty_four_is_fine;
-- A READ ONLY transaction writes nothing, events included.
BEGIN READ ONLY;
SELECT audit_trail.log_event('READ_ONLY');
ROLLBACK;
BEGIN READ ONLY;
SELECT count(*) >= 0 FROM audit_trail.export('csv', actions => '{NONE}');
ROLLBACK;
