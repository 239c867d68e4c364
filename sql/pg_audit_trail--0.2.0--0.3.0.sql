-- pg_audit_trail 0.2.0 -> 0.3.0 (ALTER EXTENSION pg_audit_trail UPDATE).
-- Events, settings, partitions and archived partitions are kept as they are;
-- tests/integration/11_upgrade.sh checks that, and that the result has every
-- object exactly as a fresh 0.3.0 install has it.
\echo Use "ALTER EXTENSION pg_audit_trail UPDATE TO '0.3.0'" to load this file. \quit

