//! The router frames both servers and the load generator speak (`docs/PROTOCOL.md`
//! sections 5-7), and the scenarios' names and sizes.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

/// The channel the storm's clients join.
pub(super) const STORM_CHANNEL: &str = "/storm";
/// Clients per room and per view in the storm.
pub(super) const STORM_GROUP: usize = 50;
/// The model path the sync push scenario pushes to.
pub(super) const SYNC_PATH: &str = "/api/model/1";
/// The route pattern that path matches.
pub(super) const SYNC_PATTERN: &str = "/api/model/:id";
/// The request path of the sync push scenario's control connection.
pub(super) const CONTROL_PATH: &str = "/control";
/// Padding of each push, so that a `data` frame is about 150 bytes.
pub(super) const PUSH_PAD: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Any router frame, decoded once: the router name and the fields the scenarios use.
/// Unknown fields (members, data) are skipped.
#[derive(Deserialize)]
pub(super) struct Envelope {
    /// The router: `ch`, `views` or `sync`.
    #[serde(rename = "$r")]
    pub(super) router: String,
    /// The router's body.
    pub(super) d: Body,
}

/// The body of a router frame (only the fields the scenarios read).
#[derive(Deserialize)]
pub(super) struct Body {
    /// The frame's type (`join`, `open`, `state`, `diff`, ...).
    pub(super) t: String,
    /// The request id, when the frame is a request or its answer.
    #[serde(default)]
    pub(super) id: Option<u64>,
    /// The view of a views frame.
    #[serde(default)]
    pub(super) view: Option<String>,
    /// The members that appeared or changed, in a `diff`.
    #[serde(default)]
    pub(super) joins: Option<Vec<IgnoredAny>>,
    /// The keys of the members that left, in a `diff`.
    #[serde(default)]
    pub(super) leaves: Option<Vec<IgnoredAny>>,
}

impl Envelope {
    /// Decodes a text frame; `None` for anything else.
    pub(super) fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The payload pushed in the sync push scenario.
#[derive(serde::Serialize)]
pub(super) struct PushPayload {
    /// The push's sequence number, which the load generator reads back.
    pub(super) seq: u64,
    /// Padding.
    pub(super) pad: &'static str,
}

/// `join` of the storm's channel.
pub(super) fn join(id: u64) -> String {
    json!({"$r": "ch", "d": {"t": "join", "ch": STORM_CHANNEL, "id": id}}).to_string()
}

/// `joined`, the answer to [`join`].
pub(super) fn joined(channel: &str, id: Option<u64>) -> String {
    json!({"$r": "ch", "d": {"t": "joined", "ch": channel, "id": id}}).to_string()
}

/// `open` of `view`.
pub(super) fn open(view: &str, id: u64) -> String {
    json!({"$r": "views", "d": {"t": "open", "view": view, "id": id}}).to_string()
}

/// `close` of `view`.
pub(super) fn close(view: &str, id: u64) -> String {
    json!({"$r": "views", "d": {"t": "close", "view": view, "id": id}}).to_string()
}

/// An anonymous member's entry, as our views router writes it.
fn member(connection: u64) -> serde_json::Value {
    json!({"key": format!("c:{connection}"), "clients": 1})
}

/// `state` of `view` with `members` (connection ids), the answer to `open`.
pub(super) fn state(view: &str, members: impl Iterator<Item = u64>, id: Option<u64>) -> String {
    let members: Vec<serde_json::Value> = members.map(member).collect();
    json!({"$r": "views", "d": {"t": "state", "view": view, "members": members, "id": id}}).to_string()
}

/// `closed`, the answer to `close`.
pub(super) fn closed(view: &str, id: Option<u64>) -> String {
    json!({"$r": "views", "d": {"t": "closed", "view": view, "id": id}}).to_string()
}

/// A `diff` of `view` with one member that appeared.
pub(super) fn diff_join(view: &str, connection: u64) -> String {
    json!({"$r": "views", "d": {"t": "diff", "view": view, "joins": [member(connection)], "leaves": []}})
        .to_string()
}

/// A `diff` of `view` with one member that left.
pub(super) fn diff_leave(view: &str, connection: u64) -> String {
    json!({"$r": "views", "d": {"t": "diff", "view": view, "joins": [], "leaves": [format!("c:{connection}")]}})
        .to_string()
}

/// `sub` of the scenario's model path.
pub(super) fn sub(id: u64) -> String {
    json!({"$r": "sync", "d": {"t": "sub", "path": SYNC_PATH, "id": id}}).to_string()
}

/// `subscribed`, the answer to `sub`.
pub(super) fn subscribed(path: &str, id: Option<u64>) -> String {
    json!({"$r": "sync", "d": {"t": "subscribed", "path": path, "id": id}}).to_string()
}

/// The `data` frame of push `seq`, as our sync router encodes it.
pub(super) fn push(seq: u64) -> String {
    json!({"$r": "sync", "d": {"t": "data", "path": SYNC_PATH, "op": "change", "data": PushPayload { seq, pad: PUSH_PAD }}})
        .to_string()
}

/// The sequence number of a pushed `data` frame, found without decoding the frame (the
/// load generator reads 1,000 of them per push).
pub(super) fn push_seq(text: &str) -> Option<u64> {
    let start = text.find("\"seq\":")? + "\"seq\":".len();
    let digits = &text[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}
