//! The one write path into audit_trail.events.
//!
//! A statement's events share their context columns and their timestamp, so
//! they all belong to one partition: `sink` writes them straight into it
//! (heap insert and index entries, as COPY does). When that partition is the
//! default one, kept SPI plans of 64, 8 and 1 rows insert through the parent
//! instead and let PostgreSQL route and check. Either way the events are
//! part of the statement: if writing fails, the change fails.
//!
//! Writing needs no privilege on the log: the write alone runs as the owner
//! of audit_trail.events, in a security-restricted operation. Everything
//! that may run user code (output functions, to_jsonb of user types) runs
//! before, as the caller.

use crate::context::Context;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

const SHARED: usize = 12;
const PER_ROW: usize = 6;
const BATCHES: [usize; 3] = [64, 8, 1];

/// One row of the log, apart from the statement-wide columns, as the datums
/// the log stores (text, jsonb, text[]): made once, where they are known.
#[derive(Default)]
pub struct Event {
    pub entity_id: Option<Datum>,
    pub entity_label: Option<Datum>,
    pub before: Option<Datum>,
    pub after: Option<Datum>,
    pub changed: Option<Datum>,
    pub details: Option<Datum>,
}

impl Event {
    /// An event that is not a row change: application, configuration,
    /// maintenance and read events.
    pub fn about(entity_id: Option<&str>, entity_label: Option<&str>, details: Option<Datum>) -> Event {
        Event {
            entity_id: entity_id.map(text_datum),
            entity_label: entity_label.map(text_datum),
            details,
            ..Event::default()
        }
    }
}

thread_local! {
    /// Kept plans by (rows, with RETURNING id).
    static PLANS: RefCell<HashMap<(usize, bool), usize>> = RefCell::new(HashMap::new());
    /// (audit_trail.events, its id sequence, its owner), looked up once.
    static LOG_IDS: RefCell<Option<LogIds>> = const { RefCell::new(None) };
}

fn insert_sql(rows: usize, returning: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_trail.events (occurred_at, txid, action, entity_type, actor, db_user, client_ip, \
         user_agent, service, tenant, request_id, statement, entity_id, entity_label, before, after, changed, details) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for i in 1..=SHARED {
            sql.push_str(&format!("${i}, "));
        }
        let base = SHARED + r * PER_ROW;
        let own: Vec<String> = (1..=PER_ROW).map(|i| format!("${}", base + i)).collect();
        sql.push_str(&own.join(", "));
        sql.push(')');
    }
    if returning {
        sql.push_str(" RETURNING id");
    }
    sql
}

fn param_types(rows: usize) -> Vec<pg_sys::Oid> {
    let mut t = vec![
        pg_sys::TIMESTAMPTZOID,
        pg_sys::INT8OID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::INETOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
    ];
    for _ in 0..rows {
        t.extend([pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::JSONBOID, pg_sys::JSONBOID, pg_sys::TEXTARRAYOID, pg_sys::JSONBOID]);
    }
    t
}

/// The kept plan for `rows` events; must be called inside an SPI connection.
/// Ids come back only when someone needs them: a single event's caller, or
/// the live feed.
fn plan(rows: usize, returning: bool) -> pg_sys::SPIPlanPtr {
    if let Some(p) = PLANS.with(|p| p.borrow().get(&(rows, returning)).copied()) {
        return p as pg_sys::SPIPlanPtr;
    }
    let sql = CString::new(insert_sql(rows, returning)).unwrap();
    let mut types = param_types(rows);
    unsafe {
        let p = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if p.is_null() {
            error!("pg_audit_trail: could not prepare the event insert: SPI error {}", { pg_sys::SPI_result });
        }
        pg_sys::SPI_keepplan(p);
        PLANS.with(|m| m.borrow_mut().insert((rows, returning), p as usize));
        p
    }
}

#[derive(Clone, Copy)]
struct LogIds {
    events: pg_sys::Oid,
    seq: pg_sys::Oid,
    owner: pg_sys::Oid,
}

fn log_ids() -> LogIds {
    if let Some(ids) = LOG_IDS.with(|o| *o.borrow()) {
        return ids;
    }
    let ids = with_pinned_search_path(|| Spi::connect(|c| {
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
    }))
    .unwrap_or_else(|e| error!("pg_audit_trail: audit_trail.events is missing: {e}"));
    LOG_IDS.with(|x| *x.borrow_mut() = Some(ids));
    ids
}

/// Relcache invalidation of the log (or of everything): look it up again,
/// it may have been dropped and made anew.
pub fn forget_log(relid: pg_sys::Oid) {
    LOG_IDS.with(|x| {
        let mut x = x.borrow_mut();
        if relid == pg_sys::InvalidOid || x.is_some_and(|ids| ids.events == relid) {
            *x = None;
        }
    });
}

/// The owner of audit_trail.events, who alone may write to it.
fn log_owner() -> pg_sys::Oid {
    log_ids().owner
}

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as a function's SET
/// clause would: SQL the extension runs for itself must not resolve a
/// function or operator from a schema the caller put on their path.
/// PostgreSQL unwinds the setting itself if `f` raises.
pub fn with_pinned_search_path<T>(f: impl FnOnce() -> T) -> T {
    unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let r = f();
        pg_sys::AtEOXact_GUC(true, nest);
        r
    }
}

/// Runs `f` as the owner of audit_trail.events, with a pinned search_path,
/// for work on the extension's own tables that the caller has no privilege
/// for. The caller's identity is restored afterwards, and by PostgreSQL
/// itself if `f` raises.
pub fn as_log_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = log_owner();
    with_pinned_search_path(|| unsafe {
        let mut user = pg_sys::InvalidOid;
        let mut sec = 0;
        pg_sys::GetUserIdAndSecContext(&mut user, &mut sec);
        pg_sys::SetUserIdAndSecContext(owner, sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
        let r = f();
        pg_sys::SetUserIdAndSecContext(user, sec);
        r
    })
}

/// Runs `f` as `owner` in a security-restricted operation: the write itself,
/// which must neither need the caller's privileges nor run anything of
/// theirs. PostgreSQL restores the identity itself if `f` raises.
fn restricted_as<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    unsafe {
        let mut user = pg_sys::InvalidOid;
        let mut sec = 0;
        pg_sys::GetUserIdAndSecContext(&mut user, &mut sec);
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        let r = f();
        pg_sys::SetUserIdAndSecContext(user, sec);
        r
    }
}

pub fn text_datum(s: &str) -> Datum {
    unsafe { Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const _, s.len() as i32)) }
}

fn opt_datum(d: Option<Datum>) -> (Datum, bool) {
    match d {
        Some(d) => (d, false),
        None => (Datum::from(0), true),
    }
}

/// A text[] of the given names.
pub fn text_array<'a>(names: impl Iterator<Item = &'a CStr>) -> Datum {
    unsafe {
        let mut elems: Vec<Datum> = names
            .map(|n| Datum::from(pg_sys::cstring_to_text_with_len(n.as_ptr(), n.to_bytes().len() as i32)))
            .collect();
        Datum::from(pg_sys::construct_array(
            elems.as_mut_ptr(),
            elems.len() as i32,
            pg_sys::TEXTOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        ))
    }
}

/// Collects the events of one statement (or one application event) and
/// writes them in batches.
pub struct Writer {
    shared: [(Datum, bool); SHARED],
    /// The live feed, when audit_trail.notify_channel is set.
    feed: Option<crate::notify::Feed>,
    /// The direct path into the covering partition: opened at the first
    /// write (Some(None) when the SQL path must be used).
    sink: Option<Option<crate::sink::Sink>>,
    pending: Vec<Event>,
    /// Per-batch memory: the events' datums live here until they are written.
    pub cxt: pg_sys::MemoryContext,
}

impl Writer {
    pub fn new(ctx: &Context, action: &str, entity_type: Option<&str>) -> Writer {
        // SAFETY: inside a transaction (a trigger or a function call):
        // assigns or reads the top-level transaction id.
        let txid = unsafe { pg_sys::GetTopFullTransactionId() }.value as i64;
        let shared = [
            // SAFETY: reads the clock.
            (Datum::from(unsafe { pg_sys::GetCurrentTimestamp() }), false),
            (Datum::from(txid), false),
            (text_datum(action), false),
            opt_datum(entity_type.map(text_datum)),
            (text_datum(&ctx.actor), false),
            (text_datum(&ctx.db_user), false),
            opt_datum(ctx.client_ip),
            opt_datum(ctx.user_agent.as_deref().map(text_datum)),
            opt_datum(ctx.service.as_deref().map(text_datum)),
            opt_datum(ctx.tenant.as_deref().map(text_datum)),
            opt_datum(ctx.request_id.as_deref().map(text_datum)),
            opt_datum(ctx.statement.as_deref().map(text_datum)),
        ];
        // SAFETY: a child of the current context, so it goes with it if an
        // error unwinds before finish() deletes it.
        let cxt = unsafe {
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::CurrentMemoryContext,
                c"pg_audit_trail events".as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            )
        };
        let feed = crate::notify::Feed::for_statement(shared[0].0, action, entity_type, &ctx.actor);
        Writer { shared, feed, sink: None, pending: Vec::with_capacity(BATCHES[0]), cxt }
    }

    /// Runs `f` with the batch memory context current, so whatever it
    /// allocates lives until the next write.
    pub fn in_batch_cxt<T>(&self, f: impl FnOnce() -> T) -> T {
        // SAFETY: self.cxt lives until finish(); the previous context is
        // put back (an error unwinding from f resets it anyway).
        unsafe {
            let old = pg_sys::MemoryContextSwitchTo(self.cxt);
            let r = f();
            pg_sys::MemoryContextSwitchTo(old);
            r
        }
    }

    pub fn push(&mut self, e: Event) {
        self.pending.push(e);
        if self.pending.len() >= BATCHES[0] {
            self.flush();
        }
    }

    /// Writes what is pending; returns the id of the last event written by a
    /// one-row plan (the only one with RETURNING).
    fn flush(&mut self) -> Option<i64> {
        if self.pending.is_empty() {
            return None;
        }
        // The direct path does not pass the executor's read-only check: make
        // it here (reachable through log_event, or a temporary table audited
        // and changed inside a READ ONLY transaction).
        // SAFETY: reads a GUC variable.
        if unsafe { pg_sys::XactReadOnly } {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
                "cannot write audit events in a read-only transaction"
            );
        }
        let events = std::mem::take(&mut self.pending);
        let mut last_id = None;
        // SAFETY: the events' datums live in self.cxt, which is reset only
        // after they are written; the sink and the SPI plans are used as
        // their own modules require (one sink per writer, SPI connected
        // around the plans and finished before returning).
        unsafe {
            let old = pg_sys::MemoryContextSwitchTo(self.cxt);
            // Parameters are built before the user switch: the conversions
            // are ours, but nothing of the caller's must run as the owner.
            let mut rows: Vec<[(Datum, bool); PER_ROW]> = events
                .iter()
                .map(|e| {
                    [
                        opt_datum(e.entity_id),
                        opt_datum(e.entity_label),
                        opt_datum(e.before),
                        opt_datum(e.after),
                        opt_datum(e.changed),
                        opt_datum(e.details),
                    ]
                })
                .collect();
            pg_sys::MemoryContextSwitchTo(old);

            let ids = log_ids();
            if self.sink.is_none() {
                let occurred_at = self.shared[0].0;
                self.sink = Some(restricted_as(ids.owner, || crate::sink::Sink::open(ids.events, ids.seq, occurred_at)));
            }
            if let Some(Some(sink)) = self.sink.as_mut() {
                let s = &self.shared;
                for (i, r) in rows.iter().enumerate() {
                    let mut values = [
                        Datum::from(0), s[0].0, s[1].0, s[2].0, s[3].0, r[0].0, r[1].0, r[2].0, r[3].0, r[4].0, r[5].0,
                        s[4].0, s[5].0, s[6].0, s[7].0, s[8].0, s[9].0, s[10].0, s[11].0,
                    ];
                    let mut nulls = [
                        false, s[0].1, s[1].1, s[2].1, s[3].1, r[0].1, r[1].1, r[2].1, r[3].1, r[4].1, r[5].1, s[4].1,
                        s[5].1, s[6].1, s[7].1, s[8].1, s[9].1, s[10].1, s[11].1,
                    ];
                    let id = sink.insert(&mut values, &mut nulls);
                    last_id = Some(id);
                    if let Some(feed) = self.feed.as_ref() {
                        feed.announce(id, events[i].entity_id);
                    }
                }
                // Written before the batch memory holding their values goes.
                sink.flush();
                drop(rows);
                drop(events);
                pg_sys::MemoryContextReset(self.cxt);
                return last_id;
            }
            if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
                error!("pg_audit_trail: SPI_connect failed");
            }
            let feed = self.feed.as_ref();
            let mut done = 0;
            while done < rows.len() {
                let n = *BATCHES.iter().find(|b| **b <= rows.len() - done).unwrap();
                let returning = n == 1 || feed.is_some();
                let p = plan(n, returning);
                let mut values = Vec::with_capacity(SHARED + n * PER_ROW);
                let mut nulls = Vec::with_capacity(SHARED + n * PER_ROW);
                for (d, isnull) in self.shared.iter().copied().chain(rows[done..done + n].iter_mut().flat_map(|r| r.iter().copied())) {
                    values.push(d);
                    nulls.push(if isnull { b'n' as std::ffi::c_char } else { b' ' as std::ffi::c_char });
                }
                let rc = restricted_as(ids.owner, || pg_sys::SPI_execute_plan(p, values.as_mut_ptr(), nulls.as_ptr(), false, 0));
                if rc != pg_sys::SPI_OK_INSERT as i32 && rc != pg_sys::SPI_OK_INSERT_RETURNING as i32 {
                    error!("pg_audit_trail: writing {n} events failed: SPI error {rc}");
                }
                let tt = pg_sys::SPI_tuptable;
                let returned = if returning && !tt.is_null() { (pg_sys::SPI_processed as usize).min(n) } else { 0 };
                for i in 0..returned {
                    let mut isnull = false;
                    let id = pg_sys::SPI_getbinval(*(*tt).vals.add(i), (*tt).tupdesc, 1, &mut isnull).value() as i64;
                    last_id = Some(id);
                    if let Some(feed) = feed {
                        feed.announce(id, events[done + i].entity_id);
                    }
                }
                done += n;
            }
            pg_sys::SPI_finish();
            drop(rows);
            drop(events);
            pg_sys::MemoryContextReset(self.cxt);
        }
        last_id
    }

    /// Writes the rest; returns the last id (meaningful for a single event).
    pub fn finish(mut self) -> Option<i64> {
        let id = self.flush();
        if let Some(Some(sink)) = self.sink.take() {
            sink.close();
        }
        // SAFETY: nothing refers to the batch memory any more.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
        id
    }
}

/// Writes one event outside any trigger (application events, enable/disable,
/// maintenance) and returns its id.
pub fn write_one(action: &str, entity_type: Option<&str>, event: Event) -> i64 {
    write_one_as(None, action, entity_type, event)
}

/// write_one with the actor given, whatever the context says.
pub fn write_one_as(actor: Option<&str>, action: &str, entity_type: Option<&str>, event: Event) -> i64 {
    let mut ctx = Context::current();
    if let Some(a) = actor {
        ctx.actor = a.to_string();
    }
    let mut w = Writer::new(&ctx, action, entity_type);
    w.pending.push(event);
    w.finish().unwrap_or_else(|| error!("pg_audit_trail: the event was not written"))
}

/// Whether `audit_trail.log_reads` asks for searches to be recorded.
#[pg_extern(stable, name = "_log_reads_all")]
fn log_reads_all() -> bool {
    crate::settings::text(&crate::settings::LOG_READS).map(|v| v.eq_ignore_ascii_case("all")).unwrap_or(false)
}

/// Whether `audit_trail.log_reads` asks for exports to be recorded.
#[pg_extern(stable, name = "_log_reads_export")]
fn log_reads_export() -> bool {
    crate::settings::text(&crate::settings::LOG_READS)
        .map(|v| !v.eq_ignore_ascii_case("none"))
        .unwrap_or(true)
}

/// Records a read of the trail. Callable by anyone, but only for the two
/// read actions and only by a role that may read the log, so it forges
/// nothing a reader would not produce by reading. On a standby, where
/// nothing can be written, the read goes unrecorded.
#[pg_extern(volatile, name = "_log_read")]
fn log_read(action: &str, details: pgrx::JsonB) -> Option<i64> {
    if action != "AUDIT_LOG_ACCESSED" && action != "AUDIT_LOG_EXPORTED" {
        error!("pg_audit_trail: \"{action}\" is not a read action");
    }
    let may_read = with_pinned_search_path(|| Spi::get_one::<bool>("SELECT has_table_privilege('audit_trail.events', 'SELECT')"))
        .ok()
        .flatten()
        .unwrap_or(false);
    if !may_read {
        error!("pg_audit_trail: only readers of audit_trail.events record reads");
    }
    if unsafe { pg_sys::RecoveryInProgress() } {
        return None;
    }
    // The direct write path does not go through the executor's read-only
    // check, so make it here: a read must not escape its record, nor may a
    // READ ONLY transaction write.
    if unsafe { pg_sys::XactReadOnly } {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("cannot record {action} in a read-only transaction"),
            "audit_trail.log_reads asks for this read to be recorded; read outside a READ ONLY transaction."
        );
    }
    Some(write_one(
        action,
        Some("audit_trail.events"),
        Event::about(None, None, details.into_datum()),
    ))
}
