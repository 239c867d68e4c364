//! The entry point of the `ddl_command_end` event trigger
//! (`audit_trail._on_ddl_end()`, LANGUAGE c).
//!
//! The commands are described here, as the user who ran the DDL and with
//! the DDL's search_path (a name in ATTACH/DETACH PARTITION must resolve as
//! it did for the command), and handed to `audit_trail._after_ddl()`, which
//! does the work as the extension's owner. The description travels through
//! backend memory that only this function fills: `_after_ddl()` takes no
//! argument a caller could make up, and refuses to run when it is not
//! called from here.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// The current firing's descriptions, one jsonb per collected command in
    /// pg_event_trigger_ddl_commands() order; taken by `_ddl_described()`.
    static DESCRIBED: RefCell<Option<Vec<Option<pgrx::JsonB>>>> = const { RefCell::new(None) };
}

crate::pg_finfo_v1!(pg_finfo_audit_trail_on_ddl_end);

/// `audit_trail._on_ddl_end() RETURNS event_trigger`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn audit_trail_on_ddl_end(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fmgr passes a valid fcinfo; its context is null or a node, and
    // a node starts with its tag (CALLED_AS_EVENT_TRIGGER in C).
    let by_event_trigger = unsafe {
        let context = (*fcinfo).context;
        !context.is_null() && (*context).type_ == pg_sys::NodeTag::T_EventTriggerData
    };
    if !by_event_trigger {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
            "audit_trail._on_ddl_end() was not called by the event trigger manager"
        );
    }
    let described: Vec<Option<pgrx::JsonB>> = Spi::connect(|c| {
        c.select(
            "SELECT audit_trail._ddl_subcommands(d.command) FROM pg_catalog.pg_event_trigger_ddl_commands() d",
            None,
            &[],
        )?
        .map(|row| row.get::<pgrx::JsonB>(1))
        .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: describing the DDL commands: {e}"));

    /// Empties the stash however the call ends.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            DESCRIBED.with(|d| d.borrow_mut().take());
        }
    }
    // _after_ddl takes the stash first thing, so a firing nested in it (DDL
    // it runs itself) finds the stash empty and leaves it so.
    DESCRIBED.with(|d| *d.borrow_mut() = Some(described));
    let _clear = Clear;
    Spi::run("SELECT audit_trail._after_ddl()").unwrap_or_else(|e| error!("pg_audit_trail: after the DDL command: {e}"));
    pg_sys::Datum::from(0)
}

/// The descriptions of the commands the current `ddl_command_end` firing
/// collected, taken (a second call returns NULL); NULL outside a firing.
#[pg_extern(volatile, name = "_ddl_described")]
fn ddl_described() -> Option<Vec<Option<pgrx::JsonB>>> {
    DESCRIBED.with(|d| d.borrow_mut().take())
}
