//! [`RemoteError`]: the `{code, message}` a peer reports, shared by every router.

use serde::{Deserialize, Serialize};

/// An error reported by the remote side: a handler's error-first reply, or a refusal.
///
/// Every router carries it the same way, as `{"code": ..., "message": ...}`; each router
/// lists the codes it uses in its own `codes` module. Handlers return it to fail a
/// request; callers receive it unchanged.
///
/// ```
/// use network_core::RemoteError;
/// let error = RemoteError::forbidden("members only");
/// assert!(error.is_forbidden());
/// assert_eq!(error.to_string(), "forbidden: members only");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    /// Machine-readable reason (`forbidden`, `bad_request`, ...: see the router's `codes`).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl RemoteError {
    /// The code `forbidden`.
    const FORBIDDEN: &str = "forbidden";

    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// `forbidden`: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Self::FORBIDDEN, message)
    }

    /// `bad_request`: the payload is not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    /// `internal`: something failed on the handler's side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// `not_found`: nothing there.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }

    /// Whether the code is `forbidden`: the remote side's authorization said no.
    pub fn is_forbidden(&self) -> bool {
        self.code == Self::FORBIDDEN
    }
}
