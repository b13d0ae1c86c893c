//! What the router and every [`SyncHandle`](super::SyncHandle) share: the routes, and who
//! is subscribed to which path with which model.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use network_core::{ConnectionId, Network};

use super::routes::{Model, Params, Route};

/// A subscribed path: its model (if its route has a factory) and its subscribers.
pub(super) struct ModelEntry {
    pub(super) model: Option<Arc<dyn Model>>,
    pub(super) subscribers: HashSet<ConnectionId>,
}

/// Who is subscribed to what, both ways.
#[derive(Default)]
pub(super) struct Subscriptions {
    /// Subscriptions by path.
    pub(super) paths: HashMap<String, ModelEntry>,
    /// Paths by connection.
    pub(super) subscriptions: HashMap<ConnectionId, HashSet<String>>,
    /// The versioned subscriptions (a `sub` with `snapshot`) by connection, each with the
    /// version of the last push sent on it.
    pub(super) versions: HashMap<ConnectionId, HashMap<String, u64>>,
}

/// The sync router's state, shared by the router and the handles.
pub(super) struct SyncState<N: Network> {
    matcher: matchit::Router<usize>,
    routes: Vec<Route<N>>,
    /// `max_subscriptions_per_connection`.
    pub(super) max_subscriptions: usize,
    subscriptions: Mutex<Subscriptions>,
    /// Serialises model creation, so two first subscribers of a path create one model.
    pub(super) models_gate: tokio::sync::Mutex<()>,
}

impl<N: Network> SyncState<N> {
    /// The state of a router serving `routes`, which `matcher` maps patterns to by index.
    pub(super) fn new(
        matcher: matchit::Router<usize>,
        routes: Vec<Route<N>>,
        max_subscriptions: usize,
    ) -> Self {
        Self {
            matcher,
            routes,
            max_subscriptions,
            subscriptions: Mutex::new(Subscriptions::default()),
            models_gate: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The route matching `path`, with the pattern's parameters.
    pub(super) fn route(&self, path: &str) -> Option<(&Route<N>, Params)> {
        let matched = self.matcher.at(path).ok()?;
        let params = matched.params.iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect();
        Some((&self.routes[*matched.value], params))
    }
}
