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
use crate::writer::{Event, Writer};
use crate::diff;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

/// Refuses a firing that is not one of the capture triggers' shapes:
/// `AFTER ... FOR EACH STATEMENT` with the action's transition tables, or
/// `AFTER INSERT/UPDATE/DELETE ... FOR EACH ROW` (for logical replication).
fn refuse(rel: pg_sys::Relation, trigger: &pg_sys::Trigger, why: &str) -> ! {
    // SAFETY: the trigger relation and its name are valid for the firing.
    let (table, name) = unsafe {
        (
            std::ffi::CStr::from_ptr(pg_sys::get_rel_name((*rel).rd_id)).to_string_lossy().into_owned(),
            std::ffi::CStr::from_ptr(trigger.tgname).to_string_lossy().into_owned(),
        )
    };
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("audit_trail.capture() must be fired AFTER ... FOR EACH STATEMENT, or AFTER INSERT, UPDATE or DELETE ... FOR EACH ROW: trigger \"{name}\" on table \"{table}\" {why}"),
        "Auditing is turned on with audit_trail.enable(), which makes the capture triggers itself."
    );
    unreachable!()
}

#[pg_trigger]
fn capture<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let td = trigger.trigger_data();
    let event = td.tg_event;
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    // SAFETY: tg_trigger is set for every trigger call.
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
            return Ok(None);
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
            return Ok(None);
        }
    }
    // Settings another session committed since this statement's locks were
    // taken (a re-enable(), a rename) are seen now: a relcache invalidation
    // drops the table's cached metadata. Cheap when there is nothing new.
    // SAFETY: processing invalidations is allowed wherever a lock could be
    // taken; the trigger relation stays open (and its entry valid) meanwhile.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let Some(meta) = meta::get(td.tg_relation) else {
        // A partition detached from its audited table keeps stale triggers
        // until they are dropped; its rows are no longer audited.
        return Ok(None);
    };
    // SAFETY: the trigger relation is open for the whole firing.
    let desc = unsafe { (*td.tg_relation).rd_att };
    let action = match op {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => "TRUNCATE",
    };
    let truncate_details = if op == pg_sys::TRIGGER_EVENT_TRUNCATE {
        // SAFETY: the relation is open; see truncate::details.
        match unsafe { truncate::details(td.tg_relation, &meta) } {
            truncate::Record::Skip => return Ok(None),
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
        // an UPDATE in tg_newslot, both in the trigger relation's row type.
        unsafe {
            let natts = (*desc).natts;
            let first = slot_row(td.tg_trigslot, natts);
            match op {
                pg_sys::TRIGGER_EVENT_INSERT => {
                    let e = w.in_batch_cxt(|| whole_row(&meta, &first, true));
                    w.push(e);
                }
                pg_sys::TRIGGER_EVENT_DELETE => {
                    let e = w.in_batch_cxt(|| whole_row(&meta, &first, false));
                    w.push(e);
                }
                pg_sys::TRIGGER_EVENT_UPDATE => {
                    let new = slot_row(td.tg_newslot, natts);
                    let mut is_changed = Vec::with_capacity(meta.columns.len());
                    if let Some(e) = w.in_batch_cxt(|| changed_row(&meta, &first, &new, &mut is_changed)) {
                        w.push(e);
                    }
                }
                _ => refuse(td.tg_relation, tg, "fires FOR EACH ROW on TRUNCATE"),
            }
        }
        w.finish();
        return Ok(None);
    }
    // SAFETY: the transition tables and the relation's descriptor are valid
    // for the firing; see for_each_row and for_each_pair.
    unsafe {
        match op {
            pg_sys::TRIGGER_EVENT_INSERT => for_each_row(td.tg_newtable, desc, |new| {
                let e = w.in_batch_cxt(|| whole_row(&meta, new, true));
                w.push(e);
            }),
            pg_sys::TRIGGER_EVENT_DELETE => for_each_row(td.tg_oldtable, desc, |old| {
                let e = w.in_batch_cxt(|| whole_row(&meta, old, false));
                w.push(e);
            }),
            pg_sys::TRIGGER_EVENT_UPDATE => {
                let mut is_changed = Vec::with_capacity(meta.columns.len());
                for_each_pair(td.tg_oldtable, td.tg_newtable, desc, |old, new| {
                    if let Some(e) = w.in_batch_cxt(|| changed_row(&meta, old, new, &mut is_changed)) {
                        w.push(e);
                    }
                })
            }
            _ => w.push(Event { details: truncate_details, ..Event::default() }),
        }
    }
    w.finish();
    Ok(None)
}

/// The values of the row a slot holds, all attributes deformed.
///
/// # Safety
/// `slot` must be a valid slot holding a row of `natts` attributes.
unsafe fn slot_row(slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Row {
    if slot.is_null() {
        error!("pg_audit_trail: a row trigger firing without its row");
    }
    // SAFETY: as the caller promises; slot_getsomeattrs_int deforms up to
    // natts when fewer are valid.
    unsafe {
        if ((*slot).tts_nvalid as i32) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
        Row { values: (*slot).tts_values, nulls: (*slot).tts_isnull }
    }
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
    // SAFETY: MyBackendType and MyBgworkerEntry are set at process start;
    // the entry's names are NUL-terminated fixed-size arrays.
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
    // SAFETY: reads a GUC variable.
    let replica = unsafe { pg_sys::SessionReplicationRole } == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32;
    if !replica || !in_logical_replication_worker() {
        return false;
    }
    // SAFETY: the trigger relation is open.
    if unsafe { (*(*rel).rd_rel).relkind } == pg_sys::RELKIND_PARTITIONED_TABLE as std::ffi::c_char {
        return true;
    }
    let action_bit = match op {
        pg_sys::TRIGGER_EVENT_INSERT => pg_sys::TRIGGER_TYPE_INSERT,
        pg_sys::TRIGGER_EVENT_UPDATE => pg_sys::TRIGGER_TYPE_UPDATE,
        _ => pg_sys::TRIGGER_TYPE_DELETE,
    } as i16;
    // SAFETY: the trigger relation is open, its trigger descriptor (when
    // it has one) valid for the firing.
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

/// A row's values, as the slot holds them after `slot_getallattrs`: valid
/// until the slot is cleared or refilled, which happens only after the row
/// has been turned into an event.
struct Row {
    values: *const Datum,
    nulls: *const bool,
}

impl Row {
    fn get(&self, i: usize) -> (Datum, bool) {
        // SAFETY: `i` is a column index of the relation's descriptor, below
        // natts, and the slot deformed all natts attributes.
        unsafe { (*self.values.add(i), *self.nulls.add(i)) }
    }
}

/// # Safety
/// `ts` must be a live transition table whose rows have descriptor `desc`.
unsafe fn open_reader(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: as the caller promises; the slot is made in the current
    // memory context and dropped by the caller.
    unsafe {
        // A read pointer of our own: other triggers read the same store.
        let ptr = pg_sys::tuplestore_alloc_read_pointer(ts, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(ts, ptr);
        pg_sys::tuplestore_rescan(ts);
        pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple)
    }
}

/// # Safety
/// `slot` must come from `open_reader(ts, ...)`, with `natts` attributes.
unsafe fn next_row(ts: *mut pg_sys::Tuplestorestate, slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Option<Row> {
    // SAFETY: as the caller promises; gettupleslot clears the slot, so
    // deforming from attribute 0 is what slot_getsomeattrs_int expects.
    unsafe {
        if !pg_sys::tuplestore_gettupleslot(ts, true, false, slot) {
            return None;
        }
        pg_sys::slot_getsomeattrs_int(slot, natts);
        Some(Row { values: (*slot).tts_values, nulls: (*slot).tts_isnull })
    }
}

/// # Safety
/// `ts`, when not null, must be a live transition table of rows of `desc`.
unsafe fn for_each_row(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc, mut f: impl FnMut(&Row)) {
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
    mut f: impl FnMut(&Row, &Row),
) {
    if old_ts.is_null() || new_ts.is_null() {
        return;
    }
    // SAFETY: as the caller promises; see for_each_row.
    unsafe {
        let natts = (*desc).natts;
        let old_slot = open_reader(old_ts, desc);
        let new_slot = open_reader(new_ts, desc);
        loop {
            match (next_row(old_ts, old_slot, natts), next_row(new_ts, new_slot, natts)) {
                (Some(old), Some(new)) => f(&old, &new),
                (None, None) => break,
                _ => error!("pg_audit_trail: the old and new transition tables of an UPDATE differ in length"),
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(old_slot);
        pg_sys::ExecDropSingleTupleTableSlot(new_slot);
    }
}

/// INSERT (the new row in `after`) or DELETE (the old row in `before`).
fn whole_row(meta: &TableMeta, row: &Row, is_new: bool) -> Event {
    let mut obj = ObjectBuilder::new();
    for &i in &meta.json_order {
        let c = &meta.columns[i];
        let (d, isnull) = row.get(c.index);
        obj.add(&c.name, d, isnull, c.typid, c.kind, c.render);
    }
    let image = Some(obj.finish());
    Event {
        entity_id: entity_id(meta, row),
        entity_label: label(meta, row, None),
        before: if is_new { None } else { image },
        after: if is_new { image } else { None },
        changed: None,
        details: None,
    }
}

/// UPDATE: only the recorded columns whose values differ; None when none do.
/// `is_changed` is the statement's scratch space, one flag per column.
fn changed_row(meta: &TableMeta, old: &Row, new: &Row, is_changed: &mut Vec<bool>) -> Option<Event> {
    is_changed.clear();
    is_changed.extend(meta.columns.iter().map(|c| {
        let (a, an) = old.get(c.index);
        let (b, bn) = new.get(c.index);
        !diff::same(c, a, an, b, bn)
    }));
    if !is_changed.contains(&true) {
        return None;
    }
    let mut before = ObjectBuilder::new();
    let mut after = ObjectBuilder::new();
    for &i in meta.json_order.iter().filter(|&&i| is_changed[i]) {
        let c = &meta.columns[i];
        let (a, an) = old.get(c.index);
        let (b, bn) = new.get(c.index);
        before.add(&c.name, a, an, c.typid, c.kind, c.render);
        after.add(&c.name, b, bn, c.typid, c.kind, c.render);
    }
    Some(Event {
        entity_id: entity_id(meta, new),
        entity_label: label(meta, new, Some(old)),
        before: Some(before.finish()),
        after: Some(after.finish()),
        changed: Some(datum::text_array(
            meta.columns.iter().zip(is_changed.iter()).filter(|(_, &x)| x).map(|(c, _)| c.name.as_c_str()),
        )),
        details: None,
    })
}

/// One key column: its value as text. Several: a JSON array text, `[7,"eu"]`.
fn entity_id(meta: &TableMeta, row: &Row) -> Option<Datum> {
    match meta.key.as_slice() {
        [] => None,
        [k] => as_text(k, row),
        keys => {
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    let (d, isnull) = row.get(k.index);
                    json::to_json_text(d, isnull, k.typid, k.render)
                })
                .collect();
            Some(datum::text_datum(&format!("[{}]", parts.join(","))))
        }
    }
}

/// The label column's value in `row`, else in `fallback`.
fn label(meta: &TableMeta, row: &Row, fallback: Option<&Row>) -> Option<Datum> {
    let c = meta.label.as_ref()?;
    as_text(c, row).or_else(|| fallback.and_then(|f| as_text(c, f)))
}

/// A column's value as the text datum the log stores.
fn as_text(c: &Column, row: &Row) -> Option<Datum> {
    let (d, isnull) = row.get(c.index);
    match c.render {
        Render::Redacted => Some(datum::text_datum(json::REDACTED.to_str().unwrap())),
        _ if isnull => None,
        Render::Binary => Some(datum::text_datum(json::BINARY.to_str().unwrap())),
        Render::Value => Some(json::to_text(d, c.typid)),
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

    // SAFETY: the declaration of pg_inherits.h's function, exported by the
    // server, which pgrx does not bind.
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
        // SAFETY: GetActiveSnapshot is only called when one is set.
        unsafe { pg_sys::ActiveSnapshotSet().then(|| (*pg_sys::GetActiveSnapshot()).curcid) }
    }

    /// `format('%I.%I', schema, table)` of a relation.
    fn qualified_name(relid: pg_sys::Oid) -> String {
        // SAFETY: syscache look-ups of a relation the TRUNCATE holds locked;
        // the strings are palloc'd copies, copied again here.
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
        // SAFETY: as the caller promises.
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
            // SAFETY: find_all_inheritors returns an OID list, rel first.
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
            // SAFETY: plain callbacks without argument, kept for the
            // backend's life.
            unsafe {
                pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
                pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
            }
            CALLBACKS.set(true);
        }
        // SAFETY: inside a transaction.
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
