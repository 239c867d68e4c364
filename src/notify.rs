//! The live feed (API §7, §10): with audit_trail.notify_channel set, each
//! committing transaction that wrote events says so on that channel. NOTIFY
//! has no access control, so by default (audit_trail.notify_payload =
//! minimal) that is one `{"txid": ..., "events": n}` per transaction and
//! channel: a wake-up for consumers, who then read the events through
//! audit_trail.feed() with their own SELECT rights. `summary` sends one
//! JSON object per event instead, as 0.4.0 did, with tenant, entity_label,
//! client_ip and service added.
//!
//! Capture only queues, in backend memory and per (sub)transaction: counts
//! (minimal) or payloads (summary); they are handed to NOTIFY at
//! XACT_EVENT_PRE_COMMIT, which CommitTransaction() calls before
//! PreCommit_Notify() puts pending notifications in the queue. A transaction
//! that called NOTIFY cannot be prepared, so PREPARE TRANSACTION works on
//! audited tables whatever the channel says: a prepared transaction's events
//! are not announced (API §8), but feed() delivers them once COMMIT PREPARED
//! commits them. A rolled-back subtransaction's entries go with it; an
//! aborted transaction's never leave the backend.

use crate::json::{self, Render};
use crate::settings;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What waits for the transaction's commit on one channel: a payload
/// (summary), or a number of events (minimal; consecutive events of one
/// subtransaction on one channel share an entry).
#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Payload(String),
    Count(u64),
}

/// Entries waiting for their transaction to commit, in capture order, and
/// where each subtransaction's own begin: `marks` holds (subtransaction,
/// index of its first entry), innermost last.
struct Pending {
    payloads: Vec<(Rc<str>, Entry)>,
    marks: Vec<(pg_sys::SubTransactionId, usize)>,
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending { payloads: Vec::new(), marks: Vec::new() }) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

fn queue(channel: &Rc<str>, entry: Entry) {
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
    queue_in(sub, channel, entry);
}

fn queue_in(sub: pg_sys::SubTransactionId, channel: &Rc<str>, entry: Entry) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.marks.last().is_none_or(|&(s, _)| s != sub) {
            let at = p.payloads.len();
            p.marks.push((sub, at));
        } else if let (Entry::Count(n), Some((c, Entry::Count(m)))) = (&entry, p.payloads.last_mut()) {
            // The same subtransaction's last entry (its mark is the last):
            // one more batch of events on that channel.
            if **c == **channel {
                *m += n;
                return;
            }
        }
        p.payloads.push((channel.clone(), entry));
    });
}

/// What to send at commit, in order: each summary payload where it was
/// queued, and for each channel that counted events, one wake-up where its
/// first count was queued.
fn notifications(entries: Vec<(Rc<str>, Entry)>, txid: u64) -> Vec<(Rc<str>, String)> {
    let mut out: Vec<(Rc<str>, String)> = Vec::new();
    let mut counts: Vec<(Rc<str>, usize, u64)> = Vec::new();
    for (channel, entry) in entries {
        match entry {
            Entry::Payload(p) => out.push((channel, p)),
            Entry::Count(n) => match counts.iter_mut().find(|(c, _, _)| **c == *channel) {
                Some((_, _, m)) => *m += n,
                None => {
                    counts.push((channel.clone(), out.len(), n));
                    out.push((channel, String::new()));
                }
            },
        }
    }
    for (_, at, n) in counts {
        out[at].1 = format!("{{\"txid\": {txid}, \"events\": {n}}}");
    }
    out
}

fn take_all() -> Vec<(Rc<str>, Entry)> {
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
            let entries = take_all();
            if entries.is_empty() {
                return;
            }
            // SAFETY: reads the transaction state; a transaction that queued
            // entries wrote events, so it has a transaction id.
            let txid = unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value;
            for (channel, payload) in notifications(entries, txid) {
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

/// One statement's announcements, when a channel is set.
pub struct Feed {
    channel: Rc<str>,
    summary: Option<Summary>,
}

/// What a summary payload has of the statement (the action is each
/// event's: a named action, API §11, is the event's own).
struct Summary {
    occurred_at: String,
    entity_type: Option<String>,
    actor: String,
}

/// The text of a text datum, or None.
///
/// # Safety
/// Unless `isnull`, `d` is a valid text datum.
unsafe fn text_of(d: Datum, isnull: bool) -> Option<String> {
    if isnull {
        return None;
    }
    // SAFETY: as the caller promises.
    Some(unsafe { crate::datum::text_string(d) })
}

impl Feed {
    /// The feed for one statement's events, or None when no channel is set.
    pub fn for_statement(occurred_at: Datum, entity_type: Option<&str>, actor: &str) -> Option<Feed> {
        let channel = settings::text(&settings::NOTIFY_CHANNEL)?;
        let summary = match settings::NOTIFY_PAYLOAD.get() {
            settings::NotifyPayload::Minimal => None,
            settings::NotifyPayload::Summary => Some(Summary {
                // SAFETY: timestamptz is passed by value (an int64): any datum
                // is one, and one out of range is refused with an error, not
                // misread.
                occurred_at: unsafe { json::to_json_text(occurred_at, false, pg_sys::TIMESTAMPTZOID, Render::Value) },
                entity_type: entity_type.map(str::to_string),
                actor: actor.to_string(),
            }),
        };
        Some(Feed { channel: channel.into(), summary })
    }

    /// Whether announcing needs each event's id (summary payloads do).
    pub fn wants_ids(&self) -> bool {
        self.summary.is_some()
    }

    /// Queues the announcement of events just written for their
    /// transaction's commit: `ids` (when `wants_ids`) and `rows` in the
    /// same order.
    ///
    /// # Safety
    /// `rows` are event rows whose datums are valid for the columns'
    /// types (the writer passes the rows it just wrote, still in memory).
    pub unsafe fn announce(&self, ids: &[i64], rows: &[crate::event_row::Values]) {
        use crate::event_row::Col;
        let Some(sum) = self.summary.as_ref() else {
            if !rows.is_empty() {
                queue(&self.channel, Entry::Count(rows.len() as u64));
            }
            return;
        };
        for (id, row) in ids.iter().zip(rows) {
            let col = |c: Col| (row.datums[c as usize], row.nulls[c as usize]);
            // SAFETY: text columns of a valid event row (the caller's
            // promise); client_ip is an inet datum, rendered as to_jsonb does.
            let (action, entity_id, entity_label, tenant, service, client_ip) = unsafe {
                let (d, n) = col(Col::ClientIp);
                (
                    text_of(col(Col::Action).0, col(Col::Action).1),
                    text_of(col(Col::EntityId).0, col(Col::EntityId).1),
                    text_of(col(Col::EntityLabel).0, col(Col::EntityLabel).1),
                    text_of(col(Col::Tenant).0, col(Col::Tenant).1),
                    text_of(col(Col::Service).0, col(Col::Service).1),
                    json::to_json_text(d, n, pg_sys::INETOID, Render::Value),
                )
            };
            let fields = Fields {
                action: action.as_deref().unwrap_or_default(),
                entity_id: entity_id.as_deref(),
                entity_label: entity_label.as_deref(),
                tenant: tenant.as_deref(),
                service: service.as_deref(),
                client_ip: &client_ip,
            };
            queue(&self.channel, Entry::Payload(sum.payload(*id, &fields)));
        }
    }
}

/// An event's own fields of a summary payload.
struct Fields<'a> {
    action: &'a str,
    entity_id: Option<&'a str>,
    entity_label: Option<&'a str>,
    tenant: Option<&'a str>,
    service: Option<&'a str>,
    /// Already JSON (null or a string).
    client_ip: &'a str,
}

impl Summary {
    /// `{"id","occurred_at","action","entity_type","entity_id","actor",
    /// "tenant","entity_label","client_ip","service"}`; text fields are cut
    /// short (and "truncated": true added) until the payload fits NOTIFY's
    /// limit, however long the values are.
    fn payload(&self, id: i64, f: &Fields) -> String {
        for limit in [usize::MAX, 1000, 100] {
            let p = format!(
                "{{\"id\": {id}, \"occurred_at\": {}, \"action\": {}, \"entity_type\": {}, \"entity_id\": {}, \"actor\": {}, \"tenant\": {}, \"entity_label\": {}, \"client_ip\": {}, \"service\": {}{}}}",
                self.occurred_at,
                quote(Some(f.action), limit),
                quote(self.entity_type.as_deref(), limit),
                quote(f.entity_id, limit),
                quote(Some(&self.actor), limit),
                quote(f.tenant, limit),
                quote(f.entity_label, limit),
                f.client_ip,
                quote(f.service, limit),
                if limit == usize::MAX { "" } else { ", \"truncated\": true" },
            );
            if p.len() <= MAX_PAYLOAD {
                return p;
            }
        }
        unreachable!("a payload of 8 fields of 100 characters fits")
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
    use super::Entry;
    use pgrx::prelude::*;

    fn summary(actor: &str) -> super::Summary {
        super::Summary {
            occurred_at: "\"2026-01-01T00:00:00+00:00\"".into(),
            entity_type: Some("public.t".into()),
            actor: actor.into(),
        }
    }

    fn p(s: &str) -> Entry {
        Entry::Payload(s.into())
    }

    /// Entries follow their subtransaction: kept when it commits into its
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
        super::queue_in(1, &c, p("top"));
        super::queue_in(2, &c, p("in 2"));
        super::queue_in(3, &c, p("in 3, a child of 2"));
        sub(SUBXACT_EVENT_COMMIT_SUB, 3, 2);
        super::queue_in(2, &c, p("in 2 again"));
        sub(SUBXACT_EVENT_ABORT_SUB, 2, 1);
        assert_eq!(pending(), [p("top")]);
        super::queue_in(4, &c, p("in 4"));
        sub(SUBXACT_EVENT_COMMIT_SUB, 4, 1);
        super::queue_in(5, &c, p("in 5"));
        super::queue_in(6, &c, p("in 6, a child of 5"));
        sub(SUBXACT_EVENT_ABORT_SUB, 6, 5);
        sub(SUBXACT_EVENT_COMMIT_SUB, 5, 1);
        super::queue_in(1, &c, p("top again"));
        assert_eq!(pending(), [p("top"), p("in 4"), p("in 5"), p("top again")]);
        drop(super::take_all());
        assert!(pending().is_empty());
    }

    /// Minimal: counts add up per channel within a subtransaction, a rolled
    /// back subtransaction's count goes, and the transaction sends one
    /// wake-up per channel with the total, where its first count was.
    #[pg_test]
    fn counts_make_one_wakeup_per_channel() {
        use pgrx::pg_sys::SubXactEvent::{SUBXACT_EVENT_ABORT_SUB, SUBXACT_EVENT_COMMIT_SUB};
        let a: std::rc::Rc<str> = std::rc::Rc::from("a");
        let b: std::rc::Rc<str> = std::rc::Rc::from("b");
        // SAFETY: as above.
        let sub = |event, my, parent| unsafe { super::on_subxact(event, my, parent, std::ptr::null_mut()) };
        drop(super::take_all());
        super::queue_in(1, &a, Entry::Count(3));
        super::queue_in(1, &a, Entry::Count(2));
        super::queue_in(2, &a, Entry::Count(100));
        sub(SUBXACT_EVENT_ABORT_SUB, 2, 1);
        super::queue_in(3, &b, Entry::Count(1));
        super::queue_in(3, &a, Entry::Count(4));
        sub(SUBXACT_EVENT_COMMIT_SUB, 3, 1);
        super::queue_in(1, &a, p("{\"id\": 1}"));
        let sent = super::notifications(super::take_all(), 42);
        let sent: Vec<(String, String)> = sent.into_iter().map(|(c, s)| (c.to_string(), s)).collect();
        assert_eq!(
            sent,
            [
                ("a".to_string(), "{\"txid\": 42, \"events\": 9}".to_string()),
                ("b".to_string(), "{\"txid\": 42, \"events\": 1}".to_string()),
                ("a".to_string(), "{\"id\": 1}".to_string()),
            ]
        );
    }

    #[pg_test]
    fn payload_is_json_and_fits() {
        let f = super::Fields { action: "UPDATE", entity_id: Some("[1,\"x\"]"), entity_label: None, tenant: Some("acme"), service: None, client_ip: "\"10.0.0.1\"" };
        let p = summary("a \"quoted\"\n actor").payload(7, &f);
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["actor"], "a \"quoted\"\n actor");
        assert_eq!(v["entity_id"], "[1,\"x\"]");
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["client_ip"], "10.0.0.1");
        assert!(v["service"].is_null());
        let huge = "\u{1}".repeat(100_000);
        let f = super::Fields { action: "UPDATE", entity_id: Some(&huge), entity_label: Some(&huge), tenant: Some(&huge), service: Some(&huge), client_ip: "null" };
        let p = summary(&huge).payload(8, &f);
        assert!(p.len() <= super::MAX_PAYLOAD, "{}", p.len());
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["truncated"], true);
    }
}
