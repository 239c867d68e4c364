//! The sealed trail (API §13): the canonical bytes of an event, the Merkle
//! tree over a seal's events (RFC 6962), the chain of seals, and checkpoints
//! as signed notes. sql/seal.sql holds the tables and the SQL entry points
//! (seal, verify, checkpoint, verify_checkpoint); this module computes.
//!
//! The canonical bytes are defined here and nowhere else (`COLUMNS`,
//! `canonical_bytes`), and documented byte by byte in the README ("Sealing
//! the trail"). They never change for an event that exists: a column a later
//! version adds is appended to `COLUMNS`, and a NULL value contributes no
//! bytes, so every event written before the column existed keeps its bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use pgrx::prelude::*;
use sha2::{Digest, Sha256};

/// How a column's value becomes bytes (its tag in the canonical bytes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// 8 bytes, big-endian two's complement.
    Int8 = 1,
    /// 8 bytes, big-endian: microseconds since 2000-01-01 00:00:00 UTC
    /// (PostgreSQL's own representation of a timestamptz).
    Timestamptz = 2,
    /// The text's bytes as stored (UTF-8 in a UTF-8 database).
    Text = 3,
    /// jsonb's text output (jsonb::text): keys sorted, no insignificant
    /// white space, numbers as numeric prints them; no setting changes it.
    Jsonb = 4,
    /// text[]'s text output (text[]::text), e.g. {a,"b c",NULL}.
    TextArray = 5,
    /// inet::text: address/prefix length, e.g. 10.0.0.1/32.
    Inet = 6,
}

/// The columns of an event, in canonical order. Append only: never
/// reorder, rename or remove an entry (old seals would no longer verify).
pub const COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Int8),
    ("occurred_at", Kind::Timestamptz),
    ("txid", Kind::Int8),
    ("action", Kind::Text),
    ("entity_type", Kind::Text),
    ("entity_id", Kind::Text),
    ("entity_label", Kind::Text),
    ("before", Kind::Jsonb),
    ("after", Kind::Jsonb),
    ("changed", Kind::TextArray),
    ("details", Kind::Jsonb),
    ("actor", Kind::Text),
    ("db_user", Kind::Text),
    ("client_ip", Kind::Inet),
    ("user_agent", Kind::Text),
    ("service", Kind::Text),
    ("tenant", Kind::Text),
    ("request_id", Kind::Text),
    ("statement", Kind::Text),
    ("operation", Kind::Text),
];

/// The three columns passed as themselves; the others reach
/// `_event_leaf` as text, in `COLUMNS` order.
const TYPED: usize = 3;

/// Version of the seal format (canonical bytes, tree, chain), hashed into
/// every seal's root. Format 1 (0.5.0): the chain commits to the events'
/// tree only. Format 2 (0.6.0 on): it also commits to each event's
/// occurred_at, the partitions (and their ranges) that held the events, and
/// where the database's series of transaction ids began (`chain_root_v2`):
/// what verify() needs to tell retention from tampering. A seal keeps its
/// format: format 1 seals verify as 0.5.0 made them.
pub const FORMAT: u8 = 2;

/// One field: name length (1 byte), name, tag (1 byte), value length
/// (4 bytes, big-endian), value.
fn field(out: &mut Vec<u8>, name: &str, kind: Kind, value: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// The canonical bytes of an event: its non-NULL columns in `COLUMNS`
/// order, each as a field. `rest` holds the columns after `txid`, rendered
/// as text (`render`), NULL as None.
pub fn canonical_bytes(id: Option<i64>, occurred_at: Option<i64>, txid: Option<i64>, rest: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    for (i, v) in [id, occurred_at, txid].into_iter().enumerate() {
        if let Some(v) = v {
            field(&mut out, COLUMNS[i].0, COLUMNS[i].1, &v.to_be_bytes());
        }
    }
    for (i, v) in rest.iter().enumerate().take(COLUMNS.len() - TYPED) {
        if let Some(v) = v {
            let (name, kind) = COLUMNS[TYPED + i];
            field(&mut out, name, kind, v.as_bytes());
        }
    }
    out
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 6962 leaf hash: SHA-256(0x00 || bytes).
pub fn leaf_hash(bytes: &[u8]) -> [u8; 32] {
    sha256(&[&[0u8], bytes])
}

/// RFC 6962 interior node: SHA-256(0x01 || left || right).
fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1u8], l, r])
}

/// The RFC 6962 Merkle tree hash of leaves pushed one by one, in constant
/// memory per level: the stack holds the roots of the perfect subtrees so
/// far (largest first); the root folds them from the right, which is the
/// RFC's split (the left subtree is the largest power of two below n).
#[derive(Default)]
pub struct Merkle {
    stack: Vec<(u32, [u8; 32])>,
    pub count: u64,
}

impl Merkle {
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut h = leaf;
        let mut height = 0;
        while let Some(&(top_height, top)) = self.stack.last() {
            if top_height != height {
                break;
            }
            self.stack.pop();
            h = node_hash(&top, &h);
            height += 1;
        }
        self.stack.push((height, h));
        self.count += 1;
    }

    /// The tree hash; the empty tree's is SHA-256 of nothing (RFC 6962).
    pub fn root(&self) -> [u8; 32] {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return sha256(&[]);
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A seal's root, chained to the previous seal's: SHA-256(0x02 || format ||
/// seal_id || previous root (32 zero bytes for the first seal) || tree root
/// || events || sealed_at || position length || position), integers 8
/// bytes big-endian, sealed_at as in the canonical bytes, the position's
/// length 4 bytes big-endian.
pub fn chain_root(previous_root: Option<&[u8]>, seal_id: i64, sealed_at: i64, events: i64, tree_root: &[u8], position: &str) -> [u8; 32] {
    let prev = previous_root.unwrap_or(&[0u8; 32]);
    sha256(&[
        &[2u8, 1u8],
        &seal_id.to_be_bytes(),
        prev,
        tree_root,
        &events.to_be_bytes(),
        &sealed_at.to_be_bytes(),
        &(position.len() as u32).to_be_bytes(),
        position.as_bytes(),
    ])
}

/// A partition that held events of a seal: its name and, for a time
/// partition (live or archived), its range [start, end) in microseconds
/// since 2000-01-01 UTC; None for the default partition.
pub type Holder = (String, Option<(i64, i64)>);

/// A format 2 seal's root: SHA-256(0x02 || 2 || the format 1 fields, as
/// `chain_root` lays them out || series_start (8 bytes) || times root (32
/// bytes: SHA-256 of every sealed event's occurred_at, 8 bytes each, in id
/// order) || number of holders (4 bytes) || each holder: name length (2
/// bytes), name, then 0x00 (no range) or 0x01, start, end (8 bytes each)).
/// Integers big-endian, times as in the canonical bytes.
#[allow(clippy::too_many_arguments)]
pub fn chain_root_v2(
    previous_root: Option<&[u8]>,
    seal_id: i64,
    sealed_at: i64,
    events: i64,
    tree_root: &[u8],
    position: &str,
    series_start: i64,
    times_root: &[u8],
    holders: &[Holder],
) -> [u8; 32] {
    let prev = previous_root.unwrap_or(&[0u8; 32]);
    let mut h = Sha256::new();
    for p in [
        &[2u8, FORMAT][..],
        &seal_id.to_be_bytes(),
        prev,
        tree_root,
        &events.to_be_bytes(),
        &sealed_at.to_be_bytes(),
        &(position.len() as u32).to_be_bytes(),
        position.as_bytes(),
        &series_start.to_be_bytes(),
        times_root,
        &(holders.len() as u32).to_be_bytes(),
    ] {
        h.update(p);
    }
    for (name, range) in holders {
        h.update((name.len() as u16).to_be_bytes());
        h.update(name.as_bytes());
        match range {
            None => h.update([0u8]),
            Some((start, end)) => {
                h.update([1u8]);
                h.update(start.to_be_bytes());
                h.update(end.to_be_bytes());
            }
        }
    }
    h.finalize().into()
}

/// A timestamptz as PostgreSQL holds it: microseconds since 2000-01-01 UTC.
fn ts_micros(ts: pgrx::datum::TimestampWithTimeZone) -> i64 {
    ts.into_datum().map_or(0, |d| d.value() as i64)
}

/// The leaf hash of an event, from its columns (`_event_leaf(e.id,
/// e.occurred_at, e.txid, ARRAY[...])`, as `leaves_query` writes it).
#[pg_extern(immutable, parallel_safe, name = "_event_leaf")]
fn event_leaf(
    id: Option<i64>,
    occurred_at: Option<pgrx::datum::TimestampWithTimeZone>,
    txid: Option<i64>,
    rest: Option<Array<'_, &str>>,
) -> Vec<u8> {
    leaf_hash(&event_bytes(id, occurred_at, txid, rest)).to_vec()
}

/// The canonical bytes of an event (what `_event_leaf` hashes), for
/// whoever wants to check them by hand.
#[pg_extern(immutable, parallel_safe, name = "_event_bytes")]
fn event_bytes(
    id: Option<i64>,
    occurred_at: Option<pgrx::datum::TimestampWithTimeZone>,
    txid: Option<i64>,
    rest: Option<Array<'_, &str>>,
) -> Vec<u8> {
    let rest: Vec<Option<&str>> = match &rest {
        Some(a) => a.iter().collect(),
        None => Vec::new(),
    };
    canonical_bytes(id, occurred_at.map(ts_micros), txid, &rest)
}

/// The columns of `rel` (audit_trail.events or audit_trail._archived) that
/// exist now (a superuser may have dropped one: its values then read as
/// NULL, and verify reports the events that had one).
fn present_columns(rel: &str) -> std::collections::HashSet<String> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT attname::text FROM pg_catalog.pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            None,
            &[rel.into()],
        )?;
        let mut s = std::collections::HashSet::new();
        for row in t {
            if let Some(n) = row.get::<String>(1)? {
                s.insert(n);
            }
        }
        Ok::<_, pgrx::spi::Error>(s)
    })
    .unwrap_or_else(|e| error!("pg_audit_trail: reading the columns of {rel}: {e}"))
}

/// One source of a seal's events, as `leaves_query` reads it: (id, leaf,
/// occurred_at, archived) of the rows `window` returns, whose columns are
/// those of `rel`.
fn leaves_branch(rel: &str, window: &str, archived: bool) -> String {
    let present = present_columns(rel);
    let col = |name: &str, kind: Kind| -> String {
        if !present.contains(name) {
            return match kind {
                Kind::Int8 => "NULL::int8".into(),
                Kind::Timestamptz => "NULL::timestamptz".into(),
                _ => "NULL::text".into(),
            };
        }
        match kind {
            Kind::Int8 | Kind::Timestamptz | Kind::Text => format!("e.{name}"),
            Kind::Jsonb | Kind::TextArray | Kind::Inet => format!("e.{name}::text"),
        }
    };
    let typed: Vec<String> = COLUMNS[..TYPED].iter().map(|&(n, k)| col(n, k)).collect();
    let rest: Vec<String> = COLUMNS[TYPED..].iter().map(|&(n, k)| col(n, k)).collect();
    let from = if present.contains("txid") {
        format!("{window}($1::text::pg_snapshot, $2::text::pg_snapshot, $3, $4, $5) e")
    } else {
        // Without a txid column (dropped by a superuser) nothing is in a
        // seal's window, and verify reports every sealed event as removed.
        format!("{rel} e WHERE false")
    };
    format!(
        "SELECT {id} AS id, audit_trail._event_leaf({typed}, ARRAY[{rest}]::text[]) AS leaf, {at} AS at, {archived} AS archived
         FROM {from}",
        id = typed[0],
        typed = typed.join(", "),
        rest = rest.join(", "),
        at = typed[1],
    )
}

/// The query that yields (id, leaf, occurred_at, archived) of the events
/// between two positions, in id order: the one place where columns are
/// rendered for the canonical bytes. Its parameters are `Window::params`.
///
/// The events are those audit_trail.feed(since, upto) returns, chosen by
/// the feed's own rule, `audit_trail._feed_window` (sql/feed.sql): the
/// transaction (txid) visible in upto's snapshot ($2) and not in since's
/// ($1), looked for among the transactions in flight at since ($3, the
/// feed's `_feed_in_flight`, given as a value so that the plan is made for
/// it), occurred_at from $4 (the feed's feed_origin.restored). Read
/// through that inlinable SQL function rather than through feed(), whose
/// PL/pgSQL materializes every row, whole, before it returns the first (for
/// a million events, a gigabyte of temporary files and half the time of a
/// seal). A seal made before this database was restored (its positions end
/// in another token: the feed refuses them, and never returns the events
/// that came with the restore) takes the same rule on its own positions,
/// over the events of its series, occurred_at in [$4, $5).
///
/// `with_archives` (format 2 seals): the archived partitions too, by the
/// same rule (`audit_trail._archive_window`), so that an archived event is
/// sealed and verified where audit_trail.archived_events serves it.
/// Format 1 seals (0.5.0) read the live log only, as they were made.
fn leaves_query(with_archives: bool) -> String {
    let mut q = leaves_branch("audit_trail.events", "audit_trail._feed_window", false);
    if with_archives {
        q = format!("{q}\n         UNION ALL\n{}", leaves_branch("audit_trail._archived", "audit_trail._archive_window", true));
    }
    format!("SELECT id, leaf, at, archived FROM ({q}) w ORDER BY 1")
}

/// The snapshot of a position ('<xmin>:<xmax>:<xip,...>/<token>', as
/// feed_position() writes it), checked (a seal_chain edited by hand is an
/// error naming the position, not a cast failure).
fn parse_position(pos: &str) -> String {
    let bad = || -> ! {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("pg_audit_trail: \"{pos}\" is not a seal's position"),
            "A seal's positions come from audit_trail.feed_position(); audit_trail.seal_chain may have been edited."
        );
        unreachable!()
    };
    let mut parts = pos.split('/');
    let (Some(snapshot), Some(_token), None) = (parts.next(), parts.next(), parts.next()) else { bad() };
    let mut fields = snapshot.split(':');
    let (Some(xmin), Some(xmax), Some(xip), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else { bad() };
    let (Ok(_), Ok(_)) = (xmin.parse::<i64>(), xmax.parse::<i64>()) else { bad() };
    if xip.split(',').filter(|x| !x.is_empty()).any(|x| x.parse::<i64>().is_err()) {
        bad()
    }
    snapshot.to_string()
}

/// The events of a seal: between positions `since` and `upto`, captured
/// from `from` (and before `until`, for a series before a restore).
struct Window {
    lo: String,
    hi: String,
    in_flight: Vec<i64>,
    from: Option<pgrx::datum::TimestampWithTimeZone>,
    until: Option<pgrx::datum::TimestampWithTimeZone>,
}

impl Window {
    /// `from` None: this database's series, from feed_origin.restored.
    fn new(since: &str, upto: &str, from: Option<pgrx::datum::TimestampWithTimeZone>, until: Option<pgrx::datum::TimestampWithTimeZone>) -> Window {
        let lo = parse_position(since);
        let hi = parse_position(upto);
        let in_flight = Spi::get_one_with_args::<Vec<i64>>(
            "SELECT audit_trail._feed_in_flight($1::text::pg_snapshot, $2::text::pg_snapshot)",
            &[lo.as_str().into(), hi.as_str().into()],
        )
        .or_fail("reading the transactions in flight")
        .unwrap_or_default();
        let from = from.or_else(|| {
            Spi::get_one::<pgrx::datum::TimestampWithTimeZone>("SELECT o.restored FROM audit_trail.feed_origin o")
                .or_fail("reading audit_trail.feed_origin")
        });
        Window { lo, hi, in_flight, from, until }
    }

    fn params(&self) -> Vec<pgrx::datum::DatumWithOid<'_>> {
        vec![
            self.lo.as_str().into(),
            self.hi.as_str().into(),
            self.in_flight.clone().into(),
            self.from.into(),
            self.until.into(),
        ]
    }
}

const FETCH: i64 = 10_000;
/// Events per row of audit_trail.sealed_events.
const CHUNK: usize = 100_000;

/// An SPI result, or the error raised with what was being done.
trait OrFail<T> {
    fn or_fail(self, what: &str) -> T;
}

impl<T> OrFail<T> for Result<T, pgrx::spi::Error> {
    fn or_fail(self, what: &str) -> T {
        self.unwrap_or_else(|e| error!("pg_audit_trail: {what}: {e}"))
    }
}

/// A time partition's range in microseconds, from a bounds query's row.
fn micros_range(
    start: Option<pgrx::datum::TimestampWithTimeZone>,
    end: Option<pgrx::datum::TimestampWithTimeZone>,
) -> Option<(i64, i64)> {
    Some((ts_micros(start?), ts_micros(end?)))
}

/// The partitions events may be in, to name the ones that held a seal's
/// events: the log's time partitions and the archived ones, with their
/// ranges. An event is in the time partition whose range holds its
/// occurred_at (that is how PostgreSQL routes it), else in the default one.
struct Holders {
    live: Vec<(String, (i64, i64))>,
    archived: Vec<(String, (i64, i64))>,
    found: std::collections::BTreeMap<String, Option<(i64, i64)>>,
}

impl Holders {
    fn read() -> Holders {
        let read = |q: &str| -> Vec<(String, (i64, i64))> {
            Spi::connect(|c| {
                let mut v = Vec::new();
                for row in c.select(q, None, &[])? {
                    let name: Option<String> = row.get(1)?;
                    let range = micros_range(row.get(2)?, row.get(3)?);
                    if let (Some(name), Some(range)) = (name, range) {
                        v.push((name, range));
                    }
                }
                Ok::<_, pgrx::spi::Error>(v)
            })
            .or_fail("reading the partitions of audit_trail.events")
        };
        Holders {
            live: read("SELECT b.partition::text, b.range_start, b.range_end FROM audit_trail._partition_bounds() b"),
            archived: read("SELECT a.partition::text, a.range_start, a.range_end FROM audit_trail.archived_partitions a"),
            found: Default::default(),
        }
    }

    fn note(&mut self, at: Option<i64>, archived: bool) {
        let list = if archived { &self.archived } else { &self.live };
        let hit = at.and_then(|at| list.iter().find(|(_, (s, e))| *s <= at && at < *e));
        match hit {
            Some((name, range)) => {
                if !self.found.contains_key(name) {
                    self.found.insert(name.clone(), Some(*range));
                }
            }
            None => {
                let name = if archived { "audit_trail._archived" } else { "audit_trail.events_default" };
                self.found.entry(name.to_string()).or_insert(None);
            }
        }
    }

    /// In order: time partitions by range, then those without one, by name.
    fn list(&self) -> Vec<Holder> {
        let mut v: Vec<Holder> = self.found.iter().map(|(n, r)| (n.clone(), *r)).collect();
        v.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        v
    }
}

/// A timestamptz from its microseconds.
fn ts_from_micros(v: i64) -> Option<pgrx::datum::TimestampWithTimeZone> {
    // SAFETY: a timestamptz datum is its int64 value, passed by value.
    unsafe { pgrx::datum::TimestampWithTimeZone::from_datum(pg_sys::Datum::from(v), false) }
}

/// What sealing a window found.
struct Sealed {
    events: i64,
    tree_root: [u8; 32],
    first_id: Option<i64>,
    last_id: Option<i64>,
    first_at: Option<i64>,
    last_at: Option<i64>,
    times_root: [u8; 32],
    holders: Vec<Holder>,
}

/// The micros stored for an event without occurred_at (only a hand-made row
/// has none: the column is NOT NULL).
const NO_TIME: i64 = i64::MIN;

/// Seals the events between `since` and `upto` (`leaves_query`) as seal
/// `seal_id`: writes their ids and leaf hashes to audit_trail.sealed_events
/// (in id order, CHUNK a row; `v2`: with their occurred_at, and archived
/// events too) and returns what the seal's row records.
fn seal_window(seal_id: i64, since: &str, upto: &str, v2: bool) -> Sealed {
    let query = leaves_query(v2);
    let window = Window::new(since, upto, None, None);
    let mut holders = if v2 { Some(Holders::read()) } else { None };
    let mut tree = Merkle::default();
    let mut times_hash = Sha256::new();
    let (mut first_id, mut last_id) = (None, None);
    let (mut first_at, mut last_at): (Option<i64>, Option<i64>) = (None, None);
    Spi::connect_mut(|client| {
        let mut cursor = client.open_cursor(query.as_str(), &window.params());
        let mut ids: Vec<i64> = Vec::with_capacity(CHUNK);
        let mut leaves: Vec<u8> = Vec::with_capacity(CHUNK * 32);
        let mut times: Vec<u8> = Vec::with_capacity(if v2 { CHUNK * 8 } else { 0 });
        let mut chunk = 0i32;
        loop {
            let mut done = true;
            {
                let t = cursor.fetch(FETCH).or_fail("reading events to seal");
                for row in t {
                    done = false;
                    let id: i64 = row.get(1).or_fail("reading an event's id")
                        .unwrap_or_else(|| error!("pg_audit_trail: an event without an id cannot be sealed"));
                    let leaf: Vec<u8> = row.get(2).or_fail("reading a leaf").unwrap_or_default();
                    let at = row.get::<pgrx::datum::TimestampWithTimeZone>(3).or_fail("reading occurred_at").map(ts_micros);
                    let archived = row.get::<bool>(4).or_fail("reading archived").unwrap_or(false);
                    let leaf: [u8; 32] = leaf.try_into().unwrap_or_else(|_| error!("pg_audit_trail: a leaf hash is not 32 bytes"));
                    tree.push(leaf);
                    first_id.get_or_insert(id);
                    last_id = Some(id);
                    if let Some(at) = at {
                        first_at = Some(first_at.map_or(at, |f| f.min(at)));
                        last_at = Some(last_at.map_or(at, |l| l.max(at)));
                    }
                    if let Some(h) = holders.as_mut() {
                        h.note(at, archived);
                        let t = at.unwrap_or(NO_TIME).to_be_bytes();
                        times_hash.update(t);
                        times.extend_from_slice(&t);
                    }
                    ids.push(id);
                    leaves.extend_from_slice(&leaf);
                }
            }
            if ids.len() >= CHUNK || (done && !ids.is_empty()) {
                chunk += 1;
                if v2 {
                    client
                        .update(
                            "INSERT INTO audit_trail.sealed_events (seal_id, chunk, event_ids, leaves, times) VALUES ($1, $2, $3, $4, $5)",
                            None,
                            &[seal_id.into(), chunk.into(), std::mem::take(&mut ids).into(), std::mem::take(&mut leaves).into(),
                              std::mem::take(&mut times).into()],
                        )
                        .or_fail("writing audit_trail.sealed_events");
                    times.reserve(CHUNK * 8);
                } else {
                    client
                        .update(
                            "INSERT INTO audit_trail.sealed_events (seal_id, chunk, event_ids, leaves) VALUES ($1, $2, $3, $4)",
                            None,
                            &[seal_id.into(), chunk.into(), std::mem::take(&mut ids).into(), std::mem::take(&mut leaves).into()],
                        )
                        .or_fail("writing audit_trail.sealed_events");
                }
                ids.reserve(CHUNK);
                leaves.reserve(CHUNK * 32);
            }
            if done {
                break;
            }
        }
    });
    Sealed {
        events: tree.count as i64,
        tree_root: tree.root(),
        first_id,
        last_id,
        first_at,
        last_at,
        times_root: times_hash.finalize().into(),
        holders: holders.map(|h| h.list()).unwrap_or_default(),
    }
}

/// 0.5.0's `_seal_events` (format 1: the live log, no times): the symbol its
/// install script names stays until the update (sql/released/README.md).
// The row type is pgrx's named-column tuple: a type alias would hide the
// column names the SQL signature is generated from.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, sql = false)]
fn seal_events(
    seal_id: i64,
    since: &str,
    upto: &str,
) -> TableIterator<
    'static,
    (
        name!(events, i64),
        name!(tree_root, Vec<u8>),
        name!(first_id, Option<i64>),
        name!(last_id, Option<i64>),
        name!(first_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(last_at, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    let s = seal_window(seal_id, since, upto, false);
    let ts = |v: Option<i64>| v.and_then(ts_from_micros);
    TableIterator::once((s.events, s.tree_root.to_vec(), s.first_id, s.last_id, ts(s.first_at), ts(s.last_at)))
}

/// Seals the events of audit_trail.feed(since, upto) and of the archives
/// between the same positions (`leaves_query`) as seal `seal_id`, format 2:
/// writes their ids, leaf hashes and times to audit_trail.sealed_events and
/// returns how many, their tree hash, the range of their ids and times, the
/// hash of their times, and the partitions that held them (name, range; no
/// range for the default one). Called by audit_trail.seal() only.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, name = "_seal_batch")]
fn seal_batch(
    seal_id: i64,
    since: &str,
    upto: &str,
) -> TableIterator<
    'static,
    (
        name!(events, i64),
        name!(tree_root, Vec<u8>),
        name!(first_id, Option<i64>),
        name!(last_id, Option<i64>),
        name!(first_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(last_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(times_root, Vec<u8>),
        name!(partitions, Vec<String>),
        name!(range_starts, Vec<Option<pgrx::datum::TimestampWithTimeZone>>),
        name!(range_ends, Vec<Option<pgrx::datum::TimestampWithTimeZone>>),
    ),
> {
    let s = seal_window(seal_id, since, upto, true);
    let ts = |v: Option<i64>| v.and_then(ts_from_micros);
    let names = s.holders.iter().map(|(n, _)| n.clone()).collect();
    let starts = s.holders.iter().map(|(_, r)| ts(r.map(|r| r.0))).collect();
    let ends = s.holders.iter().map(|(_, r)| ts(r.map(|r| r.1))).collect();
    TableIterator::once((
        s.events,
        s.tree_root.to_vec(),
        s.first_id,
        s.last_id,
        ts(s.first_at),
        ts(s.last_at),
        s.times_root.to_vec(),
        names,
        starts,
        ends,
    ))
}

/// 0.5.0's `_seal_root` (format 1): the symbol its install script names.
#[pg_extern(immutable, parallel_safe, sql = false)]
fn seal_root(
    previous_root: Option<&[u8]>,
    seal_id: i64,
    sealed_at: pgrx::datum::TimestampWithTimeZone,
    events: i64,
    tree_root: &[u8],
    position: &str,
) -> Vec<u8> {
    chain_root(previous_root, seal_id, ts_micros(sealed_at), events, tree_root, position).to_vec()
}

/// The chained root of a seal of either format (`chain_root`,
/// `chain_root_v2`), for seal() and verify(). Format 1 takes no times,
/// series or partitions (pass NULL).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe, name = "_chain_root")]
fn chain_root_sql(
    format: i16,
    previous_root: Option<&[u8]>,
    seal_id: i64,
    sealed_at: pgrx::datum::TimestampWithTimeZone,
    events: i64,
    tree_root: &[u8],
    position: &str,
    series_start: Option<pgrx::datum::TimestampWithTimeZone>,
    times_root: Option<&[u8]>,
    partitions: Option<Array<'_, &str>>,
    range_starts: Option<Array<'_, pgrx::datum::TimestampWithTimeZone>>,
    range_ends: Option<Array<'_, pgrx::datum::TimestampWithTimeZone>>,
) -> Option<Vec<u8>> {
    match format {
        1 => Some(chain_root(previous_root, seal_id, ts_micros(sealed_at), events, tree_root, position).to_vec()),
        2 => {
            let names: Vec<Option<String>> = partitions.map(|a| a.iter().map(|n| n.map(str::to_string)).collect()).unwrap_or_default();
            let starts: Vec<Option<pgrx::datum::TimestampWithTimeZone>> = range_starts.map(|a| a.iter().collect()).unwrap_or_default();
            let ends: Vec<Option<pgrx::datum::TimestampWithTimeZone>> = range_ends.map(|a| a.iter().collect()).unwrap_or_default();
            if starts.len() != names.len() || ends.len() != names.len() {
                // Lists that do not pair up hash to no root: verify reports it.
                return None;
            }
            let holders: Vec<Holder> = names
                .iter()
                .zip(starts.iter().zip(ends.iter()))
                .map(|(n, (s, e))| (n.clone().unwrap_or_default(), micros_range(*s, *e)))
                .collect();
            Some(
                chain_root_v2(
                    previous_root,
                    seal_id,
                    ts_micros(sealed_at),
                    events,
                    tree_root,
                    position,
                    series_start.map_or(NO_TIME, ts_micros),
                    times_root.unwrap_or(&[]),
                    &holders,
                )
                .to_vec(),
            )
        }
        _ => None,
    }
}

/// A problem verify found with one event, and, for a sealed event that is
/// not there, the occurred_at its seal recorded (format 2).
type Finding = (Option<i64>, String, Option<i64>);

/// Compares seal `seal_id` (its stored ids and leaves, and with `times_root`
/// given, format 2, their times and the archives) with the events between
/// since and upto now (`leaves_query`), both in id order: one finding per
/// event whose leaf differs ('changed'), that is there but was not sealed
/// ('added'), or that was sealed but is not there ('missing': verify() says
/// whether it was removed, by retention or not, or moved out of the seal's
/// range by a changed txid). A stored list that does not hash to
/// `tree_root` (or its times to `times_root`), or is out of order, is one
/// more finding (event NULL).
fn verify_window(
    seal_id: i64,
    since: &str,
    upto: &str,
    tree_root: &[u8],
    times_root: Option<&[u8]>,
    series_from: Option<pgrx::datum::TimestampWithTimeZone>,
    series_until: Option<pgrx::datum::TimestampWithTimeZone>,
) -> Vec<Finding> {
    let v2 = times_root.is_some();
    let query = leaves_query(v2);
    let window = Window::new(since, upto, series_from, series_until);
    let mut out: Vec<Finding> = Vec::new();
    let mut stored_tree = Merkle::default();
    let mut stored_times = Sha256::new();
    Spi::connect(|client| {
        // The stored side, one chunk at a time.
        let mut chunk = 0i32;
        let mut s_ids: Vec<i64> = Vec::new();
        let mut s_leaves: Vec<u8> = Vec::new();
        let mut s_times: Vec<u8> = Vec::new();
        let mut s_pos = 0usize;
        let mut s_last: Option<i64> = None;
        let mut bad_list = false;
        let stored_query = if v2 {
            "SELECT event_ids, leaves, times FROM audit_trail.sealed_events WHERE seal_id = $1 AND chunk = $2"
        } else {
            "SELECT event_ids, leaves FROM audit_trail.sealed_events WHERE seal_id = $1 AND chunk = $2"
        };
        let mut next_stored = |out: &mut Vec<Finding>| -> Option<(i64, [u8; 32], Option<i64>)> {
            loop {
                if s_pos < s_ids.len() {
                    let id = s_ids[s_pos];
                    let leaf: [u8; 32] = s_leaves.get(s_pos * 32..s_pos * 32 + 32).and_then(|s| s.try_into().ok()).unwrap_or([0; 32]);
                    let at = s_times
                        .get(s_pos * 8..s_pos * 8 + 8)
                        .and_then(|s| <[u8; 8]>::try_from(s).ok())
                        .map(i64::from_be_bytes);
                    s_pos += 1;
                    stored_tree.push(leaf);
                    if let Some(at) = at {
                        stored_times.update(at.to_be_bytes());
                    }
                    if s_last.is_some_and(|l| l >= id) && !bad_list {
                        bad_list = true;
                        out.push((None, "the sealed event list is out of order".into(), None));
                    }
                    s_last = Some(id);
                    return Some((id, leaf, at.filter(|&t| t != NO_TIME)));
                }
                chunk += 1;
                let t = client
                    .select(stored_query, Some(1), &[seal_id.into(), chunk.into()])
                    .or_fail("reading audit_trail.sealed_events");
                let mut found = false;
                for row in t {
                    found = true;
                    s_ids = row.get::<Vec<i64>>(1).or_fail("reading sealed ids").unwrap_or_default();
                    s_leaves = row.get::<Vec<u8>>(2).or_fail("reading sealed leaves").unwrap_or_default();
                    if s_leaves.len() != s_ids.len() * 32 {
                        out.push((None, format!("chunk {chunk} of the sealed event list is malformed"), None));
                    }
                    if v2 {
                        s_times = row.get::<Vec<u8>>(3).or_fail("reading sealed times").unwrap_or_default();
                        if s_times.len() != s_ids.len() * 8 {
                            out.push((None, format!("chunk {chunk} of the sealed times is malformed"), None));
                        }
                    }
                    s_pos = 0;
                }
                if !found {
                    return None;
                }
            }
        };
        let mut cursor = client.open_cursor(query.as_str(), &window.params());
        let mut stored = next_stored(&mut out);
        loop {
            let t = cursor.fetch(FETCH).or_fail("reading sealed events");
            if t.is_empty() {
                break;
            }
            for row in t {
                let id: i64 = row.get(1).or_fail("reading an event's id").unwrap_or(i64::MIN);
                let leaf: Vec<u8> = row.get(2).or_fail("reading a leaf").unwrap_or_default();
                // Stored ids below this one are not there any more.
                while let Some((sid, _, at)) = stored.filter(|&(sid, _, _)| sid < id) {
                    out.push((Some(sid), "missing".into(), at));
                    stored = next_stored(&mut out);
                }
                match stored {
                    Some((sid, sleaf, _)) if sid == id => {
                        if sleaf[..] != leaf[..] {
                            out.push((Some(id), "changed".into(), None));
                        }
                        stored = next_stored(&mut out);
                    }
                    _ => out.push((Some(id), "added".into(), None)),
                }
            }
        }
        while let Some((sid, _, at)) = stored {
            out.push((Some(sid), "missing".into(), at));
            stored = next_stored(&mut out);
        }
    });
    if stored_tree.root()[..] != tree_root[..] {
        out.push((None, "the sealed event list does not hash to the seal's root".into(), None));
    }
    if let Some(times_root) = times_root {
        let got: [u8; 32] = stored_times.finalize().into();
        if got[..] != times_root[..] {
            out.push((None, "the sealed times do not hash to the seal's times root".into(), None));
        }
    }
    out
}

/// 0.5.0's `_verify_events` (format 1): the symbol its install script names.
#[pg_extern(volatile, sql = false)]
fn verify_events(
    seal_id: i64,
    since: &str,
    upto: &str,
    tree_root: &[u8],
    series_from: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
    series_until: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL"),
) -> TableIterator<'static, (name!(event_id, Option<i64>), name!(problem, String))> {
    TableIterator::new(
        verify_window(seal_id, since, upto, tree_root, None, series_from, series_until).into_iter().map(|(id, p, _)| (id, p)),
    )
}

/// Verifies the events of seal `seal_id` (`verify_window`): format 1 when
/// `times_root` is NULL, else format 2. For a sealed event that is not
/// there, occurred_at is the time its seal recorded (format 2).
#[pg_extern(volatile, name = "_verify_batch")]
fn verify_batch(
    seal_id: i64,
    since: &str,
    upto: &str,
    tree_root: &[u8],
    times_root: Option<&[u8]>,
    series_from: Option<pgrx::datum::TimestampWithTimeZone>,
    series_until: Option<pgrx::datum::TimestampWithTimeZone>,
) -> TableIterator<
    'static,
    (name!(event_id, Option<i64>), name!(problem, String), name!(occurred_at, Option<pgrx::datum::TimestampWithTimeZone>)),
> {
    TableIterator::new(
        verify_window(seal_id, since, upto, tree_root, times_root, series_from, series_until)
            .into_iter()
            .map(|(id, p, at)| (id, p, at.and_then(ts_from_micros))),
    )
}

// ---------------------------------------------------------------- checkpoints

/// The key name in a checkpoint's signature line.
pub const KEY_NAME: &str = "pg_audit_trail";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The 4-byte key id of a signed note (Go's golang.org/x/mod/sumdb/note):
/// SHA-256(name || "\n" || 0x01 || public key)[..4], 0x01 meaning Ed25519.
fn key_hash(public: &VerifyingKey) -> [u8; 4] {
    let h = sha256(&[KEY_NAME.as_bytes(), b"\n", &[1u8], public.as_bytes()]);
    [h[0], h[1], h[2], h[3]]
}

/// A private key as the key file holds it: 64 hex digits (the 32-byte
/// Ed25519 seed), or a PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
fn parse_private_key(text: &str) -> Result<SigningKey, String> {
    if text.contains("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(text).map_err(|e| format!("not an Ed25519 PKCS#8 PEM private key ({e})"));
    }
    let seed = unhex(text).filter(|b| b.len() == 32).ok_or("neither 64 hex digits (an Ed25519 seed) nor a PKCS#8 PEM private key")?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| "not 32 bytes")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key: 64 hex digits, or a PEM SubjectPublicKeyInfo
/// (`openssl pkey -pubout`).
fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    if text.contains("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|e| format!("not an Ed25519 PEM public key ({e})"));
    }
    let b = unhex(text).filter(|b| b.len() == 32).ok_or("neither 64 hex digits nor a PEM public key")?;
    let b: [u8; 32] = b.try_into().map_err(|_| "not 32 bytes")?;
    VerifyingKey::from_bytes(&b).map_err(|e| format!("not an Ed25519 public key ({e})"))
}

/// The signing key named by audit_trail.seal_key_file, if set.
fn signing_key() -> Option<SigningKey> {
    let path = crate::settings::text(&crate::settings::SEAL_KEY_FILE)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                PgSqlErrorCode::ERRCODE_UNDEFINED_FILE
            } else {
                PgSqlErrorCode::ERRCODE_IO_ERROR
            };
            ereport!(
                PgLogLevel::ERROR,
                code,
                format!("could not read audit_trail.seal_key_file \"{path}\": {e}"),
                "The file must be readable by the server's operating-system user; a relative path is relative to the data directory."
            );
            unreachable!()
        }
    };
    match parse_private_key(&text) {
        Ok(k) => Some(k),
        Err(why) => {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR,
                format!("audit_trail.seal_key_file \"{path}\" holds no usable key: {why}"),
                "Write 64 hex digits (a 32-byte Ed25519 seed) or a PKCS#8 PEM key (openssl genpkey -algorithm ed25519)."
            );
            unreachable!()
        }
    }
}

/// The checkpoint of a seal: the note's text (origin, seal id, root in
/// base64, each on its line), then, when audit_trail.seal_key_file is set,
/// an empty line and the signature line "— pg_audit_trail <base64(key id ||
/// Ed25519 signature of the text)>".
#[pg_extern(volatile, name = "_checkpoint_note")]
fn checkpoint_note(origin: &str, seal_id: i64, root: &[u8]) -> String {
    let origin: String = origin.chars().map(|c| if c == '\n' || c == '\r' { '?' } else { c }).collect();
    let body = format!("{origin}\n{seal_id}\n{}\n", B64.encode(root));
    match signing_key() {
        None => body,
        Some(key) => {
            let sig: Signature = key.sign(body.as_bytes());
            let mut blob = key_hash(&key.verifying_key()).to_vec();
            blob.extend_from_slice(&sig.to_bytes());
            format!("{body}\n\u{2014} {KEY_NAME} {}\n", B64.encode(blob))
        }
    }
}

/// Reads a checkpoint: its seal id and root, and whether it carries a valid
/// signature by `public_key` (NULL: not checked). A text that is no
/// checkpoint, or a key that is no key, is an error (22023).
#[pg_extern(immutable, name = "_checkpoint_read")]
fn checkpoint_read(
    note: &str,
    public_key: Option<&str>,
) -> TableIterator<'static, (name!(seal_id, i64), name!(root, Vec<u8>), name!(signed, bool), name!(signature_ok, Option<bool>))> {
    let bad = |why: &str| -> ! {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("note is not a checkpoint of pg_audit_trail: {why}"),
            "Pass the text audit_trail.checkpoint() returned, unchanged."
        );
        unreachable!()
    };
    let (body, sigs) = match note.find("\n\n") {
        Some(i) => (&note[..i + 1], Some(&note[i + 2..])),
        None => (note, None),
    };
    // A shell's $(...) drops the last newline of an unsigned note.
    let body = if body.ends_with('\n') { body.to_string() } else { format!("{body}\n") };
    let body = body.as_str();
    let lines: Vec<&str> = body.split_terminator('\n').collect();
    if lines.len() < 3 {
        bad("it has fewer than three lines (origin, seal id, root)");
    }
    let seal_id: i64 = lines[1].parse().unwrap_or_else(|_| bad("its second line is not a seal id"));
    let root = B64.decode(lines[2]).ok().filter(|r| r.len() == 32).unwrap_or_else(|| bad("its third line is not a base64 SHA-256 root"));
    let key = public_key.map(|k| {
        parse_public_key(k).unwrap_or_else(|why| {
            ereport!(
                PgLogLevel::ERROR,
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("public_key is not usable: {why}"),
                "Pass 64 hex digits or the PEM of openssl pkey -pubout."
            );
            unreachable!()
        })
    });
    let mut signed = false;
    let mut ok = None;
    for line in sigs.unwrap_or("").split_terminator('\n') {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            bad("a line after the empty line is not a signature line");
        };
        let Some((name, b64)) = rest.split_once(' ') else { bad("a signature line has no signature") };
        let blob = B64.decode(b64).unwrap_or_else(|_| bad("a signature is not base64"));
        signed = true;
        if let Some(key) = &key {
            if name != KEY_NAME || blob.len() != 68 || blob[..4] != key_hash(key) {
                ok = Some(ok.unwrap_or(false));
                continue;
            }
            let sig = Signature::from_slice(&blob[4..]).ok();
            let good = sig.is_some_and(|s| key.verify(body.as_bytes(), &s).is_ok());
            ok = Some(ok.unwrap_or(false) || good);
        }
    }
    if key.is_some() && ok.is_none() {
        ok = Some(false);
    }
    TableIterator::once((seal_id, root, signed, ok))
}

/// Hex of bytes, for the seals view and seal()'s result.
#[pg_extern(immutable, parallel_safe, name = "_hex")]
fn hex_sql(bytes: &[u8]) -> String {
    hex(bytes)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    /// RFC 6962's recursive definition, to check the streaming one.
    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            0 => sha256(&[]),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[pg_test]
    fn streaming_tree_is_rfc6962() {
        let leaves: Vec<[u8; 32]> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..leaves.len() {
            let mut m = Merkle::default();
            for l in &leaves[..n] {
                m.push(*l);
            }
            assert_eq!(m.root(), mth(&leaves[..n]), "n = {n}");
        }
    }

    #[pg_test]
    fn every_event_column_is_sealed() {
        for c in crate::event_row::COLUMNS {
            assert!(COLUMNS.iter().any(|&(n, _)| n == c.name), "column {} is not in the canonical bytes", c.name);
        }
    }

    #[pg_test]
    fn null_is_not_empty() {
        assert_ne!(canonical_bytes(Some(1), None, None, &[None]), canonical_bytes(Some(1), None, None, &[Some("")]));
    }

    #[pg_test]
    fn signed_note_round_trip() {
        let key = parse_private_key(&"01".repeat(32)).unwrap();
        let body = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let sig = key.sign(body.as_bytes());
        assert!(key.verifying_key().verify(body.as_bytes(), &sig).is_ok());
        assert!(parse_public_key(&hex(key.verifying_key().as_bytes())).is_ok());
    }
}
