//! The one definition of a row of audit_trail.events, as the writer fills it.
//!
//! `sql/schema.sql` creates the table; this list says, once, which columns
//! the library writes, of which type, and who fills each: the id sequence,
//! the statement (shared by all of a statement's events) or the event. The
//! direct path (`sink`) and the SQL path (`writer`) both take their column
//! lists, parameter types and value positions from here. The log is checked
//! against it by name and type (`check_layout`): a table that differs is an
//! error that names the column, never a silent detour or a misplaced value.

use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::ffi::CStr;

/// Who fills a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// The id sequence, at the moment the event is written.
    Sequence,
    /// The writer, once per statement (context, timestamp, action).
    Statement,
    /// The event itself (what changed, and on which row).
    Event,
}

pub struct Column {
    pub name: &'static str,
    pub typid: pg_sys::Oid,
    pub filled: Filled,
    /// Added by a later version: the library writes without it while an
    /// older version's objects are installed (between a package upgrade and
    /// `ALTER EXTENSION ... UPDATE`). Every other column must be there.
    pub optional: bool,
}

macro_rules! event_row {
    ($($variant:ident = $name:literal : $typ:ident, $filled:ident $(, $optional:ident)?;)*) => {
        /// A column of the event row; `Col::X as usize` is its index in
        /// `COLUMNS` and in a `Values`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Col { $($variant),* }

        /// The columns in table order (schema.sql's order, checked by a test).
        pub const COLUMNS: &[Column] = &[
            $(Column { name: $name, typid: pg_sys::$typ, filled: Filled::$filled, optional: event_row!(@opt $($optional)?) }),*
        ];
    };
    (@opt optional) => { true };
    (@opt) => { false };
}

event_row! {
    Id = "id": INT8OID, Sequence;
    OccurredAt = "occurred_at": TIMESTAMPTZOID, Statement;
    Txid = "txid": INT8OID, Statement;
    Action = "action": TEXTOID, Statement;
    EntityType = "entity_type": TEXTOID, Statement;
    EntityId = "entity_id": TEXTOID, Event;
    EntityLabel = "entity_label": TEXTOID, Event;
    Before = "before": JSONBOID, Event;
    After = "after": JSONBOID, Event;
    Changed = "changed": TEXTARRAYOID, Event;
    Details = "details": JSONBOID, Event;
    Actor = "actor": TEXTOID, Statement;
    DbUser = "db_user": TEXTOID, Statement;
    ClientIp = "client_ip": INETOID, Statement;
    UserAgent = "user_agent": TEXTOID, Statement;
    Service = "service": TEXTOID, Statement;
    Tenant = "tenant": TEXTOID, Statement;
    RequestId = "request_id": TEXTOID, Statement;
    Statement = "statement": TEXTOID, Statement;
    // 0.4.0: INSERT/UPDATE/DELETE/TRUNCATE for captured row events, NULL
    // for every other event (API §9); readers of rows trust it, not action.
    Operation = "operation": TEXTOID, Statement, optional;
}

/// The number of columns of an event row.
pub const N: usize = COLUMNS.len();

/// One event row's values, indexed by `Col`; unset columns are NULL.
#[derive(Clone, Copy)]
pub struct Values {
    pub datums: [Datum; N],
    pub nulls: [bool; N],
}

impl Default for Values {
    fn default() -> Values {
        Values { datums: [Datum::from(0); N], nulls: [true; N] }
    }
}

impl Values {
    pub fn set(&mut self, col: Col, value: Option<Datum>) {
        let i = col as usize;
        match value {
            Some(d) => {
                self.datums[i] = d;
                self.nulls[i] = false;
            }
            None => {
                self.datums[i] = Datum::from(0);
                self.nulls[i] = true;
            }
        }
    }
}

/// Where each of `COLUMNS` sits in a relation's tuple descriptor (0-based
/// attribute index), found by name; None for an optional column the
/// relation does not have yet. An error naming the column when the relation
/// has a column the row does not define, lacks a required one, or has one
/// of another type. `what` names the relation in the message.
///
/// # Safety
/// `desc` must be a valid tuple descriptor (of an open relation).
pub unsafe fn check_layout(desc: pg_sys::TupleDesc, what: &str) -> [Option<usize>; N] {
    // SAFETY: the caller passes a valid descriptor; natts bounds the loop
    // and tuple_desc_attr's index.
    let atts: Vec<(&CStr, pg_sys::Oid, bool)> = unsafe {
        (0..(*desc).natts as usize)
            .map(|i| {
                let a = crate::meta::tuple_desc_attr(desc, i);
                (CStr::from_ptr(a.attname.data.as_ptr()), a.atttypid, a.attisdropped)
            })
            .collect()
    };
    let mut map = [None; N];
    for (i, c) in COLUMNS.iter().enumerate() {
        match atts.iter().position(|(name, _, dropped)| !dropped && name.to_bytes() == c.name.as_bytes()) {
            Some(at) if atts[at].1 == c.typid => map[i] = Some(at),
            Some(at) => layout_error(what, &format!("column \"{}\" has type oid {}, not {}", c.name, atts[at].1, c.typid)),
            None if c.optional => (),
            None => layout_error(what, &format!("column \"{}\" is missing", c.name)),
        }
    }
    if let Some((name, _, _)) = atts
        .iter()
        .find(|(name, _, dropped)| !dropped && !COLUMNS.iter().any(|c| c.name.as_bytes() == name.to_bytes()))
    {
        layout_error(what, &format!("column \"{}\" is not one this library writes", name.to_string_lossy()));
    }
    map
}

fn layout_error(what: &str, problem: &str) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("pg_audit_trail: {what} does not match the event row of this library: {problem}"),
        "The installed extension and its library differ: run ALTER EXTENSION pg_audit_trail UPDATE."
    );
    unreachable!()
}

/// Whether the descriptor holds exactly `COLUMNS`, in order, with no dropped
/// columns: the common case, where the mapping is the identity.
///
/// # Safety
/// `desc` must be a valid tuple descriptor.
pub unsafe fn is_identity(desc: pg_sys::TupleDesc) -> bool {
    // SAFETY: as the caller promises; the index stays below natts.
    unsafe {
        (*desc).natts as usize == N
            && COLUMNS.iter().enumerate().all(|(i, c)| {
                let a = crate::meta::tuple_desc_attr(desc, i);
                !a.attisdropped && a.atttypid == c.typid && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == c.name.as_bytes()
            })
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    /// schema.sql and this definition agree: same names, same types, same
    /// order (the order only matters for readers of `SELECT *`).
    #[pg_test]
    fn table_matches_the_definition() {
        let table: Vec<(String, pg_sys::Oid)> = Spi::connect(|c| {
            c.select(
                "SELECT attname::text, atttypid FROM pg_attribute
                 WHERE attrelid = 'audit_trail.events'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                None,
                &[],
            )
            .unwrap()
            .map(|r| (r.get::<String>(1).unwrap().unwrap(), r.get::<pg_sys::Oid>(2).unwrap().unwrap()))
            .collect()
        });
        let ours: Vec<(String, pg_sys::Oid)> = COLUMNS.iter().map(|c| (c.name.to_string(), c.typid)).collect();
        assert_eq!(table, ours);
    }

    #[pg_test]
    fn the_enum_indexes_the_list() {
        assert_eq!(COLUMNS[Col::Id as usize].name, "id");
        assert_eq!(COLUMNS[Col::Details as usize].name, "details");
        assert_eq!(COLUMNS[Col::Statement as usize].name, "statement");
        assert_eq!(COLUMNS[Col::Operation as usize].name, "operation");
        assert_eq!(N, Col::Operation as usize + 1);
    }
}
