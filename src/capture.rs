//! The capture trigger: AFTER ... FOR EACH STATEMENT with transition tables,
//! one trigger per action. Reading the statement's rows from its transition
//! tables costs PostgreSQL a tuple copy per row and spares it the per-row
//! trigger call and after-trigger queue entry a row trigger would need.
//!
//! On a partitioned table the transition tables hold rows in the parent's
//! row type whatever partition they went to; the same trigger on each
//! partition catches DML aimed at the partition directly.
//!
//! Logical replication's workers fire row triggers only (TRUNCATE aside):
//! the same function also serves AFTER ... FOR EACH ROW triggers, ENABLE
//! REPLICA, and records the row there, in those workers only. Elsewhere (an
//! ordinary session that set session_replication_role = replica) the
//! statement triggers capture and the row firing records nothing.
//!
//! Hot path, per statement firing: a few checks of the trigger's shape, one
//! AcceptInvalidationMessages() (a shared counter read when nothing is new),
//! the cached metadata; nothing per row beyond building the event.

use crate::context::Context;
use crate::json::{self, ObjectBuilder, Render};
use crate::meta::{self, Column, TableMeta};
use crate::datum;
use crate::settings;
use crate::writer::{Event, Writer};
use crate::diff;
use crate::shape;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

const CAPTURE_DETAIL: &str = "Auditing is turned on with audit_trail.enable(), which makes the capture triggers itself.";

/// Refuses a firing that is not one of the capture triggers' shapes:
/// `AFTER ... FOR EACH STATEMENT` with the action's transition tables, or
/// `AFTER INSERT/UPDATE/DELETE ... FOR EACH ROW` (for logical replication).
fn refuse(rel: pg_sys::Relation, trigger: &pg_sys::Trigger, why: &str) -> ! {
    // SAFETY: `rel` is the trigger relation, open and pinned for the whole
    // firing, so its pg_class row copy and the NUL-terminated NameData in it
    // are valid; tgname is the NUL-terminated name in the firing's Trigger.
    // Both are copied at once.
    let (table, name) = unsafe {
        (
            std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned(),
            std::ffi::CStr::from_ptr(trigger.tgname).to_string_lossy().into_owned(),
        )
    };
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("audit_trail.capture() must be fired AFTER ... FOR EACH STATEMENT, or AFTER INSERT, UPDATE or DELETE ... FOR EACH ROW: trigger \"{name}\" on table \"{table}\" {why}"),
        CAPTURE_DETAIL
    );
    unreachable!()
}

/// The TriggerData of a call from the trigger manager. A trigger function
/// called any other way (`SELECT audit_trail.capture()`: PostgreSQL lets a
/// C function returning `trigger` be called like any other) is refused, as
/// contrib/tcn refuses it: trigger protocol violated (39P01).
///
/// `detail` says where the function's triggers come from.
///
/// # Safety
/// `fcinfo` must be the one PostgreSQL passed to the function called
/// `function`. The TriggerData must not be used after the call returns.
pub unsafe fn called_as_trigger<'a>(fcinfo: pg_sys::FunctionCallInfo, function: &str, detail: &str) -> &'a pg_sys::TriggerData {
    // SAFETY: as the caller promises, `fcinfo` is valid; its `context` is
    // NULL or a Node, whose tag says whether it is the TriggerData the
    // trigger manager passes (CALLED_AS_TRIGGER); that one, its Trigger and
    // its relation stay valid until the trigger function returns.
    unsafe {
        let context = (*fcinfo).context;
        let td = context as *const pg_sys::TriggerData;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData || (*td).tg_trigger.is_null() {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                format!("{function} must be called as a trigger"),
                detail
            );
        }
        &*td
    }
}

/// `audit_trail.capture()`: the function of the capture triggers (declared
/// by the SQL below, under the symbol pgrx's #[pg_trigger] gave it).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn capture_wrapper(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // SAFETY: PostgreSQL calls this with its fcinfo; the TriggerData is used
    // during this call only.
    let td = unsafe { called_as_trigger(fcinfo, "audit_trail.capture()", CAPTURE_DETAIL) };
    capture(td);
    // An AFTER trigger's result is ignored; NULL (without isnull) is what
    // the trigger protocol allows.
    Datum::from(0)
}

crate::pg_finfo_v1!(pg_finfo_capture_wrapper);

extension_sql!(
    "CREATE FUNCTION \"capture\"()
\tRETURNS TRIGGER
\tLANGUAGE c
\tAS 'MODULE_PATHNAME', 'capture_wrapper';",
    name = "capture_function",
    requires = ["schema"],
);

fn capture(td: &pg_sys::TriggerData) {
    let event = td.tg_event;
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    // SAFETY: called_as_trigger checked that the trigger manager set
    // tg_trigger, which it keeps alive for the whole firing.
    let tg = unsafe { &*td.tg_trigger };
    if event & pg_sys::TRIGGER_EVENT_TIMINGMASK != pg_sys::TRIGGER_EVENT_AFTER {
        refuse(td.tg_relation, tg, "fires BEFORE or INSTEAD OF the change");
    }
    if tg.tgnattr != 0 || !tg.tgqual.is_null() {
        refuse(td.tg_relation, tg, "fires for some columns or rows only (UPDATE OF or WHEN)");
    }
    let row_level = event & pg_sys::TRIGGER_EVENT_ROW != 0;
    if row_level {
        // Row-level firings come from the ENABLE REPLICA triggers, which
        // PostgreSQL fires only under session_replication_role = replica.
        // There, in an ordinary backend, the ALWAYS statement triggers
        // capture; in logical replication's workers, which fire row
        // triggers only (but for TRUNCATE), these do.
        if !in_logical_replication_worker() {
            return;
        }
    } else {
        let (old, new) = (!td.tg_oldtable.is_null(), !td.tg_newtable.is_null());
        let whole = match op {
            pg_sys::TRIGGER_EVENT_INSERT => new,
            pg_sys::TRIGGER_EVENT_UPDATE => old && new,
            pg_sys::TRIGGER_EVENT_DELETE => old,
            _ => true,
        };
        if !whole {
            refuse(td.tg_relation, tg, "has no transition table for its rows (REFERENCING OLD/NEW TABLE)");
        }
        // In a logical replication worker the same rows fire the replica
        // row triggers too (COPY of a table's initial sync fires both):
        // they are recorded there, once.
        if op != pg_sys::TRIGGER_EVENT_TRUNCATE && replica_rows_fire(td.tg_relation, op, tg.tgfoid) {
            return;
        }
    }
    // Settings another session committed since this statement's locks were
    // taken (a re-enable(), a rename) are seen now: a relcache invalidation
    // drops the table's cached metadata. Cheap when there is nothing new.
    // SAFETY: we are inside a transaction (a trigger firing), where
    // processing invalidations is allowed wherever a lock could be taken;
    // the trigger relation is open and pinned, so its relcache entry is
    // rebuilt in place, never freed, and `td.tg_relation` stays valid.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    // SAFETY: tg_relation is the trigger relation, open, pinned and locked
    // (ROW EXCLUSIVE at least: no schema change) for the whole firing.
    let Some(meta) = (unsafe { meta::get(td.tg_relation) }) else {
        // A partition detached from its audited table keeps stale triggers
        // until they are dropped; its rows are no longer audited.
        return;
    };
    // SAFETY: the trigger relation is open and pinned for the whole firing;
    // its descriptor is valid as long as it is.
    let desc = unsafe { (*td.tg_relation).rd_att };
    let action = match op {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => "TRUNCATE",
    };
    let truncate_details = if op == pg_sys::TRIGGER_EVENT_TRUNCATE {
        // SAFETY: this is a TRUNCATE firing and tg_relation its open trigger
        // relation, as truncate::details requires.
        match unsafe { truncate::details(td.tg_relation, &meta) } {
            truncate::Record::Skip => return,
            truncate::Record::With(d) => d,
        }
    } else {
        None
    };
    let ctx = Context::current();
    let mut w = Writer::new(&ctx, action, Some(action), Some(&meta.entity_type));
    if row_level {
        // SAFETY: for an AFTER ROW firing PostgreSQL passes the row (the
        // old one for UPDATE and DELETE) in tg_trigslot and the new row of
        // an UPDATE in tg_newslot, both in the trigger relation's row type
        // (`desc`, which `meta` was built from: a change of it invalidates
        // the cached metadata, and invalidations were taken in above), and
        // leaves both slots alone until the trigger returns.
        unsafe {
            let natts = (*desc).natts;
            let first = slot_row(td.tg_trigslot, natts);
            match op {
                pg_sys::TRIGGER_EVENT_INSERT => {
                    let e = w.in_batch_cxt(|| shaped(&meta, op, None, Some(&first), whole_row(&meta, &first, true)));
                    w.push(e);
                }
                pg_sys::TRIGGER_EVENT_DELETE => {
                    let e = w.in_batch_cxt(|| shaped(&meta, op, Some(&first), None, whole_row(&meta, &first, false)));
                    w.push(e);
                }
                pg_sys::TRIGGER_EVENT_UPDATE => {
                    let new = slot_row(td.tg_newslot, natts);
                    let mut is_changed = Vec::with_capacity(meta.columns.len());
                    if let Some(e) = w.in_batch_cxt(|| {
                        changed_row(&meta, &first, &new, &mut is_changed).map(|e| shaped(&meta, op, Some(&first), Some(&new), e))
                    }) {
                        w.push(e);
                    }
                }
                _ => refuse(td.tg_relation, tg, "fires FOR EACH ROW on TRUNCATE"),
            }
        }
        w.finish();
        return;
    }
    // SAFETY: an AFTER STATEMENT firing's transition tables are live for the
    // whole firing and hold rows of the trigger relation's row type, `desc`
    // (which `meta` was built from, as above), as for_each_row and
    // for_each_pair require; each row they pass is one of that relation, as
    // whole_row and changed_row require.
    unsafe {
        match (op, meta.shape.is_some()) {
            (pg_sys::TRIGGER_EVENT_INSERT, false) => for_each_row(td.tg_newtable, desc, |new| {
                let e = w.in_batch_cxt(|| whole_row(&meta, new, true));
                w.push(e);
            }),
            (pg_sys::TRIGGER_EVENT_DELETE, false) => for_each_row(td.tg_oldtable, desc, |old| {
                let e = w.in_batch_cxt(|| whole_row(&meta, old, false));
                w.push(e);
            }),
            (pg_sys::TRIGGER_EVENT_UPDATE, false) => {
                let mut is_changed = Vec::with_capacity(meta.columns.len());
                for_each_pair(td.tg_oldtable, td.tg_newtable, desc, |old, new| {
                    if let Some(e) = w.in_batch_cxt(|| changed_row(&meta, old, new, &mut is_changed)) {
                        w.push(e);
                    }
                })
            }
            // API §11, decided once per statement: the same, each event
            // then given its tenant and named action.
            (pg_sys::TRIGGER_EVENT_INSERT, true) => for_each_row(td.tg_newtable, desc, |new| {
                let e = w.in_batch_cxt(|| shaped(&meta, op, None, Some(new), whole_row(&meta, new, true)));
                w.push(e);
            }),
            (pg_sys::TRIGGER_EVENT_DELETE, true) => for_each_row(td.tg_oldtable, desc, |old| {
                let e = w.in_batch_cxt(|| shaped(&meta, op, Some(old), None, whole_row(&meta, old, false)));
                w.push(e);
            }),
            (pg_sys::TRIGGER_EVENT_UPDATE, true) => {
                let mut is_changed = Vec::with_capacity(meta.columns.len());
                for_each_pair(td.tg_oldtable, td.tg_newtable, desc, |old, new| {
                    if let Some(e) = w.in_batch_cxt(|| {
                        changed_row(&meta, old, new, &mut is_changed).map(|e| shaped(&meta, op, Some(old), Some(new), e))
                    }) {
                        w.push(e);
                    }
                })
            }
            _ => w.push(Event { details: truncate_details, ..Event::default() }),
        }
    }
    w.finish();
}

/// The values of the row a row firing's slot holds, all attributes deformed.
///
/// # Safety
/// `slot`, when not null, must be a valid slot holding a row of `natts`
/// attributes, left as it is for as long as the Row is used.
unsafe fn slot_row<'s>(slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Row<'s> {
    if slot.is_null() {
        error!("pg_audit_trail: a row trigger firing without its row");
    }
    // SAFETY: as the caller promises.
    unsafe { Row::of(slot, natts) }
}

thread_local! {
    /// Whether this backend is one of logical replication's workers: fixed
    /// for the backend's life, worked out once.
    static LOGICAL_WORKER: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// A logical replication apply, table synchronisation or parallel apply
/// worker: a background worker started from the server itself
/// (`bgw_library_name` "postgres") at one of their entry points.
fn in_logical_replication_worker() -> bool {
    if let Some(known) = LOGICAL_WORKER.get() {
        return known;
    }
    // SAFETY: MyBackendType and MyBgworkerEntry are plain globals set at
    // process start, before any extension code runs, and never changed
    // after; a non-null entry lives as long as the process, and its names
    // are NUL-terminated fixed-size arrays (bgworker.h).
    let known = unsafe {
        pg_sys::MyBackendType == pg_sys::BackendType::B_BG_WORKER && !pg_sys::MyBgworkerEntry.is_null() && {
            let e = &*pg_sys::MyBgworkerEntry;
            let library = std::ffi::CStr::from_ptr(e.bgw_library_name.as_ptr());
            let function = std::ffi::CStr::from_ptr(e.bgw_function_name.as_ptr());
            library.to_bytes() == b"postgres"
                && matches!(function.to_bytes(), b"ApplyWorkerMain" | b"ParallelApplyWorkerMain" | b"TablesyncWorkerMain")
        }
    };
    LOGICAL_WORKER.set(Some(known));
    known
}

/// Whether replica row triggers of capture fire for the rows of this
/// statement's action on `rel`, so that the statement firing must not
/// record them again: in a logical replication worker under
/// session_replication_role = replica, when the relation has one (enabled,
/// for every row and column), or is partitioned (the row triggers are on
/// its partitions, where rows go; check() says when one lacks them).
fn replica_rows_fire(rel: pg_sys::Relation, op: u32, capture: pg_sys::Oid) -> bool {
    // SAFETY: SessionReplicationRole is the plain int variable of a setting,
    // written only on this thread (the backend's only one) by SET.
    let replica = unsafe { pg_sys::SessionReplicationRole } == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32;
    if !replica || !in_logical_replication_worker() {
        return false;
    }
    // SAFETY: `rel` is the trigger relation, open and pinned for the firing,
    // so its pg_class row copy (rd_rel) is valid.
    if unsafe { (*(*rel).rd_rel).relkind } == pg_sys::RELKIND_PARTITIONED_TABLE as std::ffi::c_char {
        return true;
    }
    let action_bit = match op {
        pg_sys::TRIGGER_EVENT_INSERT => pg_sys::TRIGGER_TYPE_INSERT,
        pg_sys::TRIGGER_EVENT_UPDATE => pg_sys::TRIGGER_TYPE_UPDATE,
        _ => pg_sys::TRIGGER_TYPE_DELETE,
    } as i16;
    // SAFETY: the trigger relation is open and pinned; its trigger
    // descriptor (when it has one) and the numtriggers entries of its
    // array stay valid for the firing (a rebuild keeps an unchanged
    // descriptor in place, and nothing here can change it).
    unsafe {
        let td = (*rel).trigdesc;
        !td.is_null()
            && (0..(*td).numtriggers as usize).any(|i| {
                let t = &*(*td).triggers.add(i);
                t.tgfoid == capture
                    && t.tgtype & pg_sys::TRIGGER_TYPE_ROW as i16 != 0
                    && t.tgtype & (pg_sys::TRIGGER_TYPE_BEFORE | pg_sys::TRIGGER_TYPE_INSTEAD) as i16 == 0
                    && t.tgtype & action_bit != 0
                    && (t.tgenabled == pg_sys::TRIGGER_FIRES_ON_REPLICA as std::ffi::c_char
                        || t.tgenabled == pg_sys::TRIGGER_FIRES_ALWAYS as std::ffi::c_char)
                    && t.tgnattr == 0
                    && t.tgqual.is_null()
            })
    }
}

/// A row's values, as a slot holds them once its first `natts` attributes
/// are deformed: valid while the slot keeps that row, for the lifetime
/// `'s`. Made only by `Row::of`, whose callers promise as much; each row is
/// turned into its event before its slot is cleared or refilled.
struct Row<'s> {
    values: *const Datum,
    nulls: *const bool,
    natts: usize,
    slot: std::marker::PhantomData<&'s pg_sys::TupleTableSlot>,
}

impl Row<'_> {
    /// The row `slot` holds, its first `natts` attributes deformed.
    ///
    /// # Safety
    /// `slot` must be a valid slot holding a row of at least `natts`
    /// attributes, which it keeps (not cleared, refilled or dropped) for as
    /// long as the Row is used.
    unsafe fn of<'s>(slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Row<'s> {
        // SAFETY: as the caller promises. slot_getsomeattrs_int deforms up
        // to natts attributes and must be asked only for more than are
        // valid already; tts_values and tts_isnull then hold natts entries.
        unsafe {
            if ((*slot).tts_nvalid as i32) < natts {
                pg_sys::slot_getsomeattrs_int(slot, natts);
            }
            Row {
                values: (*slot).tts_values,
                nulls: (*slot).tts_isnull,
                natts: natts.max(0) as usize,
                slot: std::marker::PhantomData,
            }
        }
    }

    /// The value of the attribute at 0-based index `i`, and whether it is null.
    fn get(&self, i: usize) -> (Datum, bool) {
        assert!(i < self.natts, "pg_audit_trail: attribute {i} of a row of {} attributes", self.natts);
        // SAFETY: Row::of's caller promised that the slot keeps its row,
        // natts attributes deformed, while this Row is used, and i < natts.
        unsafe { (*self.values.add(i), *self.nulls.add(i)) }
    }

    /// All the row's values and nulls, for shape.rs.
    fn all(&self) -> shape::Values<'_> {
        // SAFETY: as for get: natts values and natts nulls, valid while
        // this Row is used (the slices borrow it).
        unsafe {
            shape::Values {
                values: std::slice::from_raw_parts(self.values, self.natts),
                nulls: std::slice::from_raw_parts(self.nulls, self.natts),
            }
        }
    }
}

/// # Safety
/// `ts` must be a live transition table whose rows have descriptor `desc`.
unsafe fn open_reader(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: as the caller promises. A transition table is made with
    // EXEC_FLAG_REWIND allowed, so another read pointer with it may be
    // added; the slot is made in the current memory context and dropped by
    // the caller.
    unsafe {
        // A read pointer of our own: other triggers read the same store.
        let ptr = pg_sys::tuplestore_alloc_read_pointer(ts, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(ts, ptr);
        pg_sys::tuplestore_rescan(ts);
        pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple)
    }
}

/// The next row of `ts`, read into `slot`.
///
/// # Safety
/// `slot` must come from `open_reader(ts, ...)`, with `natts` attributes;
/// the Row must not be used once `slot` is read into again or dropped.
unsafe fn next_row<'s>(ts: *mut pg_sys::Tuplestorestate, slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Option<Row<'s>> {
    // SAFETY: as the caller promises; gettupleslot stores the next row in
    // the slot (copy false: the slot refers to the store's tuple, which
    // stays until the next read), with its descriptor's natts attributes.
    unsafe {
        if !pg_sys::tuplestore_gettupleslot(ts, true, false, slot) {
            return None;
        }
        Some(Row::of(slot, natts))
    }
}

/// # Safety
/// `ts`, when not null, must be a live transition table of rows of `desc`.
unsafe fn for_each_row(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc, mut f: impl FnMut(&Row<'_>)) {
    if ts.is_null() {
        return;
    }
    // SAFETY: as the caller promises; each row is used before the next is
    // read into the same slot, which is dropped at the end.
    unsafe {
        let natts = (*desc).natts;
        let slot = open_reader(ts, desc);
        while let Some(row) = next_row(ts, slot, natts) {
            f(&row);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

/// UPDATE's old and new transition tables hold the rows in the same order,
/// the old and new versions of each row being added together.
///
/// # Safety
/// Both tables, when not null, must be live transition tables of rows of
/// `desc`.
unsafe fn for_each_pair(
    old_ts: *mut pg_sys::Tuplestorestate,
    new_ts: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    mut f: impl FnMut(&Row<'_>, &Row<'_>),
) {
    if old_ts.is_null() || new_ts.is_null() {
        return;
    }
    // SAFETY: as the caller promises; as in for_each_row, each pair is used
    // before the next is read into the same two slots.
    unsafe {
        let natts = (*desc).natts;
        let old_slot = open_reader(old_ts, desc);
        let new_slot = open_reader(new_ts, desc);
        loop {
            match (next_row(old_ts, old_slot, natts), next_row(new_ts, new_slot, natts)) {
                (Some(old), Some(new)) => f(&old, &new),
                (None, None) => break,
                _ => error!("pg_audit_trail: reading an UPDATE's transition tables: the old and new ones differ in length"),
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(old_slot);
        pg_sys::ExecDropSingleTupleTableSlot(new_slot);
    }
}

/// An object builder for a row of the table: the documents of its json and
/// jsonb columns have their secret keys redacted while
/// `audit_trail.redact_json_keys` is on. A table without such columns
/// (`json_patterns` empty) does not even read the setting.
fn builder(meta: &TableMeta) -> ObjectBuilder<'_> {
    if meta.json_patterns.is_empty() || !settings::REDACT_JSON_KEYS.get() {
        ObjectBuilder::new()
    } else {
        ObjectBuilder::redacting_keys(&meta.json_patterns)
    }
}

/// INSERT (the new row in `after`) or DELETE (the old row in `before`).
///
/// # Safety
/// `row` must be a row of the relation `meta` was built from, in the row
/// type `meta` describes.
unsafe fn whole_row(meta: &TableMeta, row: &Row<'_>, is_new: bool) -> Event {
    let mut obj = builder(meta);
    for &i in &meta.json_order {
        let c = &meta.columns[i];
        let (d, isnull) = row.get(c.index);
        // SAFETY: as the caller promises, the value is one of column `c`,
        // of type c.typid.
        unsafe { obj.add(&c.name, d, isnull, c.typid, c.kind, c.render) };
    }
    let image = Some(obj.finish());
    Event {
        // SAFETY: as the caller promises.
        entity_id: unsafe { entity_id(meta, row) },
        // SAFETY: as the caller promises.
        entity_label: unsafe { label(meta, row, None) },
        before: if is_new { None } else { image },
        after: if is_new { image } else { None },
        changed: None,
        details: None,
        action: None,
        tenant: None,
    }
}

/// UPDATE: only the recorded columns whose values differ; None when none do.
/// `is_changed` is the statement's scratch space, one flag per column.
///
/// # Safety
/// `old` and `new` must be rows of the relation `meta` was built from, in
/// the row type `meta` describes.
unsafe fn changed_row(meta: &TableMeta, old: &Row<'_>, new: &Row<'_>, is_changed: &mut Vec<bool>) -> Option<Event> {
    is_changed.clear();
    is_changed.extend(meta.columns.iter().map(|c| {
        let (a, an) = old.get(c.index);
        let (b, bn) = new.get(c.index);
        // SAFETY: as the caller promises, both values are of column `c`.
        !unsafe { diff::same(c, a, an, b, bn) }
    }));
    // A key change is recorded even if the key column is not (API §9).
    let key_changed = meta.key.iter().any(|k| {
        let (a, an) = old.get(k.index);
        let (b, bn) = new.get(k.index);
        // SAFETY: as the caller promises, both values are of column `k`.
        !unsafe { diff::same(k, a, an, b, bn) }
    });
    if !key_changed && !is_changed.contains(&true) {
        return None;
    }
    // SAFETY: as the caller promises.
    let entity = unsafe { entity_id(meta, new) };
    // The row's key before this UPDATE, when it changed: history() follows
    // the row from one key to the next through it.
    let details = if key_changed {
        // SAFETY: as the caller promises.
        let previous = unsafe { entity_id(meta, old) };
        match (text_of(previous), text_of(entity)) {
            (Some(p), n) if Some(&p) != n.as_ref() => {
                pgrx::JsonB(serde_json::json!({ "previous_entity_id": p })).into_datum()
            }
            _ => None,
        }
    } else {
        None
    };
    let mut before = builder(meta);
    let mut after = builder(meta);
    let mut add = |i: usize| {
        let c = &meta.columns[i];
        let (a, an) = old.get(c.index);
        let (b, bn) = new.get(c.index);
        // SAFETY: as the caller promises, both values are of column `c`.
        unsafe {
            before.add(&c.name, a, an, c.typid, c.kind, c.render);
            after.add(&c.name, b, bn, c.typid, c.kind, c.render);
        }
    };
    match meta.shape.as_deref().map(|s| s.always.as_slice()).filter(|a| !a.is_empty()) {
        None => meta.json_order.iter().filter(|&&i| is_changed[i]).for_each(|&i| add(i)),
        // API §11: the columns always included, changed or not (`changed`
        // still lists only the changed ones).
        Some(always) => meta.json_order.iter().filter(|&&i| is_changed[i] || always[i]).for_each(|&i| add(i)),
    }
    Some(Event {
        entity_id: entity,
        // SAFETY: as the caller promises.
        entity_label: unsafe { label(meta, new, Some(old)) },
        before: Some(before.finish()),
        after: Some(after.finish()),
        changed: Some(datum::text_array(
            meta.columns.iter().zip(is_changed.iter()).filter(|(_, &x)| x).map(|(c, _)| c.name.as_c_str()),
        )),
        details,
        action: None,
        tenant: None,
    })
}

/// API §11, for a table that has a `Shape`: the event's tenant from the
/// tenant column (the new row's value, else the old row's), rendered as
/// entity ids are (canonical.rs), and its named action. `old` and `new` are
/// the rows as `op` has them.
///
/// # Safety
/// As for changed_row; runs in the batch memory context.
unsafe fn shaped(meta: &TableMeta, op: u32, old: Option<&Row<'_>>, new: Option<&Row<'_>>, mut e: Event) -> Event {
    let Some(shape) = meta.shape.as_deref() else { return e };
    if let Some(c) = &shape.tenant {
        // SAFETY: as the caller promises; `c` is a column of the relation.
        let of = |r: Option<&Row<'_>>| r.and_then(|r| unsafe { as_text(c, r) });
        e.tenant = Some(crate::canonical::with_canonical_output(|| of(new).or_else(|| of(old))));
    }
    if !shape.rules.is_empty() {
        // SAFETY: as the caller promises.
        let rule = unsafe { shape.named_action(&meta.json_patterns, op, old.map(Row::all), new.map(Row::all)) };
        if let Some(rule) = rule {
            e.action = Some(datum::text_datum(&rule.action));
        }
    }
    e
}

/// The text of a text datum the capture made (an entity id).
fn text_of(d: Option<Datum>) -> Option<String> {
    // SAFETY: every entity id is a text datum made by datum::text_datum or
    // json::to_text in the current batch; text_to_cstring copies it.
    d.map(|d| unsafe { datum::text_string(d) })
}

/// One key column: its value as text. Several: a JSON array text, `[7,"eu"]`.
/// Canonical: the same text whatever the session's output settings.
///
/// # Safety
/// As for whole_row.
unsafe fn entity_id(meta: &TableMeta, row: &Row<'_>) -> Option<Datum> {
    // Rendered as every session would render it (API §9; canonical.rs).
    crate::canonical::with_canonical_output(|| match meta.key.as_slice() {
        [] => None,
        // SAFETY: as the caller promises; `k` is a column of `meta`.
        [k] => unsafe { as_text(k, row) },
        keys => {
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    let (d, isnull) = row.get(k.index);
                    // SAFETY: as the caller promises, the value is one of
                    // column `k`, of type k.typid.
                    unsafe { json::to_json_text(d, isnull, k.typid, k.render) }
                })
                .collect();
            Some(datum::text_datum(&format!("[{}]", parts.join(","))))
        }
    })
}

/// The label column's value in `row`, else in `fallback`.
///
/// # Safety
/// `row` and `fallback` must be rows of the relation `meta` was built from.
unsafe fn label(meta: &TableMeta, row: &Row<'_>, fallback: Option<&Row<'_>>) -> Option<Datum> {
    let c = meta.label.as_ref()?;
    // SAFETY: as the caller promises; `c` is a column of `meta`.
    unsafe { as_text(c, row).or_else(|| fallback.and_then(|f| as_text(c, f))) }
}

/// A column's value as the text datum the log stores.
///
/// # Safety
/// `row` must be a row of the relation whose column `c` is.
unsafe fn as_text(c: &Column, row: &Row<'_>) -> Option<Datum> {
    let (d, isnull) = row.get(c.index);
    match c.render {
        Render::Redacted => Some(datum::text_datum(json::REDACTED.to_str().unwrap())),
        _ if isnull => None,
        Render::Binary => Some(datum::text_datum(json::BINARY.to_str().unwrap())),
        // A key or label is the value's text, documents included (not walked).
        // SAFETY: as the caller promises, a non-null value of type c.typid.
        Render::Value | Render::JsonKeys => Some(unsafe { json::to_text(d, c.typid) }),
    }
}

/// TRUNCATE of a partitioned table is one event naming the audited table,
/// with `details.partitions`; TRUNCATE of one partition names the audited
/// table with `details.partition` (API §8).
///
/// PostgreSQL fires the statement triggers of every table a TRUNCATE
/// empties: the partitioned table's, then its partitions' (at every level).
/// The first of a statement's firings in a partition tree records the event
/// for what it covers, and remembers those partitions so that their own
/// firings, later in the same statement, record nothing. A statement is
/// told by its active snapshot's command id, which the next statement's
/// never shares once anything was written (and the event was); what is
/// remembered also goes at the end of its subtransaction or transaction.
mod truncate {
    use super::TableMeta;
    use pgrx::pg_sys;
    use pgrx::prelude::*;
    use std::cell::{Cell, RefCell};
    use std::collections::HashSet;

    // SAFETY: the declaration of pg_inherits.h's function as PostgreSQL 15
    // to 18 have it, exported by the server; pgrx does not bind it.
    unsafe extern "C-unwind" {
        fn find_all_inheritors(parent: pg_sys::Oid, lockmode: pg_sys::LOCKMODE, numparents: *mut *mut pg_sys::List) -> *mut pg_sys::List;
    }

    pub enum Record {
        /// Covered by the event of a table above it in this statement.
        Skip,
        /// Record the event, with these details.
        With(Option<pg_sys::Datum>),
    }

    struct Covered {
        /// The statement: its active snapshot's command id.
        statement: pg_sys::CommandId,
        /// The subtransaction whose firing made the set.
        subxact: pg_sys::SubTransactionId,
        partitions: HashSet<pg_sys::Oid>,
    }

    thread_local! {
        static COVERED: RefCell<Option<Covered>> = const { RefCell::new(None) };
        static CALLBACKS: Cell<bool> = const { Cell::new(false) };
    }

    /// The current statement, when there is an active snapshot to tell it by.
    fn statement() -> Option<pg_sys::CommandId> {
        // SAFETY: GetActiveSnapshot is called only when one is set, and
        // returns the snapshot on top of the active stack, valid while it is
        // there, which it is during this read.
        unsafe { pg_sys::ActiveSnapshotSet().then(|| (*pg_sys::GetActiveSnapshot()).curcid) }
    }

    /// `format('%I.%I', schema, table)` of a relation.
    fn qualified_name(relid: pg_sys::Oid) -> String {
        // SAFETY: syscache look-ups (inside the TRUNCATE's transaction) of a
        // relation the TRUNCATE holds locked, so it exists; they return NULL
        // or palloc'd copies (checked below), and quote_qualified_identifier
        // a palloc'd string, copied again here.
        unsafe {
            let name = pg_sys::get_rel_name(relid);
            let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
            if name.is_null() || nsp.is_null() {
                error!("pg_audit_trail: relation {relid} has no name");
            }
            std::ffi::CStr::from_ptr(pg_sys::quote_qualified_identifier(nsp, name)).to_string_lossy().into_owned()
        }
    }

    /// What the firing of TRUNCATE's statement trigger on `rel` records.
    ///
    /// # Safety
    /// `rel` must be the open trigger relation of a TRUNCATE firing.
    pub unsafe fn details(rel: pg_sys::Relation, meta: &TableMeta) -> Record {
        // SAFETY: as the caller promises, `rel` is open and pinned, with its
        // pg_class row copy.
        let (relid, partitioned) =
            unsafe { ((*rel).rd_id, (*(*rel).rd_rel).relkind == pg_sys::RELKIND_PARTITIONED_TABLE as std::ffi::c_char) };
        let now = statement();
        let covered = COVERED.with(|c| {
            let mut c = c.borrow_mut();
            match c.as_mut() {
                Some(cov) if Some(cov.statement) == now => cov.partitions.remove(&relid),
                _ => false,
            }
        });
        if covered {
            return Record::Skip;
        }
        if relid == meta.audited && !partitioned {
            return Record::With(None);
        }
        // Everything below rel: a TRUNCATE of a partitioned table empties
        // all its partitions, which it holds locked.
        let below: Vec<pg_sys::Oid> = if partitioned {
            // SAFETY: inside the TRUNCATE's transaction, which holds every
            // partition of `relid` locked (NoLock: take no more);
            // find_all_inheritors returns a palloc'd OID list (NIL is NULL)
            // of `length` elements, read before list_free frees it.
            unsafe {
                let list = find_all_inheritors(relid, pg_sys::NoLock as pg_sys::LOCKMODE, std::ptr::null_mut());
                let mut out = Vec::new();
                if !list.is_null() {
                    for i in 0..(*list).length as usize {
                        let oid = (*(*list).elements.add(i)).oid_value;
                        if oid != relid {
                            out.push(oid);
                        }
                    }
                    pg_sys::list_free(list);
                }
                out
            }
        } else {
            Vec::new()
        };
        if let (Some(statement), false) = (now, below.is_empty()) {
            remember(statement, &below);
        }
        let mut names: Vec<String> = below.iter().map(|&p| qualified_name(p)).collect();
        names.sort();
        let mut details = serde_json::Map::new();
        if relid != meta.audited {
            details.insert("partition".into(), qualified_name(relid).into());
        }
        if partitioned {
            details.insert("partitions".into(), names.into());
        }
        Record::With(pgrx::JsonB(serde_json::Value::Object(details)).into_datum())
    }

    fn remember(statement: pg_sys::CommandId, partitions: &[pg_sys::Oid]) {
        if !CALLBACKS.get() {
            // SAFETY: registers #[pg_guard]ed functions of this library,
            // which stays loaded for the backend's life, with no argument;
            // CALLBACKS makes sure it happens once.
            unsafe {
                pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
                pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
            }
            CALLBACKS.set(true);
        }
        // SAFETY: only reads the transaction state; we are inside the
        // TRUNCATE's transaction.
        let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
        COVERED.with(|c| {
            let mut c = c.borrow_mut();
            match c.as_mut() {
                Some(cov) if cov.statement == statement => cov.partitions.extend(partitions),
                _ => *c = Some(Covered { statement, subxact, partitions: partitions.iter().copied().collect() }),
            }
        });
    }

    /// Nothing outlives its transaction.
    #[pg_guard]
    unsafe extern "C-unwind" fn on_xact(_event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
        COVERED.with(|c| c.borrow_mut().take());
    }

    /// What a rolled-back subtransaction (or one of its children) made goes.
    #[pg_guard]
    unsafe extern "C-unwind" fn on_subxact(
        event: pg_sys::SubXactEvent::Type,
        my_subid: pg_sys::SubTransactionId,
        _parent: pg_sys::SubTransactionId,
        _arg: *mut std::ffi::c_void,
    ) {
        if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
            COVERED.with(|c| {
                let mut c = c.borrow_mut();
                if c.as_ref().is_some_and(|cov| cov.subxact >= my_subid) {
                    *c = None;
                }
            });
        }
    }
}
