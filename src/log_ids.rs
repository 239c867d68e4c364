//! The oids of the log (audit_trail.events, its id sequence, its owner),
//! looked up once per backend and forgotten at a relcache invalidation of
//! the log (it may have been dropped and made anew).

use crate::identity::with_pinned_search_path;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;

#[derive(Clone, Copy)]
pub struct LogIds {
    pub events: pg_sys::Oid,
    pub seq: pg_sys::Oid,
    pub owner: pg_sys::Oid,
}

thread_local! {
    static LOG_IDS: RefCell<Option<LogIds>> = const { RefCell::new(None) };
}

pub fn log_ids() -> LogIds {
    if let Some(ids) = LOG_IDS.with(|o| *o.borrow()) {
        return ids;
    }
    let ids = with_pinned_search_path(|| {
        Spi::connect(|c| {
            let t = c
                .select(
                    "SELECT k.oid, 'audit_trail.events_id_seq'::regclass::oid, k.relowner
                     FROM pg_catalog.pg_class k WHERE k.oid = 'audit_trail.events'::regclass",
                    Some(1),
                    &[],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>(LogIds {
                events: t.get(1)?.unwrap_or(pg_sys::InvalidOid),
                seq: t.get(2)?.unwrap_or(pg_sys::InvalidOid),
                owner: t.get(3)?.unwrap_or(pg_sys::InvalidOid),
            })
        })
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: looking up audit_trail.events: {e}"));
    LOG_IDS.with(|x| *x.borrow_mut() = Some(ids));
    ids
}

/// Relcache invalidation of `relid` (InvalidOid: of everything).
pub fn forget_log(relid: pg_sys::Oid) {
    LOG_IDS.with(|x| {
        let mut x = x.borrow_mut();
        if relid == pg_sys::InvalidOid || x.is_some_and(|ids| ids.events == relid) {
            *x = None;
        }
    });
}
