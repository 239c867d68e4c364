# A statement that starts after enable() committed is captured in every
# session, whatever its isolation level or how old its snapshot is; so are
# the settings a re-enable() changed and renames (API §8). Session B is a
# psql fed through a fifo, its transaction open across session A's commands.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, pin text, note text);
CREATE TABLE other (x int);
SQL

fifo="$IT_WORK/stale_b.in"
rm -f "$fifo"; mkfifo "$fifo"
PGAPPNAME=it_stale_b sql < "$fifo" > "$IT_WORK/stale_b.out" 2>&1 &
b_pid=$!
exec 3> "$fifo"
trap 'exec 3>&- 2>/dev/null || true; kill $b_pid 2>/dev/null || true' EXIT
step=0
# b SQL...: runs statements in session B and waits until B is done with them.
b() {
  step=$((step + 1))
  printf '%s\nSELECT %s AS step;\n' "$*" "$step" >&3
  wait_for 30 "SELECT $step AS step;" \
    "SELECT query FROM pg_stat_activity WHERE application_name = 'it_stale_b' AND state <> 'active'"
}
events() { sql -c "SELECT count(*) FROM audit_trail.events WHERE action IN ('INSERT', 'UPDATE', 'DELETE') ${1:-}"; }

# 1. B's REPEATABLE READ snapshot is taken before enable() commits.
b "BEGIN ISOLATION LEVEL REPEATABLE READ;" "SELECT count(*) FROM other;"
sql -c "SELECT audit_trail.enable('accounts')" >/dev/null
b "INSERT INTO accounts VALUES (1, 'ann', '1111', 'a'), (2, 'bob', '2222', 'b');" \
  "UPDATE accounts SET note = 'a2' WHERE id = 1;" \
  "DELETE FROM accounts WHERE id = 2;"
b "COMMIT;"
# 2. Re-enable with a redact list after B's next snapshot was taken; B's
#    backend has the table's old settings cached.
b "BEGIN ISOLATION LEVEL REPEATABLE READ;" "SELECT count(*) FROM other;"
sql -c "SELECT audit_trail.enable('accounts', redact => '{pin}')" >/dev/null
b "UPDATE accounts SET pin = '1112' WHERE id = 1;"
b "COMMIT;"
expect_eq "every change of the old-snapshot transactions has its event" "$(events)" 5
expect_eq "the change after the re-enable is redacted" \
  "$(sql -c "SELECT (before ->> 'pin') || ' ' || (after ->> 'pin') FROM audit_trail.events WHERE action = 'UPDATE' AND changed = '{pin}'")" \
  "[REDACTED] [REDACTED]"

# 3. Renames while B's snapshot is older than them: the table, then a
#    redacted column (SERIALIZABLE this time).
b "BEGIN ISOLATION LEVEL REPEATABLE READ;" "SELECT count(*) FROM other;"
sql -c "ALTER TABLE accounts RENAME TO client_accounts"
b "INSERT INTO client_accounts VALUES (3, 'cy', '3333', 'c');"
b "COMMIT;"
expect_eq "events carry the new name" \
  "$(sql -c "SELECT entity_type || ' ' || (after ->> 'pin') FROM audit_trail.events WHERE action = 'INSERT' AND entity_id = '3'")" \
  "public.client_accounts [REDACTED]"
b "BEGIN ISOLATION LEVEL SERIALIZABLE;" "SELECT count(*) FROM other;"
sql -c "ALTER TABLE client_accounts RENAME COLUMN pin TO pin_code"
b "UPDATE client_accounts SET pin_code = '3334' WHERE id = 3;"
b "COMMIT;"
expect_eq "a renamed redacted column stays redacted" \
  "$(sql -c "SELECT (after ->> 'pin_code') || ' ' || changed::text FROM audit_trail.events WHERE action = 'UPDATE' AND entity_id = '3'")" \
  "[REDACTED] {pin_code}"

# 4. The same in a SERIALIZABLE transaction, for a second table.
sql -c "CREATE TABLE notes (id int PRIMARY KEY, body text)"
b "BEGIN ISOLATION LEVEL SERIALIZABLE;" "SELECT count(*) FROM other;"
sql -c "SELECT audit_trail.enable('notes')" >/dev/null
b "INSERT INTO notes VALUES (1, 'after enable');"
b "COMMIT;"
expect_eq "notes: the change of the older serializable snapshot" \
  "$(sql -c "SELECT string_agg(entity_id, ',') FROM audit_trail.events WHERE entity_type = 'public.notes'")" "1"

# 5. A schema renamed while B holds its locks on the table (the rename
#    takes none on it): B's next statement names the table anew.
sql -c "CREATE SCHEMA ledger_a" -c "CREATE TABLE ledger_a.entries (id int PRIMARY KEY, amount int)" \
    -c "SELECT audit_trail.enable('ledger_a.entries')" >/dev/null
b "BEGIN;" "INSERT INTO ledger_a.entries VALUES (1, 10);"
sql -c "ALTER SCHEMA ledger_a RENAME TO ledger_b"
b "INSERT INTO ledger_b.entries VALUES (2, 20);"
b "COMMIT;"
expect_eq "events follow a schema rename at once" \
  "$(sql -c "SELECT string_agg(entity_type || ':' || entity_id, ' ' ORDER BY id) FROM audit_trail.events WHERE action = 'INSERT' AND entity_type LIKE 'ledger%'")" \
  "ledger_a.entries:1 ledger_b.entries:2"

exec 3>&-
wait $b_pid
trap - EXIT
if grep -q ERROR "$IT_WORK/stale_b.out"; then cat "$IT_WORK/stale_b.out"; fail "session B saw an error"; fi
sql -c "DROP TABLE client_accounts, other, notes, ledger_b.entries" -c "DROP SCHEMA ledger_b"
