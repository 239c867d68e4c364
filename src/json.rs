//! Values to jsonb, exactly as `to_jsonb` renders them, with redaction and
//! `[BINARY DATA]` applied. The object is built as a JsonbValue tree and
//! serialised once: no text round trip.
//!
//! `to_jsonb` reads its argument's type from `flinfo->fn_expr`, so calling
//! it directly fails. Each column type gets one FmgrInfo whose `fn_expr` is
//! a `to_jsonb(NULL::that_type)` expression, made once per backend; the
//! function then renders every type (arrays, composites, ranges, domains,
//! enums, json) the way `to_jsonb` does, because it *is* `to_jsonb`.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

pub const REDACTED: &CStr = c"[REDACTED]";
pub const BINARY: &CStr = c"[BINARY DATA]";

/// How a column's value is rendered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Render {
    /// `to_jsonb(value)`.
    Value,
    /// Always `"[REDACTED]"`, NULL included: even "has a value" is a secret.
    Redacted,
    /// `"[BINARY DATA]"` for bytea; NULL stays null.
    Binary,
}

thread_local! {
    /// One `to_jsonb` call descriptor per type, in TopMemoryContext: types are
    /// few, and the descriptor holds nothing but the type's oid.
    static TO_JSONB: RefCell<HashMap<pg_sys::Oid, usize>> = RefCell::new(HashMap::new());
}

fn to_jsonb_flinfo(typid: pg_sys::Oid) -> *mut pg_sys::FmgrInfo {
    if let Some(p) = TO_JSONB.with(|m| m.borrow().get(&typid).copied()) {
        return p as *mut pg_sys::FmgrInfo;
    }
    let p = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let flinfo = pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(pg_sys::Oid::from(pg_sys::F_TO_JSONB), flinfo, pg_sys::TopMemoryContext);
        let arg = pg_sys::makeNullConst(typid, -1, pg_sys::InvalidOid);
        let args = pg_sys::lappend(std::ptr::null_mut(), arg.cast());
        let expr = pg_sys::makeFuncExpr(
            pg_sys::Oid::from(pg_sys::F_TO_JSONB),
            pg_sys::JSONBOID,
            args,
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        (*flinfo).fn_expr = expr.cast();
        pg_sys::MemoryContextSwitchTo(old);
        flinfo
    };
    TO_JSONB.with(|m| m.borrow_mut().insert(typid, p as usize));
    p
}

/// `to_jsonb(value)` for a non-null value of type `typid`.
pub fn to_jsonb(value: pg_sys::Datum, typid: pg_sys::Oid) -> *mut pg_sys::Jsonb {
    let flinfo = to_jsonb_flinfo(typid);
    unsafe { pg_sys::FunctionCall1Coll(flinfo, pg_sys::InvalidOid, value).cast_mut_ptr() }
}

/// The JSON text of one value as it appears inside a document: `7`, `"eu"`.
pub fn to_json_text(value: pg_sys::Datum, isnull: bool, typid: pg_sys::Oid, render: Render) -> String {
    if isnull && render != Render::Redacted {
        return "null".into();
    }
    match render {
        Render::Redacted => format!("\"{}\"", REDACTED.to_str().unwrap()),
        Render::Binary => format!("\"{}\"", BINARY.to_str().unwrap()),
        Render::Value => unsafe {
            let jb = to_jsonb(value, typid);
            let s = pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*jb).root, 64);
            CStr::from_ptr(s).to_string_lossy().into_owned()
        },
    }
}

fn string_value(s: &CStr) -> pg_sys::JsonbValue {
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    v.type_ = pg_sys::jbvType::jbvString;
    v.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
        len: s.to_bytes().len() as i32,
        val: s.as_ptr() as *mut _,
    };
    v
}

/// Builds one JSON object, key by key, in the current memory context.
pub struct ObjectBuilder {
    state: *mut pg_sys::JsonbParseState,
}

impl ObjectBuilder {
    pub fn new() -> Self {
        let mut state = std::ptr::null_mut();
        unsafe { pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT, std::ptr::null_mut()) };
        ObjectBuilder { state }
    }

    /// Adds `key: value`. `key` must stay valid until `finish`.
    pub fn add(&mut self, key: &CStr, value: pg_sys::Datum, isnull: bool, typid: pg_sys::Oid, render: Render) {
        let mut k = string_value(key);
        unsafe {
            pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_KEY, &mut k);
            let mut v = match render {
                Render::Redacted => string_value(REDACTED),
                _ if isnull => {
                    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
                    v.type_ = pg_sys::jbvType::jbvNull;
                    v
                }
                Render::Binary => string_value(BINARY),
                Render::Value => {
                    let jb = to_jsonb(value, typid);
                    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
                    v.type_ = pg_sys::jbvType::jbvBinary;
                    v.val.binary = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_4 {
                        len: pgrx::varlena::varsize(jb.cast()) as i32,
                        data: &mut (*jb).root,
                    };
                    v
                }
            };
            pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_VALUE, &mut v);
        }
    }

    /// The finished object as a jsonb datum.
    pub fn finish(mut self) -> pg_sys::Datum {
        unsafe {
            let res = pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_END_OBJECT, std::ptr::null_mut());
            pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(res))
        }
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    /// Renders `expr` through our path and through SQL's to_jsonb, as text.
    fn both(expr: &str) -> (String, String) {
        let theirs = Spi::get_one::<String>(&format!("SELECT to_jsonb({expr})::text")).unwrap().unwrap();
        let typid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT pg_typeof({expr})::oid")).unwrap().unwrap();
        let ours = Spi::connect(|c| {
            let t = c.select(&format!("SELECT {expr}"), None, &[]).unwrap().first();
            let d = t.get_datum_by_ordinal(1).unwrap();
            to_json_text(d.unwrap(), false, typid, Render::Value)
        });
        (ours, theirs)
    }

    #[pg_test]
    fn renders_like_to_jsonb() {
        for expr in [
            "12.50::numeric",
            "'a\"b'::text",
            "ARRAY[1,NULL,3]",
            "'{\"a\": [1, {\"b\": null}]}'::json",
            "'[1,2)'::int4range",
            "'2026-01-02 03:04:05+00'::timestamptz",
            "ROW(1, 'x')",
            "'NaN'::float8",
            "true",
        ] {
            let (ours, theirs) = both(expr);
            assert_eq!(ours, theirs, "{expr}");
        }
    }

    #[pg_test]
    fn redacted_and_binary_never_show_the_value() {
        let d = pg_sys::Datum::from(0);
        assert_eq!(to_json_text(d, false, pg_sys::TEXTOID, Render::Redacted), "\"[REDACTED]\"");
        assert_eq!(to_json_text(d, true, pg_sys::TEXTOID, Render::Redacted), "\"[REDACTED]\"");
        assert_eq!(to_json_text(d, true, pg_sys::BYTEAOID, Render::Binary), "null");
    }
}
