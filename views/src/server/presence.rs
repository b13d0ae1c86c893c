//! The presence handle: answers presence questions from server code.

use std::fmt;
use std::sync::Arc;

use network_core::Network;
use regex::{Regex, RegexBuilder};

use super::state::ViewsState;
use crate::protocol::{MAX_PATTERN_LEN, Member, ViewInfo};

/// An `info` pattern was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Longer than 256 bytes.
    #[error("pattern longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
    /// Not a valid regular expression, or too big once compiled.
    #[error("invalid pattern")]
    Invalid(#[source] regex::Error),
}

/// Answers presence questions from server code: cheap to clone, `Send + Sync`.
///
/// It is generic over the network so that presence spanning several nodes (through the
/// network's adapter) can answer through the same handle.
pub struct Presence<N: Network> {
    pub(super) network: N,
    pub(super) shared: Arc<ViewsState>,
}

impl<N: Network> Clone for Presence<N> {
    fn clone(&self) -> Self {
        Self { network: self.network.clone(), shared: self.shared.clone() }
    }
}

impl<N: Network> fmt::Debug for Presence<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presence").field("views", &self.shared.lock().views.len()).finish()
    }
}

impl<N: Network> Presence<N> {
    /// Counts for view `name`; `None` when nobody has it open. Unlike a peer's `info`
    /// request, no hook and no limit applies: this is the application asking.
    pub fn info(&self, name: &str, debug: bool) -> Option<ViewInfo> {
        self.shared.info(name, debug)
    }

    /// Counts for every open view whose name matches `pattern` (Rust `regex` syntax),
    /// ordered by name: all of them, unlike a peer's `info` request, which
    /// [`ViewsConfig::authorize_info`](crate::ViewsConfig::authorize_info) filters and
    /// [`ViewsConfig::max_info_views`](crate::ViewsConfig::max_info_views) bounds.
    pub fn info_matching(&self, pattern: &str, debug: bool) -> Result<Vec<ViewInfo>, PatternError> {
        let pattern = compile(pattern)?;
        Ok(self.shared.info_matching(&pattern, debug))
    }

    /// The members of view `name`, ordered by key.
    pub fn members(&self, name: &str) -> Vec<Member> {
        self.shared.lock().views.get(name).map(|view| view.members(false)).unwrap_or_default()
    }

    /// The network this presence is attached to.
    pub fn network(&self) -> &N {
        &self.network
    }

    /// The names of the views somebody has open, ordered.
    pub fn views(&self) -> Vec<String> {
        let state = self.shared.lock();
        let open = state.views.iter().filter(|(_, view)| !view.members.is_empty());
        let mut names: Vec<String> = open.map(|(name, _)| name.to_string()).collect();
        names.sort();
        names
    }
}

pub(super) fn compile(pattern: &str) -> Result<Regex, PatternError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError::TooLong);
    }
    // Bounded compiled size: a peer's pattern must not cost unbounded memory.
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(PatternError::Invalid)
}
