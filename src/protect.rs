//! The append-only guard on audit_trail.events and its partitions, and the
//! one sanctioned way around it: retention trimming the default partition.

use pgrx::prelude::*;
use pgrx::PgRelation;
use std::cell::Cell;

thread_local! {
    /// Set only while `_trim_default` runs its DELETE; not reachable from SQL.
    static RETENTION_ACTIVE: Cell<bool> = const { Cell::new(false) };
}

#[derive(thiserror::Error, Debug)]
pub enum GuardError {
    #[error("guard fired in an unexpected way")]
    Unexpected,
}

#[pg_trigger]
fn _guard<'a>(trigger: &'a pgrx::PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, GuardError> {
    if RETENTION_ACTIVE.with(|r| r.get()) {
        return Ok(trigger.old());
    }
    let op = trigger.op().map(|o| o.to_string()).unwrap_or_else(|_| "change".into());
    let table = trigger.relation().map(|r| format!("{}.{}", r.namespace(), r.name())).unwrap_or_default();
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{table} is append-only: {op} is not allowed"),
        "Events are removed only by audit_trail.apply_retention() and audit_trail.maintain()."
    );
    #[allow(unreachable_code)]
    Err(GuardError::Unexpected)
}

/// Drops a partition of the log (live or archived) on retention's behalf:
/// the DDL event trigger refuses any other DROP of one.
#[pg_extern(volatile, name = "_retention_drop")]
fn retention_drop(partition: PgRelation) {
    // SAFETY: two NUL-terminated names the CStrings keep alive across the
    // call; quote_qualified_identifier returns a palloc'd NUL-terminated
    // string, copied at once.
    let name = unsafe {
        let nsp = std::ffi::CString::new(partition.namespace()).unwrap_or_default();
        let rel = std::ffi::CString::new(partition.name()).unwrap_or_default();
        std::ffi::CStr::from_ptr(pgrx::pg_sys::quote_qualified_identifier(nsp.as_ptr(), rel.as_ptr()))
            .to_string_lossy()
            .into_owned()
    };
    drop(partition);
    as_retention(|| crate::store::with_pinned_search_path(|| Spi::run(&format!("DROP TABLE {name}"))))
        .unwrap_or_else(|e| error!("pg_audit_trail: dropping {name} for retention: {e}"));
}

/// Whether retention is removing events right now (for the DDL event trigger).
#[pg_extern(stable, name = "_retention_active")]
fn retention_active() -> bool {
    RETENTION_ACTIVE.with(|r| r.get())
}

/// Deletes the default partition's events in [from, until): the rows
/// maintain() moves into a new partition, or that retention expires.
#[pg_extern(volatile, name = "_trim_default")]
fn trim_default(from: Option<pgrx::datum::TimestampWithTimeZone>, until: pgrx::datum::TimestampWithTimeZone) -> i64 {
    as_retention(|| {
        crate::store::with_pinned_search_path(|| {
            Spi::connect_mut(|client| {
                client
                    .update(
                        "DELETE FROM audit_trail.events_default WHERE ($1 IS NULL OR occurred_at >= $1) AND occurred_at < $2",
                        None,
                        &[from.into(), until.into()],
                    )
                    .map(|t| t.len() as i64)
            })
        })
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: trimming the default partition of audit_trail.events: {e}"))
}

/// Runs `f` with the retention flag up, lowered however `f` ends (an error
/// unwinds through here as a Rust panic).
fn as_retention<T>(f: impl FnOnce() -> T) -> T {
    struct Lower;
    impl Drop for Lower {
        fn drop(&mut self) {
            RETENTION_ACTIVE.with(|r| r.set(false));
        }
    }
    RETENTION_ACTIVE.with(|r| r.set(true));
    let _lower = Lower;
    f()
}
