-- The log is append-only and closed by default.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
CREATE TABLE vault (id int PRIMARY KEY, v text);
SELECT audit_trail.enable('vault');
INSERT INTO vault VALUES (1, 'a');
-- Not even a superuser owner may edit or erase.
UPDATE audit_trail.events SET actor = 'nobody';
DELETE FROM audit_trail.events;
TRUNCATE audit_trail.events;
UPDATE audit_trail.events_default SET actor = 'nobody';
DELETE FROM audit_trail.events_default;
TRUNCATE audit_trail.events_default;
-- A time partition's name depends on today's date: errors name it as <partition>.
CREATE FUNCTION pg_temp.refused(sql text, partition regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(sql, partition);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || replace(SQLERRM, partition::text, '<partition>');
END $$;
SELECT partition AS live_partition FROM audit_trail._partition_bounds() ORDER BY range_start LIMIT 1 \gset
SELECT pg_temp.refused('UPDATE %s SET actor = ''nobody''', :'live_partition');
SELECT pg_temp.refused('TRUNCATE %s', :'live_partition');
-- Nor drop a partition: only retention removes one.
SELECT pg_temp.refused('DROP TABLE %s', :'live_partition');
SELECT count(*) > 0 AS partition_still_there FROM audit_trail._partition_bounds();
-- Nor switch the guards or the capture off.
ALTER TABLE audit_trail.events DISABLE TRIGGER audit_trail_guard_row;
ALTER TABLE vault DISABLE TRIGGER audit_trail_insert;
ALTER TABLE vault DISABLE TRIGGER ALL;
-- session_replication_role = replica does not bypass them.
SET session_replication_role = replica;
INSERT INTO vault VALUES (2, 'b');
DELETE FROM audit_trail.events;
RESET session_replication_role;
SELECT action, entity_id FROM audit_trail.events WHERE entity_type = 'public.vault' ORDER BY id;

-- Nothing is granted to PUBLIC.
CREATE ROLE outsider;
GRANT ALL ON vault TO outsider;
SET ROLE outsider;
SELECT count(*) FROM audit_trail.events;
SELECT count(*) FROM audit_trail.config;
INSERT INTO audit_trail.events (action, actor, db_user) VALUES ('FORGED', 'x', 'y');
SELECT audit_trail._write_event('FORGED', NULL, NULL, NULL, NULL);
SELECT audit_trail._trim_default(NULL, now());
-- ...yet an outsider's changes are recorded, and application events too.
INSERT INTO vault VALUES (3, 'c');
SELECT audit_trail.log_event('OUTSIDER_LOGIN') > 0 AS logged;
RESET ROLE;
SELECT action, entity_id FROM audit_trail.events
WHERE (entity_type = 'public.vault' AND entity_id = '3') OR action = 'OUTSIDER_LOGIN' ORDER BY id;
-- Readers need SELECT, granted by the DBA.
GRANT SELECT ON audit_trail.events TO outsider;
SET ROLE outsider;
SELECT count(*) > 0 AS can_read FROM audit_trail.events;
DELETE FROM audit_trail.events;
RESET ROLE;
REVOKE ALL ON audit_trail.events FROM outsider;
REVOKE ALL ON vault FROM outsider;
DROP ROLE outsider;
