//! The sync router's configuration, and attaching it to a network.

use std::fmt;
use std::sync::Arc;

use network_core::{Adapter, InvalidConfig, Network, OrderedExecutor};

use super::pipeline::{SyncRouter, Work};
use super::push::{self, SyncHandle};
use super::routes::{Route, to_matchit};
use super::state::SyncState;

/// The sync router could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A pattern is invalid or conflicts with another one.
    #[error("invalid pattern {pattern:?}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// Why matchit refused it.
        #[source]
        source: matchit::InsertError,
    },
    /// A [`SyncConfig`] value is out of range; the error names the field.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// The router could not be attached (a router named `sync` already is).
    #[error("cannot attach the sync router")]
    Attach(#[from] network_core::AttachError),
}

/// The routes of the sync router, and its bounds.
#[non_exhaustive]
pub struct SyncConfig<N: Network> {
    routes: Vec<(String, Route<N>)>,
    /// Frames (subscriptions, requests) accepted but not yet handled, across all
    /// connections; when reached, the router stops reading (backpressure). Default 4096.
    pub max_queued_frames: usize,
    /// Paths one connection may be subscribed to at once; a `sub` beyond is refused with
    /// `limit` (an `unsub` frees a slot). Each subscription costs the server a room
    /// membership and two set entries, so one peer must not hold unbounded numbers.
    /// Default 256.
    pub max_subscriptions_per_connection: usize,
}

impl<N: Network> Default for SyncConfig<N> {
    fn default() -> Self {
        Self { routes: Vec::new(), max_queued_frames: 4096, max_subscriptions_per_connection: 256 }
    }
}

impl<N: Network> fmt::Debug for SyncConfig<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConfig")
            .field("routes", &self.routes)
            .field("max_queued_frames", &self.max_queued_frames)
            .field("max_subscriptions_per_connection", &self.max_subscriptions_per_connection)
            .finish()
    }
}

impl<N: Network> SyncConfig<N> {
    /// Adds `route` for the paths `pattern` matches (`/api/book/:id`).
    pub fn route(mut self, pattern: &str, route: Route<N>) -> Self {
        self.routes.push((pattern.to_owned(), route));
        self
    }

    /// Sets [`max_queued_frames`](Self::max_queued_frames).
    pub fn max_queued_frames(mut self, max: usize) -> Self {
        self.max_queued_frames = max;
        self
    }

    /// Sets [`max_subscriptions_per_connection`](Self::max_subscriptions_per_connection).
    pub fn max_subscriptions_per_connection(mut self, max_subscriptions_per_connection: usize) -> Self {
        self.max_subscriptions_per_connection = max_subscriptions_per_connection;
        self
    }

    /// Attaches the sync router to `network` and returns the handle to push with.
    pub fn attach(self, network: &N) -> Result<SyncHandle<N>, SetupError> {
        self.validate()?;
        let mut matcher = matchit::Router::new();
        let mut routes = Vec::new();
        for (index, (pattern, route)) in self.routes.into_iter().enumerate() {
            matcher
                .insert(to_matchit(&pattern), index)
                .map_err(|source| SetupError::Pattern { pattern: pattern.clone(), source })?;
            routes.push(route);
        }
        let state = Arc::new(SyncState::new(matcher, routes, self.max_subscriptions_per_connection));
        let handle = SyncHandle { network: network.clone(), state };
        let worker = handle.clone();
        let executor = OrderedExecutor::new(self.max_queued_frames, move |_key, work: Work| {
            let handle = worker.clone();
            let span = work.span();
            tracing::Instrument::instrument(async move { handle.handle(work).await }, span)
        });
        let inbox = network.adapter().subscribe(push::TOPIC);
        network.attach(SyncRouter { executor })?;
        if let Some(inbox) = inbox {
            tokio::spawn(push::serve_cluster(handle.clone(), inbox));
        }
        Ok(handle)
    }

    /// Checks the bounds; the setters only store.
    fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive("max_queued_frames", self.max_queued_frames)?;
        InvalidConfig::require_positive(
            "max_subscriptions_per_connection",
            self.max_subscriptions_per_connection,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use network_core::Constraint;
    use ws_server::Server;

    use super::*;

    #[test]
    fn every_bound_must_be_positive() {
        let base = SyncConfig::<Server>::default;
        assert!(base().validate().is_ok());
        let positive = |field| InvalidConfig::new(field, Constraint::Positive);
        assert_eq!(base().max_queued_frames(0).validate().unwrap_err(), positive("max_queued_frames"));
        assert_eq!(
            base().max_subscriptions_per_connection(0).validate().unwrap_err(),
            positive("max_subscriptions_per_connection")
        );
    }
}
