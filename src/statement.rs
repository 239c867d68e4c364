//! The `statement` column (`audit_trail.log_statement`): nothing (`off`),
//! the top-level statement as the client sent it (`on`), or that statement
//! with its literals replaced by `$n` (`normalized`), read once per
//! statement by `Context::current()`.
//!
//! Normalizing uses PostgreSQL's own scanner (`scanner_init`/`core_yylex`
//! from `parser/scanner.h`, as pg_stat_statements does to measure its
//! constants), so a quote, a comment or a dollar-quoted body is read exactly
//! as the server read it. pg_stat_statements replaces the constants the
//! parser kept (it has their locations from the query jumble); a trigger has
//! only the text, so this replaces every constant *token* instead:
//!
//! - each string (`'...'`, `E'...'`, `U&'...'` with its `UESCAPE '.'`,
//!   `N'...'`, dollar-quoted `$tag$...$tag$`), bit string (`B'...'`,
//!   `X'...'`), integer and decimal number, whatever it is used for
//!   (typmods such as `varchar(10)` and `LIMIT 5` included), becomes `$n`;
//! - a `-` right before a number becomes part of it (`-5` → `$1`) when it
//!   cannot be a subtraction: at the start, or after `(`, `,`, `[`, `:`,
//!   `;`, an operator, or one of `SELECT WHERE AND OR NOT WHEN THEN ELSE
//!   CASE BETWEEN LIKE ILIKE`; elsewhere (`n - 1`) only the number is;
//! - `n` counts from one more than the highest `$n` already in the text
//!   (a statement with parameters keeps them), left to right;
//! - the rest (identifiers, keywords, comments, white space) is kept as
//!   written. Comments are not literals: a secret in a comment stays.
//!
//! A text the scanner refuses (it raises an error, trapped here) gives no
//! statement (NULL) rather than the verbatim text. The normalized text of
//! the last statement is kept per backend, so a statement that fires several
//! capture triggers, or a prepared statement run again (its text is the
//! same), is scanned once.

use crate::settings::{self, LogStatement};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;

/// What the `statement` column of the current statement's events holds.
pub fn current() -> Option<String> {
    match settings::LOG_STATEMENT.get() {
        LogStatement::Off => None,
        LogStatement::On => top_level().map(|s| s.to_string_lossy().into_owned()),
        LogStatement::Normalized => top_level().and_then(normalized_cached),
    }
}

/// The text of the top-level statement the backend is running.
fn top_level() -> Option<&'static CStr> {
    // SAFETY: debug_query_string is NULL or the text of the top-level
    // statement the backend is running, which stays allocated until that
    // statement is done; the reference is used (and copied) before then,
    // during the firing or call that asked for it.
    let raw = unsafe { pg_sys::debug_query_string };
    // SAFETY: as above, a NUL-terminated string when not NULL.
    (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) })
}

/// A text normalized, with standard_conforming_strings as it was (the
/// scanner reads backslashes by it), and what it gave.
type Normalized = (Vec<u8>, bool, Option<String>);

thread_local! {
    /// The last text normalized.
    static LAST: RefCell<Option<Normalized>> = const { RefCell::new(None) };
}

fn normalized_cached(text: &CStr) -> Option<String> {
    // SAFETY: the plain bool variable of a setting, written only by SET on
    // this thread (the backend's only one).
    let scs = unsafe { pg_sys::standard_conforming_strings };
    let hit = LAST.with(|l| match &*l.borrow() {
        Some((t, s, n)) if *s == scs && t.as_slice() == text.to_bytes() => Some(n.clone()),
        _ => None,
    });
    if let Some(n) = hit {
        return n;
    }
    let n = normalize(text);
    LAST.with(|l| *l.borrow_mut() = Some((text.to_bytes().to_vec(), scs, n.clone())));
    n
}

/// `text` with its literals replaced by `$n` (see the module's comment);
/// None when the scanner refuses it.
pub fn normalize(text: &CStr) -> Option<String> {
    let tokens = tokens()?;
    let owned = text.to_owned();
    let scanned = PgTryBuilder::new(move || Some(scan(&owned, false))).catch_others(|_| None).execute()?;
    rewrite(text.to_bytes(), &scanned, &tokens)
}

/// One token of the core scanner: its code, where it starts and ends (byte
/// offsets), and its integer value (a `$n`'s n).
struct Token {
    code: i32,
    start: usize,
    end: usize,
    ival: i32,
}

/// Every token of `text`, by PostgreSQL's core scanner with the session's
/// standard_conforming_strings and backslash_quote, as raw_parser() sets it
/// up (`conforming`: with standard_conforming_strings on, whatever the
/// session says). Raises the scanner's error for a text it refuses (an
/// unterminated quote, say).
fn scan(text: &CStr, conforming: bool) -> Vec<Token> {
    let mut out = Vec::new();
    // SAFETY: scanner_init copies `text` (NUL-terminated, alive for the
    // call) into a palloc'd buffer and keeps a pointer to `extra`, which
    // stays on this frame until scanner_finish; the keyword list and its
    // token codes are the server's own (what raw_parser passes). As
    // pg_stat_statements does, escape string warnings are turned off after
    // init (the statement was warned about when it ran); the scanner reads
    // its flags from `extra` as it goes, so they may be set there before
    // the first token. After each token
    // flex has put a NUL just past its text in the buffer, so the token
    // ends where that string ends: the same reading pg_stat_statements
    // makes of it. A token's location is a byte offset into the buffer,
    // which mirrors `text`. ival is one of the union's plain integers, read
    // as such whatever the token (it is only used for parameters).
    unsafe {
        let mut extra = pg_sys::core_yy_extra_type::default();
        // Every use of `extra` goes through this one pointer, the scanner's.
        let extra: *mut pg_sys::core_yy_extra_type = &mut extra;
        let scanner = pg_sys::scanner_init(
            text.as_ptr(),
            extra,
            &raw const pg_sys::ScanKeywords,
            (&raw const pg_sys::ScanKeywordTokens).cast::<u16>(),
        );
        (*extra).escape_string_warning = false;
        if conforming {
            (*extra).standard_conforming_strings = true;
        }
        loop {
            let mut value = pg_sys::core_YYSTYPE::default();
            let mut location = 0;
            let code = pg_sys::core_yylex(&mut value, &mut location, scanner);
            if code == 0 {
                break;
            }
            let start = location.max(0) as usize;
            let end = start + CStr::from_ptr((*extra).scanbuf.add(start)).to_bytes().len();
            out.push(Token { code, start, end, ival: value.ival });
        }
        pg_sys::scanner_finish(scanner);
    }
    out
}

/// The token codes normalizing needs. They come from the grammar
/// (`parser/gram.h`, which pgrx does not bind) and may differ between
/// PostgreSQL versions, so they are learnt from the scanner itself, once
/// per backend, by scanning SAMPLE, which holds each of them in this order
/// (with standard_conforming_strings on, which `U&'...'` needs).
#[derive(Clone, Copy)]
struct Codes {
    sconst: i32,
    usconst: i32,
    iconst: i32,
    fconst: i32,
    bconst: i32,
    xconst: i32,
    param: i32,
    uescape: i32,
    nchar: i32,
    /// Operators the scanner gives codes of their own (`Op` for the rest).
    operators: [i32; 7],
    /// Keywords after which a `-` is a sign.
    sign_keywords: [i32; 12],
}

const SAMPLE: &CStr =
    c"'s' U&'u' 1 1.5 b'1' x'1' $1 uescape nchar || <= >= <> != => := select where and or not when then else case between like ilike";

thread_local! {
    static CODES: std::cell::Cell<Option<Option<Codes>>> = const { std::cell::Cell::new(None) };
}

/// The codes, learnt on first use; None if SAMPLE does not scan as it must
/// (then nothing is normalized, and the statement is not recorded).
fn tokens() -> Option<Codes> {
    if let Some(known) = CODES.get() {
        return known;
    }
    let learnt = PgTryBuilder::new(|| Some(scan(SAMPLE, true))).catch_others(|_| None).execute().and_then(|t| {
        let c: Vec<i32> = t.iter().map(|t| t.code).collect();
        (c.len() == 28).then(|| Codes {
            sconst: c[0],
            usconst: c[1],
            iconst: c[2],
            fconst: c[3],
            bconst: c[4],
            xconst: c[5],
            param: c[6],
            uescape: c[7],
            nchar: c[8],
            operators: [c[9], c[10], c[11], c[12], c[13], c[14], c[15]],
            sign_keywords: [c[16], c[17], c[18], c[19], c[20], c[21], c[22], c[23], c[24], c[25], c[26], c[27]],
        })
    });
    CODES.set(Some(learnt));
    learnt
}

/// Whether a `-` after the token `before` (None: nothing before it) is the
/// sign of the number that follows rather than a subtraction.
fn sign_follows(before: Option<i32>, codes: &Codes) -> bool {
    let Some(b) = before else { return true };
    (b > 0 && b < 128 && b"(,[:;+-*/%^<>=".contains(&(b as u8))) || codes.operators.contains(&b) || codes.sign_keywords.contains(&b)
}

/// `text` with each constant's span replaced by `$n`; None when the numbers
/// would run past `$2147483647` (a text that already holds that parameter).
fn rewrite(text: &[u8], tokens: &[Token], codes: &Codes) -> Option<String> {
    let constant = |c: i32| [codes.sconst, codes.usconst, codes.iconst, codes.fconst, codes.bconst, codes.xconst].contains(&c);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut highest = 0i32;
    for (i, t) in tokens.iter().enumerate() {
        let before = |k: usize| i.checked_sub(k).map(|j| &tokens[j]);
        if t.code == codes.param {
            highest = highest.max(t.ival);
            continue;
        }
        if !constant(t.code) {
            continue;
        }
        let mut start = t.start;
        match (before(1), before(2), before(3)) {
            // U&'...' UESCAPE '!': the escape character belongs to the string.
            (Some(u), Some(s), _) if t.code == codes.sconst && u.code == codes.uescape && s.code == codes.usconst => {
                if let Some(last) = spans.last_mut() {
                    last.1 = t.end;
                }
                continue;
            }
            // N'...': the scanner gives the N as the keyword NCHAR.
            (Some(n), _, _) if t.code == codes.sconst && n.code == codes.nchar && n.start + 1 == t.start => start = n.start,
            // A negative number.
            (Some(m), b, _)
                if (t.code == codes.iconst || t.code == codes.fconst)
                    && m.code == b'-' as i32
                    && sign_follows(b.map(|b| b.code), codes) =>
            {
                start = m.start
            }
            _ => {}
        }
        spans.push((start, t.end));
    }
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    let mut n = highest;
    for (start, end) in spans {
        let (start, end) = (start.clamp(at, text.len()), end.clamp(at, text.len()));
        out.extend_from_slice(&text[at..start]);
        n = n.checked_add(1)?;
        out.extend_from_slice(format!("${n}").as_bytes());
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn norm(s: &str) -> String {
        super::normalize(&std::ffi::CString::new(s).unwrap()).unwrap_or_else(|| "<none>".into())
    }

    /// A text that already uses the last parameter number cannot be
    /// numbered on: no statement text (NULL), not an error that aborts the
    /// audited statement.
    #[pg_test]
    fn parameter_numbers_do_not_overflow() {
        assert_eq!(norm("SELECT 1, $2147483647"), "<none>");
    }

    #[pg_test]
    fn literals_become_parameters() {
        assert_eq!(norm("SELECT 1"), "SELECT $1");
        assert_eq!(norm("UPDATE t SET a = 'x', b = 2.5e3 WHERE id = 7;"), "UPDATE t SET a = $1, b = $2 WHERE id = $3;");
        assert_eq!(norm("SELECT E'it\\'s', $$a 'b'$$, $q$c$q$, B'101', X'1F'"), "SELECT $1, $2, $3, $4, $5");
        assert_eq!(norm("SELECT U&'d!0061t' UESCAPE '!', N'n', n'm'"), "SELECT $1, $2, $3");
        assert_eq!(norm("SELECT 'a'\n'b' AS x"), "SELECT $1 AS x");
    }

    #[pg_test]
    fn signs_and_subtractions() {
        assert_eq!(norm("SELECT -1, - 2.5, n - 3, n-4, (-5), x * -6"), "SELECT $1, $2, n - $3, n-$4, ($5), x * $6");
        assert_eq!(norm("SELECT 1 WHERE a = -1 AND -2 < b"), "SELECT $1 WHERE a = $2 AND $3 < b");
        assert_eq!(norm("SELECT -x, 'a' -1"), "SELECT -x, $1 -$2");
    }

    #[pg_test]
    fn existing_parameters_are_kept_and_counted_past() {
        assert_eq!(norm("INSERT INTO t VALUES ($1, 'x', $3, 4)"), "INSERT INTO t VALUES ($1, $4, $3, $5)");
    }

    #[pg_test]
    fn comments_identifiers_and_keywords_stay() {
        assert_eq!(norm("SELECT \"1\" /* 'c' */ FROM t -- 'd'\nWHERE true"), "SELECT \"1\" /* 'c' */ FROM t -- 'd'\nWHERE true");
        assert_eq!(norm("SELECT 'é', 'ü'"), "SELECT $1, $2");
    }

    #[pg_test]
    fn refused_text_gives_nothing() {
        assert_eq!(norm("SELECT 'unterminated"), "<none>");
        // The scanner's error is trapped: the transaction goes on.
        assert_eq!(norm("SELECT 2"), "SELECT $1");
    }
}
