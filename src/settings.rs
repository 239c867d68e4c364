//! Every `audit_trail.*` setting, defined once and validated when set.
//!
//! The context settings (actor, client_ip, ...) are USERSET because the
//! application sets them per request. The DBA settings are SUSET: a reader
//! must not be able to switch off statement or read logging for their own
//! session, nor a writer to shrink the redaction patterns before `enable`.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::ffi::{c_char, c_void, CStr, CString};

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
pub static LOG_STATEMENT: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Read by SQL (`_index_partition`), not by Rust: defined here so that it is
/// a real, validated boolean once the library is loaded.
pub static INDEX_ENTITIES: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static LOG_READS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"export"));
pub static NOTIFY_CHANNEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The value of a string setting, with `''` read as unset: a `SET LOCAL`
/// value reads back as the empty string once its transaction has ended.
pub fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    // SAFETY: the GUC machinery owns the pointer and keeps it valid until the
    // next assignment, which cannot happen while we copy it.
    let raw = unsafe { *setting.as_ptr() };
    if raw.is_null() {
        return None;
    }
    let s = unsafe { CStr::from_ptr(raw) }.to_string_lossy();
    if s.is_empty() {
        None
    } else {
        Some(s.into_owned())
    }
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
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"audit_trail.client_ip",
            c"The client's IP address; default: inet_client_addr().",
            c"",
            &CLIENT_IP,
            GucContext::Userset,
            GucFlags::default(),
            Some(check_inet),
            None,
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
            None,
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
            None,
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
    GucRegistry::define_string_guc(
        c"audit_trail.redact_patterns",
        c"Comma-separated column-name substrings whose values are redacted.",
        c"",
        &REDACT_PATTERNS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"audit_trail.log_statement",
        c"Record the top-level statement text with each event.",
        c"",
        &LOG_STATEMENT,
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
    unsafe { pg_sys::MarkGUCPrefixReserved(c"audit_trail".as_ptr()) };
}

/// Runs `f` on the proposed value; a check hook must never throw, so any
/// error raised inside (e.g. by a type's input function) counts as "invalid".
unsafe fn check_with(newval: *mut *mut c_char, f: fn(&str) -> Result<(), &'static CStr>) -> bool {
    let raw = unsafe { *newval };
    if raw.is_null() {
        return true;
    }
    let value = unsafe { CStr::from_ptr(raw) }.to_string_lossy().into_owned();
    match f(value.trim()) {
        Ok(()) => true,
        Err(detail) => {
            unsafe {
                pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
            }
            false
        }
    }
}

/// Parses `s` with a type's input function, trapping the error it may raise.
fn parses_as(type_input: fn(&str) -> Datum, s: &str) -> Option<Datum> {
    let s = s.to_string();
    PgTryBuilder::new(move || Some(type_input(&s)))
        .catch_others(|_| None)
        .execute()
}

pub fn interval_in(s: &str) -> Datum {
    let c = CString::new(s).unwrap_or_default();
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::interval_in,
            &[Some(Datum::from(c.as_ptr())), Some(Datum::from(pg_sys::InvalidOid)), Some(Datum::from(-1i32))],
        )
        .unwrap_or(Datum::from(0))
    }
}

pub fn inet_in(s: &str) -> Datum {
    let c = CString::new(s).unwrap_or_default();
    unsafe { pgrx::direct_function_call_as_datum(pg_sys::inet_in, &[Some(Datum::from(c.as_ptr()))]).unwrap_or(Datum::from(0)) }
}

/// Microseconds in an interval, months counted as 30 days (as PostgreSQL's
/// interval comparison does).
pub fn interval_micros(d: Datum) -> i64 {
    let iv = unsafe { &*(d.cast_mut_ptr::<pg_sys::Interval>()) };
    iv.time + (iv.day as i64 + iv.month as i64 * 30) * 86_400_000_000
}

fn retention_ok(s: &str) -> Result<(), &'static CStr> {
    if s.is_empty() || s == "0" {
        return Ok(());
    }
    match parses_as(interval_in, s) {
        Some(d) if interval_micros(d) >= 0 => Ok(()),
        Some(_) => Err(c"A retention cannot be negative; use 0 to keep everything."),
        None => Err(c"Expected an interval such as '90 days', or 0 to keep everything."),
    }
}

/// The three intervals `maintain` can lay partitions out by, as the name it
/// uses for each.
pub fn partition_interval_kind(s: &str) -> Option<&'static str> {
    let d = parses_as(interval_in, s)?;
    let iv = unsafe { &*(d.cast_mut_ptr::<pg_sys::Interval>()) };
    match (iv.month, iv.day, iv.time) {
        (0, 1, 0) => Some("day"),
        (0, 7, 0) => Some("week"),
        (1, 0, 0) => Some("month"),
        _ => None,
    }
}

fn partition_interval_ok(s: &str) -> Result<(), &'static CStr> {
    partition_interval_kind(s).map(|_| ()).ok_or(c"Allowed values: '1 day', '1 week', '1 month'.")
}

fn log_reads_ok(s: &str) -> Result<(), &'static CStr> {
    match s.to_ascii_lowercase().as_str() {
        "none" | "export" | "all" => Ok(()),
        _ => Err(c"Allowed values: none, export, all."),
    }
}

fn inet_ok(s: &str) -> Result<(), &'static CStr> {
    if s.is_empty() || parses_as(inet_in, s).is_some() {
        Ok(())
    } else {
        Err(c"Expected an IP address such as 203.0.113.7 or 2001:db8::1.")
    }
}

fn channel_ok(s: &str) -> Result<(), &'static CStr> {
    if s.len() < pg_sys::NAMEDATALEN as usize {
        Ok(())
    } else {
        Err(c"A channel name is at most 63 bytes long.")
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_channel(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe { check_with(newval, channel_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_inet(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe { check_with(newval, inet_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_retention(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe { check_with(newval, retention_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_partition_interval(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe { check_with(newval, partition_interval_ok) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_log_reads(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe { check_with(newval, log_reads_ok) }
}

/// `audit_trail.redact_patterns` as lower-case, trimmed, non-empty parts.
pub fn redact_patterns() -> Vec<String> {
    text(&REDACT_PATTERNS)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `current_setting(name)` for our own settings. Being a function of the
/// library, calling it loads the library, so the setting is defined (with its
/// default) even in a session that has not touched the extension yet — a
/// pg_cron job running maintain(), say.
#[pg_extern(stable, name = "_setting")]
fn setting_sql(name: &str) -> Option<String> {
    if !name.starts_with("audit_trail.") {
        error!("pg_audit_trail: {name} is not a setting of pg_audit_trail");
    }
    let c = CString::new(name).ok()?;
    let v = unsafe { pg_sys::GetConfigOption(c.as_ptr(), false, false) };
    if v.is_null() {
        None
    } else {
        Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
    }
}

/// The redaction patterns in force, for the SQL side.
#[pg_extern(stable, name = "_redact_patterns")]
fn redact_patterns_sql() -> Vec<String> {
    redact_patterns()
}

/// The partition interval's kind (day, week, month) for the SQL side.
#[pg_extern(stable, name = "_partition_interval_kind")]
fn partition_interval_kind_sql() -> &'static str {
    let s = text(&PARTITION_INTERVAL).unwrap_or_else(|| "1 month".into());
    partition_interval_kind(&s).unwrap_or_else(|| {
        error!("audit_trail.partition_interval is \"{s}\"; allowed values: '1 day', '1 week', '1 month'")
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn partition_intervals() {
        assert_eq!(super::partition_interval_kind("1 day"), Some("day"));
        assert_eq!(super::partition_interval_kind("7 days"), Some("week"));
        assert_eq!(super::partition_interval_kind("1 mon"), Some("month"));
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

    #[pg_test(error = "invalid value for parameter \"audit_trail.partition_interval\": \"2 days\"")]
    fn bad_interval_is_refused_when_set() {
        Spi::run("SET audit_trail.partition_interval = '2 days'").unwrap();
    }
}
