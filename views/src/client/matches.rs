//! The answer to a pattern's info request.

use std::ops::Deref;

use crate::protocol::ViewInfo;

/// The answer to [`ViewsClient::info_matching`](super::ViewsClient::info_matching): the
/// matching views the server lists, ordered by name, and whether it cut the list short.
///
/// It reads as the list itself: it dereferences to `[ViewInfo]` and iterates over the
/// views.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InfoMatches {
    views: Vec<ViewInfo>,
    truncated: bool,
}

impl InfoMatches {
    pub(super) fn new(views: Vec<ViewInfo>, truncated: bool) -> Self {
        Self { views, truncated }
    }

    /// The views, ordered by name. The server lists only the views this connection may
    /// see, and none that nobody has open.
    pub fn views(&self) -> &[ViewInfo] {
        &self.views
    }

    /// The views, ordered by name.
    pub fn into_views(self) -> Vec<ViewInfo> {
        self.views
    }

    /// More views matched than the server answers for at once (its `max_info_views`, 100
    /// by default): the list is the first ones by name. Narrow the pattern to see the
    /// others.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Deref for InfoMatches {
    type Target = [ViewInfo];

    fn deref(&self) -> &[ViewInfo] {
        &self.views
    }
}

impl IntoIterator for InfoMatches {
    type Item = ViewInfo;
    type IntoIter = std::vec::IntoIter<ViewInfo>;

    fn into_iter(self) -> Self::IntoIter {
        self.views.into_iter()
    }
}

impl<'a> IntoIterator for &'a InfoMatches {
    type Item = &'a ViewInfo;
    type IntoIter = std::slice::Iter<'a, ViewInfo>;

    fn into_iter(self) -> Self::IntoIter {
        self.views.iter()
    }
}
