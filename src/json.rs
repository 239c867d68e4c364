//! Values to jsonb, exactly as `to_jsonb` renders them, with redaction and
//! `[BINARY DATA]` applied. The object is built as a JsonbValue tree and
//! serialised once: no text round trip.
//!
//! Secrets inside documents (API §9): the values of json and jsonb columns
//! are walked token by token on their way into the object, and the value of
//! every object key that matches a redaction pattern is replaced by
//! `"[REDACTED]"` (`push_redacted`); `redact_keys` does the same to a whole
//! document (log_event's details, row_as_of's live row).
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
    /// `to_jsonb(value)`, built directly for the common scalar types.
    Value,
    /// Always `"[REDACTED]"`, NULL included: even "has a value" is a secret.
    Redacted,
    /// `"[BINARY DATA]"` for bytea; NULL stays null.
    Binary,
    /// A json or jsonb value (an array of them, a domain over one):
    /// `to_jsonb(value)` with the value of every object key, at any depth,
    /// whose name matches the table's redaction patterns replaced by
    /// `"[REDACTED]"` while the builder has patterns (see
    /// `ObjectBuilder::redacting_keys`); otherwise the same as `Value`.
    JsonKeys,
}

/// Whether values of a type are JSON documents the key redaction walks:
/// json, jsonb, a domain over either, or an array of them (elements looked
/// through domains too). Composites and ranges holding json are not walked.
pub fn holds_json(typid: pg_sys::Oid) -> bool {
    let is_json = |t: pg_sys::Oid| t == pg_sys::JSONOID || t == pg_sys::JSONBOID;
    // SAFETY: catalog look-ups inside a transaction (building a table's
    // metadata, or a SQL call); an unknown type is an error, not a misread.
    let base = unsafe { pg_sys::getBaseType(typid) };
    if is_json(base) {
        return true;
    }
    // SAFETY: as above.
    let elem = unsafe { pg_sys::get_element_type(base) };
    // SAFETY: as above.
    elem != pg_sys::InvalidOid && is_json(unsafe { pg_sys::getBaseType(elem) })
}

/// `_holds_json(type)`: the same rule, for the SQL side (row_as_of).
#[pgrx::pg_extern(stable, strict, name = "_holds_json")]
fn holds_json_sql(typ: pg_sys::Oid) -> bool {
    holds_json(typ)
}

/// Whether an object key names a secret: it contains one of the patterns,
/// case ignored — the rule column names are matched by (meta.rs: the
/// lower-cased name contains the lower-case pattern). `patterns` are lower
/// case (settings::redact_patterns and audit_trail.config hold them so); an
/// empty pattern matches nothing.
pub fn key_matches(key: &[u8], patterns: &[String]) -> bool {
    /// Whether `needle` (not empty) occurs in `hay`.
    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        let first = needle[0];
        hay.len() >= needle.len() && hay.windows(needle.len()).any(|w| w[0] == first && w == needle)
    }
    // Most keys are short ASCII names: lower-cased on the stack (lower-casing
    // ASCII gives ASCII, so only ASCII patterns can be in them).
    let mut buf = [0u8; 64];
    if key.len() <= buf.len() && key.is_ascii() {
        let lower = &mut buf[..key.len()];
        for (l, k) in lower.iter_mut().zip(key) {
            *l = k.to_ascii_lowercase();
        }
        return patterns.iter().any(|p| !p.is_empty() && contains(lower, p.as_bytes()));
    }
    let lower = String::from_utf8_lossy(key).to_lowercase();
    patterns.iter().any(|p| !p.is_empty() && contains(lower.as_bytes(), p.as_bytes()))
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
    // SAFETY: called inside a transaction (from a trigger or a function),
    // where the catalog look-ups of fmgr_info_cxt and makeNullConst may run
    // (an unknown type is an error, not a misread). Everything is made in
    // TopMemoryContext, which lives as long as the backend, so the pointer
    // kept in TO_JSONB never dangles; the previous context is made current
    // again before anything else runs.
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

thread_local! {
    /// Output functions by type (entity keys and labels, floats); like
    /// TO_JSONB, made once per backend and type, never per row.
    static OUTPUT: RefCell<HashMap<pg_sys::Oid, usize>> = RefCell::new(HashMap::new());
}

fn output_flinfo(typid: pg_sys::Oid) -> *mut pg_sys::FmgrInfo {
    if let Some(p) = OUTPUT.with(|m| m.borrow().get(&typid).copied()) {
        return p as *mut pg_sys::FmgrInfo;
    }
    // SAFETY: as in to_jsonb_flinfo: catalog look-ups inside a transaction,
    // the FmgrInfo (and what fmgr_info_cxt allocates) in TopMemoryContext.
    unsafe {
        let mut out = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(typid, &mut out, &mut varlena);
        let p = pg_sys::MemoryContextAllocZero(pg_sys::TopMemoryContext, std::mem::size_of::<pg_sys::FmgrInfo>())
            as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info_cxt(out, p, pg_sys::TopMemoryContext);
        OUTPUT.with(|m| m.borrow_mut().insert(typid, p as usize));
        p
    }
}

/// The text of a non-null value, as its type's output function gives it,
/// as a text datum.
///
/// # Safety
/// `value` must be a valid, non-null datum of type `typid`.
pub unsafe fn to_text(value: pg_sys::Datum, typid: pg_sys::Oid) -> pg_sys::Datum {
    // SAFETY: as the caller promises; output_cstring returns a palloc'd
    // NUL-terminated string, which cstring_to_text copies.
    unsafe { pg_sys::Datum::from(pg_sys::cstring_to_text(output_cstring(value, typid))) }
}

/// `to_jsonb(value)` for a non-null value of type `typid`.
///
/// # Safety
/// `value` must be a valid, non-null datum of type `typid`.
pub unsafe fn to_jsonb(value: pg_sys::Datum, typid: pg_sys::Oid) -> *mut pg_sys::Jsonb {
    let flinfo = to_jsonb_flinfo(typid);
    // SAFETY: `flinfo` is to_jsonb's, its fn_expr naming typid as the
    // argument's type, and `value` a datum of that type (the caller's
    // promise); to_jsonb never returns NULL for a non-null argument.
    unsafe { pg_sys::FunctionCall1Coll(flinfo, pg_sys::InvalidOid, value).cast_mut_ptr() }
}

/// The JSON text of one value as it appears inside a document: `7`, `"eu"`.
///
/// # Safety
/// Unless `isnull`, `value` must be a valid datum of type `typid`.
pub unsafe fn to_json_text(value: pg_sys::Datum, isnull: bool, typid: pg_sys::Oid, render: Render) -> String {
    if isnull && render != Render::Redacted {
        return "null".into();
    }
    match render {
        Render::Redacted => format!("\"{}\"", REDACTED.to_str().unwrap()),
        Render::Binary => format!("\"{}\"", BINARY.to_str().unwrap()),
        // SAFETY: a non-null value of typid (the caller's promise); to_jsonb
        // returns a palloc'd, detoasted Jsonb, whose root JsonbToCString
        // reads into a palloc'd NUL-terminated string, copied here.
        Render::Value | Render::JsonKeys => unsafe {
            let jb = to_jsonb(value, typid);
            let s = pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*jb).root, 64);
            CStr::from_ptr(s).to_string_lossy().into_owned()
        },
    }
}

/// How the builder renders a column's values. The kind is chosen from the
/// base type, as to_jsonb categorises domains.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Built here, exactly as to_jsonb would, without its per-call type
    /// look-ups and text round trips.
    Scalar(Scalar),
    Jsonb,
    /// An array of Scalar elements: one-dimensional ones are built here,
    /// others go to to_jsonb.
    Array(Element),
    /// Anything else: to_jsonb itself.
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scalar {
    Numeric,
    Int2,
    Int4,
    Int8,
    /// float4 or float8: the type's output text, then a number unless it is
    /// NaN or an infinity (strings to to_jsonb).
    Float,
    Text,
    Bool,
    /// timestamptz, timestamp or date: the base type, for JsonEncodeDateTime.
    DateTime(pg_sys::Oid),
}

/// An array's element type, with what deconstruct_array needs to read it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Element {
    pub typid: pg_sys::Oid,
    pub kind: Scalar,
    pub typlen: i16,
    pub typbyval: bool,
    pub typalign: std::ffi::c_char,
}

impl Scalar {
    /// The scalar kind of a base type, if the builder renders it itself.
    fn of(base: pg_sys::Oid) -> Option<Scalar> {
        Some(match base {
            pg_sys::NUMERICOID => Scalar::Numeric,
            pg_sys::INT2OID => Scalar::Int2,
            pg_sys::INT4OID => Scalar::Int4,
            pg_sys::INT8OID => Scalar::Int8,
            pg_sys::FLOAT4OID | pg_sys::FLOAT8OID => Scalar::Float,
            pg_sys::TEXTOID | pg_sys::VARCHAROID => Scalar::Text,
            pg_sys::BOOLOID => Scalar::Bool,
            pg_sys::TIMESTAMPTZOID | pg_sys::TIMESTAMPOID | pg_sys::DATEOID => Scalar::DateTime(base),
            _ => return None,
        })
    }
}

impl Kind {
    pub fn of(typid: pg_sys::Oid) -> Kind {
        // SAFETY: a catalog look-up, made inside a transaction (building a
        // table's metadata); an unknown type is an error, not a misread.
        let base = unsafe { pg_sys::getBaseType(typid) };
        if let Some(s) = Scalar::of(base) {
            return Kind::Scalar(s);
        }
        if base == pg_sys::JSONBOID {
            return Kind::Jsonb;
        }
        Self::array_of(base).unwrap_or(Kind::Other)
    }

    /// Kind::Array when `base` is an array type (not a domain: to_jsonb looks
    /// through those first) of a scalar kind (its elements' domains looked
    /// through too, as to_jsonb does).
    fn array_of(base: pg_sys::Oid) -> Option<Kind> {
        // SAFETY: catalog look-ups inside a transaction, as in Kind::of.
        let elem = unsafe { pg_sys::get_element_type(base) };
        if elem == pg_sys::InvalidOid {
            return None;
        }
        // SAFETY: as above.
        let kind = Scalar::of(unsafe { pg_sys::getBaseType(elem) })?;
        let (mut typlen, mut typbyval, mut typalign) = (0i16, false, 0 as std::ffi::c_char);
        // SAFETY: as above; the three out-parameters are live locals.
        unsafe { pg_sys::get_typlenbyvalalign(elem, &mut typlen, &mut typbyval, &mut typalign) };
        Some(Kind::Array(Element { typid: elem, kind, typlen, typbyval, typalign }))
    }
}

/// A value's output text, as a C string: to_jsonb's own way to a number for
/// floats goes through it (extra_float_digits and all).
///
/// # Safety
/// `value` must be a valid, non-null datum of type `typid`.
unsafe fn output_cstring(value: pg_sys::Datum, typid: pg_sys::Oid) -> *mut std::ffi::c_char {
    // SAFETY: as the caller promises; the FmgrInfo is typid's output
    // function's, which returns a palloc'd NUL-terminated string.
    unsafe { pg_sys::OutputFunctionCall(output_flinfo(typid), value) }
}

/// An empty JsonbValue of the given type, its payload to be filled in.
fn jsonb_value(type_: pg_sys::jbvType::Type) -> pg_sys::JsonbValue {
    // SAFETY: JsonbValue is a plain C struct (an integer tag and a union of
    // integers and raw pointers), for which all-zero bytes are a valid value.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    v.type_ = type_;
    v
}

fn numeric_value(n: pg_sys::Numeric) -> pg_sys::JsonbValue {
    let mut v = jsonb_value(pg_sys::jbvType::jbvNumeric);
    v.val.numeric = n;
    v
}

/// # Safety
/// `jb` must point to a detoasted Jsonb, which must outlive the object built.
unsafe fn binary_value(jb: *mut pg_sys::Jsonb) -> pg_sys::JsonbValue {
    let mut v = jsonb_value(pg_sys::jbvType::jbvBinary);
    // SAFETY: as the caller promises: a plain varlena with its size in its
    // header, its container at `root`.
    v.val.binary = unsafe {
        pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_4 {
            len: pgrx::varlena::varsize_any(jb.cast()) as i32,
            data: &mut (*jb).root,
        }
    };
    v
}

/// The jsonb value of a non-null `value`, as to_jsonb renders it.
///
/// # Safety
/// `value` must be a valid, non-null datum of type `typid`, of kind `kind`;
/// what the value points to comes from it or from the current memory
/// context, which must outlive the object built.
unsafe fn value_of(value: pg_sys::Datum, typid: pg_sys::Oid, kind: Kind) -> pg_sys::JsonbValue {
    // SAFETY: as the caller promises; pg_detoast_datum of a jsonb datum and
    // to_jsonb both give a detoasted Jsonb, the value itself or a palloc'd copy.
    unsafe {
        match kind {
            Kind::Scalar(s) => scalar_value(value, typid, s),
            Kind::Jsonb => binary_value(pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as *mut pg_sys::Jsonb),
            // Arrays the builder cannot push element by element (see push_array).
            Kind::Array(_) | Kind::Other => binary_value(to_jsonb(value, typid)),
        }
    }
}

/// # Safety
/// As for value_of, `typid` being a type of scalar kind `kind` (or a
/// domain over one).
unsafe fn scalar_value(value: pg_sys::Datum, typid: pg_sys::Oid, kind: Scalar) -> pg_sys::JsonbValue {
    // SAFETY: as the caller promises, `value` is a datum of the base type
    // `kind` stands for: numeric and text varlenas are detoasted (the value
    // or a palloc'd copy) before they are read; the other kinds go to
    // functions of their own type (int*_numeric, the output function,
    // JsonEncodeDateTime with the base type), which read them as PostgreSQL
    // passes them. What the JsonbValue points to is the value, or palloc'd
    // in the current memory context.
    unsafe {
        match kind {
            Scalar::Numeric => {
                let n = pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as pg_sys::Numeric;
                // NaN and Infinity are strings to to_jsonb: let it say so.
                if pg_sys::numeric_is_nan(n) || pg_sys::numeric_is_inf(n) {
                    binary_value(to_jsonb(value, typid))
                } else {
                    numeric_value(n)
                }
            }
            Scalar::Int2 | Scalar::Int4 | Scalar::Int8 => {
                let f = match kind {
                    Scalar::Int2 => pg_sys::int2_numeric,
                    Scalar::Int4 => pg_sys::int4_numeric,
                    _ => pg_sys::int8_numeric,
                };
                let n = pgrx::direct_function_call_as_datum(f, &[Some(value)]).unwrap();
                numeric_value(n.cast_mut_ptr())
            }
            Scalar::Float => {
                // As to_jsonb: the output text; a number unless it spells
                // NaN or an infinity, which have an 'n' or 'N' in them.
                let s = output_cstring(value, typid);
                let text = CStr::from_ptr(s);
                if text.to_bytes().iter().any(|&b| b == b'n' || b == b'N') {
                    string_value(text)
                } else {
                    let n = pgrx::direct_function_call_as_datum(
                        pg_sys::numeric_in,
                        &[Some(pg_sys::Datum::from(s)), Some(pg_sys::Datum::from(pg_sys::InvalidOid)), Some(pg_sys::Datum::from(-1i32))],
                    )
                    .unwrap();
                    numeric_value(n.cast_mut_ptr())
                }
            }
            Scalar::Text => {
                let t = pg_sys::pg_detoast_datum_packed(value.cast_mut_ptr());
                let mut v = jsonb_value(pg_sys::jbvType::jbvString);
                v.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
                    len: pgrx::varlena::varsize_any_exhdr(t) as i32,
                    val: pgrx::varlena::vardata_any(t) as *mut _,
                };
                v
            }
            Scalar::Bool => {
                let mut v = jsonb_value(pg_sys::jbvType::jbvBool);
                v.val.boolean = value.value() != 0;
                v
            }
            Scalar::DateTime(base) => {
                string_value(CStr::from_ptr(pg_sys::JsonEncodeDateTime(std::ptr::null_mut(), value, base, std::ptr::null())))
            }
        }
    }
}

fn null_value() -> pg_sys::JsonbValue {
    jsonb_value(pg_sys::jbvType::jbvNull)
}

/// A string value pointing at `s`, which must outlive the object built
/// (pushJsonbValue keeps the pointer; JsonbValueToJsonb reads it).
fn string_value(s: &CStr) -> pg_sys::JsonbValue {
    let mut v = jsonb_value(pg_sys::jbvType::jbvString);
    v.val.string = pg_sys::JsonbValue__bindgen_ty_1__bindgen_ty_1 {
        len: s.to_bytes().len() as i32,
        val: s.as_ptr() as *mut _,
    };
    v
}

/// Pushes a one-dimensional (or empty) array as to_jsonb renders it: its
/// elements in order, NULL as null, bounds dropped. False, having pushed
/// nothing, for arrays of more dimensions (to_jsonb nests those).
///
/// # Safety
/// `value` must be a valid, non-null array datum whose elements are of
/// `elem`'s type; `state` an object or array being built in the current
/// memory context, which must outlive it.
unsafe fn push_array(state: &mut *mut pg_sys::JsonbParseState, value: pg_sys::Datum, elem: Element) -> bool {
    // SAFETY: as the caller promises; pg_detoast_datum gives a plain array
    // (the value or a palloc'd copy), which deconstruct_array reads with its
    // element's length, by-value flag and alignment into n palloc'd values
    // and null flags, each value one of elem's type.
    unsafe {
        let arr = pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        if (*arr).ndim > 1 {
            return false;
        }
        let mut values: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut n = 0i32;
        pg_sys::deconstruct_array(arr, elem.typid, elem.typlen as i32, elem.typbyval, elem.typalign, &mut values, &mut nulls, &mut n);
        pg_sys::pushJsonbValue(state, pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY, std::ptr::null_mut());
        for i in 0..n as usize {
            let mut v = if *nulls.add(i) {
                null_value()
            } else {
                scalar_value(*values.add(i), elem.typid, elem.kind)
            };
            pg_sys::pushJsonbValue(state, pg_sys::JsonbIteratorToken::WJB_ELEM, &mut v);
        }
        pg_sys::pushJsonbValue(state, pg_sys::JsonbIteratorToken::WJB_END_ARRAY, std::ptr::null_mut());
        true
    }
}

/// Builds one JSON object, key by key, in the current memory context.
pub struct ObjectBuilder<'p> {
    state: *mut pg_sys::JsonbParseState,
    /// The patterns `Render::JsonKeys` values are redacted by; empty: none.
    key_patterns: &'p [String],
}

impl ObjectBuilder<'static> {
    pub fn new() -> Self {
        ObjectBuilder::redacting_keys(&[])
    }
}

impl<'p> ObjectBuilder<'p> {
    /// A builder whose `Render::JsonKeys` values have the value of every
    /// object key matching one of `patterns` (lower case) redacted.
    pub fn redacting_keys(patterns: &'p [String]) -> Self {
        let mut state = std::ptr::null_mut();
        // SAFETY: starts a parse state (a null pointer is the empty one),
        // allocated in the current memory context; BEGIN_OBJECT takes no value.
        unsafe { pg_sys::pushJsonbValue(&mut state, pg_sys::JsonbIteratorToken::WJB_BEGIN_OBJECT, std::ptr::null_mut()) };
        ObjectBuilder { state, key_patterns: patterns }
    }

    /// Adds `key: value`. Keys added in jsonb's key order (shorter first,
    /// then bytewise) spare the sort.
    ///
    /// # Safety
    /// `key` must stay valid until `finish`; unless `isnull`, `value` must be
    /// a valid datum of type `typid`, of kind `kind`; the current memory
    /// context must be the one `new` ran in, and live until `finish`.
    pub unsafe fn add(&mut self, key: &CStr, value: pg_sys::Datum, isnull: bool, typid: pg_sys::Oid, kind: Kind, render: Render) {
        let mut k = string_value(key);
        // SAFETY: as the caller promises: the key and what the value's
        // JsonbValue points to stay valid until finish() serialises them;
        // the parse state is this builder's, in an open object, expecting a
        // key and then its value.
        unsafe {
            pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_KEY, &mut k);
            let mut v = match render {
                Render::Redacted => string_value(REDACTED),
                _ if isnull => null_value(),
                Render::Binary => string_value(BINARY),
                Render::JsonKeys if !self.key_patterns.is_empty() => {
                    // The document as to_jsonb renders it (a jsonb value is
                    // itself, detoasted), walked into the object.
                    let jb = match kind {
                        Kind::Jsonb => pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as *mut pg_sys::Jsonb,
                        _ => to_jsonb(value, typid),
                    };
                    push_redacted(&mut self.state, jb, self.key_patterns);
                    return;
                }
                Render::Value | Render::JsonKeys => {
                    if let Kind::Array(elem) = kind {
                        if push_array(&mut self.state, value, elem) {
                            return;
                        }
                    }
                    value_of(value, typid, kind)
                }
            };
            pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_VALUE, &mut v);
        }
    }

    /// The finished object as a jsonb datum.
    pub fn finish(mut self) -> pg_sys::Datum {
        // SAFETY: the parse state is this builder's open object; every key
        // and value pushed into it is still valid (add's contract), so
        // JsonbValueToJsonb can read them into the new, palloc'd jsonb.
        unsafe {
            let res = pg_sys::pushJsonbValue(&mut self.state, pg_sys::JsonbIteratorToken::WJB_END_OBJECT, std::ptr::null_mut());
            pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(res))
        }
    }
}

/// Whether a jsonb document may hold a key that matches one of `patterns`:
/// true when some object key, at any depth, does (or when it is nested
/// deeper than looked at here). Read from jsonb's on-disk format directly,
/// without a call into PostgreSQL per key, so that a document without
/// secrets costs a scan of its keys and is then pushed whole, as before.
///
/// The format (utils/jsonb.h, fixed since 9.4: pg_upgrade keeps it): a
/// container is a `uint32` header (count in the low 28 bits, object and
/// array flags) followed by one `JEntry` per child (objects: every key,
/// then every value) and then the children's data. A JEntry's low 28 bits
/// are the child's end offset (when its high bit is set) or its length; a
/// child starts where the one before it ends. Keys are strings, their bytes
/// not NUL-terminated; a nested container starts at its offset rounded up
/// to 4 (INTALIGN).
///
/// # Safety
/// `container` must point to a valid jsonb container (a detoasted jsonb's
/// root, or a container inside one).
unsafe fn may_hold_secret(container: *const pg_sys::JsonbContainer, patterns: &[String], depth: u32) -> bool {
    const JB_CMASK: u32 = 0x0FFF_FFFF;
    const JB_FOBJECT: u32 = 0x2000_0000;
    const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
    const JENTRY_TYPEMASK: u32 = 0x7000_0000;
    const JENTRY_HAS_OFF: u32 = 0x8000_0000;
    const JENTRY_ISCONTAINER: u32 = 0x5000_0000;
    if depth >= 32 {
        // Deeper documents are rare: let the walk, which has no depth limit, decide.
        return true;
    }
    // SAFETY: as the caller promises, a valid container: its header, then
    // `entries` JEntries, then the data they describe, every offset within
    // it; keys are `end - start` bytes of string data, and a nested
    // container is a valid container at its aligned start.
    unsafe {
        let header = (*container).header;
        let count = (header & JB_CMASK) as usize;
        let object = header & JB_FOBJECT != 0;
        let entries = if object { 2 * count } else { count };
        let children = (*container).children.as_ptr();
        let data = children.add(entries).cast::<u8>();
        let mut end = 0u32;
        for i in 0..entries {
            let entry = *children.add(i);
            let start = end;
            end = if entry & JENTRY_HAS_OFF != 0 { entry & JENTRY_OFFLENMASK } else { start + (entry & JENTRY_OFFLENMASK) };
            if object && i < count {
                let key = std::slice::from_raw_parts(data.add(start as usize), (end - start) as usize);
                if key_matches(key, patterns) {
                    return true;
                }
            } else if entry & JENTRY_TYPEMASK == JENTRY_ISCONTAINER {
                let nested = data.add(((start + 3) & !3) as usize).cast::<pg_sys::JsonbContainer>();
                if may_hold_secret(nested, patterns, depth + 1) {
                    return true;
                }
            }
        }
        false
    }
}

/// Pushes the document `jb` as the next value of the object being built in
/// `state` (or, with `state` empty, as the root), as pushJsonbValue pushes a
/// whole jsonb value (it unpacks it token by token too), with the value of
/// every object key that matches one of `patterns` replaced by
/// `"[REDACTED]"`, at any depth, arrays included. Returns what the last push
/// returned: the finished document when it is the root.
///
/// # Safety
/// `jb` must be a detoasted jsonb that outlives the document built (its
/// strings and numerics are pointed to, not copied). `state` must be empty
/// (then `jb` must not be a scalar) or an object of the current memory
/// context waiting for a key's value.
unsafe fn push_redacted(state: &mut *mut pg_sys::JsonbParseState, jb: *mut pg_sys::Jsonb, patterns: &[String]) -> *mut pg_sys::JsonbValue {
    use pg_sys::JsonbIteratorToken as T;
    // SAFETY: as the caller promises, `jb` is a valid detoasted jsonb, its
    // root container at `root`. The iterator reads it token by token
    // (skipNested false: containers are entered, so every key is seen), its
    // state palloc'd in the current context and freed as it climbs out.
    // Each token is pushed as pushJsonbValue's own unpacking of a binary
    // value pushes it: the value `v` for keys, values, elements and a raw
    // scalar's array, nothing for the other container tokens; the parse
    // state copies the JsonbValue (which points into `jb`), so `v` can be
    // read into again. A key's string is `len` bytes at `val` in `jb`.
    unsafe {
        let root: *mut pg_sys::JsonbContainer = &mut (*jb).root;
        if (*root).header & pg_sys::JB_FSCALAR != 0 || (!state.is_null() && !may_hold_secret(root, patterns, 0)) {
            // Nothing to redact (a scalar has no keys): pushed whole, as an
            // object's value, as it always was.
            let mut whole = binary_value(jb);
            return pg_sys::pushJsonbValue(state, T::WJB_VALUE, &mut whole);
        }
        let mut it = pg_sys::JsonbIteratorInit(root);
        let mut v = null_value();
        let mut res = std::ptr::null_mut();
        loop {
            let tok = pg_sys::JsonbIteratorNext(&mut it, &mut v, false);
            match tok {
                T::WJB_DONE => break,
                T::WJB_KEY => {
                    let len = v.val.string.len as usize;
                    let key = if len == 0 { &[][..] } else { std::slice::from_raw_parts(v.val.string.val as *const u8, len) };
                    let secret = key_matches(key, patterns);
                    res = pg_sys::pushJsonbValue(state, tok, &mut v);
                    if secret {
                        skip_value(&mut it, &mut v);
                        let mut redacted = string_value(REDACTED);
                        res = pg_sys::pushJsonbValue(state, T::WJB_VALUE, &mut redacted);
                    }
                }
                T::WJB_VALUE | T::WJB_ELEM => res = pg_sys::pushJsonbValue(state, tok, &mut v),
                T::WJB_BEGIN_ARRAY if v.val.array.rawScalar => res = pg_sys::pushJsonbValue(state, tok, &mut v),
                _ => res = pg_sys::pushJsonbValue(state, tok, std::ptr::null_mut()),
            }
        }
        res
    }
}

/// Reads past the value that follows a key: its one token for a scalar,
/// every token of an object or array up to its end.
///
/// # Safety
/// `it` must be a live iterator (skipNested false) that has just returned a
/// key; `v` is scratch space.
unsafe fn skip_value(it: &mut *mut pg_sys::JsonbIterator, v: &mut pg_sys::JsonbValue) {
    use pg_sys::JsonbIteratorToken as T;
    let mut depth = 0usize;
    loop {
        // SAFETY: as the caller promises; a key is always followed by its
        // value, so the iterator is not done before the value is.
        match unsafe { pg_sys::JsonbIteratorNext(it, v, false) } {
            T::WJB_BEGIN_OBJECT | T::WJB_BEGIN_ARRAY => depth += 1,
            T::WJB_END_OBJECT | T::WJB_END_ARRAY => depth = depth.saturating_sub(1),
            T::WJB_DONE => return,
            _ => {}
        }
        if depth == 0 {
            return;
        }
    }
}

/// A jsonb document with the value of every object key that matches one of
/// `patterns` replaced by `"[REDACTED]"`, at any depth, arrays included; the
/// document itself when there are no patterns or it is a scalar. The result
/// is palloc'd in the current memory context.
///
/// # Safety
/// `value` must be a valid, non-null jsonb datum.
pub unsafe fn redact_keys(value: pg_sys::Datum, patterns: &[String]) -> pg_sys::Datum {
    if patterns.is_empty() {
        return value;
    }
    // SAFETY: as the caller promises, a jsonb datum: pg_detoast_datum gives
    // it plain (itself or a palloc'd copy, which outlives the build below);
    // a document that is not a scalar may be pushed as the root of an empty
    // parse state, whose last push returns the finished root value.
    unsafe {
        let jb = pg_sys::pg_detoast_datum(value.cast_mut_ptr()) as *mut pg_sys::Jsonb;
        if (*jb).root.header & pg_sys::JB_FSCALAR != 0 || !may_hold_secret(&(*jb).root, patterns, 0) {
            return value;
        }
        let mut state = std::ptr::null_mut();
        let root = push_redacted(&mut state, jb, patterns);
        pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(root))
    }
}

/// `audit_trail._redact_json_keys(doc jsonb, patterns text[])`: redact_keys
/// for the SQL side (row_as_of's live row). A C function rather than a
/// #[pg_extern]: pgrx's JsonB goes through serde_json, whose numbers are
/// f64, and the document must come back with its numbers as they were.
/// The patterns are trimmed and lower-cased, empty ones left out, as the
/// setting's are.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn redact_json_keys_wrapper(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: PostgreSQL calls this with the fcinfo of the STRICT SQL
    // function declared below, (jsonb, text[]): both arguments are there and
    // not null, the first a jsonb datum, the second a text array.
    unsafe {
        let doc = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
        let patterns: Vec<String> = pgrx::fcinfo::pg_getarg::<Vec<Option<String>>>(fcinfo, 1)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
        redact_keys(doc, &patterns)
    }
}

crate::pg_finfo_v1!(pg_finfo_redact_json_keys_wrapper);

pgrx::extension_sql!(
    "CREATE FUNCTION \"_redact_json_keys\"(doc jsonb, patterns text[])
\tRETURNS jsonb
\tLANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
\tAS 'MODULE_PATHNAME', 'redact_json_keys_wrapper';",
    name = "redact_json_keys_function",
    requires = ["schema"],
);

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
            // SAFETY: a non-null datum of typid, just selected, valid while
            // the SPI connection is.
            unsafe { to_json_text(d.unwrap(), false, typid, Render::Value) }
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

    /// The builder's own scalar paths, against to_jsonb, one object each.
    #[pg_test]
    fn builder_matches_to_jsonb() {
        for expr in [
            "12.50::numeric", "'NaN'::numeric", "'-Infinity'::numeric", "7::int2", "(-2147483648)::int4",
            "9007199254740993::int8", "'tab\t\"q\" é'::text", "'v'::varchar(3)", "true", "false",
            "'2026-01-02 03:04:05.678+02'::timestamptz", "'infinity'::timestamptz", "'2026-01-02 03:04'::timestamp",
            "'2026-01-02'::date", "'{\"a\": [1, {\"b\": null}]}'::jsonb", "'[1,2)'::int4range",
            "1.5::float8", "0.1::float4", "'NaN'::float8", "'-Infinity'::float4", "1e300::float8", "(-0.0)::float8",
            "ARRAY['a', NULL, 'b\"c']", "'{}'::text[]", "ARRAY[1.5, 'NaN']::numeric[]", "ARRAY[1, 2]::int8[]",
            "ARRAY[[1, 2], [3, 4]]", "'[2:3]={7,8}'::int[]", "ARRAY['Infinity', 2.5]::float8[]",
            "ARRAY[true, NULL]", "ARRAY['2026-01-02'::date]", "ARRAY['2026-01-02 03:04+00'::timestamptz]",
            "ARRAY['x']::varchar[]",
        ] {
            let theirs = Spi::get_one::<String>(&format!("SELECT jsonb_build_object('k', {expr})::text")).unwrap().unwrap();
            let typid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT pg_typeof({expr})::oid")).unwrap().unwrap();
            let ours = Spi::connect(|c| {
                let t = c.select(&format!("SELECT {expr}"), None, &[]).unwrap().first();
                let d = t.get_datum_by_ordinal(1).unwrap().unwrap();
                let mut b = ObjectBuilder::new();
                // SAFETY: a static key; a non-null datum of typid, just
                // selected, valid while the SPI connection is.
                unsafe { b.add(c"k", d, false, typid, Kind::of(typid), Render::Value) };
                let jb = b.finish();
                // SAFETY: finish returns a palloc'd, plain jsonb; its text is
                // a palloc'd NUL-terminated string, copied at once.
                unsafe {
                    let j: *mut pg_sys::Jsonb = jb.cast_mut_ptr();
                    CStr::from_ptr(pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*j).root, 64)).to_string_lossy().into_owned()
                }
            });
            assert_eq!(ours, theirs, "{expr}");
        }
    }

    #[pg_test]
    fn keys_match_as_column_names_do() {
        let p: Vec<String> = ["token", "api_key", "pässword"].map(String::from).to_vec();
        assert!(key_matches(b"HF_TOKEN", &p));
        assert!(key_matches(b"x_Api_Key_y", &p));
        assert!(key_matches(b"tokens_used", &p), "a substring, as for columns");
        assert!(!key_matches(b"tok_en", &p));
        assert!(!key_matches(b"api-key", &p));
        assert!(key_matches("PÄSSWORD_2".as_bytes(), &p));
        assert!(!key_matches("pässwort".as_bytes(), &p));
        assert!(!key_matches(b"", &p));
        assert!(!key_matches(b"token", &[]));
        assert!(!key_matches(b"token", &[String::new()]));
    }

    /// _redact_json_keys (redact_keys) over documents of every shape.
    #[pg_test]
    fn documents_are_walked_at_every_depth() {
        for (doc, want) in [
            (r#"{"a": 1, "HF_TOKEN": "hf_x"}"#, r#"{"a": 1, "HF_TOKEN": "[REDACTED]"}"#),
            (r#"{"env": {"deep": [{"password": {"x": [1, 2]}}, {"ok": "token"}]}}"#,
             r#"{"env": {"deep": [{"password": "[REDACTED]"}, {"ok": "token"}]}}"#),
            (r#"[{"token": null}, [{"Password": false}], "token", 3]"#,
             r#"[{"token": "[REDACTED]"}, [{"Password": "[REDACTED]"}], "token", 3]"#),
            (r#"{"token": [], "n": 1.10, "t": {"token": {}}, "e": {}}"#,
             r#"{"e": {}, "n": 1.10, "t": {"token": "[REDACTED]"}, "token": "[REDACTED]"}"#),
            (r#"{"tok_en": 1, "pass": 2}"#, r#"{"pass": 2, "tok_en": 1}"#),
            (r#""token""#, r#""token""#),
            ("12345678901234567890.000000000000000001", "12345678901234567890.000000000000000001"),
            ("[]", "[]"),
            ("{}", "{}"),
        ] {
            let got = Spi::get_one::<String>(&format!(
                "SELECT audit_trail._redact_json_keys('{doc}'::jsonb, '{{\" Token \",password,\"\"}}')::text"
            ))
            .unwrap()
            .unwrap();
            assert_eq!(got, want, "{doc}");
        }
        let none = Spi::get_one::<String>(r#"SELECT audit_trail._redact_json_keys('{"token": 1}', '{}')::text"#).unwrap();
        assert_eq!(none.as_deref(), Some(r#"{"token": 1}"#));
        // Deeper than may_hold_secret looks: the walk decides, at any depth.
        for (depth, key) in [(40, "token"), (40, "plain"), (5, "token"), (31, "plain"), (33, "token")] {
            let doc = format!("{}{{\"z\": [1, {{}}], \"{key}\": 1}}{}", r#"{"a": ["#.repeat(depth), "]}".repeat(depth));
            let want = if key == "token" { doc.replace(r#""token": 1"#, r#""token": "[REDACTED]""#) } else { doc.clone() };
            let got = Spi::get_one::<String>(&format!("SELECT audit_trail._redact_json_keys('{doc}'::jsonb, '{{token}}')::text"))
                .unwrap()
                .unwrap();
            assert_eq!(got, want, "{depth} {key}");
        }
    }

    /// The builder walks json, jsonb, arrays of them and domains over them
    /// (Render::JsonKeys) only when it was given patterns.
    #[pg_test]
    fn builder_redacts_keys_of_documents() {
        Spi::run("CREATE DOMAIN doc_d AS jsonb").unwrap();
        let patterns = vec!["token".to_string()];
        for (expr, want, plain) in [
            (r#"'{"HF_TOKEN": "hf_x", "a": [1]}'::jsonb"#, r#"{"k": {"a": [1], "HF_TOKEN": "[REDACTED]"}}"#, true),
            (r#"'{"b": 1, "token": {"x": 1}}'::json"#, r#"{"k": {"b": 1, "token": "[REDACTED]"}}"#, true),
            (r#"ARRAY['{"token": 1}', '2']::jsonb[]"#, r#"{"k": [{"token": "[REDACTED]"}, 2]}"#, true),
            (r#"'{"token": 1}'::doc_d"#, r#"{"k": {"token": "[REDACTED]"}}"#, true),
            (r#"'"token"'::jsonb"#, r#"{"k": "token"}"#, true),
            (r#"'{"token": 1}'::text"#, r#"{"k": "{\"token\": 1}"}"#, false),
        ] {
            let typid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT pg_typeof({expr})::oid")).unwrap().unwrap();
            assert_eq!(holds_json(typid), plain, "{expr}");
            let got = Spi::connect(|c| {
                let t = c.select(&format!("SELECT {expr}"), None, &[]).unwrap().first();
                let d = t.get_datum_by_ordinal(1).unwrap().unwrap();
                let mut b = ObjectBuilder::redacting_keys(&patterns);
                let render = if holds_json(typid) { Render::JsonKeys } else { Render::Value };
                // SAFETY: a static key; a non-null datum of typid, just
                // selected, valid while the SPI connection is.
                unsafe { b.add(c"k", d, false, typid, Kind::of(typid), render) };
                let jb = b.finish();
                // SAFETY: finish returns a palloc'd, plain jsonb; its text is
                // a palloc'd NUL-terminated string, copied at once.
                unsafe {
                    let j: *mut pg_sys::Jsonb = jb.cast_mut_ptr();
                    CStr::from_ptr(pg_sys::JsonbToCString(std::ptr::null_mut(), &mut (*j).root, 64)).to_string_lossy().into_owned()
                }
            });
            assert_eq!(got, want, "{expr}");
        }
    }

    #[pg_test]
    fn redacted_and_binary_never_show_the_value() {
        let d = pg_sys::Datum::from(0);
        // SAFETY: redacted and binary renderings never read the value.
        unsafe {
            assert_eq!(to_json_text(d, false, pg_sys::TEXTOID, Render::Redacted), "\"[REDACTED]\"");
            assert_eq!(to_json_text(d, true, pg_sys::TEXTOID, Render::Redacted), "\"[REDACTED]\"");
            assert_eq!(to_json_text(d, true, pg_sys::BYTEAOID, Render::Binary), "null");
        }
    }
}
