//! Views `info` leaked presence: any anonymous connection could ask pattern `.*` and get
//! every view's name and user ids (connection ids with `debug`), about 850 KB for a 60-byte
//! request with 10,000 views open. A peer's `info` now sees only the views its hooks allow
//! (by default those it may open), `debug` needs the server's permission, and an answer
//! covers at most `max_info_views` views, saying `"truncated": true` when more matched.

use futures_util::SinkExt;
use realtime::network_core::Identity;
use realtime::views::{Presence, ViewsConfig};
use realtime::ws_server::{Accept, HandshakeHook, Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::*;

/// A server taking `?user=U` as the identity, with `views` attached.
async fn views_server(views: ViewsConfig) -> (Server, Presence<Server>) {
    let hook = HandshakeHook::new(|request| async move {
        Ok(match request.query_param("user") {
            Some(user) => Accept::new().identity(Identity::user(user)),
            None => Accept::new(),
        })
    });
    let (server, _events) = server(ServerConfig::default().handshake(hook)).await;
    let presence = views.attach(&server).unwrap();
    (server, presence)
}

/// `private-{user}` is for that user only; every other view is for everyone.
fn owners_only() -> ViewsConfig {
    ViewsConfig::default().authorize(|connection, view| async move {
        match view.strip_prefix("private-") {
            Some(owner)
                if connection.identity().and_then(|i| i.user_id.clone()).as_deref() != Some(owner) =>
            {
                Err("not yours".to_owned())
            }
            _ => Ok(()),
        }
    })
}

async fn connect(server: &Server, user: Option<&str>) -> RawClient {
    let query = user.map(|user| format!("?user={user}")).unwrap_or_default();
    raw_client(&format!("{}{query}", url(server))).await
}

async fn send(ws: &mut RawClient, body: Value) {
    let frame = json!({"$r": "views", "d": body}).to_string();
    within(ws.send(WsMessage::text(frame))).await.unwrap();
}

/// The next views body that is not a diff, with the size of its frame.
async fn answer(ws: &mut RawClient) -> (Value, usize) {
    loop {
        let WsMessage::Text(text) = next_data(ws).await else { panic!("expected a text frame") };
        let mut envelope: Value = serde_json::from_str(&text).unwrap();
        let body = envelope["d"].take();
        if body["t"] != "diff" {
            return (body, text.len());
        }
    }
}

async fn open(ws: &mut RawClient, view: &str) {
    send(ws, json!({"t": "open", "view": view, "id": 1})).await;
    let (state, _) = answer(ws).await;
    assert_eq!(state["t"], "state", "{state}");
}

async fn info(ws: &mut RawClient, request: Value) -> Value {
    send(ws, request).await;
    answer(ws).await.0
}

fn names(answer: &Value) -> Vec<&str> {
    let views = answer["views"].as_array().unwrap_or_else(|| panic!("not an info answer: {answer}"));
    views.iter().map(|view| view["view"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn info_lists_only_the_views_the_connection_may_open() {
    let (server, presence) = views_server(owners_only()).await;
    let mut ada = connect(&server, Some("ada")).await;
    let mut bob = connect(&server, Some("bob")).await;
    open(&mut ada, "private-ada").await;
    open(&mut ada, "public-1").await;
    open(&mut bob, "private-bob").await;
    open(&mut bob, "public-1").await;

    let mut anonymous = connect(&server, None).await;
    let everything = info(&mut anonymous, json!({"t": "info", "id": 7, "pattern": ".*"})).await;
    assert_eq!(everything["id"], 7);
    assert_eq!(names(&everything), ["public-1"], "{everything}");
    assert_eq!(everything.get("truncated"), None);
    // By name, a view it may not see is refused, whether or not anybody has it open.
    for view in ["private-ada", "private-nobody"] {
        assert_eq!(
            info(&mut anonymous, json!({"t": "info", "id": 8, "view": view})).await,
            json!({"t": "error", "code": "forbidden", "message": "not yours", "id": 8, "view": view})
        );
    }

    // Each user sees its own views too, and nobody else's.
    let mine = info(&mut ada, json!({"t": "info", "id": 9, "pattern": "^private-|^public-"})).await;
    assert_eq!(names(&mine), ["private-ada", "public-1"], "{mine}");
    let by_name = info(&mut bob, json!({"t": "info", "id": 10, "view": "private-bob"})).await;
    assert_eq!(by_name["views"][0]["users"], json!([{"user": "bob", "clients": 1}]));

    // Server code is not subject to the hook.
    assert_eq!(presence.info_matching(".*", false).unwrap().len(), 3);
}

#[tokio::test]
async fn debug_answers_and_other_views_need_the_servers_permission() {
    let is_admin = |connection: &realtime::network_core::Connection| {
        connection.identity().and_then(|i| i.user_id.clone()).as_deref() == Some("admin")
    };
    let config = ViewsConfig::default()
        .authorize_info(move |connection, _view| async move {
            if is_admin(&connection) { Ok(()) } else { Err("admins only".to_owned()) }
        })
        .authorize_debug(move |connection| async move {
            if is_admin(&connection) { Ok(()) } else { Err("admins only".to_owned()) }
        });
    let (server, _presence) = views_server(config).await;
    let mut ada = connect(&server, Some("ada")).await;
    open(&mut ada, "doc").await;

    // Opening is allowed to everyone, info only to admins: the hook decides, not `authorize`.
    let mut anonymous = connect(&server, None).await;
    let nothing = info(&mut anonymous, json!({"t": "info", "id": 1, "pattern": ".*"})).await;
    assert_eq!(nothing, json!({"t": "info", "id": 1, "views": []}));
    for request in [
        json!({"t": "info", "id": 2, "pattern": ".*", "debug": true}),
        json!({"t": "info", "id": 2, "view": "doc", "debug": true}),
    ] {
        let refused = info(&mut anonymous, request.clone()).await;
        assert_eq!(
            (refused["code"].as_str(), refused["id"].as_u64()),
            (Some("forbidden"), Some(2)),
            "{request}"
        );
    }
    // Asking for one's own views does not make debug allowed.
    let refused = info(&mut ada, json!({"t": "info", "id": 3, "view": "doc", "debug": true})).await;
    assert_eq!(refused["code"], "forbidden");

    let mut admin = connect(&server, Some("admin")).await;
    let debug = info(&mut admin, json!({"t": "info", "id": 4, "pattern": ".*", "debug": true})).await;
    assert_eq!(names(&debug), ["doc"]);
    assert_eq!(debug["views"][0]["users"][0]["connections"].as_array().map(Vec::len), Some(1), "{debug}");
}

#[tokio::test]
async fn debug_is_off_by_default() {
    let (server, _presence) = views_server(ViewsConfig::default()).await;
    let mut ada = connect(&server, Some("ada")).await;
    open(&mut ada, "doc").await;
    let refused = info(&mut ada, json!({"t": "info", "id": 5, "pattern": ".*", "debug": true})).await;
    assert_eq!(
        refused,
        json!({"t": "error", "code": "forbidden", "message": "debug answers are not enabled", "id": 5})
    );
}

#[tokio::test]
async fn answers_cover_at_most_100_views_and_say_when_they_are_truncated() {
    let (server, presence) = views_server(ViewsConfig::default()).await;
    let mut ada = connect(&server, Some("ada")).await;
    for n in 0..150 {
        send(&mut ada, json!({"t": "open", "view": format!("v{n:03}"), "id": n})).await;
    }
    for _ in 0..150 {
        assert_eq!(answer(&mut ada).await.0["t"], "state");
    }

    let mut anonymous = connect(&server, None).await;
    send(&mut anonymous, json!({"t": "info", "id": 1, "pattern": ".*"})).await;
    let (first, size) = answer(&mut anonymous).await;
    let expected: Vec<String> = (0..100).map(|n| format!("v{n:03}")).collect();
    assert_eq!(names(&first), expected);
    assert_eq!(first["truncated"], true);
    assert!(size < 10_000, "a 100-view answer took {size} bytes");

    // A narrower pattern gets everything it matches, unflagged.
    let rest = info(&mut anonymous, json!({"t": "info", "id": 2, "pattern": r"^v1[0-4]\d$"})).await;
    assert_eq!(names(&rest).len(), 50);
    assert_eq!(rest.get("truncated"), None, "{rest}");

    // The limit is the application's to choose, and binds peers only.
    assert_eq!(presence.info_matching(".*", true).unwrap().len(), 150);
}

#[tokio::test]
async fn max_info_views_is_configurable_and_validated() {
    let (server, _events) = server(ServerConfig::default()).await;
    assert!(ViewsConfig::default().max_info_views(0).attach(&server).is_err());
    let _presence = ViewsConfig::default().max_info_views(2).attach(&server).unwrap();
    let mut ws = raw_client(&url(&server)).await;
    for view in ["c", "a", "b"] {
        open(&mut ws, view).await;
    }
    let cut = info(&mut ws, json!({"t": "info", "id": 1, "pattern": "."})).await;
    assert_eq!((names(&cut), &cut["truncated"]), (vec!["a", "b"], &json!(true)));
}
