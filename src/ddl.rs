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

/// The head of PostgreSQL's CollectedCommand (tcop/deparse_utility.h), the
/// value behind a `pg_ddl_command`; the same in PostgreSQL 13 to 17. Not in
/// pgrx's bindings.
#[repr(C)]
struct CollectedCommandHead {
    kind: i32,
    in_extension: bool,
    parsetree: *mut pg_sys::Node,
}

unsafe fn list_ptrs(list: *mut pg_sys::List) -> Vec<*mut std::ffi::c_void> {
    if list.is_null() {
        return Vec::new();
    }
    unsafe { (0..(*list).length as usize).map(|i| (*(*list).elements.add(i)).ptr_value).collect() }
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
    unsafe {
        let cmd = (*(*fcinfo).args.as_ptr()).value.cast_mut_ptr::<CollectedCommandHead>();
        let tree = if cmd.is_null() { std::ptr::null_mut() } else { (*cmd).parsetree };
        if !tree.is_null() && (*tree).type_ == pg_sys::NodeTag::T_AlterTableStmt {
            for c in list_ptrs((*(tree as *mut pg_sys::AlterTableStmt)).cmds) {
                let c = c as *mut pg_sys::AlterTableCmd;
                if (*c).subtype != pg_sys::AlterTableType::AT_AttachPartition || (*c).def.is_null() {
                    continue;
                }
                let name = (*((*c).def as *mut pg_sys::PartitionCmd)).name;
                let oid = pg_sys::RangeVarGetRelidExtended(
                    name,
                    pg_sys::NoLock as i32,
                    pg_sys::RVROption::RVR_MISSING_OK,
                    None,
                    std::ptr::null_mut(),
                );
                if oid != pg_sys::InvalidOid {
                    found.push(oid);
                }
            }
        }
    }
    found.into_datum().unwrap()
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_audit_trail_attached_partitions() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

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

fn cstr(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: the parse tree's names are NUL-terminated C strings or NULL.
    (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// What one collected DDL command did, as a JSON array of subcommands:
/// `{"type": "ADD COLUMN", "name": "note"}`; `"relid"` is the table an
/// ATTACH or DETACH PARTITION took or gave up, its name resolved with
/// `search_path` (the one the command ran with). Renames give their old and
/// new names. Identical entries (an ALTER TABLE recursing to partitions)
/// appear once. Empty for anything else.
unsafe fn describe(cmd: *const pg_sys::CollectedCommand, search_path: &std::ffi::CStr) -> serde_json::Value {
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
                    pg_sys::AlterTableType::AT_AttachPartition | pg_sys::AlterTableType::AT_DetachPartition
                ) && !(*c).def.is_null()
                    && (*(*c).def).type_ == pg_sys::NodeTag::T_PartitionCmd
                {
                    let name = (*((*c).def as *const pg_sys::PartitionCmd)).name;
                    let oid = with_search_path(search_path, || {
                        pg_sys::RangeVarGetRelidExtended(
                            name,
                            pg_sys::NoLock as i32,
                            pg_sys::RVROption::RVR_MISSING_OK,
                            None,
                            std::ptr::null_mut(),
                        )
                    });
                    if oid != pg_sys::InvalidOid {
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

/// Runs `f` with search_path set to `path` for the current transaction
/// level only; PostgreSQL restores it (also if `f` raises).
unsafe fn with_search_path<T>(path: &std::ffi::CStr, f: impl FnOnce() -> T) -> T {
    // SAFETY: the GUC nest level opened here is closed by AtEOXact_GUC on
    // the way out, or by the (sub)transaction abort if `f` raises.
    unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            path.as_ptr(),
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

/// `audit_trail._ddl_subcommands(pg_ddl_command, search_path text) RETURNS jsonb`: see
/// `describe`. Only meaningful inside a ddl_command_end event trigger, the
/// one place a pg_ddl_command value exists.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn audit_trail_ddl_subcommands(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: declared STRICT with a pg_ddl_command and a text argument, so
    // args[0] is a non-null pointer datum to a CollectedCommand and args[1]
    // a non-null (possibly toasted) text datum.
    let described = unsafe {
        let cmd = (*(*fcinfo).args.as_ptr()).value.cast_mut_ptr::<pg_sys::CollectedCommand>();
        let path = pg_sys::text_to_cstring((*(*fcinfo).args.as_ptr().add(1)).value.cast_mut_ptr());
        describe(cmd, std::ffi::CStr::from_ptr(path))
    };
    pgrx::JsonB(described).into_datum().unwrap_or_else(|| pgrx::error!("pg_audit_trail: could not build a jsonb value"))
}

#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo_audit_trail_ddl_subcommands() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

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

/// Read by the sql_drop event trigger; '{}' when nothing was stashed.
#[pg_extern(volatile, name = "_stashed_partitions")]
fn stashed_partitions() -> pgrx::JsonB {
    DROP_STASH.with(|s| s.borrow().as_ref().map(|j| pgrx::JsonB(j.0.clone()))).unwrap_or(pgrx::JsonB(serde_json::json!({})))
}
