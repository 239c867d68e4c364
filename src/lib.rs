//! pg_audit_trail: a complete, trustworthy audit trail for PostgreSQL tables.
//!
//! The path of a change: capture (the trigger) → meta (cached per table) →
//! context (who, once per statement; statement: the statement's text,
//! verbatim or normalized) → diff → json → writer (the event row,
//! event_row; straight into a partition, sink, or through SQL). Around it:
//! settings, config (enable/disable/log_event), ddl and ddl_end (event
//! triggers), protect (append-only), notify (live feed), read_log (recorded
//! reads), identity (search_path and the log owner), log_ids, datum, seal
//! (the sealed trail: canonical bytes, Merkle tree, chain, checkpoints).
//!
//! Every `unsafe` block says, in a `// SAFETY:` comment, why it is sound.

#![warn(clippy::undocumented_unsafe_blocks)]

use pgrx::prelude::*;

/// The record PostgreSQL looks up (`pg_finfo_<symbol>`) for a hand-written
/// C entry point: version 1 of the calling convention. pgrx makes it for
/// `#[pg_extern]` functions; the event trigger, trigger and a few C-level
/// functions are written by hand (they must see their `fcinfo`).
#[macro_export]
macro_rules! pg_finfo_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

mod canonical;
mod capture;
mod config;
mod context;
mod datum;
mod ddl;
mod ddl_end;
mod diff;
mod event_row;
mod identity;
mod json;
mod log_ids;
mod meta;
mod notify;
mod protect;
mod read_log;
mod seal;
mod settings;
mod shape;
mod sink;
mod statement;
mod writer;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/context.sql", name = "context", requires = [context::in_transaction_block]);
extension_sql_file!(
    "../sql/config.sql",
    name = "config",
    requires = ["schema", "capture_function", meta::invalidate, settings::matches_redact_patterns]
);
extension_sql_file!(
    "../sql/partitions.sql",
    name = "partitions",
    requires = ["config", "protect", protect::trim_default, settings::partition_interval_kind_sql, settings::setting_sql]
);
extension_sql_file!(
    "../sql/query.sql",
    name = "query",
    requires = [
        "config",
        "redact_json_keys_function",
        read_log::log_read,
        read_log::log_read_for_tenant,
        read_log::log_reads_all,
        read_log::log_reads_export,
        settings::redact_patterns_sql,
        settings::setting_sql,
        json::holds_json_sql
    ]
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
        ddl::refuse_if_settings_moved,
        ddl_end::ddl_described
    ]
);
extension_sql_file!("../sql/protect.sql", name = "protect", requires = ["schema", "guard_function"]);
extension_sql_file!("../sql/feed.sql", name = "feed", requires = ["schema"]);
extension_sql_file!(
    "../sql/alerts.sql",
    name = "alerts",
    requires = ["feed", settings::setting_sql, config::write_system_event_about]
);
extension_sql_file!(
    "../sql/seal.sql",
    name = "seal",
    requires = [
        "protect",
        "partitions",
        "feed",
        // after alerts: the update script makes its tables in that order
        "alerts",
        seal::event_leaf,
        seal::event_bytes,
        seal::seal_events,
        seal::seal_root,
        seal::verify_events,
        seal::checkpoint_note,
        seal::checkpoint_read,
        seal::hex_sql
    ]
);
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
