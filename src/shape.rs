//! The trail shaped like the product (API §11): the tenant of each row
//! event from a column of the row (`enable(..., tenant_column)`), the
//! columns every UPDATE event carries (`always_include`), and named actions
//! (`name_action`): a row change that matches a rule is recorded under the
//! rule's action, its `operation` kept.
//!
//! Built once with the table's metadata (meta.rs), from audit_trail.config;
//! a table that uses none of these has no `Shape` at all, and capture then
//! does nothing more per row than before. Rules are evaluated here, on the
//! values capture already holds: `changed_any` by the datum comparison of
//! diff.rs, `after_matches` by PostgreSQL's own jsonb containment
//! (`jsonb_contains`, called directly, no SQL) of the row's columns the rule
//! names, rendered as the trail renders them (a redacted column is
//! `"[REDACTED]"`, so no rule can test a secret's value, whatever the
//! settings became after the rule was made).

use crate::json::ObjectBuilder;
use crate::meta::Column;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

pub struct Shape {
    /// The column whose value is each row event's tenant.
    pub tenant: Option<Column>,
    /// One flag per recorded column (TableMeta::columns): always in an
    /// UPDATE event's before and after. Empty when none is.
    pub always: Vec<bool>,
    /// In creation order: the first that matches names the event.
    pub rules: Vec<Rule>,
}

pub struct Rule {
    /// The action, as the text datum the log stores is made from.
    pub action: String,
    /// `TRIGGER_EVENT_INSERT`, `_UPDATE` or `_DELETE`.
    op: u32,
    /// UPDATE: one of these changed. None: no condition. Columns dropped
    /// since the rule was made are left out; a rule left with none never
    /// matches.
    changed_any: Option<Vec<Column>>,
    /// The row contains this (jsonb @>): the columns it names, in jsonb's
    /// key order, and the pattern.
    after: Option<(Vec<Column>, Pattern)>,
    /// Names a column the table no longer has in after_matches: the row can
    /// never contain it.
    dead: bool,
}

/// A jsonb value kept for the life of the metadata: the bytes of a plain
/// (4-byte header, uncompressed) varlena, 8-byte aligned, so that a pointer
/// to them is a valid jsonb datum.
struct Pattern(Vec<u64>);

impl Pattern {
    fn of(value: &serde_json::Value) -> Pattern {
        let d = pgrx::JsonB(value.clone()).into_datum().expect("a jsonb value");
        // SAFETY: `d` is a jsonb datum just made (palloc'd in the current
        // context): detoasting gives a plain varlena whose VARSIZE bytes are
        // copied here before anything frees it.
        unsafe {
            let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
            let len = pgrx::varlena::varsize(v);
            let mut buf = vec![0u64; len.div_ceil(8)];
            std::ptr::copy_nonoverlapping(v as *const u8, buf.as_mut_ptr() as *mut u8, len);
            Pattern(buf)
        }
    }

    fn datum(&self) -> Datum {
        Datum::from(self.0.as_ptr())
    }
}

fn bad_setting(table: &str, what: &str) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("pg_audit_trail: the named actions of table {table} are not valid: {what}"),
        "Named actions are made with audit_trail.name_action() and dropped with audit_trail.drop_named_action()."
    );
    unreachable!()
}

impl Shape {
    /// The shape of a table from its settings, or None when it uses none
    /// of API §11. `all` holds every column of the relation (excluded ones
    /// too: a rule may test them), `recorded` the names of those that are
    /// recorded, in TableMeta::columns's order.
    pub fn build(
        all: &[(String, Column)],
        recorded: &[&str],
        tenant_column: Option<&str>,
        always_include: &[String],
        named_actions: Option<&str>,
        table: &str,
    ) -> Option<Shape> {
        let find = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone());
        let tenant = tenant_column.and_then(find);
        let always = if always_include.is_empty() {
            Vec::new()
        } else {
            recorded.iter().map(|n| always_include.iter().any(|a| a == n)).collect()
        };
        let always = if always.contains(&true) { always } else { Vec::new() };
        let rules: Vec<Rule> = match named_actions.map(serde_json::from_str::<serde_json::Value>) {
            None => Vec::new(),
            Some(Err(e)) => bad_setting(table, &e.to_string()),
            Some(Ok(serde_json::Value::Array(rules))) => rules.iter().map(|r| Rule::build(r, &find, table)).collect(),
            Some(Ok(_)) => bad_setting(table, "not a JSON array"),
        };
        if tenant.is_none() && always.is_empty() && rules.is_empty() {
            return None;
        }
        Some(Shape { tenant, always, rules })
    }

    /// The first rule, in creation order, that a row change matches.
    ///
    /// # Safety
    /// `old` and `new` (each present as `op` has it: UPDATE both, INSERT
    /// the new row, DELETE the old one) must be rows of the relation the
    /// shape was built for, in the row type it describes; `json_patterns`
    /// are its TableMeta's. Runs in the batch memory context.
    pub unsafe fn named_action(&self, json_patterns: &[String], op: u32, old: Option<Values<'_>>, new: Option<Values<'_>>) -> Option<&Rule> {
        // SAFETY: as the caller promises.
        self.rules.iter().find(|r| unsafe { r.matches(json_patterns, op, old, new) })
    }
}

/// A row's values and nulls, by attribute index.
#[derive(Clone, Copy)]
pub struct Values<'a> {
    pub values: &'a [Datum],
    pub nulls: &'a [bool],
}

impl Values<'_> {
    fn get(&self, c: &Column) -> (Datum, bool) {
        (self.values[c.index], self.nulls[c.index])
    }
}

impl Rule {
    fn build(rule: &serde_json::Value, find: &impl Fn(&str) -> Option<Column>, table: &str) -> Rule {
        let action = match rule.get("action").and_then(|a| a.as_str()) {
            Some(a) => a.to_string(),
            None => bad_setting(table, "a rule without an action"),
        };
        let op = match rule.get("operation").and_then(|o| o.as_str()) {
            Some("INSERT") => pg_sys::TRIGGER_EVENT_INSERT,
            Some("UPDATE") => pg_sys::TRIGGER_EVENT_UPDATE,
            Some("DELETE") => pg_sys::TRIGGER_EVENT_DELETE,
            _ => bad_setting(table, &format!("rule {action}: its operation is not INSERT, UPDATE or DELETE")),
        };
        let changed_any = match rule.get("changed_any") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Array(names)) => {
                Some(names.iter().filter_map(|n| n.as_str()).filter_map(find).collect::<Vec<_>>())
            }
            Some(_) => bad_setting(table, &format!("rule {action}: changed_any is not an array")),
        };
        let mut dead = false;
        let after = match rule.get("after_matches") {
            None | Some(serde_json::Value::Null) => None,
            Some(pattern @ serde_json::Value::Object(fields)) => {
                let mut columns = Vec::with_capacity(fields.len());
                for name in fields.keys() {
                    match find(name) {
                        Some(c) => columns.push(c),
                        None => dead = true,
                    }
                }
                // jsonb's key order (shorter first, then bytewise): the
                // order ObjectBuilder takes keys in without sorting.
                columns.sort_by(|a, b| {
                    let (a, b) = (a.name.as_bytes(), b.name.as_bytes());
                    a.len().cmp(&b.len()).then(a.cmp(b))
                });
                Some((columns, Pattern::of(pattern)))
            }
            Some(_) => bad_setting(table, &format!("rule {action}: after_matches is not an object")),
        };
        Rule { action, op, changed_any, after, dead }
    }

    /// # Safety
    /// As for Shape::named_action.
    unsafe fn matches(&self, json_patterns: &[String], op: u32, old: Option<Values<'_>>, new: Option<Values<'_>>) -> bool {
        if op != self.op || self.dead {
            return false;
        }
        if let Some(columns) = &self.changed_any {
            let (Some(old), Some(new)) = (old, new) else { return false };
            let changed = columns.iter().any(|c| {
                let ((a, an), (b, bn)) = (old.get(c), new.get(c));
                // SAFETY: as the caller promises, both are values of `c`.
                !unsafe { crate::diff::same(c, a, an, b, bn) }
            });
            if !changed {
                return false;
            }
        }
        if let Some((columns, pattern)) = &self.after {
            // The new row; a DELETE's rule tests the row deleted.
            let Some(row) = new.or(old) else { return false };
            let mut obj = if json_patterns.is_empty() || !crate::settings::REDACT_JSON_KEYS.get() {
                ObjectBuilder::new()
            } else {
                ObjectBuilder::redacting_keys(json_patterns)
            };
            for c in columns {
                let (d, isnull) = row.get(c);
                // SAFETY: as the caller promises, the value is one of `c`.
                unsafe { obj.add(&c.name, d, isnull, c.typid, c.kind, c.render) };
            }
            let doc = obj.finish();
            // SAFETY: two valid jsonb datums: the object just made, and the
            // pattern, kept for as long as this rule (the caller holds it).
            let contained = unsafe {
                pgrx::direct_function_call::<bool>(pg_sys::jsonb_contains, &[Some(doc), Some(pattern.datum())])
            };
            if contained != Some(true) {
                return false;
            }
        }
        true
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use crate::writer::paths;
    use pgrx::prelude::*;

    /// The SQL path (the default partition) writes each event's own tenant
    /// and action: a batch never mixes rows whose statement-wide columns
    /// differ.
    #[pg_test]
    fn the_sql_path_keeps_each_events_tenant_and_action() {
        Spi::run("SELECT pg_advisory_xact_lock(1618)").unwrap();
        Spi::run(
            "CREATE TABLE shape_t (id int PRIMARY KEY, org text, status text);
             SELECT audit_trail.enable('shape_t', tenant_column => 'org');
             SELECT audit_trail.name_action('shape_t', 'STOPPED', 'UPDATE', after_matches => '{\"status\": \"stopped\"}');
             SET LOCAL audit_trail.tenant = 'ctx';",
        )
        .unwrap();
        for force in [true, false] {
            paths::FORCE_SQL.with(|f| f.set(force));
            Spi::run(
                "DELETE FROM shape_t;
                 INSERT INTO shape_t SELECT g, 'org' || (g % 3), 'running' FROM generate_series(1, 100) g;
                 UPDATE shape_t SET status = CASE WHEN id % 2 = 0 THEN 'stopped' ELSE 'paused' END;",
            )
            .unwrap();
            paths::FORCE_SQL.with(|f| f.set(false));
            let wrong = Spi::get_one::<i64>(
                "SELECT count(*) FROM (SELECT * FROM audit_trail.events WHERE entity_type = 'public.shape_t'
                                       ORDER BY id DESC LIMIT 200) e
                 WHERE e.tenant IS DISTINCT FROM 'org' || (e.entity_id::int % 3)
                    OR e.action <> CASE WHEN e.operation = 'UPDATE' AND e.entity_id::int % 2 = 0 THEN 'STOPPED' ELSE e.operation END",
            )
            .unwrap();
            assert_eq!(wrong, Some(0), "force_sql = {force}");
        }
    }
}
