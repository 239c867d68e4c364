# Real login roles in separate sessions: each change carries its own
# session's context; a role with no privilege on the log produces events
# but cannot read, forge or erase them.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE ROLE it_clerk LOGIN;
CREATE ROLE it_agent LOGIN;
CREATE TABLE tickets (id int PRIMARY KEY, title text, status text);
GRANT SELECT, INSERT, UPDATE, DELETE ON tickets TO it_clerk, it_agent;
SELECT audit_trail.enable('tickets');
SQL

# Two sessions at once, each with its own context, interleaving in time.
(
  for i in $(seq 1 20); do
    echo "BEGIN; SELECT audit_trail.set_context(actor => 'clerk@example.com', client_ip => '198.51.100.1', request_id => 'c-$i');"
    echo "INSERT INTO tickets VALUES ($i, 'clerk $i', 'new'); COMMIT;"
  done
) | PGAPPNAME=clerk-app sql_as it_clerk >/dev/null &
(
  for i in $(seq 101 120); do
    echo "BEGIN; SELECT audit_trail.set_context(actor => 'agent@example.com', client_ip => '198.51.100.2', request_id => 'a-$i');"
    echo "INSERT INTO tickets VALUES ($i, 'agent $i', 'new'); COMMIT;"
  done
) | PGAPPNAME=agent-app sql_as it_agent >/dev/null &
wait

expect_eq "events" "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.tickets'")" 40
expect_eq "clerk's events carry clerk's context" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE actor = 'clerk@example.com' AND db_user = 'it_clerk'
              AND client_ip = '198.51.100.1' AND service = 'clerk-app' AND request_id = 'c-' || entity_id")" 20
expect_eq "agent's events carry agent's context" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE actor = 'agent@example.com' AND db_user = 'it_agent'
              AND client_ip = '198.51.100.2' AND service = 'agent-app' AND request_id = 'a-' || entity_id")" 20

# Without context the actor is the login role.
sql_as it_agent -c "UPDATE tickets SET status = 'open' WHERE id = 101"
expect_eq "default actor" "$(sql -c "SELECT actor || '/' || db_user FROM audit_trail.events WHERE action = 'UPDATE'")" "it_agent/it_agent"

# The unprivileged role cannot read, forge, erase, or switch auditing off.
for stmt in "SELECT count(*) FROM audit_trail.events" \
            "INSERT INTO audit_trail.events (action, actor, db_user) VALUES ('X', 'x', 'x')" \
            "DELETE FROM audit_trail.events" \
            "SELECT audit_trail.disable('tickets')" \
            "ALTER TABLE tickets DISABLE TRIGGER audit_trail_insert"; do
  if sql_as it_agent -c "$stmt" 2>/dev/null; then fail "it_agent could run: $stmt"; fi
done
echo "  it_agent refused: read, forge, erase, disable"
expect_eq "auditing still on" "$(sql -c "SELECT count(*) FROM audit_trail.tracked")" 1

sql -c "DROP TABLE tickets" -c "DROP OWNED BY it_clerk, it_agent" -c "DROP ROLE it_clerk" -c "DROP ROLE it_agent"
