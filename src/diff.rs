//! Which columns an UPDATE changed: binary comparison of the datums, never
//! of their JSON. Binary equality is what "changed" means for the trail: a
//! numeric 1.0 → 1.00 renders differently, so it is a change; a value moved
//! out of line by TOAST but equal in content is not.

use crate::meta::Column;
use pgrx::pg_sys;

/// Whether two values of column `col` are the same, binary-wise; two NULLs
/// are, a NULL and a value are not.
///
/// # Safety
/// `a` and `b`, where not null, must be valid datums of `col`'s type (its
/// typlen and typbyval): values of that column as a tuple of its relation
/// holds them, still allocated for the duration of the call.
pub unsafe fn same(col: &Column, a: pg_sys::Datum, a_null: bool, b: pg_sys::Datum, b_null: bool) -> bool {
    if a_null || b_null {
        return a_null && b_null;
    }
    // SAFETY: as the caller promises, both are datums of col's type: a
    // by-value datum is the value itself; a fixed-length one points to typlen
    // bytes; a varlena (typlen -1) to a possibly toasted or short-header
    // varlena, which varlena_bytes reads; a cstring (typlen -2) to a
    // NUL-terminated string.
    unsafe {
        if col.typbyval {
            a == b
        } else if col.typlen > 0 {
            let n = col.typlen as usize;
            std::slice::from_raw_parts(a.cast_mut_ptr::<u8>(), n) == std::slice::from_raw_parts(b.cast_mut_ptr::<u8>(), n)
        } else if col.typlen == -1 {
            a == b || varlena_bytes(a) == varlena_bytes(b)
        } else {
            std::ffi::CStr::from_ptr(a.cast_mut_ptr()) == std::ffi::CStr::from_ptr(b.cast_mut_ptr())
        }
    }
}

/// The content of a varlena, detoasted and decompressed if need be.
///
/// # Safety
/// `d` must be a valid varlena datum (toasted, compressed, or not). The
/// slice lives as long as the current memory context keeps the detoasted
/// copy (or `d` itself), which the caller must not outlive.
unsafe fn varlena_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: as the caller promises; pg_detoast_datum_packed returns `d`
    // itself or a palloc'd plain (possibly short-header) copy, whose data
    // vardata_any and varsize_any_exhdr locate.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, pgrx::varlena::varsize_any_exhdr(v))
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use crate::json::Render;
    use crate::meta::Column;
    use pgrx::prelude::*;

    fn col(typid: pg_sys::Oid, typlen: i16, typbyval: bool) -> Column {
        Column { index: 0, name: c"c".into(), typid, typlen, typbyval, kind: crate::json::Kind::Other, render: Render::Value }
    }

    #[pg_test]
    fn compares_values_not_pointers() {
        let int4 = col(pg_sys::INT4OID, 4, true);
        // SAFETY: int4 values are by value: any datum is one.
        unsafe {
            assert!(super::same(&int4, 5.into(), false, 5.into(), false));
            assert!(!super::same(&int4, 5.into(), false, 6.into(), false));
            assert!(super::same(&int4, 0.into(), true, 9.into(), true));
            assert!(!super::same(&int4, 0.into(), true, 0.into(), false));
        }

        let text = col(pg_sys::TEXTOID, -1, false);
        let a = "same".into_datum().unwrap();
        let b = "same".into_datum().unwrap();
        let c = "other".into_datum().unwrap();
        // SAFETY: text datums made just above, in the test's memory context.
        unsafe {
            assert!(super::same(&text, a, false, b, false));
            assert!(!super::same(&text, a, false, c, false));
        }
    }
}
