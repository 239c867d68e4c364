//! The fast way into audit_trail.events: straight into the partition that
//! covers the statement's timestamp, the way COPY writes — heap insert plus
//! index entries — without planning, executor start-up or partition routing
//! per statement. One statement's events all share one `occurred_at`, so
//! they all go to one partition.
//!
//! Correctness rests on the same footing as an INSERT through the parent:
//! the parent is locked ROW EXCLUSIVE (so a partition cannot be detached or
//! dropped under us), the partition is found from the parent's partition
//! descriptor exactly as PostgreSQL's routing does, and omits partitions
//! being detached concurrently. When the covering partition is the default
//! one — whose constraint a concurrent ATTACH may be changing — or the layout
//! is not the one this code writes, the caller uses the SQL path instead,
//! which lets PostgreSQL route and check.

use pgrx::pg_sys::{self, Datum};
use std::ffi::CStr;

unsafe extern "C-unwind" {
    fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64;
}

/// The columns of audit_trail.events, in table order: the sink writes only
/// to a partition with exactly this layout.
pub const COLUMNS: [&str; 19] = [
    "id", "occurred_at", "txid", "action", "entity_type", "entity_id", "entity_label", "before", "after",
    "changed", "details", "actor", "db_user", "client_ip", "user_agent", "service", "tenant", "request_id",
    "statement",
];

/// Rows written to the heap together (heap_multi_insert: one WAL record and
/// one buffer lock per page rather than per row); matches the store's batch.
pub const BATCH: usize = 64;

pub struct Sink {
    leaf: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    rri: *mut pg_sys::ResultRelInfo,
    slots: Vec<*mut pg_sys::TupleTableSlot>,
    filled: usize,
    seq: pg_sys::Oid,
}

fn layout_matches(desc: pg_sys::TupleDesc) -> bool {
    unsafe {
        if (*desc).natts as usize != COLUMNS.len() {
            return false;
        }
        COLUMNS.iter().enumerate().all(|(i, name)| {
            let att = crate::meta::tuple_desc_attr(desc, i);
            !att.attisdropped && CStr::from_ptr(att.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
    }
}

impl Sink {
    /// Opens the partition that covers `occurred_at`; None when the SQL path
    /// must be used. Must run as the log's owner (it reads the catalog only,
    /// but locks the log's relations).
    pub fn open(events: pg_sys::Oid, seq: pg_sys::Oid, occurred_at: Datum) -> Option<Sink> {
        unsafe {
            let parent = pg_sys::table_open(events, pg_sys::RowExclusiveLock as i32);
            let leaf_oid = covering_partition(parent, occurred_at);
            pg_sys::table_close(parent, pg_sys::NoLock as i32);
            let leaf_oid = leaf_oid?;
            let leaf = pg_sys::table_open(leaf_oid, pg_sys::RowExclusiveLock as i32);
            if !layout_matches((*leaf).rd_att) {
                pg_sys::table_close(leaf, pg_sys::NoLock as i32);
                return None;
            }
            let estate = pg_sys::CreateExecutorState();
            let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()) as *mut pg_sys::ResultRelInfo;
            pg_sys::InitResultRelInfo(rri, leaf, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(rri, false);
            pg_sys::MakePerTupleExprContext(estate);
            // Slots are made as rows come: a one-row statement makes one.
            Some(Sink { leaf, estate, rri, slots: Vec::new(), filled: 0, seq })
        }
    }

    /// Queues one event; `values[0]` (id) is taken from the sequence here.
    /// The datums must stay valid until `flush`. Returns the id.
    pub fn insert(&mut self, values: &mut [Datum; 19], nulls: &mut [bool; 19]) -> i64 {
        if self.filled == BATCH {
            self.flush();
        }
        unsafe {
            let id = nextval_internal(self.seq, false);
            values[0] = Datum::from(id);
            nulls[0] = false;
            if self.filled == self.slots.len() {
                self.slots.push(pg_sys::MakeSingleTupleTableSlot((*self.leaf).rd_att, &pg_sys::TTSOpsVirtual));
            }
            let slot = self.slots[self.filled];
            pg_sys::ExecClearTuple(slot);
            std::ptr::copy_nonoverlapping(values.as_ptr(), (*slot).tts_values, 19);
            std::ptr::copy_nonoverlapping(nulls.as_ptr(), (*slot).tts_isnull, 19);
            pg_sys::ExecStoreVirtualTuple(slot);
            // NOT NULL and any CHECK constraint hold here as for an INSERT.
            if !(*(*self.leaf).rd_att).constr.is_null() {
                pg_sys::ExecConstraints(self.rri, slot, self.estate);
            }
            self.filled += 1;
            id
        }
    }

    /// Writes the queued events: heap first, then their index entries.
    pub fn flush(&mut self) {
        if self.filled == 0 {
            return;
        }
        unsafe {
            pg_sys::heap_multi_insert(
                self.leaf,
                self.slots.as_mut_ptr(),
                self.filled as i32,
                pg_sys::GetCurrentCommandId(true),
                0,
                std::ptr::null_mut(),
            );
            if (*self.rri).ri_NumIndices > 0 {
                for &slot in &self.slots[..self.filled] {
                    insert_index_entries(self.rri, slot, self.estate);
                }
            }
            for &slot in &self.slots[..self.filled] {
                pg_sys::ExecClearTuple(slot);
            }
            let econtext = (*self.estate).es_per_tuple_exprcontext;
            if !econtext.is_null() {
                pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
            }
        }
        self.filled = 0;
    }

    pub fn close(mut self) {
        self.flush();
        unsafe {
            for &slot in &self.slots {
                pg_sys::ExecDropSingleTupleTableSlot(slot);
            }
            pg_sys::ExecCloseIndices(self.rri);
            pg_sys::FreeExecutorState(self.estate);
            // Locks are kept to the end of the transaction, as an INSERT's are.
            pg_sys::table_close(self.leaf, pg_sys::NoLock as i32);
        }
    }
}

#[cfg(feature = "pg15")]
unsafe fn insert_index_entries(rri: *mut pg_sys::ResultRelInfo, slot: *mut pg_sys::TupleTableSlot, estate: *mut pg_sys::EState) {
    unsafe {
        pg_sys::ExecInsertIndexTuples(rri, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut());
    }
}

/// PostgreSQL 16 added `onlySummarizing`.
#[cfg(not(feature = "pg15"))]
unsafe fn insert_index_entries(rri: *mut pg_sys::ResultRelInfo, slot: *mut pg_sys::TupleTableSlot, estate: *mut pg_sys::EState) {
    unsafe {
        pg_sys::ExecInsertIndexTuples(rri, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut(), false);
    }
}

#[cfg(feature = "pg15")]
fn is_range(bi: pg_sys::PartitionBoundInfo) -> bool {
    unsafe { (*bi).strategy == pg_sys::PARTITION_STRATEGY_RANGE as std::ffi::c_char }
}

/// PostgreSQL 16 made the strategy an enum.
#[cfg(not(feature = "pg15"))]
fn is_range(bi: pg_sys::PartitionBoundInfo) -> bool {
    unsafe { (*bi).strategy == pg_sys::PartitionStrategy::PARTITION_STRATEGY_RANGE }
}

/// The non-default partition of `parent` whose range holds `ts`, found as
/// PostgreSQL's own routing does (get_partition_for_tuple, range strategy):
/// the greatest lower bound at or below `ts`, then the partition that bound
/// opens. The key is one timestamptz, compared as the int64 it is; a bound
/// of MINVALUE/MAXVALUE (not made by this extension) sends us to SQL.
unsafe fn covering_partition(parent: pg_sys::Relation, ts: Datum) -> Option<pg_sys::Oid> {
    unsafe {
        let pd = pg_sys::RelationGetPartitionDesc(parent, true);
        if pd.is_null() || (*pd).nparts == 0 {
            return None;
        }
        let bi = (*pd).boundinfo;
        if bi.is_null() || !is_range(bi) || (*bi).ndatums == 0 {
            return None;
        }
        let n = (*bi).ndatums as usize;
        for i in 0..n {
            if *(*(*bi).kind.add(i)) != pg_sys::PartitionRangeDatumKind::PARTITION_RANGE_DATUM_VALUE {
                return None;
            }
        }
        let bound = |i: usize| (*(*(*bi).datums.add(i))).value() as i64;
        let value = ts.value() as i64;
        // Greatest i with bound(i) <= value, or -1.
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if bound(mid) <= value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let offset = lo as isize - 1;
        let index = *(*bi).indexes.offset(offset + 1);
        if index < 0 || index == (*bi).default_index {
            return None;
        }
        Some(*(*pd).oids.offset(index as isize))
    }
}
