//! Who is acting: the context settings, falling back to what the server
//! knows about the connection. Read once per statement, never per row.

use crate::settings;
use pgrx::pg_sys;
use std::ffi::CStr;

/// The "who, from where" columns of an event.
pub struct Context {
    pub actor: String,
    pub db_user: String,
    /// An inet datum: the setting (validated when set), else the connection's.
    pub client_ip: Option<pg_sys::Datum>,
    pub user_agent: Option<String>,
    pub service: Option<String>,
    pub tenant: Option<String>,
    pub request_id: Option<String>,
    pub statement: Option<String>,
}

impl Context {
    pub fn current() -> Context {
        let db_user = session_user();
        let actor = settings::text(&settings::ACTOR).unwrap_or_else(|| {
            if is_system_backend() {
                "System".to_string()
            } else {
                db_user.clone()
            }
        });
        Context {
            actor,
            // Parsed when set (blanks around it allowed, all blanks: no
            // address set).
            client_ip: settings::client_ip().or_else(client_addr),
            user_agent: settings::text(&settings::USER_AGENT),
            service: settings::text(&settings::SERVICE).or_else(application_name),
            tenant: settings::text(&settings::TENANT),
            request_id: settings::text(&settings::REQUEST_ID),
            statement: crate::statement::current(),
            db_user,
        }
    }
}

fn session_user() -> String {
    // SAFETY: the session user is set once the backend has authenticated,
    // before any SQL runs; GetUserNameFromId (noerr false) throws rather than
    // return NULL, and its palloc'd copy is copied again at once.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetSessionUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// Background workers, and pg_cron's jobs (which connect over libpq as
/// ordinary backends named `pg_cron`), act as `System`.
fn is_system_backend() -> bool {
    // SAFETY: MyBackendType is a plain global set at process start, before
    // any extension code runs, and never changed after.
    if unsafe { pg_sys::MyBackendType } != pg_sys::BackendType::B_BACKEND {
        return true;
    }
    application_name().as_deref() == Some("pg_cron")
}

fn application_name() -> Option<String> {
    // SAFETY: application_name is the variable of a string setting: NULL or
    // a NUL-terminated string PostgreSQL frees only when it assigns another
    // value, which nothing before the copy below can do.
    let raw = unsafe { pg_sys::application_name };
    if raw.is_null() {
        return None;
    }
    // SAFETY: as above.
    let s = unsafe { CStr::from_ptr(raw) }.to_string_lossy();
    if s.is_empty() {
        None
    } else {
        Some(s.into_owned())
    }
}

thread_local! {
    /// The connection's address never changes, and inet_client_addr() formats
    /// and parses it again on every call (getnameinfo): worked out once per
    /// backend, kept in TopMemoryContext. Outer None: not looked up yet.
    static CLIENT_ADDR: std::cell::Cell<Option<Option<pg_sys::Datum>>> = const { std::cell::Cell::new(None) };
}

/// `inet_client_addr()`: NULL over a Unix socket or in a background worker.
fn client_addr() -> Option<pg_sys::Datum> {
    if let Some(addr) = CLIENT_ADDR.get() {
        return addr;
    }
    // SAFETY: inet_client_addr takes no argument and reads the connection's
    // Port (NULL over a Unix socket or in a background worker: no address).
    // Its result is made in TopMemoryContext, which lives as long as the
    // backend, so the datum kept in CLIENT_ADDR never dangles; the previous
    // context is made current again before anything else runs.
    let addr = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let addr = pgrx::direct_function_call_as_datum(pg_sys::inet_client_addr, &[]);
        pg_sys::MemoryContextSwitchTo(old);
        addr
    };
    CLIENT_ADDR.set(Some(addr));
    addr
}

/// Whether we are inside BEGIN ... COMMIT, where a local context lasts.
#[pgrx::pg_extern(volatile, name = "_in_transaction_block")]
fn in_transaction_block() -> bool {
    // SAFETY: IsTransactionBlock only reads the transaction state, which a
    // function call always has.
    unsafe { pg_sys::IsTransactionBlock() }
}
