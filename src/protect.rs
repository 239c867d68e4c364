//! The append-only guard on audit_trail.events and its partitions, and the
//! one sanctioned way around it: retention trimming the default partition.

use pgrx::prelude::*;
use pgrx::PgRelation;
use std::cell::Cell;

thread_local! {
    /// Set only while `_trim_default` runs its DELETE; not reachable from SQL.
    static RETENTION_ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// Set only while `_backfill_operation` runs its UPDATE.
    static BACKFILL_ACTIVE: Cell<bool> = const { Cell::new(false) };
}

#[derive(thiserror::Error, Debug)]
pub enum GuardError {
    #[error("guard fired in an unexpected way")]
    Unexpected,
}

#[pg_trigger]
fn _guard<'a>(trigger: &'a pgrx::PgTrigger<'a>) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, GuardError> {
    match trigger.op() {
        Ok(pgrx::PgTriggerOperation::Update) if BACKFILL_ACTIVE.with(|r| r.get()) => return Ok(trigger.new()),
        Ok(pgrx::PgTriggerOperation::Delete | pgrx::PgTriggerOperation::Truncate) if RETENTION_ACTIVE.with(|r| r.get()) => {
            return Ok(trigger.old())
        }
        _ => (),
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
    let name = unsafe {
        let nsp = std::ffi::CString::new(partition.namespace()).unwrap_or_default();
        let rel = std::ffi::CString::new(partition.name()).unwrap_or_default();
        std::ffi::CStr::from_ptr(pgrx::pg_sys::quote_qualified_identifier(nsp.as_ptr(), rel.as_ptr()))
            .to_string_lossy()
            .into_owned()
    };
    drop(partition);
    as_retention(|| crate::identity::with_pinned_search_path(|| Spi::run(&format!("DROP TABLE {name}"))))
        .unwrap_or_else(|e| error!("{e}"));
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
        crate::identity::with_pinned_search_path(|| {
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
    .unwrap_or_else(|e| error!("{e}"))
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

/// Fills `operation` (0.4.0) for the row events written before it existed:
/// INSERT/UPDATE/DELETE events that carry a row image, and TRUNCATE events.
/// log_event could name those actions then, but never attach a row image,
/// so an application event that merely borrowed a row action stays NULL (a
/// borrowed TRUNCATE cannot be told apart and counts as one). Called by the
/// update script; idempotent, and it changes nothing else, so it is the one
/// UPDATE the append-only guard lets through.
#[pg_extern(volatile, name = "_backfill_operation")]
fn backfill_operation() -> i64 {
    struct Lower;
    impl Drop for Lower {
        fn drop(&mut self) {
            BACKFILL_ACTIVE.with(|r| r.set(false));
        }
    }
    BACKFILL_ACTIVE.with(|r| r.set(true));
    let _lower = Lower;
    crate::identity::with_pinned_search_path(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "UPDATE audit_trail.events SET operation = action
                     WHERE operation IS NULL
                       AND ((action IN ('INSERT', 'UPDATE', 'DELETE') AND (before IS NOT NULL OR after IS NOT NULL))
                            OR action = 'TRUNCATE')",
                    None,
                    &[],
                )
                .map(|t| t.len() as i64)
        })
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: filling audit_trail.events.operation: {e}"))
}
