//! The server limits as command-line flags, shared by the example servers
//! (`examples/server.rs`, `examples/axum_tokens.rs`). Each flag sets one `ServerConfig`
//! field; `help()` lists them with the defaults of `ServerConfig::default()`.

use std::time::Duration;

use anyhow::{Context, bail};
use realtime::channels::ChannelsConfig;
use realtime::network_core::Network;
use realtime::sync::SyncConfig;
use realtime::views::ViewsConfig;
use realtime::ws_server::ServerConfig;

/// The limits given on the command line; what is not given keeps its default.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    values: Vec<(&'static str, u64)>,
    no_rate_limit: bool,
    no_compression: bool,
}

/// The flags that take a number: name, unit, and the field's default.
fn numeric_flags() -> Vec<(&'static str, &'static str, String)> {
    let config = ServerConfig::default();
    let rate = config.rate_limit.unwrap_or_default();
    let max = |value: Option<usize>| value.map_or("none".to_owned(), |v| v.to_string());
    let compress_min_size = config.compression.unwrap_or_default().min_size;
    vec![
        ("--max-connections", "N", max(config.max_connections)),
        (
            "--max-pending-handshakes",
            "N",
            format!("{} (half the open-file limit)", config.max_pending_handshakes),
        ),
        ("--handshake-timeout", "SECONDS", config.handshake_timeout.as_secs().to_string()),
        (
            "--ping-interval",
            "SECONDS",
            config.ping_interval.map_or("none".to_owned(), |d| d.as_secs().to_string()),
        ),
        ("--outgoing-queue-size", "BYTES", config.outgoing_queue_size.to_string()),
        ("--max-outgoing-queue-size", "BYTES", config.max_outgoing_queue_size.to_string()),
        ("--slow-consumer-timeout", "SECONDS", config.slow_consumer_timeout.as_secs().to_string()),
        ("--max-total-outgoing-size", "BYTES", config.max_total_outgoing_size.to_string()),
        ("--max-total-incoming-size", "BYTES", config.max_total_incoming_size.to_string()),
        ("--rate-messages", "PER_SECOND", rate.messages_per_second.to_string()),
        ("--rate-message-burst", "N", rate.message_burst.to_string()),
        ("--rate-bytes", "PER_SECOND", rate.bytes_per_second.to_string()),
        ("--rate-byte-burst", "BYTES", rate.byte_burst.to_string()),
        (
            "--rate-close-after",
            "SECONDS",
            rate.close_after.map_or("never".to_owned(), |d| d.as_secs().to_string()),
        ),
        ("--compress-min-size", "BYTES", format!("{compress_min_size} (0: every message)")),
    ]
}

impl Limits {
    /// Takes `flag` (and its value from `args`) if it is a limit flag; `false` otherwise.
    pub(crate) fn parse(
        &mut self,
        flag: &str,
        args: &mut impl Iterator<Item = String>,
    ) -> anyhow::Result<bool> {
        if flag == "--no-rate-limit" {
            self.no_rate_limit = true;
            return Ok(true);
        }
        if flag == "--no-compression" {
            self.no_compression = true;
            return Ok(true);
        }
        let Some((name, unit, _)) = numeric_flags().into_iter().find(|(name, _, _)| *name == flag) else {
            return Ok(false);
        };
        let value = args.next().with_context(|| format!("{name} needs {unit}"))?;
        let value: u64 = value.parse().with_context(|| format!("bad {name} {value:?}: expected {unit}"))?;
        if value == 0 && name != "--compress-min-size" {
            bail!("{name} must be positive");
        }
        self.values.push((name, value));
        Ok(true)
    }

    /// `config` with the given limits applied.
    pub(crate) fn apply(&self, mut config: ServerConfig) -> ServerConfig {
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        let secs = Duration::from_secs;
        let mut rate = config.rate_limit.unwrap_or_default();
        let mut compression = config.compression.unwrap_or_default();
        for &(name, value) in &self.values {
            config = match name {
                "--max-connections" => config.max_connections(Some(size(value))),
                "--max-pending-handshakes" => config.max_pending_handshakes(size(value)),
                "--handshake-timeout" => config.handshake_timeout(secs(value)),
                "--ping-interval" => config.ping_interval(Some(secs(value))),
                "--outgoing-queue-size" => config.outgoing_queue_size(size(value)),
                "--max-outgoing-queue-size" => config.max_outgoing_queue_size(size(value)),
                "--slow-consumer-timeout" => config.slow_consumer_timeout(secs(value)),
                "--max-total-outgoing-size" => config.max_total_outgoing_size(size(value)),
                "--max-total-incoming-size" => config.max_total_incoming_size(size(value)),
                _ => config,
            };
            rate = match name {
                "--rate-messages" => rate.messages_per_second(u32::try_from(value).unwrap_or(u32::MAX)),
                "--rate-message-burst" => rate.message_burst(u32::try_from(value).unwrap_or(u32::MAX)),
                "--rate-bytes" => rate.bytes_per_second(value),
                "--rate-byte-burst" => rate.byte_burst(value),
                "--rate-close-after" => rate.close_after(Some(secs(value))),
                _ => rate,
            };
            if name == "--compress-min-size" {
                compression = compression.min_size(size(value));
            }
        }
        config
            .rate_limit(if self.no_rate_limit { None } else { Some(rate) })
            .compression(if self.no_compression { None } else { Some(compression) })
    }
}

/// One line per limit flag, with its default.
pub(crate) fn help() -> String {
    let mut help = String::from("limits (ServerConfig; docs/PROTOCOL.md section 4.1):\n");
    for (name, unit, default) in numeric_flags() {
        help.push_str(&format!("  {:<38}default {default}\n", format!("{name} {unit}")));
    }
    help.push_str(&format!("  {:<38}no per-connection rate limit\n", "--no-rate-limit"));
    help.push_str(&format!("  {:<38}never negotiate permessage-deflate", "--no-compression"));
    help
}

/// The routers' per-connection limits given on the command line (for a server that attaches
/// every router); what is not given keeps its default.
#[derive(Debug, Default)]
#[allow(dead_code)] // axum_tokens, which has the channels router only, does not use it
pub(crate) struct RouterLimits {
    values: Vec<(&'static str, usize)>,
}

#[allow(dead_code)]
impl RouterLimits {
    fn flags() -> Vec<(&'static str, usize)> {
        let views = ViewsConfig::default();
        let sync = SyncConfig::<realtime::ws_server::Server>::default();
        let channels = ChannelsConfig::<realtime::ws_server::Server>::default();
        vec![
            ("--max-views-per-connection", views.max_views_per_connection),
            ("--max-info-views", views.max_info_views),
            ("--max-subscriptions-per-connection", sync.max_subscriptions_per_connection),
            ("--max-channels-per-connection", channels.max_channels_per_connection),
            ("--max-rooms-per-connection", channels.max_rooms_per_connection),
        ]
    }

    /// Takes `flag` (and its value from `args`) if it is a router limit; `false` otherwise.
    pub(crate) fn parse(
        &mut self,
        flag: &str,
        args: &mut impl Iterator<Item = String>,
    ) -> anyhow::Result<bool> {
        let Some((name, _)) = Self::flags().into_iter().find(|(name, _)| *name == flag) else {
            return Ok(false);
        };
        let value = args.next().with_context(|| format!("{name} needs a number"))?;
        let value: usize = value.parse().with_context(|| format!("bad {name} {value:?}"))?;
        if value == 0 && name != "--compress-min-size" {
            bail!("{name} must be positive");
        }
        self.values.push((name, value));
        Ok(true)
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.values.iter().rev().find(|(flag, _)| *flag == name).map(|&(_, value)| value)
    }

    /// `config` with the given views limits.
    pub(crate) fn views(&self, mut config: ViewsConfig) -> ViewsConfig {
        if let Some(max) = self.get("--max-views-per-connection") {
            config = config.max_views_per_connection(max);
        }
        if let Some(max) = self.get("--max-info-views") {
            config = config.max_info_views(max);
        }
        config
    }

    /// `config` with the given sync limits.
    pub(crate) fn sync<N: Network>(&self, config: SyncConfig<N>) -> SyncConfig<N> {
        match self.get("--max-subscriptions-per-connection") {
            Some(max) => config.max_subscriptions_per_connection(max),
            None => config,
        }
    }

    /// `config` with the given channels limits.
    pub(crate) fn channels<N: Network>(&self, mut config: ChannelsConfig<N>) -> ChannelsConfig<N> {
        if let Some(max) = self.get("--max-channels-per-connection") {
            config = config.max_channels_per_connection(max);
        }
        if let Some(max) = self.get("--max-rooms-per-connection") {
            config = config.max_rooms_per_connection(max);
        }
        config
    }

    /// One line per router limit flag, with its default.
    pub(crate) fn help() -> String {
        let mut help = String::from("router limits, per connection (docs/PROTOCOL.md sections 5 to 7):");
        for (name, default) in Self::flags() {
            help.push_str(&format!("\n  {:<38}default {default}", format!("{name} N")));
        }
        help
    }
}
