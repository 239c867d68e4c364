//! The public entry points that need the caller's identity: enable(),
//! disable() and log_event(). Each notes who called, then runs the SQL side
//! (sql/config.sql) as the owner of the extension's tables, so that users
//! need no privilege on audit_trail.config or audit_trail.events.

use crate::settings;
use crate::identity::as_log_owner;
use crate::json;
use crate::writer::{self, Event};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgRelation};

fn target_oid(target: Option<PgRelation>) -> pg_sys::Oid {
    match target {
        Some(rel) => rel.oid(),
        None => {
            ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "target must not be NULL");
            unreachable!()
        }
    }
}

fn caller() -> pg_sys::Oid {
    // SAFETY: GetUserId only reads the current user id, which a backend
    // running a function always has.
    unsafe { pg_sys::GetUserId() }
}

/// An argument that may not be NULL (the SQL NULL of an array included).
fn required<T>(value: Option<T>, name: &str) -> T {
    value.unwrap_or_else(|| {
        ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{name} must not be NULL"));
        unreachable!()
    })
}

/// Array elements stay Option: a NULL element reaches enable()'s SQL side,
/// which names it as a column that does not exist.
type Names = Vec<Option<String>>;

/// `audit_trail.enable(target, redact, exclude, key_columns, label_column,
/// actions, reveal, tenant_column, always_include)` (API §11 added the last
/// two). Its symbol differs from 0.4.0's seven-argument `enable`
/// (`enable_with_reveal_wrapper`) and 0.3.0's six-argument one
/// (`enable_wrapper`), which those versions' objects still call until
/// `ALTER EXTENSION ... UPDATE`.
#[pg_extern(volatile, name = "enable")]
#[allow(clippy::too_many_arguments)]
fn enable_shaped(
    target: Option<PgRelation>,
    redact: default!(Option<Names>, "'{}'"),
    exclude: default!(Option<Names>, "'{}'"),
    key_columns: default!(Option<Names>, "NULL"),
    label_column: default!(Option<String>, "NULL"),
    actions: default!(Option<Names>, "'{INSERT,UPDATE,DELETE,TRUNCATE}'"),
    reveal: default!(Option<Names>, "'{}'"),
    tenant_column: default!(Option<String>, "NULL"),
    always_include: default!(Option<Names>, "'{}'"),
) {
    let always_include = required(always_include, "always_include");
    run_enable(target, redact, exclude, key_columns, label_column, actions, Some(reveal), Some((tenant_column, always_include)));
}

/// 0.4.0's `enable` (no `tenant_column`, no `always_include`): the symbol
/// its install script names stays, with its seven arguments, and calls its
/// `_enable`. No SQL: 0.5.0 declares `enable` above.
#[pg_extern(volatile, sql = false)]
fn enable_with_reveal(
    target: Option<PgRelation>,
    redact: Option<Names>,
    exclude: Option<Names>,
    key_columns: Option<Names>,
    label_column: Option<String>,
    actions: Option<Names>,
    reveal: Option<Names>,
) {
    run_enable(target, redact, exclude, key_columns, label_column, actions, Some(reveal), None);
}

/// 0.1.0–0.3.0's `enable` (no `reveal`): the library serves those objects
/// until the update (sql/released/README.md), so the symbol their install
/// scripts name stays, with its six arguments, and calls their
/// `_enable`. No SQL: 0.4.0 declares `enable` above.
#[pg_extern(volatile, sql = false)]
fn enable(
    target: Option<PgRelation>,
    redact: Option<Names>,
    exclude: Option<Names>,
    key_columns: Option<Names>,
    label_column: Option<String>,
    actions: Option<Names>,
) {
    run_enable(target, redact, exclude, key_columns, label_column, actions, None, None);
}

/// enable()'s work: the arguments checked, the caller noted, then the SQL
/// side as the log's owner (`_enable`; for the six-argument version, whose
/// `reveal` is None, its own `_enable`; then, for 0.5.0's, `_set_shape`
/// with the tenant column and the columns always included, in the same
/// statement), then AUDIT_ENABLED and the partitions ahead.
#[allow(clippy::too_many_arguments)]
fn run_enable(
    target: Option<PgRelation>,
    redact: Option<Names>,
    exclude: Option<Names>,
    key_columns: Option<Names>,
    label_column: Option<String>,
    actions: Option<Names>,
    reveal: Option<Option<Names>>,
    shape: Option<(Option<String>, Names)>,
) {
    let target = target_oid(target);
    let redact = required(redact, "redact");
    let exclude = required(exclude, "exclude");
    let actions = required(actions, "actions");
    let reveal = reveal.map(|r| required(r, "reveal"));
    let who = caller();
    let patterns = settings::redact_patterns();
    let settings = as_log_owner(|| match reveal {
        Some(reveal) => Spi::get_one_with_args::<JsonB>(
            "SELECT audit_trail._enable($1::oid::regclass, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                target.into(),
                redact.into(),
                exclude.into(),
                key_columns.into(),
                label_column.into(),
                actions.into(),
                reveal.into(),
                patterns.into(),
                who.into(),
            ],
        ),
        None => Spi::get_one_with_args::<JsonB>(
            "SELECT audit_trail._enable($1::oid::regclass, $2, $3, $4, $5, $6, $7, $8)",
            &[
                target.into(),
                redact.into(),
                exclude.into(),
                key_columns.into(),
                label_column.into(),
                actions.into(),
                patterns.into(),
                who.into(),
            ],
        ),
    });
    // Errors the SQL side raises (a column that does not exist, a caller who
    // does not own the table...) reach the caller as they are, SQLSTATE and
    // all; what comes back here is SPI's own trouble, which cannot happen.
    let settings = settings
        .unwrap_or_else(|e| error!("pg_audit_trail: enabling auditing of relation {target}: {e}"))
        .unwrap_or_else(|| error!("pg_audit_trail: enabling auditing of relation {target}: audit_trail._enable returned nothing"));
    // API §11: the tenant column and the columns always included, checked
    // against the settings just stored (an error undoes them too).
    let settings = match shape {
        None => settings,
        Some((tenant_column, always_include)) => as_log_owner(|| {
            Spi::get_one_with_args::<JsonB>(
                "SELECT audit_trail._set_shape($1::oid::regclass, $2, $3)",
                &[target.into(), tenant_column.into(), always_include.into()],
            )
        })
        .unwrap_or_else(|e| error!("pg_audit_trail: enabling auditing of relation {target}: {e}"))
        .unwrap_or_else(|| error!("pg_audit_trail: enabling auditing of relation {target}: audit_trail._set_shape returned nothing")),
    };
    config_event("AUDIT_ENABLED", settings);
    // Time partitions ahead of the first events (a no-op when they exist).
    as_log_owner(|| Spi::run("SELECT count(*) FROM audit_trail._premake()"))
        .unwrap_or_else(|e| error!("pg_audit_trail: making the partitions ahead: {e}"));
}

#[pg_extern(volatile)]
fn disable(target: Option<PgRelation>) {
    let target = target_oid(target);
    let who = caller();
    let settings = as_log_owner(|| {
        Spi::get_one_with_args::<JsonB>("SELECT audit_trail._disable($1::oid::regclass, $2)", &[target.into(), who.into()])
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: disabling auditing of relation {target}: {e}"));
    if let Some(settings) = settings {
        config_event("AUDIT_DISABLED", settings);
    }
}

/// AUDIT_ENABLED / AUDIT_DISABLED / AUDIT_CONFIG_CHANGED: about the table
/// the settings name.
fn config_event(action: &str, settings: JsonB) {
    let table = settings.0.get("table").and_then(|t| t.as_str()).map(str::to_string);
    writer::write_one(
        action,
        Some("audit_trail.config"),
        Event::about(table.as_deref(), None, settings.into_datum()),
    );
}

/// `audit_trail.name_action(target, as_action, operation, changed_any,
/// after_matches)` (API §11): a captured event of `target` that matches
/// the rule is recorded with `action = as_action` (first matching rule, in
/// creation order), its `operation` kept. The name follows log_event's
/// rules (an identifier, not one of the extension's own actions); the rule
/// is checked and stored by `_name_action`, as the log's owner, and the
/// change recorded as AUDIT_CONFIG_CHANGED.
#[pg_extern(volatile)]
fn name_action(
    target: Option<PgRelation>,
    as_action: Option<&str>,
    operation: Option<&str>,
    changed_any: default!(Option<Names>, "NULL"),
    after_matches: default!(Option<JsonB>, "NULL"),
) {
    let target = target_oid(target);
    let as_action = required(as_action, "as_action");
    check_action_name(as_action, "as_action");
    let who = caller();
    let details = as_log_owner(|| {
        Spi::get_one_with_args::<JsonB>(
            "SELECT audit_trail._name_action($1::oid::regclass, $2, $3, $4, $5, $6)",
            &[target.into(), as_action.into(), operation.into(), changed_any.into(), after_matches.into(), who.into()],
        )
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: naming an action of relation {target}: {e}"))
    .unwrap_or_else(|| error!("pg_audit_trail: naming an action of relation {target}: audit_trail._name_action returned nothing"));
    config_event("AUDIT_CONFIG_CHANGED", details);
}

/// `audit_trail.drop_named_action(target, as_action)`: every rule of the
/// table for that action goes (an error if it has none), recorded as
/// AUDIT_CONFIG_CHANGED.
#[pg_extern(volatile)]
fn drop_named_action(target: Option<PgRelation>, as_action: Option<&str>) {
    let target = target_oid(target);
    let as_action = required(as_action, "as_action");
    let who = caller();
    let details = as_log_owner(|| {
        Spi::get_one_with_args::<JsonB>(
            "SELECT audit_trail._drop_named_action($1::oid::regclass, $2, $3)",
            &[target.into(), as_action.into(), who.into()],
        )
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: dropping a named action of relation {target}: {e}"))
    .unwrap_or_else(|| error!("pg_audit_trail: dropping a named action of relation {target}: audit_trail._drop_named_action returned nothing"));
    config_event("AUDIT_CONFIG_CHANGED", details);
}

/// An action name an application may give (log_event's `action`,
/// name_action's `as_action`): shaped like an identifier, and not one of
/// the extension's own.
fn check_action_name(action: &str, argument: &str) {
    if !valid_action(action) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid {argument} \"{action}\""),
            "An action starts with a letter, followed by up to 63 letters, digits, '_', '.', ':' or '-'."
        );
    }
    if is_reserved(action) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{argument} \"{action}\" is reserved for the events pg_audit_trail writes itself"),
            "Row operations (INSERT, UPDATE, DELETE, TRUNCATE) and names starting with AUDIT_, PARTITION_, SCHEMA_, CAPTURE_, RETENTION_, MAINTENANCE or ALERT are the extension's own; name application events otherwise."
        );
    }
}

/// Application events must be named like identifiers, so that filters and
/// exports never meet control characters or free text in `action`.
fn valid_action(action: &str) -> bool {
    let mut chars = action.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && action.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

#[pg_extern(volatile)]
fn log_event(
    action: Option<&str>,
    entity_type: default!(Option<&str>, "NULL"),
    entity_id: default!(Option<&str>, "NULL"),
    details: default!(Option<JsonB>, "NULL"),
    entity_label: default!(Option<&str>, "NULL"),
) -> i64 {
    let Some(action) = action else {
        ereport!(PgLogLevel::ERROR, PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "action must not be NULL");
        unreachable!()
    };
    check_action_name(action, "action");
    if entity_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("audit_trail.")) {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("entity_type \"{}\" is reserved for the events pg_audit_trail writes itself", entity_type.unwrap_or_default()),
            "Entity types in schema audit_trail name the extension's own objects."
        );
    }
    let details = details.and_then(IntoDatum::into_datum).map(|d| {
        // Secrets inside documents (API §9): no table, so the patterns in
        // force now.
        if settings::REDACT_JSON_KEYS.get() {
            // SAFETY: a jsonb datum, just made from the argument.
            unsafe { json::redact_keys(d, &settings::redact_patterns()) }
        } else {
            d
        }
    });
    writer::write_one(action, entity_type, Event::about(entity_id, entity_label, details))
}

/// The actions the extension writes itself (API §9), in any case and with
/// `-`, `.` or `:` in place of `_`: an application event must not pass for
/// a row change or for housekeeping.
fn is_reserved(action: &str) -> bool {
    // AUDIT-ENABLED, AUDIT.LOG_EXPORTED and the like read as the real ones.
    let upper = action.to_ascii_uppercase().replace(['-', '.', ':'], "_");
    matches!(upper.as_str(), "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE")
        || ["AUDIT_", "PARTITION_", "SCHEMA_", "CAPTURE_", "RETENTION_", "MAINTENANCE", "ALERT"]
            .iter()
            .any(|p| upper.starts_with(p))
}

/// An event of the extension's own housekeeping: its actor is System,
/// whoever runs it; the rest of the context is the caller's.
#[pg_extern(volatile, name = "_write_system_event")]
fn write_system_event(action: &str, entity_type: Option<&str>, details: Option<JsonB>) -> i64 {
    writer::write_one_as(
        Some("System"),
        action,
        entity_type,
        Event::about(None, None, details.and_then(IntoDatum::into_datum)),
    )
}

/// A System event about one entity of the extension's own (an alert rule).
#[pg_extern(volatile, name = "_write_system_event_about")]
fn write_system_event_about(action: &str, entity_type: &str, entity_id: &str, details: Option<JsonB>) -> i64 {
    writer::write_one_as(
        Some("System"),
        action,
        Some(entity_type),
        Event::about(Some(entity_id), None, details.and_then(IntoDatum::into_datum)),
    )
}

/// log_event without the name check, for the extension's own events.
#[pg_extern(volatile, name = "_write_event")]
fn write_event(
    action: &str,
    entity_type: Option<&str>,
    entity_id: Option<&str>,
    details: Option<JsonB>,
    entity_label: Option<&str>,
) -> i64 {
    writer::write_one(
        action,
        entity_type,
        Event::about(entity_id, entity_label, details.and_then(IntoDatum::into_datum)),
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn action_names() {
        for ok in ["USER_LOGIN", "a", "token.created:v2-x", &"A".repeat(64)] {
            assert!(super::valid_action(ok), "{ok}");
        }
        for bad in ["", "1A", "_A", "A B", "A;B", "Ä", &"A".repeat(65)] {
            assert!(!super::valid_action(bad), "{bad}");
        }
    }

    #[pg_test(error = "invalid action \"DROP TABLE\"")]
    fn log_event_refuses_bad_names() {
        Spi::run("SELECT audit_trail.log_event('DROP TABLE')").unwrap();
    }
}
