-- Values exactly as to_jsonb renders them, whatever the type.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TYPE address AS (street text, zip int);
CREATE TABLE everything (
    id int PRIMARY KEY,
    n numeric, f4 real, f8 double precision, i2 smallint, i8 bigint, b boolean,
    t text, vc varchar(10), ch char(3), nm name,
    ts timestamp, tstz timestamptz, d date, tm time, iv interval,
    ta text[], ia int[][], j json, jb jsonb, u uuid, ip inet, cidr_ cidr, mac macaddr,
    m mood, dom positive, addr address, addrs address[], r int4range, tr tstzrange,
    pt point, bits bit varying(8), x xml, money_ money, nan numeric, inf float8, blob bytea
);
SELECT audit_trail.enable('everything');
INSERT INTO everything VALUES (
    1, 12345678901234567890.123456789, 1.5, -2.25e-10, 7, 9007199254740993, true,
    'tab	"quote" \ back', 'v', 'ab', 'name',
    '2026-01-02 03:04:05.678', '2026-01-02 03:04:05.678+02', '2026-01-02', '12:34:56', '1 day 2 hours',
    '{a,NULL,"c,d"}', '{{1,2},{3,4}}', '{"a": [1, 2.50, {"b": null}]}', '{"z": 1, "a": {"deep": [true]}}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
    'happy', 5, ROW('Main St', 12345), ARRAY[ROW('A', 1), ROW('B', NULL)]::address[], '[1,10)', '[2026-01-01,2026-02-01)',
    '(1,2)', B'101', '<a>1</a>', 12.34, 'NaN', 'Infinity', '\xdeadbeef');
INSERT INTO everything (id) VALUES (2);

-- after equals to_jsonb of the row, but for bytea.
SELECT e.entity_id,
       e.after = (to_jsonb(whole_row) || CASE WHEN whole_row.blob IS NULL THEN '{}' ELSE '{"blob": "[BINARY DATA]"}' END::jsonb)
         AS same_as_to_jsonb
FROM audit_trail.events e JOIN everything whole_row ON whole_row.id::text = e.entity_id
WHERE e.entity_type = 'public.everything' AND e.action = 'INSERT'
ORDER BY 1;
SELECT jsonb_pretty(after - 'blob') FROM audit_trail.events WHERE entity_type = 'public.everything' AND entity_id = '1';

-- UPDATE of every column: before and after hold exactly the old and new values.
UPDATE everything SET (n, f4, f8, i2, i8, b, t, vc, ch, nm, ts, tstz, d, tm, iv, ta, ia, j, jb, u, ip, cidr_, mac, m, dom, addr, addrs, r, tr, pt, bits, x, money_, nan, inf)
  = (SELECT n, f4, f8, i2, i8, b, t, vc, ch, nm, ts, tstz, d, tm, iv, ta, ia, j, jb, u, ip, cidr_, mac, m, dom, addr, addrs, r, tr, pt, bits, x, money_, nan, inf FROM everything WHERE id = 1)
  WHERE id = 2;
SELECT e.changed,
       e.after = (SELECT jsonb_object_agg(k, v) FROM jsonb_each(to_jsonb(whole_row)) AS kv(k, v) WHERE k = ANY (e.changed)) AS after_ok,
       e.before = (SELECT jsonb_object_agg(k, 'null'::jsonb) FROM unnest(e.changed) k) AS before_all_null
FROM audit_trail.events e, everything whole_row
WHERE e.entity_type = 'public.everything' AND e.action = 'UPDATE' AND whole_row.id = 2;

-- Numeric scale is a change; equal text moved to TOAST is not.
CREATE TABLE big (id int PRIMARY KEY, n numeric, body text);
SELECT audit_trail.enable('big');
INSERT INTO big VALUES (1, 1.0, repeat('x', 100000));
UPDATE big SET n = 1.00;
UPDATE big SET body = repeat('x', 100000);
UPDATE big SET body = repeat('x', 99999) || 'y';
SELECT action, changed, before->>'n' AS n_before, after->>'n' AS n_after, length(after->>'body') AS body_len
FROM audit_trail.events WHERE entity_type = 'public.big' ORDER BY id;
