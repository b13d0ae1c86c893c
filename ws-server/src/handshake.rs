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

use http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use network_core::{ConnectionMeta, Identity};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ws_protocol::deflate::{self, Agreement};

use crate::config::ServerConfig;

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

/// The answer to an upgrade request that passed [`validate`].
#[derive(Debug)]
pub(crate) struct Switching {
    /// The `Sec-WebSocket-Accept` value.
    pub(crate) accept_key: String,
    /// permessage-deflate, when the server compresses and the client offered it.
    pub(crate) deflate: Option<Agreement>,
}

impl Switching {
    /// The same answer without compression (for a socket carried by a relay, whose
    /// tungstenite frames cannot be compressed).
    pub(crate) fn uncompressed(self) -> Self {
        Self { deflate: None, ..self }
    }

    /// The `Sec-WebSocket-Extensions` value of the answer, if any.
    pub(crate) fn extensions(&self) -> Option<String> {
        self.deflate.as_ref().map(Agreement::response)
    }
}

/// What an upgraded socket starts with.
pub(crate) struct SocketStart {
    /// Bytes read past the upgrade request (the first frames, if the client was quick).
    pub(crate) leftover: Vec<u8>,
    /// permessage-deflate, if negotiated.
    pub(crate) deflate: Option<Agreement>,
}

/// Checks an upgrade request (RFC 6455 4.2.1) and the server's origin list, and returns the
/// `Sec-WebSocket-Accept` value and the compression agreed. Both the bound server and the
/// axum mount call it before anything else, so the handshake hook never sees a request
/// refused here.
pub(crate) fn validate(
    method: &str,
    version: Version,
    headers: &HeaderMap,
    config: &ServerConfig,
) -> Result<Switching, Reject> {
    let bad = |reason: &str| Err(Reject::new(StatusCode::BAD_REQUEST, reason));
    if method != "GET" {
        return Err(Reject::new(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade must be a GET"));
    }
    // HTTP/1.0 has no upgrade, and HTTP/2 upgrades differently (RFC 8441, not supported).
    if version != Version::HTTP_11 {
        return bad("a WebSocket upgrade must be HTTP/1.1");
    }
    // RFC 9112 3.2: a request with no Host or several gets 400.
    match only(headers, header::HOST) {
        Some(host) if !host.is_empty() => {}
        _ => return bad("missing or repeated Host"),
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
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).into_iter();
    let key = match (keys.next(), keys.next()) {
        (None, _) => return bad("missing Sec-WebSocket-Key"),
        (Some(_), Some(_)) => return bad("repeated Sec-WebSocket-Key"),
        (Some(key), None) => key,
    };
    if !is_key(key.as_bytes()) {
        return bad("Sec-WebSocket-Key must be the base64 of 16 bytes");
    }
    if !origin_allowed(config.allowed_origins.as_deref(), headers) {
        return Err(Reject::new(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    let offers =
        headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS).into_iter().filter_map(|v| v.to_str().ok());
    let deflate = config.compression.and_then(|_| deflate::accept_offer(offers));
    Ok(Switching { accept_key: ws_protocol::handshake::accept_key(key.as_bytes()), deflate })
}

/// The value of header `name` if it occurs exactly once.
fn only(headers: &HeaderMap, name: header::HeaderName) -> Option<&HeaderValue> {
    let mut values = headers.get_all(name).into_iter();
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

/// Whether `key` is the base64 of 16 bytes: 22 base64 digits, then `==`. The unused low bits
/// of the last digit are not checked, as lenient decoders (Go's, Node's `ws`) do not.
fn is_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Whether the request's `Origin` is allowed: anything when there is no list; with a list,
/// a request without `Origin` (not a browser's) or whose single `Origin` matches an entry.
fn origin_allowed(allowed: Option<&[String]>, headers: &HeaderMap) -> bool {
    let Some(allowed) = allowed else { return true };
    let mut values = headers.get_all(header::ORIGIN).into_iter();
    let Some(value) = values.next() else { return true };
    // `null` (sandboxed frames, `file:` pages) and anything malformed parse to nothing.
    let origin = value.to_str().ok().and_then(Origin::parse);
    let allowed = values.next().is_none()
        && origin.is_some_and(|origin| {
            allowed.iter().filter_map(|entry| Origin::parse(entry)).any(|entry| entry == origin)
        });
    if !allowed {
        tracing::debug!(origin = ?value, "upgrade from an origin not on the list");
    }
    allowed
}

/// Whether `entry` is an origin `allowed_origins` can hold (checked when the server starts).
pub(crate) fn is_origin(entry: &str) -> bool {
    Origin::parse(entry).is_some()
}

/// An origin as browsers serialise it (RFC 6454 6.1): `scheme://host[:port]`, borrowed.
#[derive(Debug)]
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    /// The explicit port, else the scheme's default, else none.
    port: Option<u16>,
}

impl<'a> Origin<'a> {
    fn parse(origin: &'a str) -> Option<Self> {
        let (scheme, authority) = origin.split_once("://")?;
        let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        // An IPv6 host is bracketed and holds colons of its own.
        let host_end = if authority.starts_with('[') {
            authority.find(']')? + 1
        } else {
            authority.find(':').unwrap_or(authority.len())
        };
        let (host, port) = authority.split_at(host_end);
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(ip) => {
                !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
            }
            // No path, user info or query: a browser never sends them, a list entry with
            // them is a mistake.
            None => {
                !host.is_empty()
                    && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            }
        };
        if !scheme_ok || !host_ok {
            return None;
        }
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => default_port(scheme),
            Some(digits) if (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse().ok()?)
            }
            _ => return None,
        };
        Some(Self { scheme, host, port })
    }
}

impl PartialEq for Origin<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.scheme.eq_ignore_ascii_case(other.scheme)
            && self.host.eq_ignore_ascii_case(other.host)
            && self.port == other.port
    }
}

/// The default ports of the WHATWG URL standard's special schemes a page can have.
fn default_port(scheme: &str) -> Option<u16> {
    let is = |name: &str| scheme.eq_ignore_ascii_case(name);
    if is("http") || is("ws") {
        Some(80)
    } else if is("https") || is("wss") {
        Some(443)
    } else {
        None
    }
}

/// A parsed upgrade request read from a raw stream.
pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) version: Version,
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
                    // httparse reads only HTTP/1.0 (0) and HTTP/1.1 (1).
                    version: if parsed.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 },
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
pub(crate) async fn write_accept<S: AsyncWrite + Unpin>(
    io: &mut S,
    switching: &Switching,
) -> std::io::Result<()> {
    let accept_key = &switching.accept_key;
    let extensions = switching
        .extensions()
        .map(|value| format!("Sec-WebSocket-Extensions: {value}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n{extensions}\r\n"
    );
    io.write_all(response.as_bytes()).await?;
    io.flush().await
}

/// Writes a refusal and lets the connection close.
pub(crate) async fn write_reject<S: AsyncWrite + Unpin>(io: &mut S, reject: &Reject) -> std::io::Result<()> {
    io.write_all(reject_response(reject).as_bytes()).await?;
    io.shutdown().await
}

/// The HTTP response of a refusal: status, a `text/plain` body with the reason, and
/// `Connection: close`.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn reject_response(reject: &Reject) -> String {
    let extra =
        if reject.status == StatusCode::UPGRADE_REQUIRED { "Sec-WebSocket-Version: 13\r\n" } else { "" };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{}",
        reject.status.as_u16(),
        reject.status.canonical_reason().unwrap_or(""),
        reject.reason.len(),
        reject.reason,
    )
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

    const UPGRADE: [(&str, &str); 5] = [
        ("host", "x"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn check(
        version: Version,
        headers: &[(&'static str, &'static str)],
        config: &ServerConfig,
    ) -> Result<String, StatusCode> {
        validate("GET", version, &request(None, headers).headers, config)
            .map(|switching| switching.accept_key)
            .map_err(|reject| reject.status)
    }

    #[test]
    fn validates_upgrade_headers() {
        let config = ServerConfig::default();
        // The example key of RFC 6455 section 1.3.
        assert_eq!(check(Version::HTTP_11, &UPGRADE, &config).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let ok = request(None, &UPGRADE);
        assert_eq!(
            validate("POST", Version::HTTP_11, &ok.headers, &config).unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let old = [
            ("host", "x"),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "8"),
        ];
        assert_eq!(check(Version::HTTP_11, &old, &config), Err(StatusCode::UPGRADE_REQUIRED));
        assert_eq!(check(Version::HTTP_11, &[("host", "x")], &config), Err(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn refuses_what_rfc_6455_forbids() {
        let config = ServerConfig::default();
        for version in [Version::HTTP_09, Version::HTTP_10, Version::HTTP_2] {
            assert_eq!(check(version, &UPGRADE, &config), Err(StatusCode::BAD_REQUEST), "{version:?}");
        }
        let without = |name: &str| UPGRADE.iter().copied().filter(|(n, _)| *n != name).collect::<Vec<_>>();
        let with = |name: &'static str, value: &'static str| {
            let mut headers = without(name);
            headers.push((name, value));
            headers
        };
        let twice = |name: &'static str, value: &'static str| {
            let mut headers = UPGRADE.to_vec();
            headers.push((name, value));
            headers
        };
        for headers in [
            without("host"),
            with("host", ""),
            twice("host", "y"),
            without("sec-websocket-key"),
            twice("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="),
            with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ"),
            with("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA"),
            with("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAAA="),
            with("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAAAA"),
            with("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA-_=="),
        ] {
            assert_eq!(
                check(Version::HTTP_11, &headers, &config),
                Err(StatusCode::BAD_REQUEST),
                "{headers:?}"
            );
        }
        // Any 16 bytes will do, whatever the unused bits of the last digit.
        for key in ["AAAAAAAAAAAAAAAAAAAAAA==", "+/+/+/+/+/+/+/+/+/+/+/==", "AAAAAAAAAAAAAAAAAAAAAB=="] {
            assert!(is_key(key.as_bytes()), "{key}");
        }
    }

    #[test]
    fn origins_match_on_scheme_host_and_port() {
        let list = ["https://App.example", "http://localhost:8080", "http://[::1]:3000", "tauri://localhost"];
        let config =
            ServerConfig::default().allowed_origins(Some(list.iter().map(|o| (*o).to_owned()).collect()));
        let origin = |origin: &'static str| {
            let mut headers = UPGRADE.to_vec();
            headers.push(("origin", origin));
            check(Version::HTTP_11, &headers, &config).map(drop)
        };
        for allowed in [
            "https://app.example",
            "https://APP.EXAMPLE:443",
            "HTTPS://app.example",
            "http://localhost:8080",
            "http://[::1]:3000",
            "tauri://localhost",
        ] {
            assert_eq!(origin(allowed), Ok(()), "{allowed}");
        }
        for refused in [
            "null",
            "",
            "https://app.example:444",
            "http://app.example",
            "wss://app.example",
            "https://app.example.",
            "https://sub.app.example",
            "https://app.example/",
            "https://user@app.example",
            "http://localhost",
            "http://localhost:80",
            "http://[::1]",
            "tauri://localhost:1",
            "https://app.example:",
            "https://app.example:65536",
        ] {
            assert_eq!(origin(refused), Err(StatusCode::FORBIDDEN), "{refused}");
        }
        // No Origin: not a browser, let through. No list: anything goes.
        assert!(check(Version::HTTP_11, &UPGRADE, &config).is_ok());
        let mut evil = UPGRADE.to_vec();
        evil.push(("origin", "https://evil.example"));
        assert!(check(Version::HTTP_11, &evil, &ServerConfig::default()).is_ok());
    }

    #[test]
    fn list_entries_are_checked() {
        for good in ["https://app.example", "http://127.0.0.1:8080", "http://[::1]", "app-x.y+z://host_name"]
        {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "null",
            "*",
            "",
            "app.example",
            "https://",
            "https://app.example/",
            "https://*.example",
            "https://a b",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
