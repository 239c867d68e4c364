-- Auditing keeps working through DDL.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE products (id int PRIMARY KEY, name text, secret_code text, price numeric);
SELECT audit_trail.enable('products', redact => '{price}', label_column => 'name');
INSERT INTO products VALUES (1, 'pen', 'x1', 1.5);
ALTER TABLE products ADD COLUMN color text DEFAULT 'blue';
UPDATE products SET color = 'red';
ALTER TABLE products DROP COLUMN secret_code;
INSERT INTO products VALUES (2, 'ink', 2.5, 'black');
-- Renamed columns keep their settings under the new name.
ALTER TABLE products RENAME COLUMN price TO unit_price;
ALTER TABLE products RENAME COLUMN name TO title;
UPDATE products SET unit_price = 3, title = 'fountain pen' WHERE id = 1;
SELECT redact, label_column FROM audit_trail.tracked WHERE table_name = 'products'::regclass;
-- A renamed table is still audited, under its new name.
ALTER TABLE products RENAME TO items;
UPDATE items SET color = 'green' WHERE id = 2;
CREATE SCHEMA shop;
ALTER TABLE items SET SCHEMA shop;
UPDATE shop.items SET color = 'white' WHERE id = 2;
ALTER SCHEMA shop RENAME TO store;
UPDATE store.items SET color = 'grey' WHERE id = 2;
SELECT action, entity_type, entity_id, entity_label, before, after, changed FROM audit_trail.events
WHERE entity_type IN ('public.products', 'public.items', 'shop.items', 'store.items') ORDER BY id;
-- A column type change.
ALTER TABLE store.items ALTER COLUMN unit_price TYPE int USING unit_price::int;
ALTER TABLE store.items ALTER COLUMN id TYPE bigint;
UPDATE store.items SET color = 'black' WHERE id = 2;
SELECT after, entity_id FROM audit_trail.events WHERE entity_type = 'store.items' ORDER BY id DESC LIMIT 1;
-- DROP TABLE keeps the events and records the end of auditing.
DROP TABLE store.items;
SELECT count(*) FROM audit_trail.tracked WHERE table_name::text LIKE '%items%';
SELECT action, entity_id, details->>'reason' AS reason FROM audit_trail.events
WHERE entity_type = 'audit_trail.config' AND entity_id LIKE '%items%';
SELECT count(*) AS events_kept FROM audit_trail.events WHERE entity_type LIKE '%.items' OR entity_type = 'public.products';
DROP SCHEMA store;
