//! pg_audit_trail: a complete, trustworthy audit trail for PostgreSQL tables.
//!
//! The path of a change: capture (the trigger) → meta (cached per table) →
//! context (who, once per statement) → diff → json → store. Around it:
//! settings, config (enable/disable/log_event), protect (append-only).
//!
//! Every `unsafe` block says, in a `// SAFETY:` comment, why it is sound.

#![warn(clippy::undocumented_unsafe_blocks)]

use pgrx::prelude::*;

mod capture;
mod config;
mod context;
mod ddl;
mod diff;
mod json;
mod meta;
mod notify;
mod protect;
mod settings;
mod sink;
mod store;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/context.sql", name = "context", requires = [context::in_transaction_block]);
extension_sql_file!(
    "../sql/config.sql",
    name = "config",
    requires = ["schema", "capture_function", meta::invalidate]
);
extension_sql_file!(
    "../sql/partitions.sql",
    name = "partitions",
    requires = ["config", "protect", protect::trim_default, settings::partition_interval_kind_sql, settings::setting_sql]
);
extension_sql_file!(
    "../sql/query.sql",
    name = "query",
    requires = ["config", store::log_read, store::log_reads_all, store::log_reads_export, settings::redact_patterns_sql]
);
extension_sql_file!(
    "../sql/retention.sql",
    name = "retention",
    requires = ["partitions", config::write_event, config::write_system_event, protect::retention_drop]
);
extension_sql_file!(
    "../sql/ddl.sql",
    name = "ddl",
    requires = [
        "config",
        "protect",
        "capture_function",
        "guard_function",
        config::write_event,
        protect::retention_active,
        ddl::stash_partitions,
        ddl::stashed_partitions,
        ddl::refuse_if_settings_moved
    ]
);
extension_sql_file!("../sql/protect.sql", name = "protect", requires = ["schema", "guard_function"]);
extension_sql_file!("../sql/grants.sql", name = "grants", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::init();
    meta::init();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
