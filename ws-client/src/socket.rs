//! The client's own transport: TCP, TLS, and the HTTP/1.1 upgrade (RFC 6455 4.1).
//!
//! The handshake is ours (not tungstenite's) because the frames after it are ours too (see
//! [`crate::frames`] and docs/DESIGN.md, "The client's own frames"): tokio-tungstenite
//! cannot hand its socket back after its handshake without losing what it had read past
//! the response.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use network_core::http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use ws_protocol::deflate::{self, Agreement};
use ws_protocol::handshake::{self, accept_key};

use crate::error::{ConnectError, HandshakeError, NegotiationError};
use crate::url::Target;

/// The longest response head accepted (status line and headers).
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// The most headers a response may have.
const MAX_RESPONSE_HEADERS: usize = 64;

/// A connection to the server, with or without TLS.
pub(crate) enum Socket {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is some kilobytes).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open WebSocket: the socket, the bytes read past the 101 response (the first frames),
/// and the permessage-deflate agreement, if any.
pub(crate) struct Upgraded {
    pub(crate) socket: Socket,
    pub(crate) leftover: BytesMut,
    pub(crate) deflate: Option<Agreement>,
}

/// TCP, then TLS for `wss://` (with `tls`), then the upgrade; `offer_deflate` sends
/// [`deflate::CLIENT_OFFER`].
pub(crate) async fn open(
    target: &Target,
    headers: &HeaderMap,
    tls: Option<Arc<rustls::ClientConfig>>,
    offer_deflate: bool,
) -> Result<Upgraded, ConnectError> {
    let uri = &target.uri;
    let invalid =
        |reason: &str| ConnectError::InvalidUrl { url: target.url.clone(), reason: reason.to_owned() };
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    // `http::Uri` keeps the brackets of an IPv6 address, which a socket address has not.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if target.is_tls() { 443 } else { 80 });
    let tcp = TcpStream::connect((bare_host, port)).await.map_err(|err| ConnectError::Io(Arc::new(err)))?;
    // Frames are written whole, a batch at a time: Nagle's delay would only add latency.
    let _ = tcp.set_nodelay(true);
    let mut socket = match tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                .map_err(|err| ConnectError::Tls(Arc::new(err)))?;
            let stream = TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|err| ConnectError::Tls(Arc::new(err)))?;
            Socket::Tls(Box::new(stream))
        }
        None => Socket::Plain(tcp),
    };
    let key = handshake::key(rand::random());
    let authority = uri.authority().map_or(host, |authority| authority.as_str());
    // The authority without user information (`user@host` is not a Host header).
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let path = if path.is_empty() { "/" } else { path };
    let request = request(path, authority, &key, headers, offer_deflate);
    socket.write_all(&request).await.map_err(|err| ConnectError::Io(Arc::new(err)))?;
    socket.flush().await.map_err(|err| ConnectError::Io(Arc::new(err)))?;
    let (deflate, leftover) = read_response(&mut socket, &key, headers, offer_deflate).await?;
    Ok(Upgraded { socket, leftover, deflate })
}

/// The upgrade request (RFC 6455 4.1).
fn request(path: &str, authority: &str, key: &str, headers: &HeaderMap, offer_deflate: bool) -> Vec<u8> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    )
    .into_bytes();
    if offer_deflate {
        request
            .extend_from_slice(format!("Sec-WebSocket-Extensions: {}\r\n", deflate::CLIENT_OFFER).as_bytes());
    }
    for (name, value) in headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// Reads the response head and checks it (RFC 6455 4.1, RFC 7692 5): the agreement, and
/// the bytes read after the head.
async fn read_response(
    socket: &mut Socket,
    key: &str,
    request_headers: &HeaderMap,
    offered: bool,
) -> Result<(Option<Agreement>, BytesMut), ConnectError> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if buffer.len() >= MAX_RESPONSE_HEAD {
            return Err(handshake(HandshakeError::ResponseTooLong { max: MAX_RESPONSE_HEAD }));
        }
        buffer.reserve(1024);
        let read = socket.read_buf(&mut buffer).await.map_err(|err| ConnectError::Io(Arc::new(err)))?;
        if read == 0 {
            return Err(handshake(HandshakeError::Closed));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&buffer) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(err) => return Err(handshake(HandshakeError::Malformed(err.to_string()))),
        };
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Err(ConnectError::Rejected { status });
        }
        let deflate = check_response(response.headers, key, request_headers, offered)?;
        let leftover = buffer.split_off(head_len);
        return Ok((deflate, leftover));
    }
}

/// The checks of a 101 response's headers; the permessage-deflate agreement, if any.
fn check_response(
    headers: &[httparse::Header<'_>],
    key: &str,
    request_headers: &HeaderMap,
    offered: bool,
) -> Result<Option<Agreement>, ConnectError> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| std::str::from_utf8(header.value).unwrap_or(""))
    };
    let has_token = |name: &'static str, token: &str| {
        values(name).flat_map(|value| value.split(',')).any(|item| item.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err(handshake(HandshakeError::NotUpgraded));
    }
    let expected = accept_key(key.as_bytes());
    if values("sec-websocket-accept").next().map(str::trim) != Some(expected.as_str()) {
        return Err(handshake(HandshakeError::WrongAccept));
    }
    // RFC 6455 4.1: a subprotocol the client did not ask for fails the connection.
    if values("sec-websocket-protocol").next().is_some()
        && !request_headers.contains_key("sec-websocket-protocol")
    {
        return Err(handshake(HandshakeError::UnrequestedProtocol));
    }
    // A value that is not text cannot be an extension list (and must not read as none).
    let extension_not_text = headers.iter().any(|header| {
        header.name.eq_ignore_ascii_case("sec-websocket-extensions")
            && std::str::from_utf8(header.value).is_err()
    });
    if extension_not_text {
        return Err(ConnectError::Extension(NegotiationError::Malformed));
    }
    // RFC 6455 9.1: an extension in the answer that the request did not offer fails it.
    if !offered
        && let Some(extension) = values("sec-websocket-extensions").find(|value| !value.trim().is_empty())
    {
        return Err(ConnectError::Extension(NegotiationError::NotOffered(extension.trim().to_owned())));
    }
    deflate::read_response(values("sec-websocket-extensions")).map_err(ConnectError::Extension)
}

fn handshake(error: HandshakeError) -> ConnectError {
    ConnectError::Handshake(Arc::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check_response` of a 101 whose headers are `extra` plus the required ones.
    fn check(
        extra: &[(&'static str, &'static [u8])],
        offered: bool,
    ) -> Result<Option<Agreement>, ConnectError> {
        let accept = accept_key(b"key");
        let mut headers = vec![
            httparse::Header { name: "Upgrade", value: b"websocket" },
            httparse::Header { name: "Connection", value: b"Upgrade" },
            httparse::Header { name: "Sec-WebSocket-Accept", value: accept.as_bytes() },
        ];
        headers.extend(extra.iter().map(|(name, value)| httparse::Header { name, value }));
        check_response(&headers, "key", &HeaderMap::new(), offered)
    }

    #[test]
    fn the_response_is_checked_as_rfc_6455_and_7692_say() {
        assert!(matches!(check(&[], true), Ok(None)));
        let agreed =
            check(&[("sec-websocket-extensions", b"permessage-deflate; server_no_context_takeover")], true);
        assert!(matches!(agreed, Ok(Some(_))));
        let not_text = check(&[("Sec-WebSocket-Extensions", b"permessage-deflate\xff")], true);
        assert!(matches!(not_text, Err(ConnectError::Extension(NegotiationError::Malformed))));
        let not_offered = check(&[("Sec-WebSocket-Extensions", b"permessage-deflate")], false);
        assert!(matches!(not_offered, Err(ConnectError::Extension(NegotiationError::NotOffered(_)))));
        let protocol = check(&[("Sec-WebSocket-Protocol", b"chat")], true);
        assert!(matches!(protocol, Err(ConnectError::Handshake(_))));
        let headers = [httparse::Header { name: "Upgrade", value: b"websocket" }];
        assert!(matches!(
            check_response(&headers, "key", &HeaderMap::new(), true),
            Err(ConnectError::Handshake(_))
        ));
    }

    #[test]
    fn the_request_offers_deflate_only_when_asked() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap_or_else(|_| unreachable!()));
        let with = String::from_utf8(request("/ws?x=1", "h:1", "k", &headers, true)).unwrap_or_default();
        assert!(with.starts_with("GET /ws?x=1 HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(with.contains(&format!("Sec-WebSocket-Extensions: {}\r\n", deflate::CLIENT_OFFER)));
        assert!(with.contains("authorization: Bearer t\r\n") && with.ends_with("\r\n\r\n"));
        let without = String::from_utf8(request("/", "h", "k", &headers, false)).unwrap_or_default();
        assert!(!without.contains("Sec-WebSocket-Extensions"));
    }
}
