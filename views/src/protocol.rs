//! The frames of the views router, inside the envelope `{"$r":"views","d":FRAME}`.
//!
//! Every frame is a JSON object tagged by `"t"`; see `docs/PROTOCOL.md`, section 6. Both
//! sides decode with these types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The router name in the envelope.
pub const ROUTER: &str = "views";

/// Longest view name, in bytes.
pub const MAX_VIEW_LEN: usize = 128;

/// Longest `info` pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 256;

/// One member of a view: a user (all of its connections) or one anonymous connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `u:` + user id, or `c:` + connection id.
    pub key: String,
    /// The user id; `None` for an anonymous connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How many of the member's connections have the view open.
    pub clients: u32,
    /// The identity's public metadata.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// The connection ids, in debug answers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<u64>>,
}

/// Counts for one view, the answer to `info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewInfo {
    /// The view name.
    pub view: String,
    /// Connections that have it open.
    pub clients: u32,
    /// The distinct users, each with its number of connections, ordered by user id.
    pub users: Vec<UserCount>,
    /// Connections without a user id.
    pub anonymous: u32,
}

/// One user's connections on a view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCount {
    /// The user id.
    pub user: String,
    /// How many of the user's connections have the view open.
    pub clients: u32,
    /// The connection ids, in debug answers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<u64>>,
}

/// One views frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Frame {
    /// Client to server: open `view`. Answered with `State` or `Error` with the same `id`.
    Open {
        /// The view name.
        view: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: the full state of `view`.
    State {
        /// The view name.
        view: String,
        /// Every member, the receiver included.
        members: Vec<Member>,
        /// The key of the member the receiving connection counts under (see
        /// [`member_key`]), so that a page can mark the current user. Always sent by this
        /// server; `None` only from a server older than the field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        you: Option<String>,
        /// The `id` of the `Open` it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: changes of `view` since the previous `State` or `Diff`.
    Diff {
        /// The view name.
        view: String,
        /// Members that appeared or changed, with their full entry.
        #[serde(default)]
        joins: Vec<Member>,
        /// Keys of members that are gone.
        #[serde(default)]
        leaves: Vec<String>,
    },
    /// Client to server: close `view`.
    Close {
        /// The view name.
        view: String,
        /// Correlates the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Server to client: `view` is closed for this connection.
    Closed {
        /// The view name.
        view: String,
        /// The `id` of the `Close` it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Client to server: counts for one view (`view`) or every view matching `pattern`.
    /// Server to client: the answer, in `views`, limited to the views the connection may
    /// see and to the server's `max_info_views`.
    Info {
        /// Correlates the answer.
        id: u64,
        /// One view by name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
        /// A regular expression over view names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        /// List each user's connection ids (refused unless the server allows this
        /// connection).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        debug: bool,
        /// The answer (server to client only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        views: Option<Vec<ViewInfo>>,
        /// Server to client: more views matched than the answer covers; `views` holds the
        /// first ones by name (see `docs/PROTOCOL.md`, section 6.3).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
    },
    /// Server to client: a request could not be served.
    Error {
        /// Machine-readable reason (see [`codes`]).
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The `id` of the request it answers, also when the request could not be read
        /// as a views frame but had an unsigned integer `id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// The view concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<String>,
    },
}

/// Error codes of `Error` frames.
pub mod codes {
    /// The body is not a views frame.
    pub const MALFORMED: &str = "malformed";
    /// A frame only the server sends.
    pub const UNEXPECTED: &str = "unexpected";
    /// The authorization refused to open the view, to answer `info` about it, or to give
    /// this connection a debug answer.
    pub const FORBIDDEN: &str = "forbidden";
    /// An invalid view name or pattern.
    pub const BAD_REQUEST: &str = "bad_request";
    /// `close` of a view that is not open.
    pub const NOT_OPEN: &str = "not_open";
    /// The connection has `max_views_per_connection` views open already.
    pub const LIMIT: &str = "limit";
}

/// The key of a member in a view: `u:` + the user id for a connection with one (all its
/// connections are one member), else `c:` + the connection id (PROTOCOL.md, section 6.1).
///
/// ```
/// assert_eq!(views::protocol::member_key(Some("ada"), 17), "u:ada");
/// assert_eq!(views::protocol::member_key(None, 17), "c:17");
/// ```
pub fn member_key(user: Option<&str>, connection: u64) -> String {
    match user {
        Some(user) => format!("u:{user}"),
        None => format!("c:{connection}"),
    }
}

/// Checks a view name: 1 to 128 bytes without control characters.
pub fn valid_view(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_VIEW_LEN && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape() {
        let diff = Frame::Diff {
            view: "doc".into(),
            joins: vec![Member {
                key: "u:ada".into(),
                user: Some("ada".into()),
                clients: 2,
                data: Value::Null,
                connections: None,
            }],
            leaves: vec!["c:17".into()],
        };
        assert_eq!(
            serde_json::to_string(&diff).unwrap(),
            r#"{"t":"diff","view":"doc","joins":[{"key":"u:ada","user":"ada","clients":2}],"leaves":["c:17"]}"#
        );
        let state =
            Frame::State { view: "doc".into(), members: Vec::new(), you: Some("c:17".into()), id: Some(1) };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"t":"state","view":"doc","members":[],"you":"c:17","id":1}"#
        );
        let info: Frame = serde_json::from_str(r#"{"t":"info","id":4,"pattern":"^doc-"}"#).unwrap();
        assert!(matches!(info, Frame::Info { id: 4, pattern: Some(_), debug: false, .. }));
    }
}
