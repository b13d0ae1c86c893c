//! The configuration of `realtime serve`: a TOML file, then environment overrides, then the
//! command line's flags, each over the one before.
//!
//! Every key of the file has an environment variable: `REALTIME_` and the key's path in
//! capitals, sections joined by a double underscore (`listen` is `REALTIME_LISTEN`,
//! `limits.max_connections` is `REALTIME_LIMITS__MAX_CONNECTIONS`, `tls.cert` is
//! `REALTIME_TLS__CERT`). A value is read as TOML (`false`, `100`, `["https://a.example"]`)
//! and otherwise as a string; addresses, paths, URLs, secrets and names are always strings.
//! A `REALTIME_` variable that names no key is an error, so that a misspelt one is not
//! ignored.
//!
//! ```toml
//! listen = "0.0.0.0:9001"
//! demo_page = false
//! allowed_origins = ["https://app.example"]
//! routers = ["channels", "views", "sync"]
//!
//! [tls]
//! cert = "/etc/realtime/cert.pem"
//! key = "/etc/realtime/key.pem"
//!
//! [limits]
//! max_connections = 10000
//! max_message_size = 65536
//!
//! [redis]
//! url = "redis://127.0.0.1:6379"
//!
//! [tokens]
//! secret = "a long random string the application's backend presents"
//!
//! [admin]
//! token = "another long random string"
//!
//! [log]
//! level = "info"
//! format = "json"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use channels::ChannelsConfig;
use network_core::Network;
use serde::Deserialize;
use sync::SyncConfig;
use views::ViewsConfig;
use ws_server::{RateLimit, ServerConfig};

/// The prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "REALTIME_";

/// Keys whose environment value is always a string, never read as TOML.
const STRING_KEYS: [&str; 11] =
    ["listen", "cert", "key", "url", "prefix", "secret", "route", "token", "level", "format", "filter"];

/// Why the configuration cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file named by `--config` cannot be read.
    #[error("cannot read the config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file, with the environment overrides, is not a valid configuration: a syntax
    /// error, an unknown key (from the file or a `REALTIME_` variable), a wrong type.
    #[error("invalid configuration{}", origin.as_ref().map(|path| format!(" in {}", path.display())).unwrap_or_default())]
    Invalid {
        /// The file, if any.
        origin: Option<PathBuf>,
        /// What is wrong, with its place.
        source: toml::de::Error,
    },
    /// A `REALTIME_` variable that is not valid Unicode.
    #[error("the environment variable {name} is not valid unicode")]
    NotUnicode {
        /// The variable.
        name: String,
    },
    /// A key's value is out of range (a limit of 0, an empty list of routers...).
    #[error("invalid value for {key}: {reason}")]
    Value {
        /// The key, as in the file.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The whole configuration; every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The address HTTP and WebSocket share. Default `127.0.0.1:9001`.
    pub listen: SocketAddr,
    /// TLS certificate and key; `None` (the default) serves plain `ws://` and `http://`.
    pub tls: Option<TlsFiles>,
    /// Serve the demo page and the browser client at `/`. Default `true`.
    pub demo_page: bool,
    /// Application frames go back to their sender instead of to every other connection.
    /// Default `false`.
    pub echo: bool,
    /// Keep resumable sessions for the clients that ask (`docs/PROTOCOL.md` section 9).
    /// Default `true`.
    pub resume: bool,
    /// The browser origins allowed to connect (`scheme://host[:port]`); empty (the
    /// default) for any.
    pub allowed_origins: Vec<String>,
    /// The routers to attach. Default all three.
    pub routers: Vec<RouterName>,
    /// Server and router limits; what is not set keeps the library's default.
    pub limits: Limits,
    /// Join the cluster of servers sharing rooms over this Redis. Default none.
    pub redis: Option<RedisSettings>,
    /// One-time tokens: when set, every WebSocket needs one. Default none (then `?user=NAME`
    /// is a demo identity anyone can claim).
    pub tokens: Option<TokenSettings>,
    /// The admin endpoint, `GET /admin`; off (the default) unless a token is set.
    pub admin: Option<AdminSettings>,
    /// Logging.
    pub log: LogSettings,
    /// Seconds between the shutdown signal (SIGTERM, Ctrl-C) and the shutdown, during which
    /// `/healthz` answers 503 and everything is still served, so that a load balancer takes
    /// the node out before its clients are told to reconnect (close 1001). Default 0.
    pub drain_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            tls: None,
            demo_page: true,
            echo: false,
            resume: true,
            allowed_origins: Vec::new(),
            routers: vec![RouterName::Channels, RouterName::Views, RouterName::Sync],
            limits: Limits::default(),
            redis: None,
            tokens: None,
            admin: None,
            log: LogSettings::default(),
            drain_secs: 0,
        }
    }
}

/// The PEM files of the TLS certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A router `realtime serve` can attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterName {
    /// Channels, rooms, events and acknowledgements (`docs/PROTOCOL.md` section 5).
    Channels,
    /// Presence: who is looking at what (section 6).
    Views,
    /// Models by path, pushed on change (section 7).
    Sync,
}

/// The cluster's Redis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// The prefix of the cluster's channels and keys. Default `realtime`.
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
}

fn default_redis_prefix() -> String {
    "realtime".to_owned()
}

/// One-time socket tokens, issued to the application's backend.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The bearer secret the backend presents to the issuer route.
    pub secret: String,
    /// The issuer route: `POST ROUTE?user=NAME` with `Authorization: Bearer SECRET` answers
    /// `{"token": "..."}`, a token valid once for NAME. Default `/tokens`.
    #[serde(default = "default_token_route")]
    pub route: String,
    /// How long a token stays valid, in seconds. Default 60.
    #[serde(default = "default_token_ttl")]
    pub ttl_secs: u64,
}

impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings").field("route", &self.route).field("ttl_secs", &self.ttl_secs).finish()
    }
}

fn default_token_route() -> String {
    "/tokens".to_owned()
}

fn default_token_ttl() -> u64 {
    60
}

/// The admin endpoint.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// The bearer token `GET /admin` requires.
    pub token: String,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings").finish_non_exhaustive()
    }
}

/// Logging, on stderr.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// The level, or any `tracing_subscriber::EnvFilter` directive such as
    /// `info,ws_server=debug`. Default `info`; `RUST_LOG`, when set, wins.
    pub level: String,
    /// `text` (the default) or `json`.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".to_owned(), format: LogFormat::Text }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Server and router limits; `None` keeps the library's default (`ServerConfig`,
/// `ViewsConfig`, `SyncConfig`, `ChannelsConfig`). `docs/PRODUCTION.md` says which to set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the `ServerConfig` or router field of the same name
pub struct Limits {
    pub max_connections: Option<usize>,
    pub max_pending_handshakes: Option<usize>,
    pub handshake_timeout_secs: Option<u64>,
    pub max_message_size: Option<usize>,
    pub outgoing_queue_size: Option<usize>,
    pub max_outgoing_queue_size: Option<usize>,
    pub slow_consumer_timeout_secs: Option<u64>,
    pub max_total_outgoing_size: Option<usize>,
    pub max_total_incoming_size: Option<usize>,
    /// `false` turns the per-connection rate limit off. Default `true`.
    pub rate_limit: Option<bool>,
    pub rate_messages_per_second: Option<u32>,
    pub rate_message_burst: Option<u32>,
    pub rate_bytes_per_second: Option<u64>,
    pub rate_byte_burst: Option<u64>,
    pub rate_close_after_secs: Option<u64>,
    pub max_views_per_connection: Option<usize>,
    pub max_info_views: Option<usize>,
    pub max_subscriptions_per_connection: Option<usize>,
    pub max_channels_per_connection: Option<usize>,
    pub max_rooms_per_connection: Option<usize>,
    /// `false` never negotiates permessage-deflate. Default `true`.
    pub compression: Option<bool>,
    /// With compression negotiated, messages of at least this many bytes are compressed
    /// (`Compression::min_size`; `0` for all). Default 1024.
    pub compress_min_size: Option<usize>,
}

impl Limits {
    /// `config` with the limits that are set.
    pub fn apply(&self, mut config: ServerConfig) -> ServerConfig {
        let secs = Duration::from_secs;
        if let Some(max) = self.max_connections {
            config = config.max_connections(Some(max));
        }
        if let Some(max) = self.max_pending_handshakes {
            config = config.max_pending_handshakes(max);
        }
        if let Some(timeout) = self.handshake_timeout_secs {
            config = config.handshake_timeout(secs(timeout));
        }
        if let Some(size) = self.max_message_size {
            config = config.max_message_size(size);
        }
        if let Some(size) = self.outgoing_queue_size {
            config = config.outgoing_queue_size(size);
        }
        if let Some(size) = self.max_outgoing_queue_size {
            config = config.max_outgoing_queue_size(size);
        }
        if let Some(timeout) = self.slow_consumer_timeout_secs {
            config = config.slow_consumer_timeout(secs(timeout));
        }
        if let Some(size) = self.max_total_outgoing_size {
            config = config.max_total_outgoing_size(size);
        }
        if let Some(size) = self.max_total_incoming_size {
            config = config.max_total_incoming_size(size);
        }
        let rate = self.rate(config.rate_limit.unwrap_or_default());
        let mut compression = config.compression.unwrap_or_default();
        if let Some(size) = self.compress_min_size {
            compression = compression.min_size(size);
        }
        config
            .rate_limit((self.rate_limit != Some(false)).then_some(rate))
            .compression((self.compression != Some(false)).then_some(compression))
    }

    fn rate(&self, mut rate: RateLimit) -> RateLimit {
        if let Some(value) = self.rate_messages_per_second {
            rate = rate.messages_per_second(value);
        }
        if let Some(value) = self.rate_message_burst {
            rate = rate.message_burst(value);
        }
        if let Some(value) = self.rate_bytes_per_second {
            rate = rate.bytes_per_second(value);
        }
        if let Some(value) = self.rate_byte_burst {
            rate = rate.byte_burst(value);
        }
        if let Some(value) = self.rate_close_after_secs {
            rate = rate.close_after(Some(Duration::from_secs(value)));
        }
        rate
    }

    /// `config` with the views limits that are set.
    pub fn views(&self, mut config: ViewsConfig) -> ViewsConfig {
        if let Some(max) = self.max_views_per_connection {
            config = config.max_views_per_connection(max);
        }
        if let Some(max) = self.max_info_views {
            config = config.max_info_views(max);
        }
        config
    }

    /// `config` with the sync limit, if set.
    pub fn sync<N: Network>(&self, config: SyncConfig<N>) -> SyncConfig<N> {
        match self.max_subscriptions_per_connection {
            Some(max) => config.max_subscriptions_per_connection(max),
            None => config,
        }
    }

    /// `config` with the channels limits that are set.
    pub fn channels<N: Network>(&self, mut config: ChannelsConfig<N>) -> ChannelsConfig<N> {
        if let Some(max) = self.max_channels_per_connection {
            config = config.max_channels_per_connection(max);
        }
        if let Some(max) = self.max_rooms_per_connection {
            config = config.max_rooms_per_connection(max);
        }
        config
    }
}

impl Config {
    /// The file at `path` (if any) with the `REALTIME_` variables of `env` over it.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?,
            None => String::new(),
        };
        let invalid = |source| ConfigError::Invalid { origin: path.map(Path::to_owned), source };
        let mut table: toml::Table = text.parse().map_err(invalid)?;
        for (name, value) in env {
            let Some(name) = name.to_str().and_then(|name| name.strip_prefix(ENV_PREFIX)) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| ConfigError::NotUnicode { name: format!("{ENV_PREFIX}{name}") })?;
            override_key(&mut table, name, value);
        }
        let config: Self = table.try_into().map_err(invalid)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(tokens) = &self.tokens {
            if tokens.secret.len() < 16 {
                return Err(ConfigError::Value { key: "tokens.secret", reason: "shorter than 16 bytes" });
            }
            if !tokens.route.starts_with('/') {
                return Err(ConfigError::Value { key: "tokens.route", reason: "a path starts with /" });
            }
        }
        if self.admin.as_ref().is_some_and(|admin| admin.token.len() < 16) {
            return Err(ConfigError::Value { key: "admin.token", reason: "shorter than 16 bytes" });
        }
        Ok(())
    }
}

/// Sets the key named by `name` (a variable's name without the prefix) to `value`.
fn override_key(table: &mut toml::Table, name: &str, value: String) {
    let path: Vec<String> = name.split("__").map(str::to_lowercase).collect();
    let Some((last, sections)) = path.split_last() else {
        return;
    };
    let mut table = table;
    for section in sections {
        let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        // A section given a plain value: leave it, deserialising reports the wrong type.
        let Some(inner) = entry.as_table_mut() else {
            return;
        };
        table = inner;
    }
    let value = if STRING_KEYS.contains(&last.as_str()) {
        toml::Value::String(value)
    } else {
        format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut parsed| parsed.remove("v"))
            .unwrap_or(toml::Value::String(value))
    };
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        vars.iter().map(|(name, value)| ((*name).into(), (*value).into())).collect()
    }

    #[test]
    fn no_file_and_no_variables_give_the_defaults() {
        let config = Config::load(None, env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9001)));
        assert!(config.demo_page && config.resume && !config.echo && config.tls.is_none());
        assert_eq!(config.routers.len(), 3);
    }

    #[test]
    fn variables_override_the_file_and_reach_nested_keys() {
        let dir = std::env::temp_dir().join(format!("realtime-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:1\"\ndemo_page = false\n[limits]\nmax_connections = 5\n")
            .unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("REALTIME_LISTEN", "127.0.0.1:2"),
                ("REALTIME_LIMITS__MAX_CONNECTIONS", "7"),
                ("REALTIME_ALLOWED_ORIGINS", r#"["https://a.example"]"#),
                ("REALTIME_ADMIN__TOKEN", "1234567890123456"),
            ]),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 2)));
        assert!(!config.demo_page, "kept from the file");
        assert_eq!(config.limits.max_connections, Some(7));
        assert_eq!(config.allowed_origins, ["https://a.example"]);
        // A numeric secret stays a string.
        assert_eq!(config.admin.unwrap().token, "1234567890123456");
    }

    #[test]
    fn unknown_keys_and_variables_are_refused() {
        let err = Config::load(None, env(&[("REALTIME_LISTNE", "127.0.0.1:2")])).unwrap_err();
        assert!(err.to_string().contains("invalid configuration"), "{err}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("listne"), "{source}");
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = Config::load(None, env(&[("REALTIME_TOKENS__SECRET", "short")])).unwrap_err();
        assert!(matches!(err, ConfigError::Value { key: "tokens.secret", .. }), "{err}");
    }

    #[test]
    fn limits_reach_the_server_config() {
        let limits = Limits { max_connections: Some(3), rate_limit: Some(false), ..Limits::default() };
        let config = limits.apply(ServerConfig::default());
        assert_eq!(config.max_connections, Some(3));
        assert!(config.rate_limit.is_none());
        assert!(config.compression.is_some(), "compression is on by default");
        let limits = Limits { compress_min_size: Some(0), ..Limits::default() };
        assert_eq!(limits.apply(ServerConfig::default()).compression.map(|c| c.min_size), Some(0));
        let limits = Limits { compression: Some(false), ..Limits::default() };
        assert!(limits.apply(ServerConfig::default()).compression.is_none());
    }
}
