//! Where the client connects: a fixed URL, or a provider asked before every attempt.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use network_core::http::Uri;

use crate::error::ConnectError;

/// Produces the URL of each connection attempt, for servers that want a fresh one-time
/// token in it. Called before every attempt; an error counts as a failed attempt
/// ([`ConnectError::Provider`]) and the client retries after its backoff delay. The call
/// is bounded by `connection_timeout`.
///
/// Closures returning a future implement it:
///
/// ```
/// use ws_client::{UrlProvider, UrlSource};
///
/// let source = UrlSource::provider(|| async {
///     let token = "fetched-from-the-auth-service";
///     Ok::<_, std::io::Error>(format!("wss://example.com/ws?token={token}"))
/// });
/// ```
pub trait UrlProvider: Send + Sync + 'static {
    /// What a failed look-up reports.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The `ws://` or `wss://` URL of the next attempt.
    fn url(&self) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

impl<F, Fut, E> UrlProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    type Error = E;

    fn url(&self) -> impl Future<Output = Result<String, E>> + Send {
        self()
    }
}

type BoxedUrl = Pin<Box<dyn Future<Output = Result<String, ConnectError>> + Send>>;

/// The object-safe form of [`UrlProvider`], so that `Client` is not generic over it.
trait ErasedProvider: Send + Sync {
    fn url(&self) -> BoxedUrl;
}

struct Erased<P>(Arc<P>);

impl<P: UrlProvider> ErasedProvider for Erased<P> {
    fn url(&self) -> BoxedUrl {
        let provider = self.0.clone();
        Box::pin(async move { provider.url().await.map_err(|err| ConnectError::Provider(Arc::new(err))) })
    }
}

/// Where a [`Client`](crate::Client) connects: a fixed URL (from a `&str` or `String`) or
/// a [`UrlProvider`].
#[derive(Clone)]
pub struct UrlSource(Source);

#[derive(Clone)]
enum Source {
    Fixed(String),
    Provider(Arc<dyn ErasedProvider>),
}

impl fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Fixed(url) => f.debug_tuple("Fixed").field(url).finish(),
            Source::Provider(_) => f.write_str("Provider"),
        }
    }
}

impl UrlSource {
    /// Always the same URL, checked by [`Client::connect`](crate::Client::connect).
    pub fn fixed(url: impl Into<String>) -> Self {
        Self(Source::Fixed(url.into()))
    }

    /// A URL asked of `provider` before every attempt.
    pub fn provider(provider: impl UrlProvider) -> Self {
        Self(Source::Provider(Arc::new(Erased(Arc::new(provider)))))
    }

    /// The fixed URL, if this is one.
    pub fn as_fixed(&self) -> Option<&str> {
        match &self.0 {
            Source::Fixed(url) => Some(url),
            Source::Provider(_) => None,
        }
    }

    /// The raw URL of the next attempt (before the configured query is appended).
    pub(crate) async fn next(&self) -> Result<String, ConnectError> {
        match &self.0 {
            Source::Fixed(url) => Ok(url.clone()),
            Source::Provider(provider) => provider.url().await,
        }
    }
}

impl From<String> for UrlSource {
    fn from(url: String) -> Self {
        Self::fixed(url)
    }
}

impl From<&str> for UrlSource {
    fn from(url: &str) -> Self {
        Self::fixed(url)
    }
}

impl From<&String> for UrlSource {
    fn from(url: &String) -> Self {
        Self::fixed(url.clone())
    }
}

/// A URL ready to connect to: the query appended and the form checked.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) uri: Uri,
}

impl Target {
    pub(crate) fn is_tls(&self) -> bool {
        self.uri.scheme_str() == Some("wss")
    }
}

/// Appends `query` to `raw` and checks that the result is a `ws://` or `wss://` URL with a
/// host and no fragment. On error, returns the full URL and the reason.
pub(crate) fn prepare(raw: &str, query: &[(String, String)]) -> Result<Target, (String, String)> {
    let mut url = raw.trim().to_owned();
    if !query.is_empty() {
        // `ws://host:port?x` has an empty path, which a request line cannot carry: the
        // query needs the root path in front of it.
        if let Some(scheme_end) = url.find("://") {
            let authority_start = scheme_end + 3;
            let authority_end =
                url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |end| authority_start + end);
            if !url[authority_end..].starts_with('/') {
                url.insert(authority_end, '/');
            }
        }
        url.push(if url.contains('?') { '&' } else { '?' });
        for (i, (name, value)) in query.iter().enumerate() {
            if i > 0 {
                url.push('&');
            }
            encode_into(&mut url, name);
            url.push('=');
            encode_into(&mut url, value);
        }
    }
    if url.contains('#') {
        return Err((url, "a WebSocket URL cannot have a fragment".to_owned()));
    }
    let uri: Uri = match url.parse() {
        Ok(uri) => uri,
        Err(err) => {
            let reason = err.to_string();
            return Err((url, reason));
        }
    };
    if !matches!(uri.scheme_str(), Some("ws" | "wss")) {
        return Err((url, "the scheme must be ws or wss".to_owned()));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err((url, "no host".to_owned()));
    }
    if let Some(port) = uri.authority().and_then(|authority| port_text(authority.as_str())) {
        // `http::Uri` accepts any digits as a port and then reports none for one that is
        // not a u16, which the connector would replace with 80 or 443.
        if !port.is_empty() && port.parse::<u16>().ok().is_none_or(|port| port == 0) {
            return Err((url, format!("invalid port {port:?}: must be 1 to 65535")));
        }
    }
    Ok(Target { url, uri })
}

/// The text after the host's `:` in `authority` (`user@host:port`, `[v6]:port`), if any.
fn port_text(authority: &str) -> Option<&str> {
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, rest)| rest);
    let after_host = match host_and_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.1,
        None => host_and_port.find(':').map_or("", |colon| &host_and_port[colon..]),
    };
    after_host.strip_prefix(':')
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_into(out: &mut String, raw: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn query_is_appended_and_encoded() {
        let target = prepare("ws://h:1/ws", &q(&[("token", "a b&c"), ("v", "1")])).unwrap();
        assert_eq!(target.url, "ws://h:1/ws?token=a%20b%26c&v=1");
        let target = prepare("wss://h/ws?x=1", &q(&[("y", "é")])).unwrap();
        assert_eq!(target.url, "wss://h/ws?x=1&y=%C3%A9");
        assert!(target.is_tls());
        assert_eq!(target.uri.path(), "/ws");
        // Without a path, the query follows the root path (a request line needs one).
        let target = prepare("ws://h:1", &q(&[("session", "new")])).unwrap();
        assert_eq!(target.url, "ws://h:1/?session=new");
        let target = prepare("ws://h:1?x=1", &q(&[("session", "new")])).unwrap();
        assert_eq!((target.url.as_str(), target.uri.path()), ("ws://h:1/?x=1&session=new", "/"));
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in ["http://h/ws", "ws:///nohost", "ws://h/ws#frag", "not a url", ""] {
            assert!(prepare(bad, &[]).is_err(), "{bad}");
        }
    }

    /// `http::Uri` parses `ws://127.0.0.1:99999` and reports no port, which the connector
    /// used to replace with 80.
    #[test]
    fn ports_out_of_range_are_refused() {
        for bad in
            ["ws://127.0.0.1:99999", "ws://h:65536/ws", "wss://u@h:0", "ws://[::1]:70000/", "ws://h:1x"]
        {
            let (url, reason) = prepare(bad, &[]).unwrap_err();
            assert_eq!(url, bad);
            assert!(reason.contains("port"), "{bad}: {reason}");
        }
        for good in [
            "ws://127.0.0.1:65535",
            "ws://h:1/ws",
            "wss://u:p@h:443",
            "ws://[::1]:9001/",
            "ws://[::1]/",
            "ws://h/",
        ] {
            assert!(prepare(good, &[]).is_ok(), "{good}");
        }
    }
}
