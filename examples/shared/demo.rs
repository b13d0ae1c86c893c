//! The example server's HTTP side: the demo page at `/`, the browser client's modules
//! (`clients/js`, built into the binary so that it runs from any directory), and every
//! WebSocket upgrade, on any path, handed to the server.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use realtime::network_core::Adapter;
use realtime::ws_server::Server;

/// The page: a shared books list (sync) with who is looking at each book (views).
const PAGE: &str = include_str!("demo.html");

/// The files served besides the page: path, content.
const MODULES: [(&str, &str); 4] = [
    ("/realtime.js", include_str!("../../clients/js/realtime.js")),
    ("/realtime-users.js", include_str!("../../clients/js/realtime-users.js")),
    ("/backbone.js", include_str!("../../clients/js/backbone.js")),
    ("/msgpack.js", include_str!("../../clients/js/msgpack.js")),
];

/// The app: one handler for every path, so that an upgrade is accepted anywhere (`/`
/// included, where Autobahn and the JS tests connect) and refused as `Server::bind`
/// refuses it (400, 426...) when it is neither an upgrade nor one of the files.
pub(crate) fn app<A: Adapter>(server: Server<A>) -> axum::Router {
    axum::Router::new().fallback(move |request: Request| {
        let server = server.clone();
        async move { respond(&server, request).await }
    })
}

async fn respond<A: Adapter>(server: &Server<A>, request: Request) -> Response {
    let plain_get = matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.headers().contains_key(header::UPGRADE);
    if plain_get {
        let path = request.uri().path();
        if path == "/" {
            return file(PAGE, "text/html; charset=utf-8");
        }
        if let Some((_, module)) = MODULES.iter().find(|(name, _)| *name == path) {
            return file(module, "text/javascript; charset=utf-8");
        }
    }
    server.axum_upgrade(request).await
}

fn file(content: &'static str, content_type: &'static str) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Built into the binary: a new build is a new version, so never serve a stale copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
