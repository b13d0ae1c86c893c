//! The HTTP upgrade: parsing, validation, and the application's handshake hook.
//!
//! The request head is parsed here rather than inside tungstenite so that the hook can be
//! async (a token lookup in a store) and can refuse with any HTTP status before the
//! upgrade. The axum mount reuses the same validation and hook.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use network_core::{ConnectionMeta, Identity};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Headers that only serve the upgrade; [`ConnectionMeta::headers`] leaves them out.
const UPGRADE_ONLY_HEADERS: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// What the handshake hook sees of an upgrade request.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HandshakeRequest {
    /// The peer's address, when known (behind a proxy, the proxy's).
    pub remote_addr: Option<SocketAddr>,
    /// The request path (`/ws`).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The request headers, cookies included.
    pub headers: HeaderMap,
}

impl HandshakeRequest {
    /// The raw (not percent-decoded) value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// The value of cookie `name` from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .find_map(|cookie| {
                let (key, value) = cookie.trim().split_once('=')?;
                (key == name).then_some(value)
            })
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// What the connection keeps of the request for its whole life: everything but the
    /// upgrade's own headers, which mean nothing once it is done (a few hundred bytes per
    /// connection).
    pub(crate) fn into_meta(self) -> ConnectionMeta {
        let kept = |name: &header::HeaderName| !UPGRADE_ONLY_HEADERS.contains(name);
        let mut headers = HeaderMap::with_capacity(self.headers.keys().filter(|name| kept(name)).count());
        let mut current = None;
        for (name, value) in self.headers {
            // `into_iter` names only the first value of a repeated header.
            if let Some(name) = name {
                current = kept(&name).then_some(name);
            }
            if let Some(name) = &current {
                headers.append(name.clone(), value);
            }
        }
        ConnectionMeta::new(self.path).remote_addr(self.remote_addr).query(self.query).headers(headers)
    }
}

/// The hook's consent to an upgrade, with what it learnt about the peer.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Accept {
    /// The identity to attach to the connection.
    pub identity: Option<Identity>,
}

impl Accept {
    /// Accepts without an identity.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches `identity` to the connection.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }
}

/// The hook's refusal: the HTTP status and a short plain-text reason sent instead of the
/// upgrade.
#[derive(Clone, Debug)]
pub struct Reject {
    /// The status code (401, 403, 429...).
    pub status: StatusCode,
    /// The response body.
    pub reason: String,
}

impl Reject {
    /// A refusal with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Result<Accept, Reject>> + Send>>;

/// An async function deciding on each upgrade request.
///
/// ```
/// use ws_server::{Accept, HandshakeHook, Reject};
/// use network_core::Identity;
///
/// let hook = HandshakeHook::new(|request| async move {
///     match request.query_param("user") {
///         Some(user) => Ok(Accept::new().identity(Identity::user(user))),
///         None => Err(Reject::new(http::StatusCode::UNAUTHORIZED, "who are you?")),
///     }
/// });
/// # let _ = hook;
/// ```
#[derive(Clone)]
pub struct HandshakeHook(Arc<dyn Fn(HandshakeRequest) -> HookFuture + Send + Sync>);

impl HandshakeHook {
    /// Wraps `hook`. It runs once per upgrade request, before the upgrade; boxing its
    /// future costs one allocation per connection, not per message.
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(HandshakeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Accept, Reject>> + Send + 'static,
    {
        Self(Arc::new(move |request| Box::pin(hook(request))))
    }

    pub(crate) async fn decide(&self, request: HandshakeRequest) -> Result<Accept, Reject> {
        (self.0)(request).await
    }
}

impl fmt::Debug for HandshakeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HandshakeHook")
    }
}

/// Checks the WebSocket headers of an upgrade request (RFC 6455 4.2.1) and returns the
/// `Sec-WebSocket-Accept` value.
pub(crate) fn validate(method: &str, headers: &HeaderMap) -> Result<String, Reject> {
    let bad = |reason: &str| Err(Reject::new(StatusCode::BAD_REQUEST, reason));
    if method != "GET" {
        return Err(Reject::new(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade must be a GET"));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token(header::UPGRADE, "websocket") {
        return bad("missing Upgrade: websocket");
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return bad("missing Connection: upgrade");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err(Reject::new(StatusCode::UPGRADE_REQUIRED, "only WebSocket version 13 is supported"));
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(derive_accept_key(key.as_bytes())),
        _ => bad("missing Sec-WebSocket-Key"),
    }
}

/// A parsed upgrade request read from a raw stream.
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) request: HandshakeRequest,
    /// Bytes read past the request head (the client's first frames, if it did not wait).
    pub(crate) leftover: Vec<u8>,
}

/// Reads an HTTP request head of at most `max_size` bytes.
pub(crate) async fn read_request<S: AsyncRead + Unpin>(
    io: &mut S,
    remote_addr: Option<SocketAddr>,
    max_size: usize,
) -> Result<RawRequest, Reject> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let read = io
            .read(&mut chunk)
            .await
            .map_err(|_| Reject::new(StatusCode::BAD_REQUEST, "connection failed during handshake"))?;
        if read == 0 {
            return Err(Reject::new(StatusCode::BAD_REQUEST, "connection closed during handshake"));
        }
        buf.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let mut map = HeaderMap::new();
                for h in parsed.headers.iter() {
                    let name = header::HeaderName::from_bytes(h.name.as_bytes());
                    let value = HeaderValue::from_bytes(h.value);
                    if let (Ok(name), Ok(value)) = (name, value) {
                        map.append(name, value);
                    }
                }
                let target = parsed.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((path, query)) => (path, Some(query.to_owned())),
                    None => (target, None),
                };
                return Ok(RawRequest {
                    method: parsed.method.unwrap_or_default().to_owned(),
                    request: HandshakeRequest { remote_addr, path: path.to_owned(), query, headers: map },
                    leftover: buf[head_len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < max_size => {}
            Ok(httparse::Status::Partial) => {
                return Err(Reject::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                ));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Reject::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers"));
            }
            Err(_) => return Err(Reject::new(StatusCode::BAD_REQUEST, "malformed HTTP request")),
        }
    }
}

/// Writes the `101 Switching Protocols` response.
pub(crate) async fn write_accept<S: AsyncWrite + Unpin>(io: &mut S, accept_key: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n\r\n"
    );
    io.write_all(response.as_bytes()).await?;
    io.flush().await
}

/// Writes a refusal and lets the connection close.
pub(crate) async fn write_reject<S: AsyncWrite + Unpin>(io: &mut S, reject: &Reject) -> std::io::Result<()> {
    let extra =
        if reject.status == StatusCode::UPGRADE_REQUIRED { "Sec-WebSocket-Version: 13\r\n" } else { "" };
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{}",
        reject.status.as_u16(),
        reject.status.canonical_reason().unwrap_or(""),
        reject.reason.len(),
        reject.reason,
    );
    io.write_all(response.as_bytes()).await?;
    io.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: Option<&str>, headers: &[(&'static str, &'static str)]) -> HandshakeRequest {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        HandshakeRequest { remote_addr: None, path: "/".into(), query: query.map(Into::into), headers: map }
    }

    #[test]
    fn reads_query_cookies_and_bearer() {
        let r = request(
            Some("a=1&token=xyz&flag"),
            &[("cookie", "sid=abc; theme=dark"), ("authorization", "Bearer t0k")],
        );
        assert_eq!(r.query_param("token"), Some("xyz"));
        assert_eq!(r.query_param("flag"), Some(""));
        assert_eq!(r.query_param("nope"), None);
        assert_eq!(r.cookie("theme"), Some("dark"));
        assert_eq!(r.bearer_token(), Some("t0k"));
    }

    #[test]
    fn validates_upgrade_headers() {
        let ok = request(
            None,
            &[
                ("upgrade", "websocket"),
                ("connection", "keep-alive, Upgrade"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        );
        // The example key of RFC 6455 section 1.3.
        assert_eq!(validate("GET", &ok.headers).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(validate("POST", &ok.headers).unwrap_err().status, StatusCode::METHOD_NOT_ALLOWED);
        let old = request(
            None,
            &[("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-version", "8")],
        );
        assert_eq!(validate("GET", &old.headers).unwrap_err().status, StatusCode::UPGRADE_REQUIRED);
        let plain = request(None, &[]);
        assert_eq!(validate("GET", &plain.headers).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
