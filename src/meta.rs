//! Per-table metadata for the capture trigger: which columns are recorded and
//! how, the entity key, the label, the entity name. Built once per backend
//! and table from audit_trail.config and the catalog, and dropped when the
//! table's relcache entry is invalidated (any ALTER TABLE, trigger change,
//! rename, or an explicit `_invalidate` from enable/disable) so the hot path
//! never looks anything up per row.

use crate::json::{Kind, Render};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::rc::Rc;

/// One column of the trigger relation's row type.
#[derive(Clone)]
pub struct Column {
    /// 0-based index into the tuple's values.
    pub index: usize,
    pub name: CString,
    pub typid: pg_sys::Oid,
    pub typlen: i16,
    pub typbyval: bool,
    pub kind: Kind,
    pub render: Render,
}

pub struct TableMeta {
    /// The audited table the events name (the partitioned root for a partition).
    pub audited: pg_sys::Oid,
    /// `format('%I.%I', schema, table)` of the audited table.
    pub entity_type: String,
    /// Recorded columns (not excluded, not dropped), in column order.
    pub columns: Vec<Column>,
    /// Indexes into `columns` in jsonb's key order (shorter names first,
    /// then bytewise), the order objects are built in.
    pub json_order: Vec<usize>,
    /// The entity key's columns; empty when the table has no key.
    pub key: Vec<Column>,
    pub label: Option<Column>,
    /// The patterns stored at `enable()` when some recorded column is
    /// `Render::JsonKeys` (its documents' keys are matched against them);
    /// empty otherwise.
    pub json_patterns: Vec<String>,
    /// API §11: the tenant column, the columns always included and the
    /// named actions; None for a table that uses none of them, which then
    /// pays nothing for them on the capture path (shape.rs).
    pub shape: Option<Box<crate::shape::Shape>>,
}

thread_local! {
    static CACHE: RefCell<HashMap<pg_sys::Oid, Option<Rc<TableMeta>>>> = RefCell::new(HashMap::new());
}

/// Metadata for the relation a trigger fired on; `None` when no audited table
/// governs it any more (a partition detached from an audited table).
///
/// # Safety
/// `rel` must be an open relation (the trigger relation), held open and
/// locked against schema changes for the call.
pub unsafe fn get(rel: pg_sys::Relation) -> Option<Rc<TableMeta>> {
    // SAFETY: as the caller promises.
    let relid = unsafe { (*rel).rd_id };
    if let Some(hit) = CACHE.with(|c| c.borrow().get(&relid).cloned()) {
        return hit;
    }
    // SAFETY: as the caller promises.
    let built = unsafe { build(rel) }.map(Rc::new);
    CACHE.with(|c| c.borrow_mut().insert(relid, built.clone()));
    built
}

/// Relcache invalidation: forget the relation, and every partition governed
/// by it (a rename of the parent changes their entity name too).
#[pg_guard]
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    crate::log_ids::forget_log(relid);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if relid == pg_sys::InvalidOid {
            c.clear();
        } else {
            c.retain(|k, v| *k != relid && v.as_ref().is_none_or(|m| m.audited != relid));
        }
    });
}

/// A renamed schema changes entity names without touching the tables.
#[pg_guard]
unsafe extern "C-unwind" fn on_namespace(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    CACHE.with(|c| c.borrow_mut().clear());
}

pub fn init() {
    // SAFETY: called once, from _PG_init; registers #[pg_guard]ed functions
    // of this library, which stays loaded for the backend's life, with no
    // argument (the callback tables are fixed-size, and two entries fit).
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(on_namespace),
            pg_sys::Datum::from(0),
        );
    }
}

/// Makes every backend rebuild the metadata of `target` and its partitions.
#[pg_extern(name = "_invalidate")]
fn invalidate(target: pg_sys::Oid) {
    // SAFETY: called inside a transaction (a function call), where an
    // invalidation may be queued; an oid that names no relation is an error
    // (cache lookup failed), not a misread.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(target) };
}

struct Settings {
    audited: pg_sys::Oid,
    entity_type: String,
    /// The redacted columns, as `audit_trail._redacted` decides them.
    redacted: Vec<String>,
    exclude: Vec<String>,
    key_columns: Vec<String>,
    label_column: Option<String>,
    /// Names of the columns whose values hold bytea somewhere.
    binary: Vec<String>,
    /// The patterns stored at enable(): keys inside json/jsonb values that
    /// match them are redacted.
    patterns: Vec<String>,
    /// API §11 (NULL, '{}' and '[]' under objects older than 0.5.0).
    tenant_column: Option<String>,
    always_include: Vec<String>,
    /// The named actions, as the jsonb text audit_trail.config holds.
    named_actions: Option<String>,
}

/// What load_settings reads, for one relation: its governing audited table's
/// settings row, that table's current name, its redacted columns (by name:
/// a partition's columns have its parent's names), and the relation's
/// columns that hold bytea. `$redacted` is the SQL that names the redacted
/// columns; `$shape` the three settings of API §11 (0.5.0 on).
macro_rules! settings_sql {
    ($redacted:literal, $shape:literal) => {
        concat!(
            "SELECT c.relid::oid, format('%I.%I', n.nspname, k.relname), ",
            $redacted,
            ",
        c.exclude, coalesce(c.key_columns, audit_trail._key_columns(c.relid)), c.label_column,
        ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                AND audit_trail._contains_bytea(a.atttypid)),
        c.redact_patterns, ",
            $shape,
            "
 FROM audit_trail.config c
 JOIN pg_catalog.pg_class k ON k.oid = c.relid
 JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace
 WHERE c.relid = audit_trail._audited_root($1::regclass)\0"
        )
    };
}

/// The look-up, with the one definition of which columns are redacted
/// (`audit_trail._redacted`, sql/config.sql).
const SETTINGS_SQL: &CStr = c_str(settings_sql!(
    "audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns)",
    "c.tenant_column, c.always_include, c.named_actions::text"
));

/// The same under the objects of 0.4.0, whose settings have no tenant
/// column, columns always included or named actions (API §11).
const SETTINGS_SQL_0_4: &CStr = c_str(settings_sql!(
    "audit_trail._redacted(c.relid, c.redact, c.redact_patterns, c.reveal, c.columns)",
    "NULL::text, '{}'::text[], NULL::text"
));

/// The same under the objects of 0.1.0 to 0.3.0, which the library serves
/// until `ALTER EXTENSION ... UPDATE` (sql/released/README.md): they have no
/// `_redacted` and no `reveal`, and their own definition. (It lower-cases
/// column names with SQL's `lower()`, where their library used Rust's: in a
/// database whose locale lower-cases ASCII only, a pattern with a non-ASCII
/// letter can miss a column whose name has it in upper case, until the
/// update.)
const SETTINGS_SQL_0_3: &CStr = c_str(settings_sql!(
    "audit_trail._effective_redact(c.relid, c.redact, c.redact_patterns)",
    "NULL::text, '{}'::text[], NULL::text"
));

/// A NUL-terminated literal as a CStr, checked when compiled.
const fn c_str(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("not one NUL-terminated string"),
    }
}

/// Which objects are installed: 0 when `audit_trail.config` has
/// `named_actions` (0.5.0 on), 1 when `audit_trail._redacted` is defined
/// (0.4.0), 2 before: the index of the look-up to use in SETTINGS_PLANS.
const CURRENT_OBJECTS_SQL: &CStr = c"SELECT CASE
    WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                 WHERE attrelid = 'audit_trail.config'::pg_catalog.regclass AND attname = 'named_actions' AND NOT attisdropped) THEN 0
    WHEN pg_catalog.to_regprocedure('audit_trail._redacted(regclass, text[], text[], text[], text[])') IS NOT NULL THEN 1
    ELSE 2 END";

thread_local! {
    /// The kept plans of SETTINGS_SQL, SETTINGS_SQL_0_4 and SETTINGS_SQL_0_3 (0: not prepared yet).
    static SETTINGS_PLANS: [std::cell::Cell<usize>; 3] =
        const { [std::cell::Cell::new(0), std::cell::Cell::new(0), std::cell::Cell::new(0)] };
}

/// The settings come from audit_trail.config, which the user changing the
/// table may not read: the lookup runs as the log's owner. None only when no
/// audited table governs the relation; a failed look-up is an error, never
/// "not audited" (that would let changes through without their events).
///
/// The look-up sees what is committed now, not what the transaction's
/// snapshot saw (API §8): a REPEATABLE READ or SERIALIZABLE transaction that
/// began before `enable()`, a re-`enable()` or a rename committed must not
/// build, and cache for the rest of the backend's life, settings that are
/// no longer true. Like ri_triggers.c, it runs the query with the latest
/// snapshot; the STABLE SQL functions it calls run with that snapshot too,
/// and catalog look-ups by name or oid use catalog snapshots, always fresh.
fn load_settings(relid: pg_sys::Oid) -> Option<Settings> {
    // SAFETY: a plain SPI session inside the firing's transaction: connect,
    // ask which objects are installed (a read-only query of one row, read at
    // once), prepare (once, kept for the backend's life) that version's plan
    // of one oid parameter and run it read-only with the latest snapshot
    // (live until the next one is taken, after the query), then copy what it
    // returned into Rust values before SPI_finish frees the result. An error
    // raised in between unwinds through PostgreSQL, which closes the SPI
    // connection at (sub)transaction abort.
    crate::identity::as_log_owner(|| unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            error!("pg_audit_trail: reading the audit settings of relation {relid}: SPI_connect failed");
        }
        // Asked at each build (rare: once per table and backend until the
        // next invalidation), so that an update another session commits is
        // seen at once. The catalog look-up sees what is committed now.
        if pg_sys::SPI_execute(CURRENT_OBJECTS_SQL.as_ptr(), true, 1) != pg_sys::SPI_OK_SELECT as i32
            || pg_sys::SPI_processed != 1
            || pg_sys::SPI_tuptable.is_null()
        {
            error!("pg_audit_trail: reading the audit settings of relation {relid}: could not tell the installed version");
        }
        let slot = {
            let tt = pg_sys::SPI_tuptable;
            let mut isnull = false;
            let d = pg_sys::SPI_getbinval(*(*tt).vals, (*tt).tupdesc, 1, &mut isnull);
            i32::from_datum(d, isnull).unwrap_or(2).clamp(0, 2) as usize
        };
        let sql = [SETTINGS_SQL, SETTINGS_SQL_0_4, SETTINGS_SQL_0_3][slot];
        let mut plan = SETTINGS_PLANS.with(|p| p[slot].get()) as pg_sys::SPIPlanPtr;
        if plan.is_null() {
            let mut types = [pg_sys::OIDOID];
            plan = pg_sys::SPI_prepare(sql.as_ptr(), 1, types.as_mut_ptr());
            if plan.is_null() {
                error!("pg_audit_trail: reading the audit settings of relation {relid}: could not prepare the look-up: SPI error {}", {
                    pg_sys::SPI_result
                });
            }
            pg_sys::SPI_keepplan(plan);
            SETTINGS_PLANS.with(|p| p[slot].set(plan as usize));
        }
        let mut args = [pg_sys::Datum::from(relid)];
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            args.as_mut_ptr(),
            c" ".as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            true,
            false,
            1,
        );
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            error!("pg_audit_trail: could not read the audit settings of relation {relid}: SPI error {rc}");
        }
        let tt = pg_sys::SPI_tuptable;
        let settings = if pg_sys::SPI_processed == 0 || tt.is_null() {
            None
        } else {
            let tuple = *(*tt).vals;
            let desc = (*tt).tupdesc;
            let get = |i: i32| {
                let mut isnull = false;
                let d = pg_sys::SPI_getbinval(tuple, desc, i, &mut isnull);
                (d, isnull)
            };
            let text = |i: i32| {
                let (d, isnull) = get(i);
                String::from_datum(d, isnull)
            };
            let list = |i: i32| {
                let (d, isnull) = get(i);
                Vec::<Option<String>>::from_datum(d, isnull).unwrap_or_default().into_iter().flatten().collect::<Vec<_>>()
            };
            let (audited, audited_null) = get(1);
            Some(Settings {
                audited: pg_sys::Oid::from_datum(audited, audited_null).unwrap_or(pg_sys::InvalidOid),
                entity_type: text(2).unwrap_or_default(),
                redacted: list(3),
                exclude: list(4),
                key_columns: list(5),
                label_column: text(6),
                binary: list(7),
                patterns: list(8),
                tenant_column: text(9),
                always_include: list(10),
                named_actions: text(11),
            })
        };
        pg_sys::SPI_finish();
        settings
    })
}

/// The `i`th (0-based) attribute of a tuple descriptor: C's `TupleDescAttr`.
/// PostgreSQL 18 keeps the attributes after an array of `CompactAttribute`s
/// (one per attribute) instead of in `attrs`.
///
/// # Safety
/// `desc` must be a valid tuple descriptor and `i < natts`.
pub unsafe fn tuple_desc_attr<'a>(desc: pg_sys::TupleDesc, i: usize) -> &'a pg_sys::FormData_pg_attribute {
    // SAFETY: as the caller promises; the descriptor's natts attributes
    // follow its header (PostgreSQL 18: after natts CompactAttributes), as
    // TupleDescAttr reads them.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        let first = (*desc).attrs.as_ptr();
        #[cfg(feature = "pg18")]
        let first = (*desc).compact_attrs.as_ptr().add((*desc).natts as usize).cast::<pg_sys::FormData_pg_attribute>();
        &*first.add(i)
    }
}

/// Whether a column is left out of events: dropped, or (PostgreSQL 18) a
/// virtual generated column, whose value triggers never see (it is computed
/// when read, and transition tables do not hold it).
fn left_out(att: &pg_sys::FormData_pg_attribute) -> bool {
    #[cfg(feature = "pg18")]
    if att.attgenerated as u8 == pg_sys::ATTRIBUTE_GENERATED_VIRTUAL {
        return true;
    }
    att.attisdropped
}

/// # Safety
/// As for `get`.
unsafe fn build(rel: pg_sys::Relation) -> Option<TableMeta> {
    // SAFETY: as the caller promises, `rel` is open: its descriptor and the
    // attribute entries below natts are valid while it is, and cannot change
    // (the lock held keeps ALTER TABLE out, and a relcache rebuild keeps an
    // unchanged descriptor in place) while load_settings runs its query.
    let relid = unsafe { (*rel).rd_id };
    let s = load_settings(relid)?;
    // SAFETY: as above.
    let desc = unsafe { (*rel).rd_att };
    // SAFETY: as above.
    let natts = unsafe { (*desc).natts } as usize;
    let mut all = Vec::with_capacity(natts);
    for i in 0..natts {
        // SAFETY: a valid descriptor (as above) and i < natts.
        let att = unsafe { tuple_desc_attr(desc, i) };
        if left_out(att) {
            continue;
        }
        // SAFETY: attname is a NUL-terminated NameData of the attribute.
        let name = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) }.to_owned();
        let name_str = name.to_string_lossy().into_owned();
        let binary = s.binary.contains(&name_str);
        let render = if s.redacted.contains(&name_str) {
            Render::Redacted
        } else if binary {
            Render::Binary
        } else {
            Render::Value
        };
        // Secrets inside documents (API §9): the values of json and jsonb
        // columns are walked for keys that match the stored patterns. Only
        // theirs: a table without such columns pays nothing for it.
        let render = if render == Render::Value && !s.patterns.is_empty() && crate::json::holds_json(att.atttypid) {
            Render::JsonKeys
        } else {
            render
        };
        all.push((
            name_str,
            Column {
                index: i,
                name,
                typid: att.atttypid,
                typlen: att.attlen,
                typbyval: att.attbyval,
                kind: Kind::of(att.atttypid),
                render,
            },
        ));
    }
    let pick = |wanted: &str| all.iter().find(|(n, _)| n == wanted).map(|(_, c)| c.clone());
    let key: Vec<Column> = s.key_columns.iter().filter_map(|k| pick(k)).collect();
    let label = s.label_column.as_deref().and_then(pick);
    let key = if key.len() == s.key_columns.len() { key } else { Vec::new() };
    let excluded = |n: &String| s.exclude.contains(n);
    let recorded: Vec<&str> = all.iter().filter(|(n, _)| !excluded(n)).map(|(n, _)| n.as_str()).collect();
    let shape = crate::shape::Shape::build(
        &all,
        &recorded,
        s.tenant_column.as_deref(),
        &s.always_include,
        s.named_actions.as_deref(),
        &s.entity_type,
    )
    .map(Box::new);
    let columns: Vec<Column> = all.into_iter().filter(|(n, _)| !excluded(n)).map(|(_, c)| c).collect();
    let mut json_order: Vec<usize> = (0..columns.len()).collect();
    json_order.sort_by(|&a, &b| {
        let (a, b) = (columns[a].name.as_bytes(), columns[b].name.as_bytes());
        a.len().cmp(&b.len()).then(a.cmp(b))
    });
    let json_patterns = if columns.iter().any(|c| c.render == Render::JsonKeys) {
        s.patterns.iter().map(|p| p.to_lowercase()).collect()
    } else {
        Vec::new()
    };
    Some(TableMeta { audited: s.audited, entity_type: s.entity_type, columns, json_order, key, label, json_patterns, shape })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// pgrx runs tests concurrently, each in its own transaction; those that
    /// enable() a table and write to it take turns (each holds its locks on
    /// the log until it rolls back).
    fn one_at_a_time() {
        Spi::run("SELECT pg_advisory_xact_lock(1618)").unwrap();
    }

    /// One event of `table`'s, as `action | before | after | changed | label`.
    fn event(table: &str, action: &str) -> String {
        Spi::get_one::<String>(&format!(
            "SELECT concat_ws(' | ', action, before::text, after::text, changed::text, entity_label)
             FROM audit_trail.events WHERE entity_type = 'public.{table}' AND action = '{action}'"
        ))
        .unwrap()
        .unwrap_or_default()
    }

    /// Stored generated columns are in the transition tables: recorded like
    /// any other column, on every version.
    #[pg_test]
    fn stored_generated_columns_are_recorded() {
        one_at_a_time();
        Spi::run(
            "CREATE TABLE gen_stored (id int PRIMARY KEY, price int,
                                      doubled int GENERATED ALWAYS AS (price * 2) STORED);
             SELECT audit_trail.enable('gen_stored', label_column => 'doubled');
             INSERT INTO gen_stored (id, price) VALUES (1, 10);
             UPDATE gen_stored SET price = 11;",
        )
        .unwrap();
        assert_eq!(event("gen_stored", "INSERT"), r#"INSERT | {"id": 1, "price": 10, "doubled": 20} | 20"#);
        assert_eq!(
            event("gen_stored", "UPDATE"),
            r#"UPDATE | {"price": 10, "doubled": 20} | {"price": 11, "doubled": 22} | {price,doubled} | 22"#
        );
    }

    /// PostgreSQL 18's virtual generated columns are computed when read and
    /// never for triggers (transition tables do not hold their values): they
    /// are left out of before, after and changed, and give no label.
    #[cfg(feature = "pg18")]
    #[pg_test]
    fn virtual_generated_columns_are_left_out() {
        one_at_a_time();
        Spi::run(
            "CREATE TABLE gen_virtual (id int PRIMARY KEY, price int,
                                       doubled int GENERATED ALWAYS AS (price * 2) VIRTUAL,
                                       tag text GENERATED ALWAYS AS ('item ' || id) VIRTUAL,
                                       note text);
             SELECT audit_trail.enable('gen_virtual', label_column => 'tag');
             INSERT INTO gen_virtual (id, price, note) VALUES (1, 10, 'n');
             UPDATE gen_virtual SET price = 11;",
        )
        .unwrap();
        // Reading the table computes them.
        let read = Spi::get_one::<String>("SELECT doubled || ' ' || tag FROM gen_virtual").unwrap();
        assert_eq!(read.as_deref(), Some("22 item 1"));
        Spi::run("DELETE FROM gen_virtual").unwrap();
        assert_eq!(event("gen_virtual", "INSERT"), r#"INSERT | {"id": 1, "note": "n", "price": 10}"#);
        assert_eq!(event("gen_virtual", "UPDATE"), r#"UPDATE | {"price": 10} | {"price": 11} | {price}"#);
        assert_eq!(event("gen_virtual", "DELETE"), r#"DELETE | {"id": 1, "note": "n", "price": 11}"#);
    }

    /// Capture fires at the end of each statement, never at commit, and does
    /// not depend on the role it runs as (PostgreSQL 18 runs AFTER triggers as
    /// the role that queued the event, earlier versions as the role current
    /// when they fire): a role with no right on the log, directly and through
    /// a SECURITY DEFINER function, and the role reset before commit.
    #[pg_test]
    fn capture_does_not_depend_on_the_current_role() {
        one_at_a_time();
        Spi::run(
            "CREATE TABLE role_t (id int PRIMARY KEY, v text);
             SELECT audit_trail.enable('role_t');
             CREATE ROLE role_t_clerk NOLOGIN;
             GRANT INSERT, UPDATE, SELECT ON role_t TO role_t_clerk;
             CREATE FUNCTION role_t_add(int) RETURNS void LANGUAGE sql SECURITY DEFINER
               SET search_path = public, pg_catalog AS 'INSERT INTO role_t VALUES ($1, ''definer'')';
             SET LOCAL ROLE role_t_clerk;
             INSERT INTO role_t VALUES (1, 'clerk');
             SELECT role_t_add(2);
             UPDATE role_t SET v = 'clerk again' WHERE id = 1;
             RESET ROLE;",
        )
        .unwrap();
        let written = Spi::get_one::<String>(
            "SELECT string_agg(action || ' ' || entity_id || ' ' || (db_user = session_user)::text, ', ' ORDER BY id)
             FROM audit_trail.events WHERE entity_type = 'public.role_t'",
        )
        .unwrap();
        assert_eq!(written.as_deref(), Some("INSERT 1 true, INSERT 2 true, UPDATE 1 true"));
    }
}
