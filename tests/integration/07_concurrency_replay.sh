# pgbench, 8 clients, 15 s: each transaction moves money with its own
# client's context. Every committed change has exactly one event, each event
# carries its own client's context, and the balances replay exactly.
SECONDS_=${IT_PGBENCH_SECONDS:-15}
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE transfers (id bigserial PRIMARY KEY, account int, delta int, client int);
INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 50) g;
CREATE TABLE initial AS SELECT * FROM accounts;
SELECT audit_trail.enable('accounts');
SELECT audit_trail.enable('transfers');
SQL
cat > "$IT_WORK/transfer.sql" <<'EOF2'
\set aid random(1, 50)
\set amount random(1, 100)
\set sign random(0, 1)
BEGIN;
SELECT audit_trail.set_context(actor => 'client-' || :client_id, request_id => 'c' || :client_id);
UPDATE accounts SET balance = balance + :amount * (2 * :sign - 1) WHERE id = :aid;
INSERT INTO transfers (account, delta, client) VALUES (:aid, :amount * (2 * :sign - 1), :client_id);
END;
EOF2
pgbench -n -h 127.0.0.1 -p "$IT_PORT" -U postgres -c 8 -j 2 -T "$SECONDS_" -f "$IT_WORK/transfer.sql" "$IT_DB" > "$IT_WORK/pgbench.out" 2>&1
grep -E "number of (transactions|failed)" "$IT_WORK/pgbench.out" | sed 's/^/  /'
sql -c "ANALYZE"
tx=$(sql -c "SELECT count(*) FROM transfers")
[ "$tx" -gt 1000 ] || fail "only $tx transactions"
expect_eq "UPDATE events = committed updates" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.accounts' AND action = 'UPDATE'")" "$tx"
expect_eq "INSERT events = committed inserts" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.transfers' AND action = 'INSERT'")" "$tx"
expect_eq "every event carries its own client's context" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events u JOIN audit_trail.events i ON i.txid = u.txid
              AND i.entity_type = 'public.transfers' AND u.entity_type = 'public.accounts'
              WHERE u.actor = 'client-' || (i.after->>'client') AND u.request_id = 'c' || (i.after->>'client')
                AND i.actor = u.actor")" "$tx"
expect_eq "events' deltas equal the transfers'" \
  "$(sql -c "SELECT count(*) FROM audit_trail.events u JOIN audit_trail.events i USING (txid)
              WHERE u.entity_type = 'public.accounts' AND i.entity_type = 'public.transfers'
                AND (u.after->>'balance')::bigint - (u.before->>'balance')::bigint = (i.after->>'delta')::int")" "$tx"
expect_eq "balances replay exactly from before/after" \
  "$(sql -c "SELECT count(*) FROM accounts a JOIN initial i USING (id)
              WHERE a.balance = i.balance + coalesce((SELECT sum((e.after->>'balance')::bigint - (e.before->>'balance')::bigint)
                                                      FROM audit_trail.events e
                                                      WHERE e.entity_type = 'public.accounts' AND e.entity_id = a.id::text), 0)
                AND a.balance = coalesce((SELECT (e.after->>'balance')::bigint FROM audit_trail.events e
                                          WHERE e.entity_type = 'public.accounts' AND e.entity_id = a.id::text
                                          ORDER BY e.id DESC LIMIT 1), i.balance)")" 50
echo "  transactions: $tx, events: $(( tx * 2 ))"
