//! Key values rendered the same whatever the writing session's settings
//! (API §9): `entity_id` is what a key's type outputs with `DateStyle = ISO`,
//! `TimeZone = UTC`, `IntervalStyle = postgres`, `extra_float_digits = 1`
//! and `bytea_output = hex`, so a `timestamptz` key written under three time
//! zones is one id. The readers normalise a key they are given the same way
//! (`_canonical_text`, through the key's type input under the caller's
//! settings).
//!
//! The settings are switched by assigning the variables behind them for the
//! duration of the rendering and putting them back (also when the output
//! function raises): a GUC nest level per row would cost more than the key
//! itself.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::c_int;

unsafe extern "C" {
    /// utils/bytea.h; pgrx binds no header that declares it.
    static mut bytea_output: c_int;
}

/// BYTEA_OUTPUT_HEX in utils/bytea.h.
const BYTEA_OUTPUT_HEX: c_int = 1;

thread_local! {
    /// pg_tzset("UTC"): cached by PostgreSQL for the backend's life.
    static UTC: Cell<*mut pg_sys::pg_tz> = const { Cell::new(std::ptr::null_mut()) };
}

fn utc() -> *mut pg_sys::pg_tz {
    UTC.with(|u| {
        if u.get().is_null() {
            // SAFETY: pg_tzset looks a zone up (loading it once into its
            // backend-lifetime cache) and returns a pointer into that cache,
            // or NULL if the zone is unknown, which "UTC" never is.
            let tz = unsafe { pg_sys::pg_tzset(c"UTC".as_ptr()) };
            if tz.is_null() {
                error!("pg_audit_trail: time zone UTC is unknown to this server");
            }
            u.set(tz);
        }
        u.get()
    })
}

/// Runs `f` with the output settings of canonical key text.
pub fn with_canonical_output<T>(f: impl FnOnce() -> T) -> T {
    struct Saved {
        date_style: c_int,
        date_order: c_int,
        interval_style: c_int,
        extra_float_digits: c_int,
        bytea_output: c_int,
        timezone: *mut pg_sys::pg_tz,
    }
    impl Drop for Saved {
        fn drop(&mut self) {
            // SAFETY: puts back the values read below; a backend is single
            // threaded and nothing else ran in between but `f`, which may
            // only have read them.
            unsafe {
                pg_sys::DateStyle = self.date_style;
                pg_sys::DateOrder = self.date_order;
                pg_sys::IntervalStyle = self.interval_style;
                pg_sys::extra_float_digits = self.extra_float_digits;
                bytea_output = self.bytea_output;
                pg_sys::session_timezone = self.timezone;
            }
        }
    }
    let tz = utc();
    // SAFETY: plain reads and writes of the variables behind DateStyle,
    // IntervalStyle, extra_float_digits, bytea_output and TimeZone, as their
    // GUC assign hooks write them; `tz` is a valid zone from pg_tzset. The
    // guard restores them however `f` ends (a PostgreSQL error unwinds
    // through here as a Rust panic).
    let _saved = unsafe {
        let saved = Saved {
            date_style: pg_sys::DateStyle,
            date_order: pg_sys::DateOrder,
            interval_style: pg_sys::IntervalStyle,
            extra_float_digits: pg_sys::extra_float_digits,
            bytea_output,
            timezone: pg_sys::session_timezone,
        };
        pg_sys::DateStyle = pg_sys::USE_ISO_DATES as c_int;
        pg_sys::DateOrder = pg_sys::DATEORDER_MDY as c_int;
        pg_sys::IntervalStyle = pg_sys::INTSTYLE_POSTGRES as c_int;
        pg_sys::extra_float_digits = 1;
        bytea_output = BYTEA_OUTPUT_HEX;
        pg_sys::session_timezone = tz;
        saved
    };
    f()
}

/// `audit_trail._canonical_text(anyelement)`: a value as `entity_id` renders
/// it (see the module). The readers call it on a key they are given, cast
/// to the key's type under the caller's settings.
#[pg_extern(immutable, parallel_safe, name = "_canonical_text")]
fn canonical_text(value: pgrx::AnyElement) -> String {
    let (datum, typid) = (value.datum(), value.oid());
    with_canonical_output(|| {
        // SAFETY: a non-null argument (the function is STRICT) of the type
        // its AnyElement names; to_text returns a palloc'd text.
        unsafe { crate::datum::text_string(crate::json::to_text(datum, typid)) }
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// One instant, three sessions' settings, one text; the settings are
    /// put back afterwards.
    #[pg_test]
    fn keys_render_the_same_in_every_session() {
        let mut seen = Vec::new();
        for (tz, style) in [("UTC", "ISO, MDY"), ("Europe/Paris", "SQL, DMY"), ("America/New_York", "German")] {
            Spi::run(&format!("SET TimeZone = '{tz}'; SET DateStyle = '{style}'; SET extra_float_digits = -3")).unwrap();
            seen.push(
                Spi::get_one::<String>(
                    "SELECT audit_trail._canonical_text('2026-11-23 10:00:00+00'::timestamptz) || ' '
                         || audit_trail._canonical_text(0.1::float8) || ' ' || audit_trail._canonical_text(interval '1 day 2 hours')
                         || ' ' || audit_trail._canonical_text('\\x00ff'::bytea)",
                )
                .unwrap()
                .unwrap(),
            );
            assert_eq!(Spi::get_one::<String>("SHOW TimeZone").unwrap().unwrap(), tz);
        }
        assert_eq!(seen[0], "2026-11-23 10:00:00+00 0.1 1 day 02:00:00 \\x00ff");
        assert!(seen.iter().all(|s| s == &seen[0]), "{seen:?}");
        // The session's own output is untouched.
        Spi::run("SET TimeZone = 'Europe/Paris'; SET DateStyle = 'ISO, MDY'").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT '2026-11-23 10:00:00+00'::timestamptz::text").unwrap().unwrap(),
            "2026-11-23 11:00:00+01"
        );
    }
}
