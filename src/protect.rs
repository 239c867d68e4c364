//! The append-only guard on audit_trail.events and its partitions, and the
//! one sanctioned way around it: retention trimming the default partition.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgRelation;
use std::cell::Cell;
use std::ffi::CStr;

thread_local! {
    /// Set only while `_trim_default` runs its DELETE; not reachable from SQL.
    static RETENTION_ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// Set only while `_backfill_operation` runs its UPDATE.
    static BACKFILL_ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// `audit_trail._guard()`: the guard triggers' function (declared by the SQL
/// below, under the symbol pgrx's #[pg_trigger] gave it). Refuses every
/// change it fires for, but retention's.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _guard_wrapper(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls this with its fcinfo; the TriggerData is used
    // during this call only.
    let td = unsafe {
        crate::capture::called_as_trigger(
            fcinfo,
            "audit_trail._guard()",
            "pg_audit_trail puts its guard triggers on audit_trail.events and its partitions itself.",
        )
    };
    let event = td.tg_event;
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let row_level = event & pg_sys::TRIGGER_EVENT_ROW != 0;
    if RETENTION_ACTIVE.with(|r| r.get()) && (op == pg_sys::TRIGGER_EVENT_DELETE || op == pg_sys::TRIGGER_EVENT_TRUNCATE) {
        // Let retention's removal through: a BEFORE ROW firing returns the
        // row it fired for, a statement firing nothing.
        return if row_level { pg_sys::Datum::from(td.tg_trigtuple) } else { pg_sys::Datum::from(0) };
    }
    if BACKFILL_ACTIVE.with(|r| r.get()) && op == pg_sys::TRIGGER_EVENT_UPDATE {
        // Let the update's back-fill through: a BEFORE ROW firing returns
        // the new row (returning the old one would write it unchanged).
        return if row_level { pg_sys::Datum::from(td.tg_newtuple) } else { pg_sys::Datum::from(0) };
    }
    let op = match op {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        pg_sys::TRIGGER_EVENT_TRUNCATE => "TRUNCATE",
        _ => "change",
    };
    // SAFETY: the trigger relation is open and pinned for the firing, so its
    // pg_class row copy (name and namespace) is valid; get_namespace_name
    // returns NULL or a palloc'd copy; both are copied at once.
    let table = unsafe {
        let rel = td.tg_relation;
        let nsp = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
        let name = CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy();
        if nsp.is_null() {
            name.into_owned()
        } else {
            format!("{}.{name}", CStr::from_ptr(nsp).to_string_lossy())
        }
    };
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{table} is append-only: {op} is not allowed"),
        "Events are removed only by audit_trail.apply_retention() and audit_trail.maintain()."
    );
    unreachable!()
}

crate::pg_finfo_v1!(pg_finfo__guard_wrapper);

extension_sql!(
    "CREATE FUNCTION \"_guard\"()
\tRETURNS TRIGGER
\tLANGUAGE c
\tAS 'MODULE_PATHNAME', '_guard_wrapper';",
    name = "guard_function",
    requires = ["schema"],
);

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
    as_retention(|| crate::identity::with_pinned_search_path(|| Spi::run(&format!("DROP TABLE {name}"))))
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
