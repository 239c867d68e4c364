# Hostile input, generated: table, schema and column names with quotes,
# spaces, semicolons, unicode and reserved words; every common built-in type,
# as a column, an array, a domain and inside a composite; very large text and
# a 10 MB jsonb; context values with quotes, newlines and 10 kB. Auditing
# works, the JSON equals to_jsonb of the value, and no name reaches SQL
# unquoted (no object the names spell is ever created).
sql <<'SQL'
CREATE EXTENSION pg_audit_trail;
CREATE TABLE hostile_names (n text);
INSERT INTO hostile_names VALUES ('Order Lines'), ('quote"inside'), ('it''s'), ('semi;colon'),
  ('x; DROP TABLE victim; --'), ('ünïcødé ✓ 表'), ('select'), ('user'), ('from'), ('Table'), ('TABLE'),
  ('$1'), ('%s %I %L'), ('back\slash'), (E'new\nline'), ('emoji 🎉'), ('a.b'), ('"'), ('_');
CREATE TABLE victim (x int);
CREATE TABLE results (what text, input text, ok boolean);

DO $$
DECLARE
    n text;
    i int := 0;
    t text;
    ev record;
BEGIN
    FOR n IN SELECT * FROM hostile_names LOOP
        i := i + 1;
        EXECUTE format('CREATE SCHEMA %I', n || ' schema');
        t := format('%I.%I', n || ' schema', n);
        EXECUTE format('CREATE TABLE %s (%I int PRIMARY KEY, %I text, %I text)', t, n || ' id', n, n || ' secret');
        PERFORM audit_trail.enable(t::regclass, redact => ARRAY[n || ' secret'], label_column => n);
        EXECUTE format('INSERT INTO %s VALUES (1, %L, %L)', t, n, 'hush');
        EXECUTE format('UPDATE %s SET %I = %L', t, n, n || ' changed');
        EXECUTE format('DELETE FROM %s', t);
        SELECT count(*) AS events,
               bool_and(e.entity_type = t) AS names_ok,
               bool_and(coalesce(e.after, e.before) ? n) AS keys_ok,
               bool_and(coalesce(e.after, e.before) ->> (n || ' secret') IS DISTINCT FROM 'hush') AS redacted_ok,
               bool_and(e.entity_label IN (n, n || ' changed')) AS label_ok
          INTO ev
          FROM audit_trail.events e WHERE e.entity_type = t;
        INSERT INTO results VALUES ('name', n, ev.events = 3 AND ev.names_ok AND ev.keys_ok AND ev.redacted_ok AND ev.label_ok);
        INSERT INTO results VALUES ('history', n, (SELECT count(*) FROM audit_trail.history(t::regclass, '1')) = 3);
        INSERT INTO results VALUES ('search q', n, (SELECT count(*) FROM audit_trail.search(q => n, entity_types => ARRAY[t])) = 3);
        PERFORM audit_trail.log_event('HOSTILE', n, n, jsonb_build_object(n, n), n);
        INSERT INTO results VALUES ('log_event', n, EXISTS (SELECT 1 FROM audit_trail.events e
            WHERE e.action = 'HOSTILE' AND e.entity_type = n AND e.entity_id = n AND e.entity_label = n AND e.details ->> n = n));
    END LOOP;
END $$;

-- Types: each as a column, an array, a domain over it, and inside a composite.
CREATE TABLE samples (typ text, lit text);
INSERT INTO samples VALUES
  ('smallint', '-32768'), ('integer', '2147483647'), ('bigint', '-9223372036854775808'),
  ('numeric', '-12345678901234567890.000000000000000001'), ('numeric(5,2)', '1.5'), ('real', '3.4e38'),
  ('double precision', '-1.7976931348623157e308'), ('double precision', '0.1'), ('numeric', 'NaN'),
  ('double precision', '-Infinity'), ('boolean', 'false'), ('text', E'tab\tquote" back\\ nul-free ünï ✓'),
  ('varchar(5)', 'abc'), ('char(4)', 'ab'), ('name', 'some_name'), ('"char"', 'x'), ('bytea', '\x00ff'),
  ('date', '2026-02-28'), ('date', 'infinity'), ('time', '23:59:59.999999'), ('timetz', '12:00+05:30'),
  ('timestamp', '1999-12-31 23:59:59.5'), ('timestamptz', '2026-03-29 01:30:00+01'), ('timestamptz', '-infinity'),
  ('interval', '1 year 2 mons -3 days 04:05:06.7'), ('uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
  ('inet', '::ffff:1.2.3.4/128'), ('cidr', '2001:db8::/32'), ('macaddr', '08:00:2b:01:02:03'),
  ('macaddr8', '08:00:2b:01:02:03:04:05'), ('money', '-1.23'), ('bit(4)', '1010'), ('varbit', '1'),
  ('json', '{"b": 1, "a": [true, null, 1.50]}'), ('jsonb', '{"b": 1, "a": [true, null, 1.50], "": {}}'),
  ('xml', '<a x="1">t</a>'), ('point', '(1.5,-2)'), ('line', '{1,-1,0}'), ('lseg', '[(0,0),(1,1)]'),
  ('box', '(1,1),(0,0)'), ('path', '[(0,0),(1,1)]'), ('polygon', '((0,0),(1,1),(1,0))'), ('circle', '<(0,0),1>'),
  ('int4range', '[1,10)'), ('int8range', 'empty'), ('numrange', '(,2.5]'), ('tsrange', '[2026-01-01,)'),
  ('tstzrange', '[2026-01-01 00:00+00,2026-01-02 00:00+00)'), ('daterange', '[2026-01-01,2026-02-01)'),
  ('int4multirange', '{[1,3),[5,7)}'), ('tsvector', 'a fat cat'), ('tsquery', 'fat & cat'),
  ('oid', '42'), ('regclass', 'pg_class'), ('pg_lsn', '16/B374D848'), ('txid_snapshot', '10:20:10,14,15');
DO $$
DECLARE
    s record;
    i int := 0;
    t text;
    ok boolean;
    dom text;
BEGIN
    FOR s IN SELECT * FROM samples LOOP
        i := i + 1;
        t := 'typ_' || i;
        dom := 'dom_' || i;
        EXECUTE format('CREATE DOMAIN %I AS %s', dom, s.typ);
        EXECUTE format('CREATE TYPE %I AS (v %s, n text)', t || '_c', s.typ);
        EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, v %s, va %s[], vd %I, vc %I)', t, s.typ, s.typ, dom, t || '_c');
        PERFORM audit_trail.enable(t::regclass);
        EXECUTE format('INSERT INTO %I VALUES (1, %L, ARRAY[%L, NULL]::%s[], %L, ROW(%L, %L))', t, s.lit, s.lit, s.typ, s.lit, s.lit, 'x"y');
        EXECUTE format('UPDATE %I SET v = NULL, va = ''{}''', t);
        EXECUTE format($q$
            SELECT bool_and(CASE e.action
                     WHEN 'INSERT' THEN e.after = (SELECT to_jsonb(r) FROM (SELECT 1 AS id, %1$L::%2$s AS v, ARRAY[%1$L, NULL]::%2$s[] AS va,
                                                                          %1$L::%3$I AS vd, ROW(%1$L, 'x"y')::%4$I AS vc) r)
                     ELSE e.before = (SELECT jsonb_build_object('v', to_jsonb(%1$L::%2$s), 'va', to_jsonb(ARRAY[%1$L, NULL]::%2$s[])))
                      AND e.after = '{"v": null, "va": []}' END) AND count(*) = 2
            FROM audit_trail.events e WHERE e.entity_type = 'public.' || %5$L$q$, s.lit, s.typ, dom, t || '_c', t) INTO ok;
        -- bytea is recorded as [BINARY DATA], never as its value.
        IF s.typ = 'bytea' THEN
            SELECT bool_and(e::text NOT LIKE '%00ff%') AND count(*) = 2 INTO ok
            FROM audit_trail.events e WHERE e.entity_type = 'public.' || t;
        END IF;
        INSERT INTO results VALUES ('type', s.typ || ' ' || s.lit, ok);
    END LOOP;
END $$;

-- Very large values.
CREATE TABLE big (id int PRIMARY KEY, t text, j jsonb);
SELECT audit_trail.enable('big');
INSERT INTO big SELECT 1, repeat('long ', 1000000),
       (SELECT jsonb_agg(jsonb_build_object('k', g, 'v', repeat('x', 80))) FROM generate_series(1, 120000) g);
INSERT INTO results SELECT 'large', pg_size_pretty(octet_length(j::text)::bigint) || ' jsonb + ' || pg_size_pretty(octet_length(t)::bigint) || ' text',
  (SELECT e.after = to_jsonb(b) FROM audit_trail.events e WHERE e.entity_type = 'public.big') FROM big b;
UPDATE big SET j = j || '[1]'::jsonb;
INSERT INTO results SELECT 'large update', 'jsonb', (SELECT e.changed = '{j}' AND e.after -> 'j' = b.j FROM audit_trail.events e
  WHERE e.entity_type = 'public.big' AND e.action = 'UPDATE') FROM big b;

-- Context values stored verbatim.
CREATE TABLE ctx (id int PRIMARY KEY);
SELECT audit_trail.enable('ctx');
BEGIN;
SELECT audit_trail.set_context(actor => E'o''brien "the" \\ actor\n;--', user_agent => repeat('ü', 10000),
                               service => E'svc\r\n', tenant => '%_', request_id => repeat('r', 10240));
INSERT INTO ctx VALUES (1);
COMMIT;
INSERT INTO results SELECT 'context', 'quotes, newlines, 10 kB',
  actor = E'o''brien "the" \\ actor\n;--' AND user_agent = repeat('ü', 10000) AND service = E'svc\r\n'
  AND tenant = '%_' AND request_id = repeat('r', 10240)
  FROM audit_trail.events WHERE entity_type = 'public.ctx';
SQL
sql -c "SELECT what, input FROM results WHERE ok IS NOT TRUE" > "$IT_WORK/hostile.failed"
if [ -s "$IT_WORK/hostile.failed" ]; then cat "$IT_WORK/hostile.failed"; fail "inputs mishandled"; fi
expect_eq "victim table untouched" "$(sql -c "SELECT count(*) FROM pg_class WHERE relname = 'victim'")" 1
echo "  large: $(sql -c "SELECT input FROM results WHERE what = 'large'")"
echo "  inputs tried: $(sql -c "SELECT count(*) FROM results") ($(sql -c "SELECT string_agg(what || ' ' || c, ', ') FROM (SELECT what, count(*) c FROM results GROUP BY 1 ORDER BY 1) s")), all audited exactly"
