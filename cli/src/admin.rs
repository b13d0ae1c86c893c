//! `GET /admin` (with `[admin] token`): what the node holds now, as JSON, for the bearer
//! token only (compared in constant time).
//!
//! ```json
//! {"connections": {"open": 2, "pending_handshakes": 0, "outgoing_queue_bytes": 0,
//!                  "list": [{"id": "#1", "remote": "127.0.0.1:50000", "user": "ada", "path": "/"}]},
//!  "rooms": [{"room": "lobby", "size": 2}],
//!  "views": [{"view": "book/1", "clients": 2, "users": 1, "anonymous": 1}],
//!  "subscriptions": [{"path": "/api/books", "subscribers": 2}],
//!  "cluster": {"node": "…", "peers": ["…"]}}
//! ```
//!
//! Lists are sorted (rooms and subscriptions largest first) and cut at `?limit=N` entries
//! each (default 100); the counts are always whole.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use network_core::{Adapter, Network};
use serde_json::{Value, json};

use crate::node::{NodeState, bearer_matches};

/// Entries per list unless `?limit=` says otherwise.
const DEFAULT_LIMIT: usize = 100;

/// The handler of `GET /admin`.
pub(crate) async fn view<A: Adapter>(
    State(state): State<Arc<NodeState<A>>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let authorized = state.admin_token.as_deref().is_some_and(|token| bearer_matches(&headers, token));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "bad or missing bearer token\n",
        )
            .into_response();
    }
    let limit = params.get("limit").and_then(|limit| limit.parse().ok()).unwrap_or(DEFAULT_LIMIT);
    let server = &state.server;
    let stats = server.stats();

    let mut connections = server.hub().connections();
    connections.sort_by_key(|connection| connection.id());
    let list: Vec<Value> = connections
        .iter()
        .take(limit)
        .map(|connection| {
            let meta = connection.meta();
            json!({
                "id": connection.id().to_string(),
                "remote": meta.remote_addr.map(|addr| addr.to_string()),
                "user": connection.identity().and_then(|identity| identity.user_id.clone()),
                "path": meta.path,
            })
        })
        .collect();

    let mut rooms = server.adapter().local_rooms();
    rooms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rooms: Vec<Value> = rooms
        .iter()
        .take(limit)
        .map(|(room, size)| json!({ "room": room.to_string(), "size": size }))
        .collect();

    let views: Vec<Value> = state.presence.as_ref().map_or_else(Vec::new, |presence| {
        let mut names = presence.views();
        names.sort();
        names
            .iter()
            .take(limit)
            .filter_map(|name| presence.info(name, false))
            .map(|info| {
                json!({ "view": info.view, "clients": info.clients, "users": info.users.len(), "anonymous": info.anonymous })
            })
            .collect()
    });

    let subscriptions: Vec<Value> = state.sync.as_ref().map_or_else(Vec::new, |sync| {
        let mut paths = sync.subscriptions();
        paths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        paths.iter().take(limit).map(|(path, count)| json!({ "path": path, "subscribers": count })).collect()
    });

    let adapter = server.adapter();
    let peers: Vec<String> = adapter.peers().iter().map(ToString::to_string).collect();
    Json(json!({
        "connections": {
            "open": stats.connections,
            "pending_handshakes": stats.pending_handshakes,
            "outgoing_queue_bytes": stats.outgoing_queue_bytes,
            "list": list,
        },
        "rooms": rooms,
        "views": views,
        "subscriptions": subscriptions,
        "cluster": { "node": adapter.node().to_string(), "peers": peers },
    }))
    .into_response()
}
