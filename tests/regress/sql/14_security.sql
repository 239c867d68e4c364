-- A hostile schema on the caller's search_path cannot hijack the extension.
CREATE EXTENSION IF NOT EXISTS pg_audit_trail;
\set SHOW_CONTEXT never
\echo 'every SECURITY DEFINER function pins search_path'
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p
WHERE p.pronamespace = 'audit_trail'::regnamespace AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
\echo 'so do all SQL functions, but the CSV quoting helper and the feed''s window (kept inlinable): they name everything in full'
\echo '(the DDL event trigger, which runs on the caller''s path on purpose, is C: src/ddl_end.rs)'
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p
WHERE p.pronamespace = 'audit_trail'::regnamespace AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
ORDER BY 1::text;

CREATE SCHEMA evil;
CREATE TABLE evil.hits (what text);
GRANT ALL ON SCHEMA evil TO PUBLIC;
GRANT ALL ON evil.hits TO PUBLIC;
CREATE FUNCTION evil.hit(what text) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO evil.hits VALUES (what) RETURNING true $$;
CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT evil.hit('lower') :: text $$;
CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE sql AS $$ SELECT evil.hit('upper') :: text $$;
CREATE FUNCTION evil.strpos(text, text) RETURNS int LANGUAGE sql AS $$ SELECT evil.hit('strpos')::int $$;
CREATE FUNCTION evil.format(text, text, text) RETURNS text LANGUAGE sql AS $$ SELECT evil.hit('format')::text $$;
CREATE FUNCTION evil.array_position(text[], text) RETURNS int LANGUAGE sql AS $$ SELECT evil.hit('array_position')::int $$;
CREATE FUNCTION evil.has_table_privilege(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('has_table_privilege') $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('=') $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.oid_eq(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('oid =') $$;
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.oid_eq);
CREATE FUNCTION evil.ts_ge(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS $$ SELECT evil.hit('>=') $$;
CREATE OPERATOR evil.>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_ge);

CREATE ROLE mallory;
GRANT CREATE ON SCHEMA public TO mallory;
SET ROLE mallory;
SET search_path = evil, public, pg_catalog;
CREATE TABLE public.mallory_t (id int PRIMARY KEY, secret_token text, note text);
SELECT audit_trail.enable('public.mallory_t', label_column => 'note');
INSERT INTO public.mallory_t VALUES (1, 'tok', 'n');
UPDATE public.mallory_t SET note = 'm';
ALTER TABLE public.mallory_t RENAME COLUMN note TO remark;
UPDATE public.mallory_t SET remark = 'r';
BEGIN;
SELECT audit_trail.set_context(actor => 'm', client_ip => '10.0.0.1');
SELECT audit_trail.log_event('PING') > 0 AS logged;
COMMIT;
SELECT audit_trail.clear_context();
SELECT audit_trail.disable('public.mallory_t');
DROP TABLE public.mallory_t;
RESET search_path;
RESET ROLE;
SET search_path = evil, public, pg_catalog;
SELECT count(*) >= 0 AS searched FROM audit_trail.search(actions => '{ping}', q => 'p', since => now() - interval '1 day');
SELECT audit_trail.count(actor => 'm', q => 'x') >= 0 AS counted;
SELECT count(*) > 0 AS exported FROM audit_trail.export('csv', actor => 'm');
SELECT count(*) >= 0 AS maintained FROM audit_trail.maintain();
RESET search_path;
\echo 'nothing of evil ran'
SELECT what, count(*) FROM evil.hits GROUP BY 1;
SELECT action, entity_type, entity_id, entity_label, after, changed, actor FROM audit_trail.events
WHERE entity_type = 'public.mallory_t' OR entity_id = 'public.mallory_t' OR (action = 'PING' AND actor = 'm') ORDER BY id;
DROP SCHEMA evil CASCADE;
REVOKE CREATE ON SCHEMA public FROM mallory;
DROP ROLE mallory;

-- The DDL event trigger's worker acts only on the commands of the firing
-- that called it: called by anyone else, from anywhere (even from inside
-- their own DDL, where pg_event_trigger_ddl_commands() answers), it refuses;
-- the old entry point that took made-up descriptions is gone.
CREATE ROLE ddl_forger;
CREATE TABLE forged_victim (id int);
SET ROLE ddl_forger;
SELECT audit_trail._after_ddl();
SELECT audit_trail._after_ddl(ARRAY['[{"type": "ATTACH PARTITION", "relid": 1}]'::jsonb]);
SELECT audit_trail._on_ddl_end();
RESET ROLE;
SELECT audit_trail._after_ddl();
SELECT audit_trail._on_ddl_end();
SELECT count(*) AS triggers_on_victim FROM pg_trigger WHERE tgrelid = 'forged_victim'::regclass;
-- tracked is readable by every role, capture_ok included.
CREATE TABLE tracked_by_all (id int PRIMARY KEY);
SELECT audit_trail.enable('tracked_by_all') IS NOT NULL AS enabled;
SET ROLE ddl_forger;
SELECT table_name, capture_ok FROM audit_trail.tracked WHERE table_name = 'tracked_by_all'::regclass;
RESET ROLE;
SELECT audit_trail.disable('tracked_by_all');
DROP TABLE tracked_by_all, forged_victim;
DROP ROLE ddl_forger;
