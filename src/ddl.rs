//! What an ALTER TABLE attached: the one question about a DDL command that
//! SQL cannot answer from pg_event_trigger_ddl_commands().
//!
//! The ddl_command_end trigger gives new partitions of an audited table their
//! capture triggers. It must act on ATTACH PARTITION and on nothing else: a
//! pg_dump replay runs ALTER TABLE ... ADD CONSTRAINT on audited tables after
//! their settings are restored but before their dumped triggers are, and
//! creating the triggers then would make the dump's CREATE TRIGGER fail.

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The pointers a pointer List holds.
///
/// # Safety
/// `list` must be NIL (null) or a valid List of pointers.
unsafe fn list_ptrs(list: *mut pg_sys::List) -> Vec<*mut std::ffi::c_void> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: as the caller promises: a List's `elements` array holds
    // `length` cells.
    unsafe { (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).ptr_value).collect() }
}

/// The table an ATTACH or DETACH PARTITION subcommand names, resolved as
/// the caller's search_path says; None when it names none that exists.
///
/// # Safety
/// `c` must point to a valid AlterTableCmd.
unsafe fn partition_named(c: *const pg_sys::AlterTableCmd) -> Option<pg_sys::Oid> {
    // SAFETY: as the caller promises; `def` is a Node, read as a
    // PartitionCmd only when its tag says it is one. RangeVarGetRelidExtended
    // only looks the name up (inside the command's transaction; NoLock,
    // missing ok), returning InvalidOid when there is none.
    unsafe {
        let def = (*c).def;
        if def.is_null() || (*def).type_ != pg_sys::NodeTag::T_PartitionCmd {
            return None;
        }
        let oid = pg_sys::RangeVarGetRelidExtended(
            (*(def as *const pg_sys::PartitionCmd)).name,
            pg_sys::NoLock as i32,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        (oid != pg_sys::InvalidOid).then_some(oid)
    }
}

/// `audit_trail._attached_partitions(pg_ddl_command) RETURNS oid[]`: the
/// tables an ALTER TABLE command attached as partitions (empty otherwise).
/// PostgreSQL 15 records no object for ATTACH PARTITION, so the name in the
/// statement is resolved, with the search_path the statement ran under: the
/// caller must not have changed it (see audit_trail._on_ddl_end).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn audit_trail_attached_partitions(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let mut found: Vec<pg_sys::Oid> = Vec::new();
    // SAFETY: PostgreSQL calls this with a valid fcinfo; the function is
    // declared STRICT with one pg_ddl_command argument, a pointer to the
    // CollectedCommand pg_event_trigger_ddl_commands() handed out, valid
    // during the event trigger (the only place such a value exists). Its
    // parse tree and subcommand list are read by the node tags they carry.
    unsafe {
        let cmd = (*(*fcinfo).args.as_ptr()).value.cast_mut_ptr::<pg_sys::CollectedCommand>();
        let tree = if cmd.is_null() { std::ptr::null_mut() } else { (*cmd).parsetree };
        if !tree.is_null() && (*tree).type_ == pg_sys::NodeTag::T_AlterTableStmt {
            for c in list_ptrs((*(tree as *mut pg_sys::AlterTableStmt)).cmds) {
                let c = c as *mut pg_sys::AlterTableCmd;
                if (*c).subtype != pg_sys::AlterTableType::AT_AttachPartition {
                    continue;
                }
                if let Some(oid) = partition_named(c) {
                    found.push(oid);
                }
            }
        }
    }
    found
        .into_datum()
        .unwrap_or_else(|| pgrx::error!("pg_audit_trail: listing the partitions a command attached: could not build an oid[] value"))
}

crate::pg_finfo_v1!(pg_finfo_audit_trail_attached_partitions);

/// The name a user would write for an ALTER TABLE subcommand.
fn subcommand_name(t: pg_sys::AlterTableType::Type) -> &'static str {
    use pg_sys::AlterTableType as T;
    #[cfg(feature = "pg15")]
    match t {
        T::AT_AddColumnRecurse => return "ADD COLUMN",
        T::AT_DropColumnRecurse => return "DROP COLUMN",
        T::AT_AddConstraintRecurse => return "ADD CONSTRAINT",
        T::AT_ValidateConstraintRecurse => return "VALIDATE CONSTRAINT",
        T::AT_DropConstraintRecurse => return "DROP CONSTRAINT",
        _ => {}
    }
    match t {
        T::AT_AddColumn | T::AT_AddColumnToView => "ADD COLUMN",
        T::AT_ColumnDefault | T::AT_CookedColumnDefault => "ALTER COLUMN SET DEFAULT",
        T::AT_DropNotNull => "ALTER COLUMN DROP NOT NULL",
        T::AT_SetNotNull => "ALTER COLUMN SET NOT NULL",
        T::AT_DropExpression => "ALTER COLUMN DROP EXPRESSION",
        T::AT_SetStatistics => "ALTER COLUMN SET STATISTICS",
        T::AT_SetOptions => "ALTER COLUMN SET",
        T::AT_ResetOptions => "ALTER COLUMN RESET",
        T::AT_SetStorage => "ALTER COLUMN SET STORAGE",
        T::AT_SetCompression => "ALTER COLUMN SET COMPRESSION",
        T::AT_DropColumn => "DROP COLUMN",
        T::AT_AddIndex | T::AT_ReAddIndex | T::AT_AddIndexConstraint => "ADD INDEX",
        T::AT_AddConstraint | T::AT_ReAddConstraint | T::AT_ReAddDomainConstraint => "ADD CONSTRAINT",
        T::AT_AlterConstraint => "ALTER CONSTRAINT",
        T::AT_ValidateConstraint => "VALIDATE CONSTRAINT",
        T::AT_DropConstraint => "DROP CONSTRAINT",
        T::AT_ReAddComment => "COMMENT",
        T::AT_AlterColumnType => "ALTER COLUMN TYPE",
        T::AT_AlterColumnGenericOptions => "ALTER COLUMN OPTIONS",
        T::AT_ChangeOwner => "OWNER TO",
        T::AT_ClusterOn => "CLUSTER ON",
        T::AT_DropCluster => "SET WITHOUT CLUSTER",
        T::AT_SetLogged => "SET LOGGED",
        T::AT_SetUnLogged => "SET UNLOGGED",
        T::AT_SetAccessMethod => "SET ACCESS METHOD",
        T::AT_SetTableSpace => "SET TABLESPACE",
        T::AT_SetRelOptions | T::AT_ReplaceRelOptions => "SET",
        T::AT_ResetRelOptions => "RESET",
        T::AT_EnableTrig => "ENABLE TRIGGER",
        T::AT_EnableAlwaysTrig => "ENABLE ALWAYS TRIGGER",
        T::AT_EnableReplicaTrig => "ENABLE REPLICA TRIGGER",
        T::AT_DisableTrig => "DISABLE TRIGGER",
        T::AT_EnableTrigAll => "ENABLE TRIGGER ALL",
        T::AT_DisableTrigAll => "DISABLE TRIGGER ALL",
        T::AT_EnableTrigUser => "ENABLE TRIGGER USER",
        T::AT_DisableTrigUser => "DISABLE TRIGGER USER",
        T::AT_EnableRule => "ENABLE RULE",
        T::AT_EnableAlwaysRule => "ENABLE ALWAYS RULE",
        T::AT_EnableReplicaRule => "ENABLE REPLICA RULE",
        T::AT_DisableRule => "DISABLE RULE",
        T::AT_AddInherit => "INHERIT",
        T::AT_DropInherit => "NO INHERIT",
        T::AT_AddOf => "OF",
        T::AT_DropOf => "NOT OF",
        T::AT_ReplicaIdentity => "REPLICA IDENTITY",
        T::AT_EnableRowSecurity => "ENABLE ROW LEVEL SECURITY",
        T::AT_DisableRowSecurity => "DISABLE ROW LEVEL SECURITY",
        T::AT_ForceRowSecurity => "FORCE ROW LEVEL SECURITY",
        T::AT_NoForceRowSecurity => "NO FORCE ROW LEVEL SECURITY",
        T::AT_GenericOptions => "OPTIONS",
        T::AT_AttachPartition => "ATTACH PARTITION",
        T::AT_DetachPartition => "DETACH PARTITION",
        T::AT_DetachPartitionFinalize => "DETACH PARTITION FINALIZE",
        T::AT_AddIdentity => "ALTER COLUMN ADD IDENTITY",
        T::AT_SetIdentity => "ALTER COLUMN SET IDENTITY",
        T::AT_DropIdentity => "ALTER COLUMN DROP IDENTITY",
        _ => "OTHER",
    }
}

/// A copy of a C string, None for NULL.
///
/// # Safety
/// `p` must be NULL or a valid NUL-terminated string.
unsafe fn cstr(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: as the caller promises.
    (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// What one collected DDL command did, as a JSON array of subcommands:
/// `{"type": "ADD COLUMN", "name": "note"}`; `"relid"` is the table an
/// ATTACH or DETACH PARTITION took or gave up, its name resolved as the
/// caller's search_path says (the caller is the event trigger, running as
/// the user who ran the command, with its search_path). Renames give their
/// old and new names. Identical entries (an ALTER TABLE recursing to
/// partitions) appear once. Empty for anything else.
///
/// # Safety
/// `cmd` must be null or the CollectedCommand behind a pg_ddl_command datum,
/// inside the event trigger that handed it out.
unsafe fn describe(cmd: *const pg_sys::CollectedCommand) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut out: Vec<Value> = Vec::new();
    // SAFETY: `cmd` is the CollectedCommand behind a pg_ddl_command datum,
    // valid for the duration of the event trigger that handed it to us; its
    // parse trees are read only, by the node tag they carry.
    unsafe {
        if cmd.is_null() {
            return Value::Array(out);
        }
        if (*cmd).type_ == pg_sys::CollectedCommandType::SCT_AlterTable {
            for sub in list_ptrs((*cmd).d.alterTable.subcmds) {
                let sub = sub as *const pg_sys::CollectedATSubcmd;
                let tree = (*sub).parsetree;
                if tree.is_null() || (*tree).type_ != pg_sys::NodeTag::T_AlterTableCmd {
                    continue;
                }
                let c = tree as *const pg_sys::AlterTableCmd;
                let mut entry = json!({ "type": subcommand_name((*c).subtype) });
                if let Some(name) = cstr((*c).name) {
                    entry["name"] = json!(name);
                }
                // PostgreSQL 15 records no address for ATTACH and DETACH
                // PARTITION: the partition is found by its name, as the
                // command found it.
                if matches!(
                    (*c).subtype,
                    pg_sys::AlterTableType::AT_AttachPartition
                        | pg_sys::AlterTableType::AT_DetachPartition
                        | pg_sys::AlterTableType::AT_DetachPartitionFinalize
                ) {
                    if let Some(oid) = partition_named(c) {
                        entry["relid"] = json!(u32::from(oid));
                    }
                }
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        } else {
            let tree = (*cmd).parsetree;
            if !tree.is_null() && (*tree).type_ == pg_sys::NodeTag::T_RenameStmt {
                let r = tree as *const pg_sys::RenameStmt;
                let kind = match (*r).renameType {
                    pg_sys::ObjectType::OBJECT_COLUMN => "RENAME COLUMN",
                    pg_sys::ObjectType::OBJECT_ATTRIBUTE => "RENAME ATTRIBUTE",
                    pg_sys::ObjectType::OBJECT_TABCONSTRAINT => "RENAME CONSTRAINT",
                    pg_sys::ObjectType::OBJECT_TRIGGER => "RENAME TRIGGER",
                    _ => "RENAME",
                };
                let mut entry = json!({ "type": kind });
                if let Some(old) = cstr((*r).subname) {
                    entry["from"] = json!(old);
                }
                if let Some(new) = cstr((*r).newname) {
                    entry["name"] = json!(new);
                }
                out.push(entry);
            } else if !tree.is_null() && (*tree).type_ == pg_sys::NodeTag::T_AlterObjectSchemaStmt {
                let s = tree as *const pg_sys::AlterObjectSchemaStmt;
                out.push(json!({ "type": "SET SCHEMA", "name": cstr((*s).newschema) }));
            }
        }
    }
    Value::Array(out)
}

/// `audit_trail._ddl_subcommands(pg_ddl_command) RETURNS jsonb`: see
/// `describe`. Only meaningful inside a ddl_command_end event trigger, the
/// one place a pg_ddl_command value exists.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn audit_trail_ddl_subcommands(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls this with a valid fcinfo; the function is
    // declared STRICT with one pg_ddl_command argument, so args[0] is a
    // non-null pointer to the CollectedCommand pg_event_trigger_ddl_commands()
    // handed out, valid during the event trigger (the only place such a value
    // exists).
    let described = unsafe {
        let cmd = (*(*fcinfo).args.as_ptr()).value.cast_mut_ptr::<pg_sys::CollectedCommand>();
        describe(cmd)
    };
    pgrx::JsonB(described)
        .into_datum()
        .unwrap_or_else(|| pgrx::error!("pg_audit_trail: describing a DDL command: could not build a jsonb value"))
}

crate::pg_finfo_v1!(pg_finfo_audit_trail_ddl_subcommands);

thread_local! {
    /// Partitions of audited tables as they were when the current DROP
    /// began: {"<oid>": {"root", "partition", "rows_estimate"}}. A dropped
    /// table's partition bound is gone by the time sql_drop fires.
    static DROP_STASH: std::cell::RefCell<Option<pgrx::JsonB>> = const { std::cell::RefCell::new(None) };
}

/// Called by audit_trail._before_drop() (ddl_command_start of DROP ...).
#[pg_extern(volatile, name = "_stash_partitions")]
fn stash_partitions(partitions: pgrx::JsonB) {
    DROP_STASH.with(|s| *s.borrow_mut() = Some(partitions));
}

/// Read, and taken, by the sql_drop event trigger; '{}' when nothing was
/// stashed. Taken, so that a later DROP that the ddl_command_start trigger
/// did not see can never be described by an earlier command's stash.
#[pg_extern(volatile, name = "_stashed_partitions")]
fn stashed_partitions() -> pgrx::JsonB {
    DROP_STASH.with(|s| s.borrow_mut().take()).unwrap_or(pgrx::JsonB(serde_json::json!({})))
}

/// What the DDL event triggers decide from: pg_audit_trail's settings and its
/// triggers, for the relations in $1 (all when NULL). Read twice by
/// `_refuse_if_settings_moved`.
const SETTINGS_FINGERPRINT: &std::ffi::CStr = c"SELECT pg_catalog.md5(
    coalesce((SELECT pg_catalog.string_agg(c.relid::pg_catalog.oid::pg_catalog.text OPERATOR(pg_catalog.||) c.xmin::pg_catalog.text, ',' ORDER BY c.relid::pg_catalog.oid)
              FROM audit_trail.config c
              WHERE $1 IS NULL OR c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)), '')
    OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||)
    coalesce((SELECT pg_catalog.string_agg(g.oid::pg_catalog.text OPERATOR(pg_catalog.||) g.xmin::pg_catalog.text, ',' ORDER BY g.oid)
              FROM pg_catalog.pg_trigger g
              WHERE g.tgfoid OPERATOR(pg_catalog.=) ANY (ARRAY['audit_trail.capture()'::pg_catalog.regprocedure,
                                                             'audit_trail._guard()'::pg_catalog.regprocedure])
                AND ($1 IS NULL OR g.tgrelid OPERATOR(pg_catalog.=) ANY ($1))), ''))";

/// One text value of `plan` run with `snapshot` (None: the transaction's).
///
/// # Safety
/// Inside an SPI connection, with `plan` prepared in it for one oid[]
/// parameter, `nulls` giving its null flag (" " or "n"), and `snapshot` a
/// registered or otherwise live snapshot.
unsafe fn fingerprint(plan: pg_sys::SPIPlanPtr, args: &mut [pg_sys::Datum; 1], nulls: &std::ffi::CStr, snapshot: Option<pg_sys::Snapshot>) -> Option<String> {
    // SAFETY: as the caller promises; the result (one row of one text
    // column, checked) is read, and copied by cstr out of SPI_getvalue's
    // palloc'd string, before the next SPI call replaces SPI_tuptable.
    unsafe {
        let rc = match snapshot {
            Some(snap) => pg_sys::SPI_execute_snapshot(
                plan,
                args.as_mut_ptr(),
                nulls.as_ptr(),
                snap,
                std::ptr::null_mut(),
                true,
                false,
                1,
            ),
            None => pg_sys::SPI_execute_plan(plan, args.as_mut_ptr(), nulls.as_ptr(), true, 1),
        };
        if rc != pg_sys::SPI_OK_SELECT as i32 || pg_sys::SPI_processed != 1 {
            return None;
        }
        let tt = pg_sys::SPI_tuptable;
        cstr(pg_sys::SPI_getvalue(*(*tt).vals, (*tt).tupdesc, 1))
    }
}

/// In a REPEATABLE READ or SERIALIZABLE transaction the DDL event triggers
/// read pg_audit_trail's settings and triggers as of the transaction's
/// snapshot. If another session changed them since (enable(), disable(),
/// triggers made for a new partition), what they would decide is stale, and
/// a change could slip past capture: the command fails with a serialization
/// failure instead, to be retried as any such transaction is. `rels`: the
/// relations the command touches (with their partition ancestors), so that
/// DDL on other tables is not refused; NULL: everything (before a DROP, the
/// command's objects are not known yet).
#[pg_extern(volatile, name = "_refuse_if_settings_moved")]
fn refuse_if_settings_moved(rels: Option<Vec<pg_sys::Oid>>) {
    // SAFETY: XactIsoLevel is the plain int variable of a setting, written
    // only on this thread (the backend's only one).
    if unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as i32 {
        return;
    }
    // SAFETY: an SPI connection of our own (inside the DDL's transaction),
    // closed on every path: an error inside unwinds through PostgreSQL,
    // which cleans SPI up at abort. The plan is prepared in it for one oid[]
    // parameter, as fingerprint requires; GetLatestSnapshot's snapshot is
    // live until the next one is taken, after the query.
    let moved = unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            pgrx::error!("pg_audit_trail: checking whether the audit settings moved: SPI_connect failed");
        }
        let mut types = [pg_sys::OIDARRAYOID];
        let plan = pg_sys::SPI_prepare(SETTINGS_FINGERPRINT.as_ptr(), 1, types.as_mut_ptr());
        if plan.is_null() {
            pgrx::error!("pg_audit_trail: checking whether the audit settings moved: could not prepare the fingerprint: SPI error {}", {
                pg_sys::SPI_result
            });
        }
        let (datum, nulls) = match rels.and_then(|r| r.into_datum()) {
            Some(d) => (d, c" "),
            None => (pg_sys::Datum::from(0), c"n"),
        };
        let mut args = [datum];
        let then = fingerprint(plan, &mut args, nulls, None);
        let now = fingerprint(plan, &mut args, nulls, Some(pg_sys::GetLatestSnapshot()));
        pg_sys::SPI_finish();
        then != now
    };
    if moved {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
            "could not serialize access due to a concurrent change of pg_audit_trail's settings",
            "Another session enabled or disabled auditing, or changed capture triggers, after this transaction's snapshot was taken; retry the transaction."
        );
    }
}
