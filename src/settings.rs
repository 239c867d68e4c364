//! Every `audit_trail.*` setting, defined once and validated when set.
//!
//! The context settings (actor, client_ip, ...) are USERSET because the
//! application sets them per request. The DBA settings are SUSET: a reader
//! must not be able to switch off statement or read logging for their own
//! session, nor a writer to shrink the redaction patterns before `enable`.
//!
//! The settings Rust reads in a parsed form (client_ip, partition_interval,
//! log_reads, redact_patterns) are parsed once, by their check hook, which
//! hands the result to PostgreSQL as the value's `extra`; the assign hook
//! keeps a pointer to it (or the parsed enum) in a static the readers use.
//! `log_statement` is an enum setting: PostgreSQL itself parses it (names in
//! any case, hidden boolean spellings) into the integer GucSetting holds.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

pub static ACTOR: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CLIENT_IP: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static USER_AGENT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static SERVICE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUEST_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub static RETENTION: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"90 days"));
pub static ARCHIVE: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static ARCHIVE_RETENTION: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"0"));
pub static PARTITION_INTERVAL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"1 month"));
pub static PREMAKE: GucSetting<i32> = GucSetting::<i32>::new(3);
pub static REDACT_PATTERNS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(
    c"password,passwd,secret,token,api_key,apikey,private_key,mfa,otp,ssn",
));
/// Whether the values of object keys matching the redaction patterns are
/// redacted inside json and jsonb values and log_event's details (API §9).
pub static REDACT_JSON_KEYS: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static LOG_STATEMENT: GucSetting<LogStatement> = GucSetting::<LogStatement>::new(LogStatement::Off);
/// Read by SQL (`_index_partition`), not by Rust: defined here so that it is
/// a real, validated boolean once the library is loaded.
pub static INDEX_ENTITIES: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Read by SQL (`_index_partition`), as INDEX_ENTITIES.
pub static INDEX_ACTORS: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static LOG_READS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"export"));
pub static NOTIFY_CHANNEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// The Ed25519 key checkpoint() signs with (src/seal.rs reads the file).
pub static SEAL_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static NOTIFY_PAYLOAD: GucSetting<NotifyPayload> = GucSetting::<NotifyPayload>::new(NotifyPayload::Minimal);
/// Read by SQL (check_alerts), not by Rust: defined here so that it is
/// checked (a channel name) and only a superuser may point it elsewhere.
pub static ALERT_CHANNEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The value of a string setting, with `''` read as unset: a `SET LOCAL`
/// value reads back as the empty string once its transaction has ended.
pub fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    // SAFETY: the setting's variable lives in a static; PostgreSQL stores in
    // it NULL or a NUL-terminated string it owns, and frees that string only
    // when it assigns another value, which nothing between this read and the
    // copy below can do (the backend has one thread, and no SQL runs here).
    let raw = unsafe { *setting.as_ptr() };
    if raw.is_null() {
        return None;
    }
    // SAFETY: as above: a valid NUL-terminated string, copied at once.
    let s = unsafe { CStr::from_ptr(raw) }.to_string_lossy();
    if s.is_empty() {
        None
    } else {
        Some(s.into_owned())
    }
}

/// `audit_trail.partition_interval`: the range `maintain` gives each new
/// partition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PartitionInterval {
    Day = 1,
    Week = 2,
    Month = 3,
}

impl PartitionInterval {
    /// The name `maintain` uses for it.
    pub fn name(self) -> &'static str {
        match self {
            PartitionInterval::Day => "day",
            PartitionInterval::Week => "week",
            PartitionInterval::Month => "month",
        }
    }

    fn from_tag(tag: u8) -> Self {
        match tag {
            1 => PartitionInterval::Day,
            2 => PartitionInterval::Week,
            _ => PartitionInterval::Month,
        }
    }
}

/// `audit_trail.log_reads`: which reads of the trail are themselves recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum LogReads {
    None = 1,
    Export = 2,
    All = 3,
}

impl LogReads {
    fn parse(s: &str) -> Option<LogReads> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(LogReads::None),
            "export" => Some(LogReads::Export),
            "all" => Some(LogReads::All),
            _ => None,
        }
    }

    fn from_tag(tag: u8) -> Self {
        match tag {
            1 => LogReads::None,
            3 => LogReads::All,
            _ => LogReads::Export,
        }
    }
}

/// `audit_trail.log_statement`: what the `statement` column holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogStatement {
    /// Nothing (NULL).
    Off = 0,
    /// The statement with its literals replaced by `$n` (statement.rs).
    Normalized = 1,
    /// The statement as sent, literals and all.
    On = 2,
}

/// The names `audit_trail.log_statement` takes: `off`, `normalized`, `on`,
/// and, hidden (not listed in errors or pg_settings.enumvals), the other
/// spellings of a boolean it took when it was one, as PostgreSQL's own
/// enum settings that were booleans keep them (synchronous_commit,
/// huge_pages). Any case. SHOW gives the first name of the value.
const LOG_STATEMENT_NAMES: [pg_sys::config_enum_entry; 10] = {
    const fn entry(name: &'static CStr, val: LogStatement, hidden: bool) -> pg_sys::config_enum_entry {
        pg_sys::config_enum_entry { name: name.as_ptr(), val: val as i32, hidden }
    }
    [
        entry(c"off", LogStatement::Off, false),
        entry(c"normalized", LogStatement::Normalized, false),
        entry(c"on", LogStatement::On, false),
        entry(c"true", LogStatement::On, true),
        entry(c"false", LogStatement::Off, true),
        entry(c"yes", LogStatement::On, true),
        entry(c"no", LogStatement::Off, true),
        entry(c"1", LogStatement::On, true),
        entry(c"0", LogStatement::Off, true),
        // The end of the list.
        pg_sys::config_enum_entry { name: std::ptr::null(), val: 0, hidden: false },
    ]
};

// SAFETY: from_ordinal and to_ordinal agree with the values of
// CONFIG_ENUM_ENTRY, which points to a NUL-terminated list (a null name
// last) of static names that lives as long as the library: PostgreSQL keeps
// the pointer for the setting's life.
unsafe impl pgrx::guc::GucEnum for LogStatement {
    fn from_ordinal(ordinal: i32) -> Self {
        match ordinal {
            1 => LogStatement::Normalized,
            2 => LogStatement::On,
            _ => LogStatement::Off,
        }
    }

    fn to_ordinal(&self) -> i32 {
        *self as i32
    }

    const CONFIG_ENUM_ENTRY: *const pg_sys::config_enum_entry = LOG_STATEMENT_NAMES.as_ptr();
}

/// `audit_trail.notify_payload`: what the live feed sends (API §10). NOTIFY
/// has no access control, so by default it only wakes consumers up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NotifyPayload {
    /// One `{"txid": ..., "events": n}` per committing transaction.
    Minimal = 0,
    /// One JSON object per event, with tenant, entity_label, client_ip and
    /// service.
    Summary = 1,
}

const NOTIFY_PAYLOAD_NAMES: [pg_sys::config_enum_entry; 3] = {
    const fn entry(name: &'static CStr, val: NotifyPayload) -> pg_sys::config_enum_entry {
        pg_sys::config_enum_entry { name: name.as_ptr(), val: val as i32, hidden: false }
    }
    [
        entry(c"minimal", NotifyPayload::Minimal),
        entry(c"summary", NotifyPayload::Summary),
        pg_sys::config_enum_entry { name: std::ptr::null(), val: 0, hidden: false },
    ]
};

// SAFETY: as LogStatement's: the ordinals are the entries' values, and the
// list is static and NUL-terminated (a null name last).
unsafe impl pgrx::guc::GucEnum for NotifyPayload {
    fn from_ordinal(ordinal: i32) -> Self {
        match ordinal {
            1 => NotifyPayload::Summary,
            _ => NotifyPayload::Minimal,
        }
    }

    fn to_ordinal(&self) -> i32 {
        *self as i32
    }

    const CONFIG_ENUM_ENTRY: *const pg_sys::config_enum_entry = NOTIFY_PAYLOAD_NAMES.as_ptr();
}

// What the assign hooks keep of the current values, for the readers below.
// Defaults as the settings' boot values; defining a setting assigns it.
static PARTITION_INTERVAL_NOW: AtomicU8 = AtomicU8::new(PartitionInterval::Month as u8);
static LOG_READS_NOW: AtomicU8 = AtomicU8::new(LogReads::Export as u8);
/// The extra of client_ip's current value: a whole inet varlena; null when
/// no address is set.
static CLIENT_IP_NOW: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
/// The extra of redact_patterns' current value: the patterns, lower-cased,
/// joined by commas, NUL-terminated; null until the setting is defined.
static REDACT_PATTERNS_NOW: AtomicPtr<c_char> = AtomicPtr::new(std::ptr::null_mut());

/// `audit_trail.partition_interval`, parsed when it was set.
pub fn partition_interval() -> PartitionInterval {
    PartitionInterval::from_tag(PARTITION_INTERVAL_NOW.load(Ordering::Relaxed))
}

/// `audit_trail.log_reads`, parsed when it was set.
pub fn log_reads() -> LogReads {
    LogReads::from_tag(LOG_READS_NOW.load(Ordering::Relaxed))
}

/// `audit_trail.client_ip` as an inet datum in the current memory context;
/// None when no address is set (or only blanks).
pub fn client_ip() -> Option<Datum> {
    let inet = CLIENT_IP_NOW.load(Ordering::Relaxed);
    if inet.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer here is the extra of the setting's current
    // value, a whole inet varlena (4-byte header, never compressed) that
    // check_client_ip copied into memory PostgreSQL owns. PostgreSQL frees
    // an extra only after the assign hook has stored the next value's here,
    // and nothing between the load above and this copy can assign the
    // setting. The copy (datumCopy's, for a flat varlena) lives in the
    // current memory context: a SET later in the statement may free the
    // extra, never the copy.
    unsafe {
        let len = pgrx::varlena::varsize_any(inet.cast::<pg_sys::varlena>());
        let copy = pg_sys::palloc(len);
        std::ptr::copy_nonoverlapping(inet.cast::<u8>(), copy.cast::<u8>(), len);
        Some(Datum::from(copy))
    }
}

/// `audit_trail.redact_patterns` as lower-case, trimmed, non-empty parts.
pub fn redact_patterns() -> Vec<String> {
    let list = REDACT_PATTERNS_NOW.load(Ordering::Relaxed);
    if list.is_null() {
        // Not defined yet: _PG_init defines (and so assigns) it first thing.
        return patterns_of(&text(&REDACT_PATTERNS).unwrap_or_default());
    }
    // SAFETY: as in client_ip(): the extra of the current value, a
    // NUL-terminated string check_redact_patterns made, valid until the
    // setting is next assigned, which cannot happen before this copy.
    let list = unsafe { CStr::from_ptr(list) }.to_string_lossy();
    list.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// The patterns of a redact_patterns value: its comma-separated parts,
/// trimmed and lower-cased, the empty ones left out.
fn patterns_of(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect()
}

pub fn init() {
    let ctx = |name: &'static CStr, desc: &'static CStr, setting: &'static GucSetting<Option<CString>>| {
        GucRegistry::define_string_guc(name, desc, c"", setting, GucContext::Userset, GucFlags::default());
    };
    ctx(c"audit_trail.actor", c"Who is acting, as the application knows them.", &ACTOR);
    ctx(c"audit_trail.user_agent", c"The client's user agent.", &USER_AGENT);
    ctx(c"audit_trail.service", c"The calling service; default: application_name.", &SERVICE);
    ctx(c"audit_trail.tenant", c"The tenant the change belongs to.", &TENANT);
    ctx(c"audit_trail.request_id", c"The request that caused the change.", &REQUEST_ID);
    // SAFETY: define_string_guc_with_hooks asks for hooks that cannot let a
    // Rust panic cross into PostgreSQL: every hook below is #[pg_guard]ed,
    // and the check hooks trap the errors of the input functions they call
    // (a check hook must not throw).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.client_ip",
            c"The client's IP address; default: inet_client_addr().",
            c"",
            &CLIENT_IP,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_client_ip),
            Some(assign_client_ip),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.notify_channel",
            c"Channel on which each committed event is announced.",
            c"",
            &NOTIFY_CHANNEL,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_channel),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.alert_channel",
            c"Channel on which check_alerts() announces each alert it records.",
            c"",
            &ALERT_CHANNEL,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_channel),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.retention",
            c"Events older than this expire; 0 keeps all.",
            c"",
            &RETENTION,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_retention),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.archive_retention",
            c"Archived partitions older than this are dropped; 0 keeps them.",
            c"",
            &ARCHIVE_RETENTION,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_retention),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.partition_interval",
            c"Range of each new partition of audit_trail.events: 1 day, 1 week or 1 month.",
            c"",
            &PARTITION_INTERVAL,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_partition_interval),
            Some(assign_partition_interval),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.log_reads",
            c"Which reads of the trail are themselves recorded: none, export or all.",
            c"",
            &LOG_READS,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_log_reads),
            Some(assign_log_reads),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.redact_patterns",
            c"Comma-separated column-name substrings whose values are redacted.",
            c"",
            &REDACT_PATTERNS,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_redact_patterns),
            Some(assign_redact_patterns),
            None,
        );
    }
    GucRegistry::define_bool_guc(
        c"audit_trail.archive",
        c"Detach expired partitions into audit_trail_archive instead of dropping them.",
        c"",
        &ARCHIVE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"audit_trail.premake",
        c"Partitions of audit_trail.events kept ready ahead of now.",
        c"",
        &PREMAKE,
        1,
        1000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"audit_trail.log_statement",
        c"Record the top-level statement text with each event: off, normalized (literals replaced by $n) or on (verbatim).",
        c"",
        &LOG_STATEMENT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"audit_trail.notify_payload",
        c"What the live feed sends on audit_trail.notify_channel: minimal (one wake-up per transaction: txid and event count) or summary (every event).",
        c"",
        &NOTIFY_PAYLOAD,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"audit_trail.redact_json_keys",
        c"Redact the values of object keys that match the redaction patterns inside json and jsonb values and log_event details.",
        c"",
        &REDACT_JSON_KEYS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"audit_trail.index_entities",
        c"Give new partitions of audit_trail.events the (entity_type, entity_id, id) index.",
        c"Off: cheaper writes; history(), row_as_of() and entity filters then scan the partitions made meanwhile.",
        &INDEX_ENTITIES,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"audit_trail.index_actors",
        c"Give new partitions of audit_trail.events the (lower(actor), id) index.",
        c"Off: cheaper writes; search(actors => ...) then reads newest first through the partitions made meanwhile.",
        &INDEX_ACTORS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"audit_trail.seal_key_file",
        c"File holding the Ed25519 key that signs checkpoint() notes; empty: unsigned.",
        c"64 hex digits (a 32-byte seed) or a PKCS#8 PEM private key, readable by the server; relative to the data directory.",
        &SEAL_KEY_FILE,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SAFETY: called from _PG_init, as PostgreSQL expects, with a static
    // NUL-terminated prefix that it copies.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"audit_trail".as_ptr()) };
}

/// What a check hook's parser keeps of a value it accepts: bytes for the
/// assign hook (the value's `extra`), or nothing.
type Parsed = Result<Option<Vec<u8>>, &'static CStr>;

#[cfg(feature = "pg15")]
unsafe extern "C" {
    /// C's malloc: PostgreSQL 15 frees a setting's extra with free(), and
    /// its guc_malloc is static.
    fn malloc(size: usize) -> *mut c_void;
}

/// `size` bytes for a setting's `extra`, allocated as PostgreSQL frees
/// extras; null when memory runs out (logged, never thrown).
#[cfg(feature = "pg15")]
fn guc_alloc(size: usize) -> *mut c_void {
    // SAFETY: malloc has no precondition; a null result is handled by the caller.
    unsafe { malloc(size) }
}

/// `size` bytes for a setting's `extra`, allocated as PostgreSQL frees
/// extras; null when memory runs out (logged, never thrown).
#[cfg(not(feature = "pg15"))]
fn guc_alloc(size: usize) -> *mut c_void {
    // SAFETY: guc_malloc at elevel LOG reports running out of memory and
    // returns NULL rather than throwing, as a check hook requires.
    unsafe { pg_sys::guc_malloc(pg_sys::LOG as i32, size) }
}

/// Runs `parse` on the proposed value, trimmed. A check hook must never
/// throw, so any error raised inside (e.g. by a type's input function)
/// counts as "invalid". What `parse` keeps becomes the value's `extra`, in
/// memory PostgreSQL owns from then on and frees when no value uses it.
///
/// # Safety
/// `newval` and `extra` must be the arguments PostgreSQL passed to a string
/// setting's check hook.
unsafe fn check_with(newval: *mut *mut c_char, extra: *mut *mut c_void, parse: fn(&str) -> Parsed) -> bool {
    // SAFETY: as the caller promises, `newval` points at the proposed value,
    // NULL or a NUL-terminated string valid for the whole hook.
    let raw = unsafe { *newval };
    if raw.is_null() {
        return true;
    }
    // SAFETY: as above.
    let value = unsafe { CStr::from_ptr(raw) }.to_string_lossy().into_owned();
    match parse(value.trim()) {
        Ok(None) => true,
        Ok(Some(kept)) => {
            let block = guc_alloc(kept.len());
            if block.is_null() {
                return false;
            }
            // SAFETY: `block` is a fresh allocation of kept.len() bytes, and
            // `extra` is where PostgreSQL takes the hook's extra from (the
            // caller's promise); it owns the block from now on.
            unsafe {
                std::ptr::copy_nonoverlapping(kept.as_ptr(), block.cast::<u8>(), kept.len());
                *extra = block;
            }
            true
        }
        Err(detail) => {
            // SAFETY: GUC_check_errdetail_string is the variable PostgreSQL
            // reads a check hook's detail from when the hook returns false
            // (what GUC_check_errdetail() sets); the text is copied into the
            // current memory context, where PostgreSQL expects it.
            unsafe {
                pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
            }
            false
        }
    }
}

/// The byte a check hook kept as the value's extra, if it kept one.
///
/// # Safety
/// `extra` must be null or point to at least one readable byte.
unsafe fn extra_tag(extra: *mut c_void) -> Option<u8> {
    // SAFETY: as the caller promises.
    (!extra.is_null()).then(|| unsafe { *extra.cast::<u8>() })
}

/// Parses `s` with a type's input function, trapping the error it may raise.
fn parses_as(type_input: fn(&str) -> Option<Datum>, s: &str) -> Option<Datum> {
    let s = s.to_string();
    PgTryBuilder::new(move || type_input(&s)).catch_others(|_| None).execute()
}

fn interval_in(s: &str) -> Option<Datum> {
    let c = CString::new(s).ok()?;
    // SAFETY: interval_in's three arguments, as its SQL signature has them:
    // a C string `c` keeps alive across the call, the type modifier's
    // typelem (unused) and typmod -1.
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::interval_in,
            &[Some(Datum::from(c.as_ptr())), Some(Datum::from(pg_sys::InvalidOid)), Some(Datum::from(-1i32))],
        )
    }
}

fn inet_in(s: &str) -> Option<Datum> {
    let c = CString::new(s).ok()?;
    // SAFETY: inet_in's one argument, a C string `c` keeps alive across the call.
    unsafe { pgrx::direct_function_call_as_datum(pg_sys::inet_in, &[Some(Datum::from(c.as_ptr()))]) }
}

/// `s` as an interval, if interval_in takes it.
fn parse_interval(s: &str) -> Option<pg_sys::Interval> {
    let d = parses_as(interval_in, s)?;
    // SAFETY: a non-null result of interval_in points to the Interval it
    // palloc'd in the current memory context, which nothing resets before
    // this copy.
    Some(unsafe { *d.cast_mut_ptr::<pg_sys::Interval>() })
}

/// Microseconds in an interval, months counted as 30 days (as PostgreSQL's
/// interval comparison does).
fn interval_micros(iv: &pg_sys::Interval) -> i64 {
    iv.time + (iv.day as i64 + iv.month as i64 * 30) * 86_400_000_000
}

fn retention_ok(s: &str) -> Parsed {
    if s.is_empty() || s == "0" {
        return Ok(None);
    }
    match parse_interval(s) {
        Some(iv) if interval_micros(&iv) >= 0 => Ok(None),
        Some(_) => Err(c"A retention cannot be negative; use 0 to keep everything."),
        None => Err(c"Expected an interval such as '90 days', or 0 to keep everything."),
    }
}

/// The three intervals `maintain` can lay partitions out by.
pub fn partition_interval_kind(s: &str) -> Option<PartitionInterval> {
    let iv = parse_interval(s)?;
    match (iv.month, iv.day, iv.time) {
        (0, 1, 0) => Some(PartitionInterval::Day),
        (0, 7, 0) => Some(PartitionInterval::Week),
        (1, 0, 0) => Some(PartitionInterval::Month),
        _ => None,
    }
}

fn partition_interval_ok(s: &str) -> Parsed {
    match partition_interval_kind(s) {
        Some(kind) => Ok(Some(vec![kind as u8])),
        None => Err(c"Allowed values: '1 day', '1 week', '1 month'."),
    }
}

fn log_reads_ok(s: &str) -> Parsed {
    match LogReads::parse(s) {
        Some(which) => Ok(Some(vec![which as u8])),
        None => Err(c"Allowed values: none, export, all."),
    }
}

/// Keeps the whole inet varlena the address parses to.
fn inet_ok(s: &str) -> Parsed {
    if s.is_empty() {
        return Ok(None);
    }
    let Some(d) = parses_as(inet_in, s) else {
        return Err(c"Expected an IP address such as 203.0.113.7 or 2001:db8::1.");
    };
    // SAFETY: a non-null result of inet_in points to the inet it palloc'd in
    // the current memory context, a plain varlena whose header says its
    // size; nothing frees it before this copy.
    let bytes = unsafe {
        let v = d.cast_mut_ptr::<pg_sys::varlena>();
        std::slice::from_raw_parts(v.cast::<u8>(), pgrx::varlena::varsize_any(v)).to_vec()
    };
    Ok(Some(bytes))
}

fn channel_ok(s: &str) -> Parsed {
    if s.len() < pg_sys::NAMEDATALEN as usize {
        Ok(None)
    } else {
        Err(c"A channel name is at most 63 bytes long.")
    }
}

/// A list of column-name substrings, comma-separated. Refused: an array
/// literal (its braces would become part of the first and last patterns),
/// and a pattern longer than any column name can be (63 bytes, so at most
/// 63 characters: lower-casing a name never gives it more characters than
/// the Rust lower-casing of the pattern has). Keeps the parsed list.
fn redact_patterns_ok(s: &str) -> Parsed {
    if s.starts_with('{') && s.ends_with('}') {
        return Err(c"Expected a comma-separated list such as 'password,secret' ('' for none), not an array literal.");
    }
    let max = pg_sys::NAMEDATALEN as usize - 1;
    if s.split(',').any(|p| p.trim().chars().count() > max) {
        return Err(c"A pattern is part of a column name: at most 63 characters.");
    }
    let mut kept = patterns_of(s).join(",").into_bytes();
    kept.push(0);
    Ok(Some(kept))
}

#[pg_guard]
unsafe extern "C-unwind" fn check_channel(newval: *mut *mut c_char, extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, channel_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_client_ip(newval: *mut *mut c_char, extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, inet_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_client_ip(_newval: *const c_char, extra: *mut c_void) {
    CLIENT_IP_NOW.store(extra, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn check_retention(newval: *mut *mut c_char, extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, retention_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_partition_interval(
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, partition_interval_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_partition_interval(_newval: *const c_char, extra: *mut c_void) {
    // SAFETY: `extra` is what check_partition_interval kept for this value:
    // one byte, or null (a NULL value, which the setting never has).
    let tag = unsafe { extra_tag(extra) }.unwrap_or(PartitionInterval::Month as u8);
    PARTITION_INTERVAL_NOW.store(tag, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn check_log_reads(newval: *mut *mut c_char, extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, log_reads_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_log_reads(_newval: *const c_char, extra: *mut c_void) {
    // SAFETY: `extra` is what check_log_reads kept for this value: one byte,
    // or null (a NULL value, which the setting never has).
    let tag = unsafe { extra_tag(extra) }.unwrap_or(LogReads::Export as u8);
    LOG_READS_NOW.store(tag, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn check_redact_patterns(
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL calls this as the setting's check hook.
    unsafe { check_with(newval, extra, redact_patterns_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_redact_patterns(_newval: *const c_char, extra: *mut c_void) {
    REDACT_PATTERNS_NOW.store(extra.cast::<c_char>(), Ordering::Relaxed);
}

/// `current_setting(name)` for our own settings. Being a function of the
/// library, calling it loads the library, so the setting is defined (with its
/// default) even in a session that has not touched the extension yet — a
/// pg_cron job running maintain(), say.
#[pg_extern(stable, name = "_setting")]
fn setting_sql(name: &str) -> Option<String> {
    if !name.starts_with("audit_trail.") {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("pg_audit_trail: \"{name}\" is not a setting of pg_audit_trail")
        );
    }
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name `c` keeps alive across the call; with
    // missing_ok false an unknown name raises PostgreSQL's own error
    // (42704, naming it). The result is NULL or a string PostgreSQL owns
    // until the setting is next assigned, copied at once below.
    let v = unsafe { pg_sys::GetConfigOption(c.as_ptr(), false, false) };
    if v.is_null() {
        None
    } else {
        // SAFETY: as above.
        Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
    }
}

/// The redaction patterns in force, for the SQL side.
#[pg_extern(stable, name = "_redact_patterns")]
fn redact_patterns_sql() -> Vec<String> {
    redact_patterns()
}

/// Whether a column name contains one of the redaction patterns, case
/// ignored, for `audit_trail._redacted` (sql/config.sql), the one definition
/// of which columns are redacted. The name is lower-cased as the patterns
/// are (`patterns_of`: Rust's Unicode lower-casing, whatever the database's
/// locale, in which SQL's `lower()` may change ASCII letters only). An empty
/// pattern matches nothing.
#[pg_extern(immutable, parallel_safe, name = "_matches_redact_patterns")]
fn matches_redact_patterns(name: &str, patterns: Vec<Option<String>>) -> bool {
    let name = name.to_lowercase();
    patterns.iter().flatten().map(|p| p.to_lowercase()).any(|p| !p.is_empty() && name.contains(&p))
}

/// The partition interval's kind (day, week, month) for the SQL side.
#[pg_extern(stable, name = "_partition_interval_kind")]
fn partition_interval_kind_sql() -> &'static str {
    partition_interval().name()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn partition_intervals() {
        use super::PartitionInterval::{Day, Month, Week};
        assert_eq!(super::partition_interval_kind("1 day"), Some(Day));
        assert_eq!(super::partition_interval_kind("7 days"), Some(Week));
        assert_eq!(super::partition_interval_kind("1 mon"), Some(Month));
        assert_eq!(super::partition_interval_kind("2 days"), None);
        assert_eq!(super::partition_interval_kind("bogus"), None);
    }

    #[pg_test]
    fn retentions() {
        assert!(super::retention_ok("0").is_ok());
        assert!(super::retention_ok("90 days").is_ok());
        assert!(super::retention_ok("-1 day").is_err());
        assert!(super::retention_ok("soon").is_err());
    }

    #[pg_test]
    fn redact_pattern_lists() {
        assert_eq!(super::redact_patterns_ok("").unwrap(), Some(b"\0".to_vec()));
        assert_eq!(super::redact_patterns_ok(" Pass , ,TOKEN,").unwrap(), Some(b"pass,token\0".to_vec()));
        assert!(super::redact_patterns_ok("password,api key,x{y}").is_ok());
        assert!(super::redact_patterns_ok(&"x".repeat(63)).is_ok());
        assert!(super::redact_patterns_ok(&format!("pin,{}", "x".repeat(64))).is_err());
        assert!(super::redact_patterns_ok("{password,secret}").is_err());
        assert!(super::redact_patterns_ok("{}").is_err());
    }

    #[pg_test]
    fn redact_pattern_matching() {
        let m = |name: &str, patterns: &[&str]| {
            super::matches_redact_patterns(name, patterns.iter().map(|p| Some(p.to_string())).collect())
        };
        assert!(m("MFA_Secret", &["mfa"]));
        assert!(m("api_token", &["password", "token"]));
        assert!(!m("api_credential", &["password", "token"]));
        assert!(!m("id", &[""]));
        assert!(!m("id", &[]));
        // Unicode lower-casing on both sides, whatever the database's locale.
        assert!(m("ÜBER_GEHEIM", &["über"]));
        assert!(m("über_geheim", &["ÜBER"]));
        let sql = Spi::get_one::<bool>("SELECT audit_trail._matches_redact_patterns('ÜBER_GEHEIM', '{über}')").unwrap();
        assert_eq!(sql, Some(true));
    }

    /// The parsed values follow SET, SET LOCAL and their end.
    #[pg_test]
    fn settings_are_parsed_when_set() {
        use super::{LogReads, PartitionInterval};
        Spi::run("SET LOCAL audit_trail.partition_interval = '7 days'").unwrap();
        assert_eq!(super::partition_interval(), PartitionInterval::Week);
        Spi::run("SET LOCAL audit_trail.log_reads = 'ALL'").unwrap();
        assert_eq!(super::log_reads(), LogReads::All);
        Spi::run("SET LOCAL audit_trail.redact_patterns = ' PassWord , ,Secret'").unwrap();
        assert_eq!(super::redact_patterns(), ["password", "secret"]);
        Spi::run("SET LOCAL audit_trail.client_ip = ' 203.0.113.9 '").unwrap();
        let ip = super::client_ip().unwrap();
        // SAFETY: to_text returns a text datum of the inet's output.
        let shown = unsafe { String::from_datum(crate::json::to_text(ip, pg_sys::INETOID), false) };
        assert_eq!(shown.as_deref(), Some("203.0.113.9"));
        Spi::run("SET LOCAL audit_trail.client_ip = '   '").unwrap();
        assert!(super::client_ip().is_none());
        Spi::run("RESET audit_trail.partition_interval; RESET audit_trail.log_reads; RESET audit_trail.redact_patterns")
            .unwrap();
        assert_eq!(super::partition_interval(), PartitionInterval::Month);
        assert_eq!(super::log_reads(), LogReads::Export);
        assert!(super::redact_patterns().contains(&"password".to_string()));
    }

    /// log_statement takes off, normalized and on, and the spellings of a
    /// boolean it took when it was one; SHOW gives the first name.
    #[pg_test]
    fn log_statement_values() {
        use super::LogStatement::{Normalized, Off, On};
        for (value, want, shown) in [
            ("normalized", Normalized, "normalized"),
            ("ON", On, "on"),
            ("off", Off, "off"),
            ("true", On, "on"),
            ("yes", On, "on"),
            ("1", On, "on"),
            ("false", Off, "off"),
            ("no", Off, "off"),
            ("0", Off, "off"),
            ("Normalized", Normalized, "normalized"),
        ] {
            Spi::run(&format!("SET LOCAL audit_trail.log_statement = '{value}'")).unwrap();
            assert_eq!(super::LOG_STATEMENT.get(), want, "{value}");
            let show = Spi::get_one::<String>("SELECT current_setting('audit_trail.log_statement')").unwrap();
            assert_eq!(show.as_deref(), Some(shown), "{value}");
        }
        let listed = Spi::get_one::<Vec<String>>("SELECT enumvals FROM pg_settings WHERE name = 'audit_trail.log_statement'").unwrap();
        assert_eq!(listed, Some(vec!["off".into(), "normalized".into(), "on".into()]));
    }

    #[pg_test(error = "invalid value for parameter \"audit_trail.log_statement\": \"verbatim\"")]
    fn bad_log_statement_is_refused_when_set() {
        Spi::run("SET audit_trail.log_statement = 'verbatim'").unwrap();
    }

    #[pg_test(error = "parameter \"audit_trail.redact_json_keys\" requires a Boolean value")]
    fn redact_json_keys_is_a_boolean() {
        Spi::run("SET audit_trail.redact_json_keys = 'sometimes'").unwrap();
    }

    #[pg_test(error = "pg_audit_trail: \"work_mem\" is not a setting of pg_audit_trail")]
    fn setting_refuses_other_settings() {
        Spi::run("SELECT audit_trail._setting('work_mem')").unwrap();
    }

    #[pg_test(error = "invalid value for parameter \"audit_trail.partition_interval\": \"2 days\"")]
    fn bad_interval_is_refused_when_set() {
        Spi::run("SET audit_trail.partition_interval = '2 days'").unwrap();
    }
}
