//! The live feed: with audit_trail.notify_channel set, each event is
//! announced with pg_notify on that channel once its transaction commits.
//!
//! Capture only queues the payloads, in backend memory and per
//! (sub)transaction; they are handed to NOTIFY at XACT_EVENT_PRE_COMMIT,
//! which CommitTransaction() calls before PreCommit_Notify() puts pending
//! notifications in the queue. A transaction that called NOTIFY cannot be
//! prepared, so PREPARE TRANSACTION works on audited tables whatever the
//! channel says: a prepared transaction's events are not announced (API §8).
//! A rolled-back subtransaction's payloads go with it; an aborted
//! transaction's never leave the backend.

use crate::json::{self, Render};
use crate::settings;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Payloads waiting for their transaction to commit, in capture order, and
/// where each subtransaction's own begin: `marks` holds (subtransaction,
/// index of its first payload), innermost last.
struct Pending {
    payloads: Vec<(Rc<str>, String)>,
    marks: Vec<(pg_sys::SubTransactionId, usize)>,
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending { payloads: Vec::new(), marks: Vec::new() }) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

fn queue(channel: &Rc<str>, payload: String) {
    if !CALLBACKS.get() {
        // SAFETY: registers #[pg_guard]ed functions of this library, which
        // stays loaded for the backend's life, with no argument; CALLBACKS
        // makes sure it happens once.
        unsafe {
            pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
        }
        CALLBACKS.set(true);
    }
    // SAFETY: only reads the transaction state; capture (the only caller)
    // runs inside a transaction.
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    queue_in(sub, channel, payload);
}

fn queue_in(sub: pg_sys::SubTransactionId, channel: &Rc<str>, payload: String) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.marks.last().is_none_or(|&(s, _)| s != sub) {
            let at = p.payloads.len();
            p.marks.push((sub, at));
        }
        p.payloads.push((channel.clone(), payload));
    });
}

fn take_all() -> Vec<(Rc<str>, String)> {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.marks.clear();
        std::mem::take(&mut p.payloads)
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_PRE_COMMIT => {
            // Taken first: if NOTIFY fails, the transaction aborts with
            // nothing left behind for the next one.
            for (channel, payload) in take_all() {
                // SAFETY: pg_notify with two text datums, made here in the
                // current memory context; NOTIFY may still be queued at
                // pre-commit (PreCommit_Notify runs after this callback).
                unsafe {
                    pgrx::direct_function_call_as_datum(
                        pg_sys::pg_notify,
                        &[(&*channel).into_datum(), payload.as_str().into_datum()],
                    );
                }
            }
        }
        // PRE_PREPARE: a prepared transaction's events are not announced;
        // the rest: nothing may outlive its transaction.
        _ => drop(take_all()),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subxact(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        match event {
            pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
                // Its payloads and those of its children, which all come
                // after its first one.
                while let Some(&(s, at)) = p.marks.last() {
                    if s < my_subid {
                        break;
                    }
                    p.payloads.truncate(at);
                    p.marks.pop();
                }
            }
            pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
                // Its payloads are now its parent's.
                if let Some(&(s, at)) = p.marks.last() {
                    if s == my_subid {
                        p.marks.pop();
                        if p.marks.last().is_none_or(|&(s, _)| s != parent_subid) {
                            p.marks.push((parent_subid, at));
                        }
                    }
                }
            }
            _ => {}
        }
    });
}

/// NOTIFY refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;

#[derive(Clone)]
pub struct Feed {
    channel: Rc<str>,
    occurred_at: String,
    action: String,
    entity_type: Option<String>,
    actor: String,
}

impl Feed {
    /// The feed for one statement's events, or None when no channel is set.
    pub fn for_statement(occurred_at: Datum, action: &str, entity_type: Option<&str>, actor: &str) -> Option<Feed> {
        let channel = settings::text(&settings::NOTIFY_CHANNEL)?;
        Some(Feed {
            channel: channel.into(),
            // SAFETY: timestamptz is passed by value (an int64): any datum is
            // one, and one out of range is refused with an error, not misread.
            occurred_at: unsafe { json::to_json_text(occurred_at, false, pg_sys::TIMESTAMPTZOID, Render::Value) },
            action: action.to_string(),
            entity_type: entity_type.map(str::to_string),
            actor: actor.to_string(),
        })
    }

    /// Queues one event's announcement for its transaction's commit;
    /// `entity_id` is the text datum the log stores.
    ///
    /// # Safety
    /// `entity_id` must be a valid text datum (the writer passes the one it
    /// made for the event and still holds).
    pub unsafe fn announce(&self, id: i64, entity_id: Option<Datum>) {
        // SAFETY: as the caller promises; text_to_cstring copies it
        // (detoasted) into palloc'd memory that the batch context frees.
        let entity_id = entity_id.map(|d| unsafe {
            std::ffi::CStr::from_ptr(pg_sys::text_to_cstring(d.cast_mut_ptr())).to_string_lossy().into_owned()
        });
        queue(&self.channel, self.payload(id, entity_id.as_deref()));
    }

    /// announce, for an event whose action is its own (a named action,
    /// API §11) and not the statement's.
    ///
    /// # Safety
    /// As for announce; `action` must be a valid text datum too.
    pub unsafe fn announce_as(&self, id: i64, entity_id: Option<Datum>, action: Datum) {
        let mut named = self.clone();
        // SAFETY: as the caller promises; text_to_cstring copies it.
        named.action = unsafe { std::ffi::CStr::from_ptr(pg_sys::text_to_cstring(action.cast_mut_ptr())).to_string_lossy().into_owned() };
        // SAFETY: as the caller promises.
        unsafe { named.announce(id, entity_id) };
    }

    /// `{"id","occurred_at","action","entity_type","entity_id","actor"}`;
    /// text fields are cut short (and "truncated": true added) until the
    /// payload fits NOTIFY's limit, however long the values are.
    pub fn payload(&self, id: i64, entity_id: Option<&str>) -> String {
        for limit in [usize::MAX, 1000, 100] {
            let p = format!(
                "{{\"id\": {id}, \"occurred_at\": {}, \"action\": {}, \"entity_type\": {}, \"entity_id\": {}, \"actor\": {}{}}}",
                self.occurred_at,
                quote(Some(&self.action), limit),
                quote(self.entity_type.as_deref(), limit),
                quote(entity_id, limit),
                quote(Some(&self.actor), limit),
                if limit == usize::MAX { "" } else { ", \"truncated\": true" },
            );
            if p.len() <= MAX_PAYLOAD {
                return p;
            }
        }
        unreachable!("a payload of 4 fields of 100 characters fits")
    }
}

/// A JSON string of at most `limit` characters of `s`, or null.
fn quote(s: Option<&str>, limit: usize) -> String {
    let Some(s) = s else { return "null".into() };
    let mut out = String::with_capacity(s.len().min(limit) + 2);
    out.push('"');
    for c in s.chars().take(limit) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn feed(actor: &str) -> super::Feed {
        super::Feed {
            channel: std::rc::Rc::from("c"),
            occurred_at: "\"2026-01-01T00:00:00+00:00\"".into(),
            action: "UPDATE".into(),
            entity_type: Some("public.t".into()),
            actor: actor.into(),
        }
    }

    /// Payloads follow their subtransaction: kept when it commits into its
    /// parent, dropped with it (and its children) when it rolls back.
    #[pg_test]
    fn pending_payloads_follow_subtransactions() {
        use pgrx::pg_sys::SubXactEvent::{SUBXACT_EVENT_ABORT_SUB, SUBXACT_EVENT_COMMIT_SUB};
        let c: std::rc::Rc<str> = std::rc::Rc::from("c");
        let pending = || super::PENDING.with(|p| p.borrow().payloads.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
        // SAFETY: on_subxact ignores its argument and touches nothing but
        // PENDING: calling it by hand is as sound as PostgreSQL calling it.
        let sub = |event, my, parent| unsafe { super::on_subxact(event, my, parent, std::ptr::null_mut()) };
        drop(super::take_all());
        super::queue_in(1, &c, "top".into());
        super::queue_in(2, &c, "in 2".into());
        super::queue_in(3, &c, "in 3, a child of 2".into());
        sub(SUBXACT_EVENT_COMMIT_SUB, 3, 2);
        super::queue_in(2, &c, "in 2 again".into());
        sub(SUBXACT_EVENT_ABORT_SUB, 2, 1);
        assert_eq!(pending(), ["top"]);
        super::queue_in(4, &c, "in 4".into());
        sub(SUBXACT_EVENT_COMMIT_SUB, 4, 1);
        super::queue_in(5, &c, "in 5".into());
        super::queue_in(6, &c, "in 6, a child of 5".into());
        sub(SUBXACT_EVENT_ABORT_SUB, 6, 5);
        sub(SUBXACT_EVENT_COMMIT_SUB, 5, 1);
        super::queue_in(1, &c, "top again".into());
        assert_eq!(pending(), ["top", "in 4", "in 5", "top again"]);
        drop(super::take_all());
        assert!(pending().is_empty());
    }

    #[pg_test]
    fn payload_is_json_and_fits() {
        let p = feed("a \"quoted\"\n actor").payload(7, Some("[1,\"x\"]"));
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["actor"], "a \"quoted\"\n actor");
        assert_eq!(v["entity_id"], "[1,\"x\"]");
        let huge = "\u{1}".repeat(100_000);
        let p = feed(&huge).payload(8, Some(&huge));
        assert!(p.len() <= super::MAX_PAYLOAD, "{}", p.len());
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["truncated"], true);
    }
}
