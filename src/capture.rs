//! The capture trigger: AFTER ... FOR EACH STATEMENT with transition tables,
//! one trigger per action. Reading the statement's rows from its transition
//! tables costs PostgreSQL a tuple copy per row and spares it the per-row
//! trigger call and after-trigger queue entry a row trigger would need.
//!
//! On a partitioned table the transition tables hold rows in the parent's
//! row type whatever partition they went to; the same trigger on each
//! partition catches DML aimed at the partition directly.

use crate::context::Context;
use crate::json::{self, ObjectBuilder, Render};
use crate::meta::{self, Column, TableMeta};
use crate::store::{self, Event, Writer};
use crate::diff;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

#[derive(thiserror::Error, Debug)]
pub enum CaptureError {
    #[error("audit_trail.capture() must be fired AFTER ... FOR EACH STATEMENT")]
    WrongTiming,
}

#[pg_trigger]
fn capture<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, CaptureError> {
    let td = trigger.trigger_data();
    let event = td.tg_event;
    if event & pg_sys::TRIGGER_EVENT_ROW != 0 || event & pg_sys::TRIGGER_EVENT_TIMINGMASK != 0 {
        return Err(CaptureError::WrongTiming);
    }
    let Some(meta) = meta::get(td.tg_relation) else {
        // A partition detached from its audited table keeps stale triggers
        // until they are dropped; its rows are no longer audited.
        return Ok(None);
    };
    let desc = unsafe { (*td.tg_relation).rd_att };
    let op = event & pg_sys::TRIGGER_EVENT_OPMASK;
    let action = match op {
        pg_sys::TRIGGER_EVENT_INSERT => "INSERT",
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        _ => "TRUNCATE",
    };
    let ctx = Context::current();
    let mut w = Writer::new(&ctx, action, Some(&meta.entity_type));
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
            _ => w.push(Event::default()),
        }
    }
    w.finish();
    Ok(None)
}

/// A row's values, as the slot holds them after `slot_getallattrs`.
struct Row {
    values: *const Datum,
    nulls: *const bool,
}

impl Row {
    fn get(&self, i: usize) -> (Datum, bool) {
        unsafe { (*self.values.add(i), *self.nulls.add(i)) }
    }
}

unsafe fn open_reader(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc) -> *mut pg_sys::TupleTableSlot {
    unsafe {
        // A read pointer of our own: other triggers read the same store.
        let ptr = pg_sys::tuplestore_alloc_read_pointer(ts, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(ts, ptr);
        pg_sys::tuplestore_rescan(ts);
        pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple)
    }
}

unsafe fn next_row(ts: *mut pg_sys::Tuplestorestate, slot: *mut pg_sys::TupleTableSlot, natts: i32) -> Option<Row> {
    unsafe {
        if !pg_sys::tuplestore_gettupleslot(ts, true, false, slot) {
            return None;
        }
        pg_sys::slot_getsomeattrs_int(slot, natts);
        Some(Row { values: (*slot).tts_values, nulls: (*slot).tts_isnull })
    }
}

unsafe fn for_each_row(ts: *mut pg_sys::Tuplestorestate, desc: pg_sys::TupleDesc, mut f: impl FnMut(&Row)) {
    if ts.is_null() {
        return;
    }
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
unsafe fn for_each_pair(
    old_ts: *mut pg_sys::Tuplestorestate,
    new_ts: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    mut f: impl FnMut(&Row, &Row),
) {
    if old_ts.is_null() || new_ts.is_null() {
        return;
    }
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
        changed: Some(store::text_array(
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
            Some(store::text_datum(&format!("[{}]", parts.join(","))))
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
        Render::Redacted => Some(store::text_datum(json::REDACTED.to_str().unwrap())),
        _ if isnull => None,
        Render::Binary => Some(store::text_datum(json::BINARY.to_str().unwrap())),
        Render::Value => Some(json::to_text(d, c.typid)),
    }
}
