//! The command connection shared by a node's tasks and by the token store: one
//! multiplexed, reconnecting connection, replaced when a command goes unanswered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::timeout;

use crate::config::RedisConfig;
use crate::error::RedisAdapterError;

/// Commands to Redis through a [`ConnectionManager`] (cheap handles to one connection).
pub(crate) struct Commands {
    client: redis::Client,
    config: RedisConfig,
    current: Mutex<ConnectionManager>,
    /// Set while a replacement is under way: callers that time out together replace the
    /// connection once, not once each.
    replacing: AtomicBool,
}

impl Commands {
    /// Connects within the command timeout.
    pub(crate) async fn connect(
        client: redis::Client,
        config: &RedisConfig,
    ) -> Result<Self, RedisAdapterError> {
        let manager = client.get_connection_manager_with_config(manager_config(config));
        let current = match timeout(config.command_timeout, manager).await {
            Ok(connected) => connected?,
            Err(_) => return Err(why_not_connected(&client, config).await),
        };
        Ok(Self {
            client,
            config: config.clone(),
            current: Mutex::new(current),
            replacing: AtomicBool::new(false),
        })
    }

    /// The connection (a cheap handle).
    pub(crate) fn get(&self) -> ConnectionManager {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the connection after a command went unanswered. The connection manager
    /// reconnects by itself when its connection reports an error, but a link that went
    /// silent without closing (half-open TCP) reports nothing: its commands would time out
    /// forever.
    pub(crate) async fn replace(&self) {
        if self.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        let fresh = self.client.get_connection_manager_with_config(manager_config(&self.config));
        match timeout(self.config.command_timeout, fresh).await {
            Ok(Ok(fresh)) => {
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
                tracing::info!("replaced the redis command connection");
            }
            Ok(Err(error)) => tracing::debug!(%error, "cannot replace the redis command connection yet"),
            Err(_) => tracing::debug!("replacing the redis command connection timed out"),
        }
        self.replacing.store(false, Ordering::Release);
    }
}

/// How the command connection is made and kept: every wait bounded by the command
/// timeout, reconnects backing off up to one heartbeat interval.
/// Why the connection manager did not connect in time. It retries a refused connection
/// with its backoff until the timeout, which would hide the cause: one plain attempt tells
/// a refused or unreachable Redis from a slow one.
async fn why_not_connected(client: &redis::Client, config: &RedisConfig) -> RedisAdapterError {
    match timeout(config.command_timeout, client.get_multiplexed_async_connection()).await {
        Ok(Err(error)) if error.is_io_error() && !error.is_timeout() => RedisAdapterError::Unreachable(error),
        Ok(Err(error)) if !error.is_timeout() => RedisAdapterError::Redis(error),
        Ok(_) | Err(_) => RedisAdapterError::Timeout,
    }
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.command_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_max_delay(config.heartbeat_interval)
}
