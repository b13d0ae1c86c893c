//! The WebSocket server mounted inside an existing axum app, on the app's own port.
//!
//! - `GET /` answers plain HTTP;
//! - `GET /ws?user=NAME` upgrades to a WebSocket connection whose identity is NAME (the
//!   handshake hook refuses a missing name with HTTP 401);
//! - `GET /notify?user=NAME&text=TEXT` sends TEXT to every connection of NAME, from an
//!   ordinary HTTP handler.
//!
//! ```text
//! cargo run --example axum_mount -- --listen 127.0.0.1:3000
//! cargo run --example client -- 'ws://127.0.0.1:3000/ws?user=ada'
//! curl 'http://127.0.0.1:3000/notify?user=ada&text=hello'
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::routing::get;
use realtime::network_core::http::StatusCode;
use realtime::network_core::{Identity, Message, Network};
use realtime::ws_server::{Accept, HandshakeHook, Reject, RemoteAddr, Server, ServerConfig};

const USAGE: &str = "\
usage: axum_mount [--listen ADDR]
  --listen ADDR   the address to serve on (default: 127.0.0.1:3000)
  -h, --help      print this help and exit";

#[path = "shared/cli.rs"]
mod cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let listen = cli::parse_or_exit(|| cli::listen_only("127.0.0.1:3000"), USAGE);
    let listen: SocketAddr = listen.parse().context("bad --listen address")?;

    let hook = HandshakeHook::new(|request| async move {
        match request.query_param("user") {
            Some(user) if !user.is_empty() => Ok(Accept::new().identity(Identity::user(user))),
            _ => Err(Reject::new(StatusCode::UNAUTHORIZED, "add ?user=NAME")),
        }
    });
    let server = Server::detached(ServerConfig::default().handshake(hook))?;
    let app = axum::Router::new()
        .route("/", get(|| async { "HTTP and WebSocket on one port: connect to /ws?user=NAME\n" }))
        .route("/notify", get(notify))
        .route("/ws", server.axum_route())
        .with_state(server.clone());

    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // `axum_listener` gives the app's sockets the server's handshake limits (a deadline and
    // a size for the request head, a cap on pending handshakes): axum has none of its own.
    // Handlers get the peer's address as `ConnectInfo<RemoteAddr>`.
    let service = app.into_make_service_with_connect_info::<RemoteAddr>();
    axum::serve(server.axum_listener(listener), service)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            server.shutdown().await;
        })
        .await?;
    Ok(())
}

/// Sends `text` to every connection of `user`; answers how many were reached.
async fn notify(State(server): State<Server>, Query(params): Query<HashMap<String, String>>) -> String {
    let (Some(user), Some(text)) = (params.get("user"), params.get("text")) else {
        return "usage: /notify?user=NAME&text=TEXT\n".to_owned();
    };
    let message = Message::text(text.clone());
    let reached = server
        .connections()
        .into_iter()
        .filter(|c| c.identity().and_then(|i| i.user_id.clone()).as_deref() == Some(user.as_str()))
        .filter(|c| c.send(message.clone()).is_ok())
        .count();
    format!("sent to {reached} connection(s)\n")
}
