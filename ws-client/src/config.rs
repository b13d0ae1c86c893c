//! The client's configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use network_core::http::HeaderMap;
use network_core::{CloseFrame, HubConfig};
/// How the client compresses once permessage-deflate is negotiated (see
/// [`ClientConfig::compression`]); the server's is the same type.
pub use ws_protocol::deflate::Compression;

use crate::backoff::Backoff;
use crate::error::ConfigError;

/// Decides from the server's close frame whether the client reconnects. See
/// [`ClientConfig::should_reconnect`].
pub type ShouldReconnect = Arc<dyn Fn(&CloseFrame) -> bool + Send + Sync>;

/// How a [`Client`](crate::Client) connects, retries and queues.
///
/// The reconnection fields have the names, meanings and defaults of the npm package
/// `reconnecting-websocket`. Build it with [`Default`] and the by-value setters; it is
/// checked once, by [`Client::connect`](crate::Client::connect).
///
/// ```
/// use std::time::Duration;
/// use ws_client::ClientConfig;
///
/// let config = ClientConfig::default()
///     .min_reconnection_delay(Duration::from_millis(500))
///     .max_reconnection_delay(Duration::from_secs(30))
///     .max_retries(Some(20))
///     .query_param("token", "s3cr3t");
/// assert_eq!(config.reconnection_delay_grow_factor, 1.3);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The delay before the first reconnection attempt. Default `None`: 1 s plus a random
    /// 0 to 4 s, drawn once per client (so that many clients restarted together do not
    /// reconnect in step), and capped at `max_reconnection_delay`. `Some(d)` means exactly
    /// `d`.
    pub min_reconnection_delay: Option<Duration>,
    /// The longest delay between attempts. Default 10 s.
    pub max_reconnection_delay: Duration,
    /// How much each delay grows over the previous one. Default 1.3. Must be at least 1.
    pub reconnection_delay_grow_factor: f64,
    /// A random fraction (0 to 1) by which each delay may be shortened, drawn anew for
    /// every attempt: the delay becomes `delay * (1 - jitter * r)` for `r` in `0..1`.
    /// Default 0: an explicit schedule is followed exactly.
    pub jitter: f64,
    /// How long a connection must stay open for the retry count to start over (so that a
    /// server accepting and dropping at once still sees growing delays). Default 5 s.
    pub min_uptime: Duration,
    /// The longest one attempt may take: TCP connect, TLS and the WebSocket handshake
    /// together (a URL provider gets the same bound, separately). Default 4 s.
    pub connection_timeout: Duration,
    /// How many reconnection attempts may follow the first one before the client gives up
    /// and emits [`ClientEvent::RetriesExhausted`](crate::ClientEvent::RetriesExhausted).
    /// The count starts over after `min_uptime` of open connection and on
    /// [`Client::reconnect`](crate::Client::reconnect). Default `None`: unlimited.
    pub max_retries: Option<u32>,
    /// The most messages waiting to be written, online or offline. A send past it fails
    /// with [`SendError::Full`](network_core::SendError::Full). Default 1024.
    pub max_enqueued_messages: usize,
    /// The most payload bytes waiting to be written, online or offline. A send past it
    /// fails with [`SendError::Full`](network_core::SendError::Full). Default 1 MiB.
    pub max_enqueued_bytes: usize,
    /// Whether the client waits for [`Client::reconnect`](crate::Client::reconnect) before
    /// its first connection. Messages sent meanwhile are queued. Default `false`.
    pub start_closed: bool,
    /// Extra headers of the upgrade request (`Authorization`, `Cookie`, ...). Default
    /// empty.
    pub headers: HeaderMap,
    /// Query parameters appended to the URL of every attempt, percent-encoded. Default
    /// empty.
    pub query: Vec<(String, String)>,
    /// The TLS configuration of `wss://` connections (a private CA's roots, client
    /// certificates), built with [`rustls`](crate::rustls). Default `None`: the Mozilla
    /// roots of `webpki-roots`, with rustls's `ring` provider.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The largest incoming message in bytes; a bigger one closes the connection with
    /// 1009 and the client reconnects. Default 1 MiB (as the server's default).
    pub max_message_size: usize,
    /// How long the link may stay silent (no frame at all, pings included) before it is
    /// considered dead and the client reconnects. Default 60 s (the server pings every
    /// 25 s).
    pub idle_timeout: Duration,
    /// After this long without any frame from the server, the client sends a ping, so that
    /// a quiet but healthy server answers before `idle_timeout`. Default `Some(30 s)`;
    /// `None` sends no pings. Must be shorter than `idle_timeout`.
    pub ping_interval: Option<Duration>,
    /// How long a close handshake (on [`Client::close`](crate::Client::close) or
    /// [`Client::reconnect`](crate::Client::reconnect)) may wait for the server's answer;
    /// frames arriving meanwhile are still delivered. Default 1 s.
    pub close_timeout: Duration,
    /// How many lifecycle events a slow [`Client::lifecycle`](crate::Client::lifecycle)
    /// receiver may fall behind before it loses the oldest. Default 64.
    pub lifecycle_capacity: usize,
    /// Called with the close frame when the server closes the connection: `false` stops
    /// reconnecting (until [`Client::reconnect`](crate::Client::reconnect)), e.g. for an
    /// application code meaning "banned". Not called for connections that dropped without
    /// a close frame. Default `None`: always reconnect.
    pub should_reconnect: Option<ShouldReconnect>,
    /// Queue bounds of the client's hub (routers and the application's events).
    /// Default [`HubConfig::default`].
    pub hub: HubConfig,
    /// Asks the server for a resumable session (PROTOCOL.md section 9). A reconnect within
    /// the server's window then resumes the same connection: routers see no `Removed` and
    /// restore nothing, every frame the server sent meanwhile arrives once and in order,
    /// and every frame this client sent that the server lacked is sent again, once
    /// ([`ClientEvent::Resumed`](crate::ClientEvent::Resumed)). A refused resume is a
    /// fresh connection, reported with [`ClientEvent::Reset`](crate::ClientEvent::Reset).
    /// Frames sent and not yet acknowledged count against
    /// [`max_enqueued_messages`](Self::max_enqueued_messages) and
    /// [`max_enqueued_bytes`](Self::max_enqueued_bytes). Needs a server that speaks
    /// section 9 (ours does unless its `resume_window` is `None`, which it then says).
    /// Default `false`.
    pub resume: bool,
    /// permessage-deflate (RFC 7692): `Some` offers it in every upgrade request, and once
    /// the server accepts, messages of at least [`Compression::min_size`] bytes go
    /// compressed (even those that do not shrink, about 0.1 % longer then, as the server
    /// does) and compressed messages from
    /// the server are inflated, within `max_message_size`. `None` offers nothing. The
    /// offer asks for no context takeover both ways, so the client keeps no compression
    /// state per connection (one compressor and one inflater per thread). Default
    /// `Some(Compression::default())`, as browsers offer it; the server decides.
    pub compression: Option<Compression>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            min_reconnection_delay: None,
            max_reconnection_delay: Duration::from_secs(10),
            reconnection_delay_grow_factor: 1.3,
            jitter: 0.0,
            min_uptime: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(4),
            max_retries: None,
            max_enqueued_messages: 1024,
            max_enqueued_bytes: 1 << 20,
            start_closed: false,
            headers: HeaderMap::new(),
            query: Vec::new(),
            tls: None,
            max_message_size: 1 << 20,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(1),
            lifecycle_capacity: 64,
            should_reconnect: None,
            hub: HubConfig::default(),
            resume: false,
            compression: Some(Compression::default()),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("min_reconnection_delay", &self.min_reconnection_delay)
            .field("max_reconnection_delay", &self.max_reconnection_delay)
            .field("reconnection_delay_grow_factor", &self.reconnection_delay_grow_factor)
            .field("jitter", &self.jitter)
            .field("min_uptime", &self.min_uptime)
            .field("connection_timeout", &self.connection_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_enqueued_messages", &self.max_enqueued_messages)
            .field("max_enqueued_bytes", &self.max_enqueued_bytes)
            .field("start_closed", &self.start_closed)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("query", &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("tls", &self.tls.as_ref().map(|_| "rustls::ClientConfig"))
            .field("max_message_size", &self.max_message_size)
            .field("idle_timeout", &self.idle_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("close_timeout", &self.close_timeout)
            .field("lifecycle_capacity", &self.lifecycle_capacity)
            .field("should_reconnect", &self.should_reconnect.as_ref().map(|_| "Fn"))
            .field("hub", &self.hub)
            .field("resume", &self.resume)
            .field("compression", &self.compression)
            .finish()
    }
}

impl ClientConfig {
    /// Sets [`min_reconnection_delay`](Self::min_reconnection_delay) to exactly `delay`.
    pub fn min_reconnection_delay(mut self, delay: Duration) -> Self {
        self.min_reconnection_delay = Some(delay);
        self
    }

    /// Sets [`max_reconnection_delay`](Self::max_reconnection_delay).
    pub fn max_reconnection_delay(mut self, delay: Duration) -> Self {
        self.max_reconnection_delay = delay;
        self
    }

    /// Sets [`reconnection_delay_grow_factor`](Self::reconnection_delay_grow_factor).
    pub fn reconnection_delay_grow_factor(mut self, factor: f64) -> Self {
        self.reconnection_delay_grow_factor = factor;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`min_uptime`](Self::min_uptime).
    pub fn min_uptime(mut self, uptime: Duration) -> Self {
        self.min_uptime = uptime;
        self
    }

    /// Sets [`connection_timeout`](Self::connection_timeout).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Sets [`resume`](Self::resume).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Sets [`max_retries`](Self::max_retries).
    pub fn max_retries(mut self, retries: Option<u32>) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets [`max_enqueued_messages`](Self::max_enqueued_messages).
    pub fn max_enqueued_messages(mut self, messages: usize) -> Self {
        self.max_enqueued_messages = messages;
        self
    }

    /// Sets [`max_enqueued_bytes`](Self::max_enqueued_bytes).
    pub fn max_enqueued_bytes(mut self, bytes: usize) -> Self {
        self.max_enqueued_bytes = bytes;
        self
    }

    /// Sets [`start_closed`](Self::start_closed).
    pub fn start_closed(mut self, start_closed: bool) -> Self {
        self.start_closed = start_closed;
        self
    }

    /// Sets [`headers`](Self::headers).
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets [`query`](Self::query).
    pub fn query(mut self, query: Vec<(String, String)>) -> Self {
        self.query = query;
        self
    }

    /// Sets [`tls`](Self::tls).
    pub fn tls(mut self, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Self {
        self.tls = tls;
        self
    }

    /// Appends one parameter to [`query`](Self::query).
    pub fn query_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`lifecycle_capacity`](Self::lifecycle_capacity).
    pub fn lifecycle_capacity(mut self, capacity: usize) -> Self {
        self.lifecycle_capacity = capacity;
        self
    }

    /// Sets [`should_reconnect`](Self::should_reconnect).
    ///
    /// ```
    /// use ws_client::ClientConfig;
    /// // Application codes 4000-4099 mean "do not come back".
    /// let banned = |code: u16| (4000..4100).contains(&code);
    /// let config = ClientConfig::default().should_reconnect(move |frame| !banned(frame.code.0));
    /// ```
    pub fn should_reconnect(mut self, decide: impl Fn(&CloseFrame) -> bool + Send + Sync + 'static) -> Self {
        self.should_reconnect = Some(Arc::new(decide));
        self
    }

    /// Sets [`compression`](Self::compression).
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`hub`](Self::hub).
    pub fn hub(mut self, hub: HubConfig) -> Self {
        self.hub = hub;
        self
    }

    /// Checks the configuration and draws the random part of the minimum delay.
    pub(crate) fn validate(self) -> Result<Settings, ConfigError> {
        let min = match self.min_reconnection_delay {
            Some(min) => min,
            None => {
                let drawn = Duration::from_millis(1000 + rand::random_range(0..4000));
                drawn.min(self.max_reconnection_delay)
            }
        };
        let backoff = Backoff::new(min, self.max_reconnection_delay, self.reconnection_delay_grow_factor)?;
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::Jitter(self.jitter));
        }
        for (field, value) in [
            ("connection_timeout", self.connection_timeout),
            ("idle_timeout", self.idle_timeout),
            ("close_timeout", self.close_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        if let Some(ping) = self.ping_interval {
            if ping.is_zero() {
                return Err(ConfigError::ZeroDuration { field: "ping_interval" });
            }
            if ping >= self.idle_timeout {
                return Err(ConfigError::PingInterval { ping, idle: self.idle_timeout });
            }
        }
        for (field, value) in [
            ("max_enqueued_messages", self.max_enqueued_messages),
            ("max_enqueued_bytes", self.max_enqueued_bytes),
            ("max_message_size", self.max_message_size),
            ("lifecycle_capacity", self.lifecycle_capacity),
            ("hub.router_queue_capacity", self.hub.router_queue_capacity),
            ("hub.event_queue_capacity", self.hub.event_queue_capacity),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroCapacity { field });
            }
        }
        Ok(Settings { backoff, config: self })
    }
}

/// A checked configuration, with the minimum delay drawn.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) backoff: Backoff,
    pub(crate) config: ClientConfig,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_validate() {
        let settings = ClientConfig::default().validate().unwrap();
        let min = settings.backoff.min();
        assert!(min >= ms(1000) && min < ms(5000), "{min:?}");
        assert_eq!(settings.backoff.max(), ms(10_000));
    }

    #[test]
    fn explicit_minimum_is_exact() {
        let settings = ClientConfig::default().min_reconnection_delay(ms(123)).validate().unwrap();
        assert_eq!(settings.backoff.min(), ms(123));
    }

    #[test]
    fn random_minimum_is_capped_by_maximum() {
        let settings = ClientConfig::default().max_reconnection_delay(ms(500)).validate().unwrap();
        assert_eq!(settings.backoff.min(), ms(500));
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let base = ClientConfig::default;
        let err = |c: ClientConfig| c.validate().unwrap_err();
        assert_eq!(
            err(base().min_reconnection_delay(ms(5)).max_reconnection_delay(ms(4))),
            ConfigError::DelayRange { min: ms(5), max: ms(4) }
        );
        assert_eq!(err(base().reconnection_delay_grow_factor(0.9)), ConfigError::GrowFactor(0.9));
        assert_eq!(err(base().jitter(1.5)), ConfigError::Jitter(1.5));
        assert_eq!(
            err(base().connection_timeout(Duration::ZERO)),
            ConfigError::ZeroDuration { field: "connection_timeout" }
        );
        assert_eq!(
            err(base().max_enqueued_messages(0)),
            ConfigError::ZeroCapacity { field: "max_enqueued_messages" }
        );
        assert_eq!(
            err(base().lifecycle_capacity(0)),
            ConfigError::ZeroCapacity { field: "lifecycle_capacity" }
        );
        for (field, value) in [
            ("max_enqueued_bytes", base().max_enqueued_bytes(0)),
            ("max_message_size", base().max_message_size(0)),
            ("hub.router_queue_capacity", base().hub(HubConfig::default().router_queue_capacity(0))),
            ("hub.event_queue_capacity", base().hub(HubConfig::default().event_queue_capacity(0))),
        ] {
            assert_eq!(err(value), ConfigError::ZeroCapacity { field });
        }
        for (field, value) in [
            ("idle_timeout", base().idle_timeout(Duration::ZERO)),
            ("close_timeout", base().close_timeout(Duration::ZERO)),
            ("ping_interval", base().ping_interval(Some(Duration::ZERO))),
        ] {
            assert_eq!(err(value), ConfigError::ZeroDuration { field });
        }
        assert_eq!(
            err(base().idle_timeout(ms(100)).ping_interval(Some(ms(100)))),
            ConfigError::PingInterval { ping: ms(100), idle: ms(100) }
        );
    }
}
