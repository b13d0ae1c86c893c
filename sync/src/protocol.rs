//! The frames of the sync router, inside the envelope `{"$r":"sync","d":FRAME}`.
//!
//! Every frame is a JSON object tagged by `"t"`; see `docs/PROTOCOL.md`, section 7. Both
//! sides decode with these types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The router name in the envelope.
pub const ROUTER: &str = "sync";

/// Longest path, in bytes.
pub const MAX_PATH_LEN: usize = 256;

/// What a `data` frame says about its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The model (or a collection item) now has this value.
    Change,
    /// A new item of the collection.
    Add,
    /// The item left the collection, or the model was deleted.
    Remove,
}

/// A request's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Create an item in the collection at the path.
    Create,
    /// Read the model or collection at the path.
    Read,
    /// Update the model at the path.
    Update,
    /// Delete the model at the path.
    Delete,
}

/// An error-first failure: a handler's error, or a refusal.
///
/// Defined in `network-core`, shared by every router; see [`codes`] for the codes this
/// router uses.
pub use network_core::RemoteError;

/// One sync frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Frame {
    /// Client to server: subscribe to `path`.
    Sub {
        /// The path.
        path: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// Ask for a versioned subscription: the answer carries the path's value read
        /// after the version was taken, and every push carries the next version
        /// (PROTOCOL.md 7.3, rule 8). Absent (`false`) for a plain subscription.
        #[serde(default, skip_serializing_if = "is_false")]
        snapshot: bool,
    },
    /// Server to client: the subscription is active.
    Subscribed {
        /// The path.
        path: String,
        /// The `id` of the `Sub`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The subscription's version when the snapshot was read (a `sub` with
        /// `snapshot` only): pushes with a version up to it are already in `data`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v: Option<u64>,
        /// The snapshot: the `read` handler's value (a `sub` with `snapshot` only;
        /// `"data":null` decodes as `None` too: read it with `unwrap_or_default()`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
    /// Client to server: stop the subscription.
    Unsub {
        /// The path.
        path: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: the subscription is stopped.
    Unsubscribed {
        /// The path.
        path: String,
        /// The `id` of the `Unsub`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: a change of what `path` names.
    Data {
        /// The subscribed path.
        path: String,
        /// What happened.
        op: Op,
        /// The subscription's version after this push: one more than the previous push's
        /// (or the snapshot's), on subscriptions made with `snapshot` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        v: Option<u64>,
        /// The value.
        #[serde(default)]
        data: Value,
    },
    /// Client to server: create, read, update or delete at `path`.
    Request {
        /// The operation.
        method: Method,
        /// The path.
        path: String,
        /// The payload (`null` when absent).
        #[serde(default)]
        data: Value,
        /// Correlates the reply.
        id: u64,
    },
    /// Server to client: the error-first answer to the request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// The handler's value: `Some` (`Some(Value::Null)` for a null result, sent as
        /// `"data":null`) on success, `None` (no field) beside `err`. Decoding reads an
        /// absent `data` and `"data":null` alike as `None`: use
        /// `data.unwrap_or_default()` for the value (PROTOCOL.md, section 2.3).
        #[serde(
            default,
            deserialize_with = "network_core::envelope::deserialize_result_data",
            skip_serializing_if = "Option::is_none"
        )]
        data: Option<Value>,
        /// The failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        err: Option<RemoteError>,
    },
    /// Server to client: a subscription could not be served, or a frame was bad.
    Error {
        /// Machine-readable reason.
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The request's id, also when the request could not be read as a sync frame but
        /// had an unsigned integer `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The path concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

impl Frame {
    /// The `Reply` answering request `id` with `result`: `data` on success (`null`
    /// included), `err` alone on failure.
    pub fn reply(id: u64, result: Result<Value, RemoteError>) -> Self {
        match result {
            Ok(data) => Self::Reply { id, data: Some(data), err: None },
            Err(err) => Self::Reply { id, data: None, err: Some(err) },
        }
    }
}

// A `fn(&bool)` is what serde's `skip_serializing_if` calls.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// Error codes of `error` frames and failed replies.
pub mod codes {
    /// The body is not a sync frame.
    pub const MALFORMED: &str = "malformed";
    /// A frame only the server sends.
    pub const UNEXPECTED: &str = "unexpected";
    /// No pattern matches the path.
    pub const NO_ROUTE: &str = "no_route";
    /// The pattern has no handler for that operation.
    pub const NO_HANDLER: &str = "no_handler";
    /// The authorization refused.
    pub const FORBIDDEN: &str = "forbidden";
    /// An invalid path or a payload the handler cannot use.
    pub const BAD_REQUEST: &str = "bad_request";
    /// `unsub` of a path that is not subscribed.
    pub const NOT_SUBSCRIBED: &str = "not_subscribed";
    /// `sub` past the server's `max_subscriptions_per_connection`; an `unsub` frees a slot.
    pub const LIMIT: &str = "limit";
    /// Nothing at that path (for handlers to use).
    pub const NOT_FOUND: &str = "not_found";
    /// The handler crashed.
    pub const INTERNAL: &str = "internal";
}

/// Checks a path: `/`, at most 256 bytes, no control characters, `?` or `#`.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= MAX_PATH_LEN
        && !path.chars().any(|c| c.is_control() || c == '?' || c == '#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape() {
        let push = Frame::Data {
            path: "/api/book/7".into(),
            op: Op::Change,
            v: None,
            data: serde_json::json!({"id": 7}),
        };
        assert_eq!(
            serde_json::to_string(&push).unwrap(),
            r#"{"t":"data","path":"/api/book/7","op":"change","data":{"id":7}}"#
        );
        let request: Frame = serde_json::from_str(
            r#"{"t":"request","method":"update","path":"/api/book/7","data":{"title":"x"},"id":3}"#,
        )
        .unwrap();
        assert!(matches!(request, Frame::Request { method: Method::Update, id: 3, .. }));
        let versioned =
            Frame::Data { path: "/a".into(), op: Op::Add, v: Some(4), data: serde_json::json!(1) };
        assert_eq!(
            serde_json::to_string(&versioned).unwrap(),
            r#"{"t":"data","path":"/a","op":"add","v":4,"data":1}"#
        );
        let plain = Frame::Sub { path: "/a".into(), id: Some(1), snapshot: false };
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"t":"sub","path":"/a","id":1}"#);
        let snapshot: Frame = serde_json::from_str(r#"{"t":"sub","path":"/a","snapshot":true}"#).unwrap();
        assert_eq!(snapshot, Frame::Sub { path: "/a".into(), id: None, snapshot: true });
        assert!(valid_path("/api/book/7") && !valid_path("api") && !valid_path("/a?b"));
    }
}
