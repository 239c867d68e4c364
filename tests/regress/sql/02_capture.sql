-- What is recorded for each action.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
SELECT coalesce(max(id), 0) AS start_id FROM audit_trail.events \gset

CREATE TABLE orders (id int PRIMARY KEY, customer text, status text, amount numeric(10,2), noise int, touched timestamptz);
SELECT audit_trail.enable('orders', exclude => '{noise}', label_column => 'customer');

INSERT INTO orders VALUES (1, 'alice', 'new', 10.00, 0, NULL), (2, 'bob', 'new', 20.50, 0, NULL);
UPDATE orders SET status = 'paid', amount = 11.00 WHERE id = 1;
-- Nothing recorded changes: no event.
UPDATE orders SET status = status;
UPDATE orders SET noise = noise + 1;
-- NULL to value and back.
UPDATE orders SET touched = '2026-01-02 03:04:05+00' WHERE id = 2;
UPDATE orders SET touched = NULL WHERE id = 2;
DELETE FROM orders WHERE id = 2;
TRUNCATE orders;

SELECT action, entity_id, entity_label, before, after, changed
FROM audit_trail.events WHERE id > :start_id AND entity_type = 'public.orders' ORDER BY id;

-- One event per row, in the same statement, ids in capture order.
INSERT INTO orders SELECT g, 'c' || g, 'new', g, 0, NULL FROM generate_series(1, 1000) g;
SELECT count(*), count(DISTINCT txid), min(entity_id::int), max(entity_id::int)
FROM audit_trail.events WHERE id > :start_id AND entity_type = 'public.orders' AND action = 'INSERT' AND entity_id::int <= 1000
  AND after->>'customer' LIKE 'c%';
SELECT bool_and(entity_id::int < lead_id) AS ids_follow_rows
FROM (SELECT entity_id, lead(entity_id::int) OVER (ORDER BY id) AS lead_id
      FROM audit_trail.events WHERE id > :start_id AND after->>'customer' LIKE 'c%') s
WHERE lead_id IS NOT NULL;
UPDATE orders SET status = 'shipped' WHERE id <= 300;
SELECT count(*) FROM audit_trail.events WHERE id > :start_id AND action = 'UPDATE' AND after = '{"status": "shipped"}';
DELETE FROM orders WHERE id > 900;
SELECT count(*) FROM audit_trail.events WHERE id > :start_id AND action = 'DELETE' AND entity_type = 'public.orders';

-- Composite keys: a JSON array text.
CREATE TABLE stock (sku int, region text, qty int, PRIMARY KEY (sku, region));
SELECT audit_trail.enable('stock');
INSERT INTO stock VALUES (7, 'eu', 1);
UPDATE stock SET qty = 2;
SELECT action, entity_id, before, after FROM audit_trail.events WHERE entity_type = 'public.stock' ORDER BY id;

-- key_columns overrides; replica identity index is the fallback.
CREATE TABLE people (email text NOT NULL, name text);
CREATE UNIQUE INDEX people_email ON people (email);
ALTER TABLE people REPLICA IDENTITY USING INDEX people_email;
SELECT audit_trail.enable('people');
INSERT INTO people VALUES ('a@example.com', 'A');
SELECT audit_trail.enable('people', key_columns => '{name}');
INSERT INTO people VALUES ('b@example.com', 'B');
SELECT action, entity_id FROM audit_trail.events WHERE entity_type = 'public.people' ORDER BY id;

-- Only the chosen actions.
CREATE TABLE only_deletes (id int PRIMARY KEY);
SELECT audit_trail.enable('only_deletes', actions => '{DELETE}');
INSERT INTO only_deletes VALUES (1), (2);
DELETE FROM only_deletes WHERE id = 1;
SELECT action, entity_id FROM audit_trail.events WHERE entity_type = 'public.only_deletes' ORDER BY id;

-- Rolled back changes leave no events; savepoints too.
BEGIN;
INSERT INTO stock VALUES (8, 'us', 1);
ROLLBACK;
BEGIN;
INSERT INTO stock VALUES (9, 'us', 1);
SAVEPOINT s;
INSERT INTO stock VALUES (10, 'us', 1);
ROLLBACK TO s;
COMMIT;
SELECT entity_id FROM audit_trail.events WHERE entity_type = 'public.stock' AND action = 'INSERT' ORDER BY id;

-- INSERT ... ON CONFLICT and MERGE.
INSERT INTO stock VALUES (9, 'us', 5) ON CONFLICT (sku, region) DO UPDATE SET qty = EXCLUDED.qty;
MERGE INTO stock s USING (VALUES (9, 'us', 6), (11, 'us', 1)) v(sku, region, qty)
  ON s.sku = v.sku AND s.region = v.region
  WHEN MATCHED THEN UPDATE SET qty = v.qty
  WHEN NOT MATCHED THEN INSERT VALUES (v.sku, v.region, v.qty);
SELECT action, entity_id, before, after FROM audit_trail.events
WHERE entity_type = 'public.stock' AND id > (SELECT max(id) FROM audit_trail.events WHERE entity_id = '[9,"us"]' AND action = 'INSERT')
ORDER BY id;

-- Every event of a transaction shares its txid.
BEGIN;
INSERT INTO stock VALUES (12, 'eu', 1);
UPDATE stock SET qty = 0 WHERE sku = 12;
SELECT count(DISTINCT txid) = 1 AND min(txid) = txid_current() AS one_txid
FROM audit_trail.events WHERE entity_id = '[12,"eu"]';
COMMIT;

-- Bulk loads with COPY are captured like INSERTs.
COPY stock (sku, region, qty) FROM stdin;
20	eu	1
21	"us"	2
\.
SELECT action, entity_id, after FROM audit_trail.events WHERE entity_type = 'public.stock' AND entity_id IN ('[20,"eu"]', '[21,"\"us\""]') ORDER BY id;
