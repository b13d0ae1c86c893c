//! The two ways a server receives upgrades (its own listener, a route of an axum app) and a
//! raw HTTP/1 exchange that reads one response without waiting for the connection to end
//! (hyper keeps a refused connection open; our own listener closes it).

use std::net::SocketAddr;

use realtime::ws_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// How the server under test receives its upgrades.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mount {
    /// `Server::bind` on 127.0.0.1:0: the upgrade is parsed by ws-server itself.
    Bound,
    /// `Server::detached` behind `axum_route()` at `/ws`: hyper parses the request.
    Axum,
}

/// Both mounts, for tests that must hold for each.
pub(crate) const MOUNTS: [Mount; 2] = [Mount::Bound, Mount::Axum];

/// Where a running server's upgrades go (the server runs until the test's runtime ends).
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    /// The request target of the WebSocket endpoint.
    pub(crate) path: &'static str,
}

/// Starts a server with `config`, mounted as `mount` says.
pub(crate) async fn start(mount: Mount, config: ServerConfig) -> Endpoint {
    match mount {
        Mount::Bound => {
            let server = Server::bind("127.0.0.1:0", config).await.expect("bind");
            let addr = server.local_addr().expect("address");
            Endpoint { addr, path: "/" }
        }
        Mount::Axum => {
            let server = Server::detached(config).expect("detached");
            let app = axum::Router::new().route("/ws", server.axum_route());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            tokio::spawn(async move {
                let service = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, service).await.expect("serve");
            });
            Endpoint { addr, path: "/ws" }
        }
    }
}

/// The WebSocket key of RFC 6455 section 1.3 (16 bytes in base64).
pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for `path` in HTTP version `version` (`"HTTP/1.1"`) with exactly
/// `headers`, in order.
pub(crate) fn request(path: &str, version: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("GET {path} {version}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// The headers of a valid upgrade request, plus `extra`.
pub(crate) fn upgrade_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Host", "x"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", KEY),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// One HTTP response head and its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The status line and headers, without the blank line.
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Connects to `addr`, writes `request`, and reads one response (its body by
/// `Content-Length`). The stream is returned for what follows a 101.
pub(crate) async fn exchange(addr: SocketAddr, request: &str) -> (Response, TcpStream) {
    let mut stream = within(TcpStream::connect(addr)).await.expect("connect");
    within(stream.write_all(request.as_bytes())).await.expect("write");
    let response = within(read_response(&mut stream)).await;
    (response, stream)
}

async fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(
            read > 0,
            "connection closed before a complete response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("an ASCII head");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    let mut response = Response { status, head, body: String::new() };
    let length: usize = response.header("content-length").map_or(0, |n| n.parse().expect("a length"));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..read]);
    }
    // Bytes past the body would be frames; none are expected before we send any.
    assert_eq!(body.len(), length, "unexpected bytes after the response");
    response.body = String::from_utf8(body).expect("a UTF-8 body");
    response
}
