//! The views router's options, and attaching it to a network.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use network_core::{Adapter, Connection, InvalidConfig, Network};

use super::cluster;
use super::flusher::flusher;
use super::presence::Presence;
use super::router::ViewsRouter;
use super::state::ViewsState;

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(super) type Authorize = Arc<dyn Fn(Connection, String) -> BoxFuture<Result<(), String>> + Send + Sync>;
pub(super) type AuthorizeDebug = Arc<dyn Fn(Connection) -> BoxFuture<Result<(), String>> + Send + Sync>;

/// Options of the views router.
#[non_exhaustive]
pub struct ViewsConfig {
    /// Decides whether a connection may open a view: `Err(reason)` refuses with
    /// `forbidden`. Default: everyone may open every view. Unless
    /// [`authorize_info`](Self::authorize_info) is set, it also decides which views the
    /// connection's `info` requests see.
    pub authorize: Option<Authorize>,
    /// Decides which views a peer's `info` requests may see, one call per view:
    /// `Err(reason)` leaves the view out of a pattern's answer, and refuses a request for
    /// that view by name with `forbidden`. Default: the [`authorize`](Self::authorize) hook,
    /// so a connection learns about the views it may open (all of them when neither hook
    /// is set). Server code asking through [`Presence`] is not subject to it.
    pub authorize_info: Option<Authorize>,
    /// Decides whether a connection may ask for debug answers (`"debug": true`, which list
    /// every user's connection ids): `Err(reason)` refuses the request with `forbidden`.
    /// Default: nobody may.
    pub authorize_debug: Option<AuthorizeDebug>,
    /// Views one answer to a peer's `info` covers at most: of the views a pattern matches,
    /// the first `max_info_views` by name are considered and the answer says
    /// `"truncated": true` when more matched. Also bounds the `authorize_info` calls per
    /// request. Default 100.
    pub max_info_views: usize,
    /// Changes within this interval are sent as one diff per view. Default 25 ms.
    pub diff_interval: Duration,
    /// Views one connection may have open at once; more are refused with `limit`.
    /// Default 256.
    pub max_views_per_connection: usize,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            authorize: None,
            authorize_info: None,
            authorize_debug: None,
            max_info_views: 100,
            diff_interval: Duration::from_millis(25),
            max_views_per_connection: 256,
        }
    }
}

impl fmt::Debug for ViewsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewsConfig")
            .field("authorize", &self.authorize.is_some())
            .field("authorize_info", &self.authorize_info.is_some())
            .field("authorize_debug", &self.authorize_debug.is_some())
            .field("max_info_views", &self.max_info_views)
            .field("diff_interval", &self.diff_interval)
            .field("max_views_per_connection", &self.max_views_per_connection)
            .finish()
    }
}

/// The views router could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A [`ViewsConfig`] value is out of range; the error names the field.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// The router could not be attached (a router named `views` already is).
    #[error("cannot attach the views router")]
    Attach(#[from] network_core::AttachError),
}

impl ViewsConfig {
    /// Sets the [`authorize`](Self::authorize) hook.
    pub fn authorize<F, Fut>(mut self, authorize: F) -> Self
    where
        F: Fn(Connection, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize = Some(Arc::new(move |connection, view| Box::pin(authorize(connection, view))));
        self
    }

    /// Sets the [`authorize_info`](Self::authorize_info) hook.
    pub fn authorize_info<F, Fut>(mut self, authorize_info: F) -> Self
    where
        F: Fn(Connection, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize_info =
            Some(Arc::new(move |connection, view| Box::pin(authorize_info(connection, view))));
        self
    }

    /// Sets the [`authorize_debug`](Self::authorize_debug) hook.
    pub fn authorize_debug<F, Fut>(mut self, authorize_debug: F) -> Self
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.authorize_debug = Some(Arc::new(move |connection| Box::pin(authorize_debug(connection))));
        self
    }

    /// Sets [`max_info_views`](Self::max_info_views).
    pub fn max_info_views(mut self, max_info_views: usize) -> Self {
        self.max_info_views = max_info_views;
        self
    }

    /// Sets [`diff_interval`](Self::diff_interval).
    pub fn diff_interval(mut self, diff_interval: Duration) -> Self {
        self.diff_interval = diff_interval;
        self
    }

    /// Sets [`max_views_per_connection`](Self::max_views_per_connection).
    pub fn max_views_per_connection(mut self, max: usize) -> Self {
        self.max_views_per_connection = max;
        self
    }

    /// Attaches the views router to `network` and returns the handle that answers
    /// presence questions from server code.
    pub fn attach<N: Network>(self, network: &N) -> Result<Presence<N>, SetupError> {
        self.validate()?;
        let shared = Arc::new(ViewsState::new(self));
        let inbox = network.adapter().subscribe(cluster::TOPIC);
        if inbox.is_some() {
            shared.lock().replication.enable();
        }
        network.attach(ViewsRouter { shared: shared.clone() })?;
        tokio::spawn(flusher(network.clone(), Arc::downgrade(&shared), shared.dirty.clone()));
        if let Some(inbox) = inbox {
            tokio::spawn(cluster::replicate(network.clone(), Arc::downgrade(&shared), inbox));
        }
        Ok(Presence { network: network.clone(), shared })
    }

    /// Checks the bounds; the setters only store. A zero `diff_interval` is allowed: every
    /// change is sent at once.
    fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive("max_views_per_connection", self.max_views_per_connection)?;
        InvalidConfig::require_positive("max_info_views", self.max_info_views)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use network_core::Constraint;

    use super::*;

    #[test]
    fn every_bound_must_be_positive() {
        assert!(ViewsConfig::default().diff_interval(Duration::ZERO).validate().is_ok());
        let positive = |field| InvalidConfig::new(field, Constraint::Positive);
        assert_eq!(
            ViewsConfig::default().max_views_per_connection(0).validate().unwrap_err(),
            positive("max_views_per_connection")
        );
        assert_eq!(
            ViewsConfig::default().max_info_views(0).validate().unwrap_err(),
            positive("max_info_views")
        );
    }
}
