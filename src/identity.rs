//! Who the extension's own SQL and writes run as, with which search_path.
//! Used by the whole crate: SQL the extension runs for itself must not
//! resolve anything from a schema the caller put on their path, and work on
//! the extension's tables runs as the owner of audit_trail.events.

use pgrx::pg_sys;

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as a function's SET
/// clause would: SQL the extension runs for itself must not resolve a
/// function or operator from a schema the caller put on their path.
/// PostgreSQL unwinds the setting itself if `f` raises.
pub fn with_pinned_search_path<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: we are in a transaction (every caller is SQL-callable code or
    // a trigger). NewGUCNestLevel opens a nesting level that AtEOXact_GUC
    // closes; if `f` raises, the (sub)transaction abort pops the level and
    // restores the setting, as for a function's SET clause. The strings
    // are static C strings that set_config_option copies.
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

/// Runs `f` as `user` with `extra` security context bits added; the
/// identity is put back afterwards, and by PostgreSQL's (sub)transaction
/// abort if `f` raises (it resets the user id and security context, as it
/// does for SECURITY DEFINER functions).
fn as_user<T>(user: pg_sys::Oid, extra: u32, f: impl FnOnce() -> T) -> T {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_sec = 0;
    // SAFETY: plain reads and writes of the backend's current identity, as
    // fmgr_security_definer does around a SECURITY DEFINER call; `user` is
    // the oid of an existing role (the log's owner, read from pg_class).
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_sec);
        pg_sys::SetUserIdAndSecContext(user, saved_sec | extra as i32);
    }
    let r = f();
    // SAFETY: as above: puts back what was read.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_sec) };
    r
}

/// Runs `f` as the owner of audit_trail.events, with a pinned search_path,
/// for work on the extension's own tables that the caller has no privilege
/// for. The caller's identity is restored afterwards, and by PostgreSQL
/// itself if `f` raises.
pub fn as_log_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = crate::log_ids::log_ids().owner;
    with_pinned_search_path(|| as_user(owner, pg_sys::SECURITY_LOCAL_USERID_CHANGE, f))
}

/// Runs `f` as `owner` in a security-restricted operation: the write of
/// events, which must neither need the caller's privileges nor run anything
/// of theirs (a CHECK constraint on the log sees the owner, and cannot
/// change the session's state).
pub fn restricted_as<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    as_user(owner, pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION, f)
}
