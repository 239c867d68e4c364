# export's CSV and JSON lines, read back by independent parsers (Python's
# csv and json modules), field for field against the events.
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE notes (id int PRIMARY KEY, body text, tags text[]);
SELECT audit_trail.enable('notes');
BEGIN;
SELECT audit_trail.set_context(actor => E'Smith, "Agent"\r\nJ.', user_agent => 'a,b;c"d', request_id => '');
INSERT INTO notes SELECT g, E'line ' || g || E'\n"quoted", comma\ttab \\ backslash é', ARRAY['x,y', 'z"w']
FROM generate_series(1, 300) g;
UPDATE notes SET body = NULL WHERE id % 3 = 0;
DELETE FROM notes WHERE id % 5 = 0;
COMMIT;
SQL
sql -c "SELECT * FROM audit_trail.export('csv', entity_types => '{public.notes}')" > "$IT_WORK/export.csv"
sql -c "SELECT * FROM audit_trail.export('jsonl', entity_types => '{public.notes}')" > "$IT_WORK/export.jsonl"
sql -c "SELECT json_agg(json_build_object('id', id, 'action', action, 'entity_id', entity_id, 'before', before,
               'after', after, 'changed', changed, 'actor', actor, 'user_agent', user_agent) ORDER BY id DESC)
        FROM audit_trail.events WHERE entity_type = 'public.notes'" > "$IT_WORK/truth.json"
# One field per column of the log (export follows the table's definition).
ncols=$(sql -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'audit_trail.events'::regclass AND attnum > 0 AND NOT attisdropped")
python3 - "$IT_WORK" "$ncols" <<'PY'
import csv, json, sys, re
work = sys.argv[1]
ncols = int(sys.argv[2])
truth = json.load(open(f"{work}/truth.json"))
with open(f"{work}/export.csv", newline="") as f:
    rows = list(csv.reader(f, strict=True))
header, rows = rows[0], rows[1:]
assert header[:4] == ["id", "occurred_at", "txid", "action"], header
assert len(header) == ncols, (len(header), ncols)
assert len(rows) == len(truth), (len(rows), len(truth))
col = {name: i for i, name in enumerate(header)}
for r, t in zip(rows, truth):
    assert len(r) == ncols, r
    assert int(r[col["id"]]) == t["id"]
    assert r[col["action"]] == t["action"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r[col["occurred_at"]])
    assert r[col["actor"]] == t["actor"], (r[col["actor"]], t["actor"])
    assert r[col["user_agent"]] == t["user_agent"]
    for k in ("before", "after", "changed"):
        got = json.loads(r[col[k]]) if r[col[k]] else None
        assert got == t[k], (k, got, t[k])
print(f"  csv: {len(rows)} records, {ncols} fields each, equal to the events")
lines = open(f"{work}/export.jsonl").read().splitlines()
objs = [json.loads(l) for l in lines]
assert len(objs) == len(truth)
for o, t in zip(objs, truth):
    for k in ("id", "action", "entity_id", "before", "after", "changed", "actor", "user_agent"):
        assert o[k] == t[k], (k, o[k], t[k])
    assert o["occurred_at"].endswith("+00:00")
print(f"  jsonl: {len(objs)} objects, equal to the events")
PY
