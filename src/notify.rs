//! The live feed: with audit_trail.notify_channel set, each event is
//! announced with pg_notify on that channel. PostgreSQL delivers
//! notifications at commit and drops those of a rolled-back transaction or
//! subtransaction, so listeners see committed events only.

use crate::json::{self, Render};
use crate::settings;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

/// NOTIFY refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;

pub struct Feed {
    channel: String,
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
            channel,
            occurred_at: json::to_json_text(occurred_at, false, pg_sys::TIMESTAMPTZOID, Render::Value),
            action: action.to_string(),
            entity_type: entity_type.map(str::to_string),
            actor: actor.to_string(),
        })
    }

    /// Announces one event; `entity_id` is the text datum the log stores.
    pub fn announce(&self, id: i64, entity_id: Option<Datum>) {
        let entity_id = entity_id.map(|d| unsafe {
            std::ffi::CStr::from_ptr(pg_sys::text_to_cstring(d.cast_mut_ptr())).to_string_lossy().into_owned()
        });
        let payload = self.payload(id, entity_id.as_deref());
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::pg_notify,
                &[self.channel.as_str().into_datum(), payload.as_str().into_datum()],
            );
        }
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
            channel: "c".into(),
            occurred_at: "\"2026-01-01T00:00:00+00:00\"".into(),
            action: "UPDATE".into(),
            entity_type: Some("public.t".into()),
            actor: actor.into(),
        }
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
