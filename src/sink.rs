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
//! one — whose constraint a concurrent ATTACH may be changing — the caller
//! uses the SQL path instead, which lets PostgreSQL route and check. Values
//! are placed by the event row's definition (event_row.rs), mapped by name:
//! a log whose columns differ from it is an error, on either path.

use crate::event_row::{self, Values, N};
use pgrx::pg_sys::{self, Datum};

unsafe extern "C-unwind" {
    fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64;
}

/// Rows written to the heap together (heap_multi_insert: one WAL record and
/// one buffer lock per page rather than per row); matches the writer's batch.
pub const BATCH: usize = 64;

pub struct Sink {
    leaf: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    rri: *mut pg_sys::ResultRelInfo,
    slots: Vec<*mut pg_sys::TupleTableSlot>,
    filled: usize,
    seq: pg_sys::Oid,
    /// Where each event-row column goes in the partition's tuple (the
    /// identity unless the partition has dropped columns; None: an optional
    /// column the log does not have yet).
    map: [Option<usize>; N],
    natts: usize,
}

/// The relation's columns mapped from the event row; an error naming the
/// difference when they do not match it.
///
/// # Safety
/// `rel` must be an open relation.
unsafe fn layout(rel: pg_sys::Relation) -> [Option<usize>; N] {
    // SAFETY: an open relation has a valid descriptor and name.
    unsafe {
        let desc = (*rel).rd_att;
        if event_row::is_identity(desc) {
            return std::array::from_fn(Some);
        }
        let name = std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy();
        event_row::check_layout(desc, &format!("audit_trail.{name}"))
    }
}

impl Sink {
    /// Opens the partition that covers `occurred_at`; None when the SQL path
    /// must be used. Checks the log's layout against the event row first,
    /// for either path, and says which columns the log has. Runs as the
    /// log's owner, in a security-restricted operation (see writer.rs).
    pub fn open(events: pg_sys::Oid, seq: pg_sys::Oid, occurred_at: Datum) -> (Option<Sink>, [bool; N]) {
        // SAFETY: `events` is the log's oid (log_ids, forgotten at its
        // invalidation), opened with the lock an INSERT takes; every pointer
        // below comes from PostgreSQL for a relation we hold open and
        // locked, and lives until close() (or the transaction's abort,
        // which releases executor state and relations itself).
        unsafe {
            let parent = pg_sys::table_open(events, pg_sys::RowExclusiveLock as i32);
            let present = layout(parent).map(|at| at.is_some());
            let leaf_oid = covering_partition(parent, occurred_at);
            pg_sys::table_close(parent, pg_sys::NoLock as i32);
            let Some(leaf_oid) = leaf_oid else {
                return (None, present);
            };
            let leaf = pg_sys::table_open(leaf_oid, pg_sys::RowExclusiveLock as i32);
            let map = layout(leaf);
            let natts = (*(*leaf).rd_att).natts as usize;
            let estate = pg_sys::CreateExecutorState();
            let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()) as *mut pg_sys::ResultRelInfo;
            pg_sys::InitResultRelInfo(rri, leaf, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(rri, false);
            pg_sys::MakePerTupleExprContext(estate);
            // Slots are made as rows come: a one-row statement makes one.
            (Some(Sink { leaf, estate, rri, slots: Vec::new(), filled: 0, seq, map, natts }), present)
        }
    }

    /// Queues one event; its id is taken from the sequence here and
    /// returned. The datums must stay valid until `flush`.
    pub fn insert(&mut self, row: &Values) -> i64 {
        if self.filled == BATCH {
            self.flush();
        }
        // SAFETY: the sequence is the log's (nextval without a permission
        // check: we run as the log's owner); the slot is made for the
        // partition's descriptor and has natts values/nulls; `map` holds
        // indexes below natts (layout()); the datums are the caller's and
        // outlive the flush, as this function's contract says.
        unsafe {
            let id = nextval_internal(self.seq, false);
            if self.filled == self.slots.len() {
                self.slots.push(pg_sys::MakeSingleTupleTableSlot((*self.leaf).rd_att, &pg_sys::TTSOpsVirtual));
            }
            let slot = self.slots[self.filled];
            pg_sys::ExecClearTuple(slot);
            let values = std::slice::from_raw_parts_mut((*slot).tts_values, self.natts);
            let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, self.natts);
            // Dropped columns of the partition stay NULL.
            nulls.fill(true);
            for (i, at) in self.map.iter().enumerate() {
                if let Some(at) = *at {
                    values[at] = row.datums[i];
                    nulls[at] = row.nulls[i];
                }
            }
            let id_at = self.map[event_row::Col::Id as usize].expect("id is a required column");
            values[id_at] = Datum::from(id);
            nulls[id_at] = false;
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
        // SAFETY: the slots hold virtual tuples stored by insert() for this
        // open, locked partition; heap_multi_insert and the index insertion
        // are what COPY FROM does with them; the per-tuple memory reset
        // frees only what index insertion allocated.
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
        // SAFETY: releases what open() made, once (close takes self).
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
    // SAFETY: the caller passes the sink's open result relation, a slot of
    // a tuple just inserted into it, and its executor state.
    unsafe {
        pg_sys::ExecInsertIndexTuples(rri, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut());
    }
}

/// PostgreSQL 16 added `onlySummarizing`.
#[cfg(not(feature = "pg15"))]
unsafe fn insert_index_entries(rri: *mut pg_sys::ResultRelInfo, slot: *mut pg_sys::TupleTableSlot, estate: *mut pg_sys::EState) {
    // SAFETY: the caller passes the sink's open result relation, a slot of
    // a tuple just inserted into it, and its executor state.
    unsafe {
        pg_sys::ExecInsertIndexTuples(rri, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut(), false);
    }
}

#[cfg(feature = "pg15")]
/// # Safety
/// `bi` must be the non-null bound info of an open partitioned table.
unsafe fn is_range(bi: pg_sys::PartitionBoundInfo) -> bool {
    // SAFETY: as the caller promises.
    unsafe { (*bi).strategy == pg_sys::PARTITION_STRATEGY_RANGE as std::ffi::c_char }
}

/// PostgreSQL 16 made the strategy an enum.
#[cfg(not(feature = "pg15"))]
/// # Safety
/// `bi` must be the non-null bound info of an open partitioned table.
unsafe fn is_range(bi: pg_sys::PartitionBoundInfo) -> bool {
    // SAFETY: as the caller promises.
    unsafe { (*bi).strategy == pg_sys::PartitionStrategy::PARTITION_STRATEGY_RANGE }
}

/// The non-default partition of `parent` whose range holds `ts`, found as
/// PostgreSQL's own routing does (get_partition_for_tuple, range strategy):
/// the greatest lower bound at or below `ts`, then the partition that bound
/// opens. The key is one timestamptz, compared as the int64 it is; a bound
/// of MINVALUE/MAXVALUE (not made by this extension) sends us to SQL.
unsafe fn covering_partition(parent: pg_sys::Relation, ts: Datum) -> Option<pg_sys::Oid> {
    // SAFETY: `parent` is open and locked, so its partition descriptor is
    // valid for the duration; every index below is bounded by ndatums (the
    // indexes array has ndatums + 1 entries for a range strategy) or comes
    // from that array, and points into oids[nparts].
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
