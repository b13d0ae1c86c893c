//! Mounting the server as a route of an axum 0.8 app (feature `axum`).
//!
//! The upgrade is done here with hyper and tungstenite 0.30 instead of axum's `ws`
//! extractor, which would pull a second tungstenite into the build and bypass the write
//! path and the handshake hook.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;

use crate::connection::Accepted;
use crate::handshake::{self, HandshakeRequest, Reject, SocketStart, Switching};
use crate::resume::{Handoff, HandoffSocket, Plan, Resolution};
use network_core::Adapter;

use crate::server::Server;

impl<A: Adapter> Server<A> {
    /// A `GET` route that upgrades requests to WebSocket connections of this server, for
    /// an axum app on its own port:
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use ws_server::{Server, ServerConfig};
    /// let server = Server::detached(ServerConfig::default())?;
    /// let app = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .route("/ws", server.axum_route());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Serve the app with `into_make_service_with_connect_info::<SocketAddr>()` to give
    /// connections their remote address, and on [`Server::axum_listener`] rather than the
    /// bare listener to give it the handshake limits of [`Server::bind`] (a timeout for the
    /// whole request head, its size, the cap on pending handshakes): axum's own `serve`
    /// has none of them. [`Server::shutdown`] closes the WebSocket
    /// connections; shutting the HTTP server down is the app's business.
    pub fn axum_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let server = self.clone();
        get(move |request: Request| {
            let server = server.clone();
            async move { server.upgrade(request).await }
        })
    }

    /// Upgrades `request` to a WebSocket connection of this server, from a handler of
    /// one's own: [`axum_route`](Self::axum_route) is this behind `get`. It lets one route
    /// serve both a page and the upgrade (the example server's `/`):
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use axum::extract::Request;
    /// use axum::response::{IntoResponse, Response};
    /// use ws_server::{Server, ServerConfig};
    /// let server = Server::detached(ServerConfig::default())?;
    /// let page = {
    ///     let server = server.clone();
    ///     move |request: Request| async move {
    ///         if request.headers().contains_key(http::header::UPGRADE) {
    ///             server.axum_upgrade(request).await
    ///         } else {
    ///             "<!doctype html><title>Demo</title>".into_response()
    ///         }
    ///     }
    /// };
    /// let app: axum::Router = axum::Router::new().route("/", axum::routing::get(page));
    /// # Ok(()) }
    /// ```
    ///
    /// A request that is not a valid upgrade gets the refusal `Server::bind` would write
    /// (400, 403, 426...), as do refusals of the handshake hook and of the connection limit.
    /// The same advice as for `axum_route` holds: serve the app on
    /// [`Server::axum_listener`] with `ConnectInfo`.
    pub async fn axum_upgrade(&self, request: Request) -> Response {
        self.upgrade(request).await
    }

    async fn upgrade(&self, mut request: Request) -> Response {
        let inner = self.inner().clone();
        let switching = match handshake::validate(
            request.method().as_str(),
            request.version(),
            request.headers(),
            &inner.config,
        ) {
            Ok(switching) => switching,
            Err(reject) => return rejection(&reject),
        };
        let deflate = switching.deflate;
        let extensions = request.extensions();
        let remote_addr = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
            .or_else(|| extensions.get::<ConnectInfo<crate::RemoteAddr>>().map(|info| info.0.0));
        let handshake = HandshakeRequest {
            remote_addr,
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            headers: request.headers().clone(),
        };
        let plan = match inner.sessions.resolve(&handshake) {
            Ok(Resolution::Fresh(plan)) => plan,
            Ok(Resolution::Relay(token, id, seen)) => match crate::relay::claim(&inner, id, &token, seen)
                .await
            {
                Ok(carried) => {
                    let on_upgrade = hyper::upgrade::on(&mut request);
                    let task_inner = inner.clone();
                    inner.tasks().spawn(async move {
                        match on_upgrade.await {
                            Ok(upgraded) => {
                                crate::relay::carry(task_inner, TokioIo::new(upgraded), Vec::new(), carried)
                                    .await;
                            }
                            Err(error) => tracing::debug!(%error, "HTTP upgrade failed"),
                        }
                    });
                    // The relay carries the socket with tungstenite: no compression.
                    return switching_protocols(&switching.uncompressed());
                }
                Err(refusal) => Plan::New(Some(refusal)),
            },
            // The session's token is the credential: no hook, no new slot.
            Ok(Resolution::Resume(session, seen)) => {
                let on_upgrade = hyper::upgrade::on(&mut request);
                let task_inner = inner.clone();
                inner.tasks().spawn(async move {
                    match on_upgrade.await {
                        Ok(upgraded) => {
                            let io = Box::new(TokioIo::new(upgraded));
                            let start = SocketStart { leftover: Vec::new(), deflate };
                            let handoff = Handoff { socket: HandoffSocket::Local { io, start }, seen };
                            if !task_inner.sessions.hand_over(&session, handoff) {
                                tracing::debug!("session ended before its resume");
                            }
                        }
                        Err(error) => tracing::debug!(%error, "HTTP upgrade failed"),
                    }
                });
                return switching_protocols(&switching);
            }
            Err(reject) => return rejection(&reject),
        };
        let slot = match inner.reserve_slot() {
            Ok(slot) => slot,
            Err(reject) => return rejection(&reject),
        };
        // The hook gets what is left of the handshake timeout, as with `Server::bind`.
        let accept =
            match tokio::time::timeout(inner.config.handshake_timeout, inner.decide(&handshake)).await {
                Ok(Ok(accept)) => accept,
                Ok(Err(reject)) => return rejection(&reject),
                Err(_) => {
                    return rejection(&Reject::new(StatusCode::REQUEST_TIMEOUT, "handshake hook timed out"));
                }
            };
        let on_upgrade = hyper::upgrade::on(&mut request);
        let task_inner = inner.clone();
        // Boxed: what the task captures stays in its future as long as the connection lives.
        let meta = Box::new(handshake.into_meta());
        let identity = accept.identity.map(Box::new);
        inner.tasks().spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let accepted = Accepted {
                        id: slot.id,
                        start: SocketStart { leftover: Vec::new(), deflate },
                        meta: *meta,
                        identity: identity.map(|i| *i),
                    };
                    crate::server::serve_accepted(task_inner, io, accepted, plan).await;
                }
                Err(error) => tracing::debug!(%error, "HTTP upgrade failed"),
            }
            drop(slot);
        });
        switching_protocols(&switching)
    }
}

/// The `101` answer to an accepted upgrade.
fn switching_protocols(switching: &Switching) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(&switching.accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(value) = switching.extensions().and_then(|value| HeaderValue::from_str(&value).ok()) {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    response
}

/// A refusal shaped as `Server::bind` writes it: the reason as a `text/plain` body, and
/// `Connection: close` (hyper closes the connection after it).
fn rejection(reject: &Reject) -> Response {
    crate::metrics::handshake_refused(reject.status.as_u16().to_string());
    let mut response = Response::new(Body::from(reject.reason.clone()));
    *response.status_mut() = reject.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if reject.status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    }
    response
}
