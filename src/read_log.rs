//! Recording reads of the trail (`audit_trail.log_reads`): the SQL readers in
//! sql/query.sql ask `_log_reads_all` / `_log_reads_export` whether to record
//! and call `_log_read` to write the AUDIT_LOG_ACCESSED / AUDIT_LOG_EXPORTED
//! event.

use crate::identity::with_pinned_search_path;
use crate::context::Context;
use crate::writer::{write_one, write_one_in, Event};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// Whether `audit_trail.log_reads` asks for searches to be recorded.
#[pg_extern(stable, name = "_log_reads_all")]
fn log_reads_all() -> bool {
    crate::settings::log_reads() == crate::settings::LogReads::All
}

/// Whether `audit_trail.log_reads` asks for exports to be recorded.
#[pg_extern(stable, name = "_log_reads_export")]
fn log_reads_export() -> bool {
    crate::settings::log_reads() != crate::settings::LogReads::None
}

/// Records a read of the trail. Callable by anyone, but only for the two
/// read actions and only by a role that may read the log, so it forges
/// nothing a reader would not produce by reading. On a standby, where
/// nothing can be written, the read goes unrecorded.
#[pg_extern(volatile, name = "_log_read")]
fn log_read(action: &str, details: pgrx::JsonB) -> Option<i64> {
    record_read(action, details, None)
}

/// `_log_read` for a read confined to one tenant (an export with a tenant
/// filter): the event is that tenant's, whatever the session's context says.
#[pg_extern(volatile, name = "_log_read")]
fn log_read_for_tenant(action: &str, details: pgrx::JsonB, tenant: Option<&str>) -> Option<i64> {
    record_read(action, details, tenant)
}

fn record_read(action: &str, details: pgrx::JsonB, tenant: Option<&str>) -> Option<i64> {
    if action != "AUDIT_LOG_ACCESSED" && action != "AUDIT_LOG_EXPORTED" {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("pg_audit_trail: \"{action}\" is not a read action"),
            "The read actions are AUDIT_LOG_ACCESSED and AUDIT_LOG_EXPORTED."
        );
    }
    let may_read = with_pinned_search_path(|| Spi::get_one::<bool>("SELECT has_table_privilege('audit_trail.events', 'SELECT')"))
        .unwrap_or_else(|e| error!("pg_audit_trail: checking the caller's SELECT privilege on audit_trail.events: {e}"))
        .unwrap_or(false);
    if !may_read {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "pg_audit_trail: only readers of audit_trail.events record reads"
        );
    }
    // SAFETY: reads shared-memory state, valid in any backend.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return None;
    }
    // The direct write path does not go through the executor's read-only
    // check, so make it here: a read must not escape its record, nor may a
    // READ ONLY transaction write.
    // SAFETY: reads a GUC variable of this backend.
    if unsafe { pg_sys::XactReadOnly } {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("cannot record {action} in a read-only transaction"),
            "audit_trail.log_reads asks for this read to be recorded; read outside a READ ONLY transaction."
        );
    }
    let event = Event::about(None, None, details.into_datum());
    Some(match tenant {
        None => write_one(action, Some("audit_trail.events"), event),
        Some(t) => {
            let mut ctx = Context::current();
            ctx.tenant = Some(t.to_string());
            write_one_in(&ctx, action, Some("audit_trail.events"), event)
        }
    })
}
