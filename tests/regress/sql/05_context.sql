-- Who did it: the context settings and their defaults.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE tickets (id int PRIMARY KEY, title text);
SELECT audit_trail.enable('tickets');

-- Defaults: actor = session_user, service = application_name, client_ip = the connection's.
SET application_name = 'helpdesk-web';
INSERT INTO tickets VALUES (1, 'default context');
-- Transaction-local context.
BEGIN;
SELECT audit_trail.set_context(actor => 'alice@example.com', client_ip => '203.0.113.7', user_agent => 'Mozilla/5.0',
                               service => 'api', tenant => 'acme', request_id => 'req-1');
INSERT INTO tickets VALUES (2, 'with context');
COMMIT;
INSERT INTO tickets VALUES (3, 'context gone after commit');
-- Session context, then partial update of it, then clear.
SELECT audit_trail.set_context(actor => 'bob', tenant => 'globex', local => false);
INSERT INTO tickets VALUES (4, 'session context');
SELECT audit_trail.set_context(request_id => 'req-2', local => false);
INSERT INTO tickets VALUES (5, 'session context plus request');
SELECT audit_trail.clear_context();
INSERT INTO tickets VALUES (6, 'cleared');
-- The settings themselves, as SET LOCAL or connection options would.
BEGIN;
SET LOCAL audit_trail.actor = 'carol';
SET LOCAL audit_trail.client_ip = '2001:db8::1';
INSERT INTO tickets VALUES (7, 'SET LOCAL');
COMMIT;
-- db_user is session_user whatever the context or role says.
CREATE ROLE ticket_clerk;
GRANT ALL ON tickets TO ticket_clerk;
SET ROLE ticket_clerk;
BEGIN;
SELECT audit_trail.set_context(actor => 'dave');
INSERT INTO tickets VALUES (8, 'as another role, no rights on the log');
COMMIT;
RESET ROLE;
-- Values are stored verbatim.
BEGIN;
SELECT audit_trail.set_context(actor => E'o''brien\n"quoted";--', user_agent => repeat('u', 10000));
INSERT INTO tickets VALUES (9, 'odd values');
COMMIT;
-- Outside a transaction block a local context would end with the call: a WARNING says so.
SELECT audit_trail.set_context(actor => 'lost');
RESET application_name;

SELECT entity_id, replace(actor, E'\n', '\n') AS actor, db_user = session_user AS db_user_ok, client_ip, left(user_agent, 12) AS user_agent,
       length(user_agent) AS ua_len, service, tenant, request_id
FROM audit_trail.events WHERE entity_type = 'public.tickets' ORDER BY id;

-- A malformed address is refused when set, not when written.
SELECT audit_trail.set_context(client_ip => 'not-an-ip');
SET audit_trail.client_ip = '999.1.1.1';
SELECT current_setting('audit_trail.client_ip') AS client_ip_unchanged;

-- log_statement fills statement.
SET audit_trail.log_statement = on;
UPDATE tickets SET title = 'logged' WHERE id = 1;
RESET audit_trail.log_statement;
UPDATE tickets SET title = 'not logged' WHERE id = 1;
SELECT after->>'title' AS title, statement FROM audit_trail.events WHERE entity_type = 'public.tickets' AND action = 'UPDATE' ORDER BY id;

REVOKE ALL ON tickets FROM ticket_clerk;
DROP ROLE ticket_clerk;
