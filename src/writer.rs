//! The one write path into audit_trail.events.
//!
//! A statement's events share their statement-wide columns (event_row.rs)
//! and their timestamp, so they all belong to one partition: `sink` writes
//! them straight into it (heap insert and index entries, as COPY does). When
//! that partition is the default one, kept SPI plans of 64, 8 and 1 rows
//! insert through the parent instead and let PostgreSQL route and check.
//! Either way the events are part of the statement: if writing fails, the
//! change fails.
//!
//! Writing needs no privilege on the log: on both paths the write itself
//! (heap and index insertion, constraint checks, the id sequence) runs as
//! the owner of audit_trail.events, in a security-restricted operation.
//! Everything that may run user code (output functions, to_jsonb of user
//! types) runs before, as the caller.

use crate::context::Context;
use crate::datum::text_datum;
use crate::event_row::{Col, Filled, Values, COLUMNS};
use crate::identity::restricted_as;
use crate::log_ids::log_ids;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

const BATCHES: [usize; 3] = [64, 8, 1];

/// The event-filled columns of one row of the log, as the datums the log
/// stores (text, jsonb, text[]): made once, where they are known. The
/// statement-wide columns come from the writer.
#[derive(Default)]
pub struct Event {
    pub entity_id: Option<Datum>,
    pub entity_label: Option<Datum>,
    pub before: Option<Datum>,
    pub after: Option<Datum>,
    pub changed: Option<Datum>,
    pub details: Option<Datum>,
    /// API §11: the event's own action (a named action) and tenant (from
    /// the row), in place of the statement's; None: the statement's.
    pub action: Option<Datum>,
    pub tenant: Option<Option<Datum>>,
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

    /// Puts the event's columns into `row` (a test checks that these are
    /// exactly the columns event_row.rs marks `Filled::Event`).
    fn fill(&self, row: &mut Values) {
        row.set(Col::EntityId, self.entity_id);
        row.set(Col::EntityLabel, self.entity_label);
        row.set(Col::Before, self.before);
        row.set(Col::After, self.after);
        row.set(Col::Changed, self.changed);
        row.set(Col::Details, self.details);
        if let Some(action) = self.action {
            row.set(Col::Action, Some(action));
        }
        if let Some(tenant) = self.tenant {
            row.set(Col::Tenant, tenant);
        }
    }
}

thread_local! {
    /// Kept plans by (rows, with RETURNING id, the columns the log has).
    static PLANS: RefCell<HashMap<(usize, bool, Present), usize>> = RefCell::new(HashMap::new());
}

/// Which path writes took, for the tests: (direct, SQL).
#[cfg(any(test, feature = "pg_test"))]
pub mod paths {
    use std::cell::Cell;
    thread_local! {
        pub static TAKEN: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        /// Makes every write take the SQL path.
        pub static FORCE_SQL: Cell<bool> = const { Cell::new(false) };
    }
    pub fn count(direct: bool) {
        TAKEN.with(|t| {
            let (d, s) = t.get();
            t.set(if direct { (d + 1, s) } else { (d, s + 1) });
        });
    }
}

fn count_path(_direct: bool) {
    #[cfg(any(test, feature = "pg_test"))]
    paths::count(_direct);
}

fn force_sql() -> bool {
    #[cfg(any(test, feature = "pg_test"))]
    return paths::FORCE_SQL.with(|f| f.get());
    #[cfg(not(any(test, feature = "pg_test")))]
    false
}

/// Which of the event row's columns the log has (all but optional ones it
/// lacks: see event_row.rs).
type Present = [bool; crate::event_row::N];

/// The columns the SQL path names: all but the sequence's, of those the log has.
fn sql_columns(present: &Present) -> impl Iterator<Item = (usize, &'static crate::event_row::Column)> + '_ {
    COLUMNS.iter().enumerate().filter(|(i, c)| c.filled != Filled::Sequence && present[*i])
}

/// `INSERT INTO audit_trail.events (...) VALUES (...), ...`: the statement's
/// columns are the first parameters, shared by every row; each row's own
/// columns follow, row after row.
fn insert_sql(rows: usize, returning: bool, present: &Present) -> String {
    let names: Vec<&str> = sql_columns(present).map(|(_, c)| c.name).collect();
    let shared = sql_columns(present).filter(|(_, c)| c.filled == Filled::Statement).count();
    let per_row = sql_columns(present).filter(|(_, c)| c.filled == Filled::Event).count();
    let mut sql = format!("INSERT INTO audit_trail.events ({}) VALUES ", names.join(", "));
    for r in 0..rows {
        let (mut s, mut e) = (0, 0);
        let params: Vec<String> = sql_columns(present)
            .map(|(_, c)| {
                if c.filled == Filled::Statement {
                    s += 1;
                    format!("${s}")
                } else {
                    e += 1;
                    format!("${}", shared + r * per_row + e)
                }
            })
            .collect();
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({})", params.join(", ")));
    }
    if returning {
        sql.push_str(" RETURNING id");
    }
    sql
}

/// The parameters' types and values for `rows`, in insert_sql's order.
fn parameters(shared: &Values, rows: &[Values], present: &Present) -> (Vec<pg_sys::Oid>, Vec<Datum>, Vec<std::ffi::c_char>) {
    let mut types = Vec::new();
    let mut values = Vec::new();
    let mut nulls = Vec::new();
    let mut push = |i: usize, v: &Values| {
        types.push(COLUMNS[i].typid);
        values.push(v.datums[i]);
        nulls.push(if v.nulls[i] { b'n' } else { b' ' } as std::ffi::c_char);
    };
    for (i, _) in sql_columns(present).filter(|(_, c)| c.filled == Filled::Statement) {
        push(i, shared);
    }
    for r in rows {
        for (i, _) in sql_columns(present).filter(|(_, c)| c.filled == Filled::Event) {
            push(i, r);
        }
    }
    (types, values, nulls)
}

/// The kept plan for `rows` events; must be called inside an SPI connection.
/// Ids come back only when someone needs them: a single event's caller, or
/// the live feed.
fn plan(rows: usize, returning: bool, present: &Present, types: &mut [pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    if let Some(p) = PLANS.with(|p| p.borrow().get(&(rows, returning, *present)).copied()) {
        return p as pg_sys::SPIPlanPtr;
    }
    let sql = CString::new(insert_sql(rows, returning, present)).expect("no NUL in generated SQL");
    // SAFETY: inside an SPI connection (the caller's); the SQL and the type
    // array outlive the call, which copies both. A kept plan lives in
    // CacheMemoryContext for the backend's life, so its address may be
    // remembered.
    unsafe {
        let p = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if p.is_null() {
            error!("pg_audit_trail: could not prepare the event insert: SPI error {}", { pg_sys::SPI_result });
        }
        pg_sys::SPI_keepplan(p);
        PLANS.with(|m| m.borrow_mut().insert((rows, returning, *present), p as usize));
        p
    }
}

/// Collects the events of one statement (or one application event) and
/// writes them in batches.
pub struct Writer {
    /// The statement-wide columns, filled once.
    shared: Values,
    /// The live feed, when audit_trail.notify_channel is set.
    feed: Option<crate::notify::Feed>,
    /// The direct path into the covering partition: opened at the first
    /// write (Some(None) when the SQL path must be used).
    sink: Option<Option<crate::sink::Sink>>,
    /// The columns the log has, known once the sink is opened.
    present: Present,
    pending: Vec<Event>,
    /// Per-batch memory: the events' datums live here until they are written.
    pub cxt: pg_sys::MemoryContext,
}

impl Writer {
    /// `operation` is the row operation of captured row events, None for
    /// every other event.
    pub fn new(ctx: &Context, action: &str, operation: Option<&str>, entity_type: Option<&str>) -> Writer {
        let mut shared = Values::default();
        // SAFETY: inside a transaction (a trigger or a function call):
        // assigns or reads the top-level transaction id.
        let txid = unsafe { pg_sys::GetTopFullTransactionId() }.value as i64;
        // SAFETY: reads the clock.
        let now = unsafe { pg_sys::GetCurrentTimestamp() };
        shared.set(Col::OccurredAt, Some(Datum::from(now)));
        shared.set(Col::Txid, Some(Datum::from(txid)));
        shared.set(Col::Action, Some(text_datum(action)));
        shared.set(Col::EntityType, entity_type.map(text_datum));
        shared.set(Col::Actor, Some(text_datum(&ctx.actor)));
        shared.set(Col::DbUser, Some(text_datum(&ctx.db_user)));
        shared.set(Col::ClientIp, ctx.client_ip);
        shared.set(Col::UserAgent, ctx.user_agent.as_deref().map(text_datum));
        shared.set(Col::Service, ctx.service.as_deref().map(text_datum));
        shared.set(Col::Tenant, ctx.tenant.as_deref().map(text_datum));
        shared.set(Col::RequestId, ctx.request_id.as_deref().map(text_datum));
        shared.set(Col::Statement, ctx.statement.as_deref().map(text_datum));
        shared.set(Col::Operation, operation.map(text_datum));
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
        let feed = crate::notify::Feed::for_statement(Datum::from(now), entity_type, &ctx.actor);
        Writer { shared, feed, sink: None, present: [true; crate::event_row::N], pending: Vec::with_capacity(BATCHES[0]), cxt }
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

    /// Writes what is pending; returns the id of the last event written
    /// (on the SQL path: by a plan with RETURNING).
    fn flush(&mut self) -> Option<i64> {
        if self.pending.is_empty() {
            return None;
        }
        // The direct path does not pass the executor's read-only check: make
        // it here (reachable through log_event, or a temporary table audited
        // and changed inside a READ ONLY transaction).
        // SAFETY: reads a GUC variable of this backend.
        if unsafe { pg_sys::XactReadOnly } {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
                "cannot write audit events in a read-only transaction"
            );
        }
        let events = std::mem::take(&mut self.pending);
        let rows: Vec<Values> = events
            .iter()
            .map(|e| {
                let mut row = self.shared;
                e.fill(&mut row);
                row
            })
            .collect();
        let ids = log_ids();
        if self.sink.is_none() {
            let occurred_at = self.shared.datums[Col::OccurredAt as usize];
            let (mut sink, present) = restricted_as(ids.owner, || crate::sink::Sink::open(ids.events, ids.seq, occurred_at));
            self.present = present;
            if force_sql() {
                if let Some(s) = sink.take() {
                    restricted_as(ids.owner, || s.close());
                }
            }
            self.sink = Some(sink);
        }
        let written: Vec<i64> = match self.sink.as_mut() {
            Some(Some(sink)) => {
                count_path(true);
                // Written (flushed) before the batch memory holding their
                // values goes.
                restricted_as(ids.owner, || {
                    let written = rows.iter().map(|r| sink.insert(r)).collect();
                    sink.flush();
                    written
                })
            }
            _ => {
                count_path(false);
                self.write_sql(ids.owner, &rows)
            }
        };
        if let Some(feed) = self.feed.as_ref() {
            // SAFETY: the rows just written; their datums live in the batch
            // context, reset below.
            unsafe { feed.announce(&written, &rows) };
        }
        drop(rows);
        drop(events);
        // SAFETY: the events' datums (allocated here) are written and no
        // longer referenced.
        unsafe { pg_sys::MemoryContextReset(self.cxt) };
        written.last().copied()
    }

    /// The SQL path: through the parent, by kept plans. Returns the ids it
    /// got back: all of them when the live feed needs them, else those of
    /// one-row plans only.
    fn write_sql(&self, owner: pg_sys::Oid, rows: &[Values]) -> Vec<i64> {
        let want_ids = self.feed.as_ref().is_some_and(|f| f.wants_ids());
        let mut written = Vec::new();
        // SAFETY: SPI is connected around the plans and finished before
        // returning (an error unwinding from within releases the connection
        // at (sub)transaction abort); the parameter arrays outlive each
        // execution; SPI_tuptable is read right after the execution that
        // filled it, for at most SPI_processed rows.
        unsafe {
            if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
                error!("pg_audit_trail: SPI_connect failed");
            }
            let mut done = 0;
            while done < rows.len() {
                // The rows of one batch share the statement's parameters:
                // those whose action or tenant is their own (API §11) go
                // with the rows that have the same.
                let alike = rows[done..].iter().take_while(|r| same_statement_columns(r, &rows[done])).count();
                let n = *BATCHES.iter().find(|b| **b <= alike).expect("a batch of 1 always fits");
                let returning = n == 1 || want_ids;
                let (mut types, mut values, nulls) = parameters(&rows[done], &rows[done..done + n], &self.present);
                let p = plan(n, returning, &self.present, &mut types);
                let rc = restricted_as(owner, || pg_sys::SPI_execute_plan(p, values.as_mut_ptr(), nulls.as_ptr(), false, 0));
                if rc != pg_sys::SPI_OK_INSERT as i32 && rc != pg_sys::SPI_OK_INSERT_RETURNING as i32 {
                    error!("pg_audit_trail: writing {n} events failed: SPI error {rc}");
                }
                let tt = pg_sys::SPI_tuptable;
                let returned = if returning && !tt.is_null() { (pg_sys::SPI_processed as usize).min(n) } else { 0 };
                for i in 0..returned {
                    let mut isnull = false;
                    written.push(pg_sys::SPI_getbinval(*(*tt).vals.add(i), (*tt).tupdesc, 1, &mut isnull).value() as i64);
                }
                done += n;
            }
            pg_sys::SPI_finish();
        }
        written
    }

    /// Writes the rest; returns the last id (meaningful for a single event).
    pub fn finish(mut self) -> Option<i64> {
        let id = self.flush();
        if let Some(Some(sink)) = self.sink.take() {
            restricted_as(log_ids().owner, || sink.close());
        }
        // SAFETY: nothing refers to the batch memory any more.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
        id
    }
}

/// Whether two rows have the same values in the statement-wide columns
/// that an event may set itself (action and tenant, API §11): the same
/// datum, or equal text.
fn same_statement_columns(a: &Values, b: &Values) -> bool {
    [Col::Action, Col::Tenant].iter().all(|&c| {
        let i = c as usize;
        match (a.nulls[i], b.nulls[i]) {
            (true, true) => true,
            (false, false) => {
                // SAFETY: both are text datums made by the writer or the
                // capture (plain varlenas, not toasted), alive until the
                // batch is written.
                a.datums[i] == b.datums[i] || unsafe { text_bytes(a.datums[i]) == text_bytes(b.datums[i]) }
            }
            _ => false,
        }
    })
}

/// The bytes of a text datum that is not toasted.
///
/// # Safety
/// `d` must be a valid, untoasted text datum, alive while the slice is used.
unsafe fn text_bytes<'a>(d: Datum) -> &'a [u8] {
    let p = d.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: as the caller promises; vardata_any and varsize_any_exhdr
    // read a plain varlena's header, short or not.
    unsafe { std::slice::from_raw_parts(pgrx::varlena::vardata_any(p) as *const u8, pgrx::varlena::varsize_any_exhdr(p)) }
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
    write_one_in(&ctx, action, entity_type, event)
}

/// write_one under a context the caller made (a read recorded as a tenant's).
pub fn write_one_in(ctx: &Context, action: &str, entity_type: Option<&str>, event: Event) -> i64 {
    let mut w = Writer::new(ctx, action, None, entity_type);
    w.pending.push(event);
    w.finish().unwrap_or_else(|| error!("pg_audit_trail: the event was not written"))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;
    use crate::event_row::N;

    /// Event::fill sets exactly the columns the definition gives to events.
    #[pg_test]
    fn an_event_fills_its_columns() {
        let one = Some(Datum::from(1usize));
        let e = Event { entity_id: one, entity_label: one, before: one, after: one, changed: one, details: one, action: None, tenant: None };
        let mut row = Values::default();
        e.fill(&mut row);
        for (i, c) in COLUMNS.iter().enumerate() {
            assert_eq!(!row.nulls[i], c.filled == Filled::Event, "column {}", c.name);
        }
        assert_eq!(N, COLUMNS.len());
    }

    /// The generated INSERT names every column but id, and each row's
    /// parameters follow the shared ones.
    #[pg_test]
    fn the_sql_path_names_every_column() {
        let all = [true; N];
        let sql = insert_sql(2, true, &all);
        for c in COLUMNS.iter().filter(|c| c.filled != Filled::Sequence) {
            assert!(sql.contains(c.name), "{} missing from {sql}", c.name);
        }
        assert!(sql.starts_with("INSERT INTO audit_trail.events (occurred_at, txid, action, entity_type, entity_id,"));
        assert!(sql.contains("VALUES ($1, $2, $3, $4, $14, $15, $16, $17, $18, $19, $5,"), "{sql}");
        assert!(sql.contains("), ($1, $2, $3, $4, $20, $21,"), "{sql}");
        assert!(sql.ends_with(" RETURNING id"));
        // An optional column the log lacks is left out, parameters and all.
        let mut old = all;
        old[Col::Operation as usize] = false;
        let sql = insert_sql(1, false, &old);
        assert!(!sql.contains("operation"), "{sql}");
        let (types, _, _) = parameters(&Values::default(), &[Values::default()], &old);
        assert_eq!(types.len(), N - 2);
    }

    fn setup() {
        Spi::run(
            "CREATE TABLE w_t (id int PRIMARY KEY, v text);
             SELECT audit_trail.enable('w_t');",
        )
        .unwrap();
    }

    fn taken() -> (u64, u64) {
        paths::TAKEN.with(|t| t.get())
    }

    /// A row change lands in the current partition through the direct path.
    #[pg_test]
    fn the_direct_path_is_taken() {
        setup();
        let (d0, s0) = taken();
        Spi::run("INSERT INTO w_t SELECT g, 'x' FROM generate_series(1, 100) g").unwrap();
        let (d1, s1) = taken();
        assert!(d1 > d0, "direct writes: {d0} -> {d1}");
        assert_eq!(s1, s0, "SQL-path writes");
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.w_t' AND action = 'INSERT'
               AND tableoid <> 'audit_trail.events_default'::regclass",
        )
        .unwrap();
        assert_eq!(n, Some(100));
    }

    /// Both paths write as the log's owner in a security-restricted
    /// operation: a CHECK constraint on the log sees the owner and cannot
    /// create a temporary table.
    fn who_writes(force: bool) -> String {
        setup();
        Spi::run(
            "CREATE TABLE w_seen (who text, restricted bool);
             GRANT INSERT ON w_seen TO PUBLIC;
             CREATE FUNCTION w_probe() RETURNS boolean LANGUAGE plpgsql AS $$
             DECLARE r boolean := false;
             BEGIN
                 BEGIN
                     CREATE TEMP TABLE w_probe_tmp (x int);
                     DROP TABLE w_probe_tmp;
                 EXCEPTION WHEN insufficient_privilege OR object_not_in_prerequisite_state THEN r := true;
                 END;
                 INSERT INTO public.w_seen VALUES (current_user, r);
                 RETURN true;
             END $$;
             ALTER TABLE audit_trail.events ADD CONSTRAINT w_probe CHECK (public.w_probe());
             DELETE FROM w_seen;
             CREATE ROLE w_writer;
             GRANT INSERT ON w_t TO w_writer;",
        )
        .unwrap();
        paths::FORCE_SQL.with(|f| f.set(force));
        let (d0, s0) = taken();
        Spi::run("SET ROLE w_writer; INSERT INTO w_t VALUES (1, 'a'); RESET ROLE;").unwrap();
        paths::FORCE_SQL.with(|f| f.set(false));
        let (d1, s1) = taken();
        assert_eq!((d1 - d0, s1 - s0), if force { (0, 1) } else { (1, 0) });
        Spi::get_one::<String>("SELECT string_agg(who || ' ' || restricted, ',') FROM w_seen").unwrap().unwrap()
    }

    #[pg_test]
    fn the_direct_path_writes_as_the_owner_restricted() {
        let owner = Spi::get_one::<String>("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'audit_trail.events'::regclass")
            .unwrap()
            .unwrap();
        assert_eq!(who_writes(false), format!("{owner} true"));
    }

    #[pg_test]
    fn the_sql_path_writes_as_the_owner_restricted() {
        let owner = Spi::get_one::<String>("SELECT relowner::regrole::text FROM pg_class WHERE oid = 'audit_trail.events'::regclass")
            .unwrap()
            .unwrap();
        assert_eq!(who_writes(true), format!("{owner} true"));
    }

    /// A log that differs from the event row is an error naming the column,
    /// not a detour.
    #[pg_test(error = "pg_audit_trail: audit_trail.events does not match the event row of this library: column \"surprise\" is not one this library writes")]
    fn a_mismatched_log_is_an_error() {
        setup();
        Spi::run("ALTER TABLE audit_trail.events ADD COLUMN surprise int").unwrap();
        Spi::run("INSERT INTO w_t VALUES (1, 'a')").unwrap();
    }

    /// A log without the optional operation column (an older version's
    /// objects under this library) is written on both paths, without it.
    #[pg_test]
    fn an_older_log_is_written_without_optional_columns() {
        setup();
        // As the objects of 0.3.0 are: no operation column (the views that
        // read it go first).
        Spi::run(
            "ALTER EXTENSION pg_audit_trail DROP VIEW audit_trail.log;
             ALTER EXTENSION pg_audit_trail DROP VIEW audit_trail.changes;
             DROP VIEW audit_trail.log, audit_trail.changes;
             ALTER TABLE audit_trail.events DROP COLUMN operation;",
        )
        .unwrap();
        let (d0, s0) = taken();
        Spi::run("INSERT INTO w_t VALUES (1, 'a')").unwrap();
        paths::FORCE_SQL.with(|f| f.set(true));
        Spi::run("INSERT INTO w_t VALUES (2, 'b')").unwrap();
        paths::FORCE_SQL.with(|f| f.set(false));
        let (d1, s1) = taken();
        assert_eq!((d1 - d0, s1 - s0), (1, 1));
        let n = Spi::get_one::<i64>("SELECT count(*) FROM audit_trail.events WHERE entity_type = 'public.w_t'").unwrap();
        assert_eq!(n, Some(2));
    }

    /// Dropped columns (as an upgrade may leave) keep the direct path: values
    /// are placed by name.
    #[pg_test]
    fn dropped_columns_keep_the_direct_path() {
        setup();
        Spi::run(
            "ALTER TABLE audit_trail.events ADD COLUMN gone int;
             ALTER TABLE audit_trail.events DROP COLUMN gone;",
        )
        .unwrap();
        let (d0, _) = taken();
        Spi::run("INSERT INTO w_t VALUES (7, 'seven')").unwrap();
        assert!(taken().0 > d0);
        let after = Spi::get_one::<String>(
            "SELECT after::text FROM audit_trail.events WHERE entity_type = 'public.w_t' AND entity_id = '7'",
        )
        .unwrap();
        assert_eq!(after.as_deref(), Some(r#"{"v": "seven", "id": 7}"#));
    }
}
