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
