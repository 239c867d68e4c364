//! Datums of the types the log stores, made from Rust values, and text
//! datums read back.

use pgrx::pg_sys::{self, Datum};
use std::ffi::CStr;

/// A text datum, palloc'd in the current memory context.
pub fn text_datum(s: &str) -> Datum {
    // SAFETY: cstring_to_text_with_len copies exactly `len` bytes from a
    // valid Rust slice (no NUL needed) into a new palloc'd text.
    unsafe { Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const _, s.len() as i32)) }
}

/// A text[] of the given names, palloc'd in the current memory context.
pub fn text_array<'a>(names: impl Iterator<Item = &'a CStr>) -> Datum {
    // SAFETY: each element is a new text copied from a valid C string of
    // the given length; construct_array copies the elements, with the
    // storage parameters of text (varlena, int-aligned, not by value).
    unsafe {
        let mut elems: Vec<Datum> = names
            .map(|n| Datum::from(pg_sys::cstring_to_text_with_len(n.as_ptr(), n.to_bytes().len() as i32)))
            .collect();
        Datum::from(pg_sys::construct_array(
            elems.as_mut_ptr(),
            elems.len() as i32,
            pg_sys::TEXTOID,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
        ))
    }
}

/// The text of a text datum, copied (detoasted) into a Rust string.
///
/// # Safety
/// `d` must be a valid text datum.
pub unsafe fn text_string(d: Datum) -> String {
    // SAFETY: as the caller promises; text_to_cstring detoasts and copies
    // it into a NUL-terminated palloc'd string, read at once.
    unsafe { CStr::from_ptr(pg_sys::text_to_cstring(d.cast_mut_ptr())) }.to_string_lossy().into_owned()
}
