//! One-time tokens for the handshake: issued by the application's own (authenticated) REST
//! route, consumed once by the WebSocket upgrade.
//!
//! A token is 48 lowercase hex characters: a random 64-bit lookup id followed by a random
//! 128-bit secret. The store is a map keyed by the id; the secret is compared in constant
//! time, so response timing tells an attacker nothing about it. Tokens are never logged.
//!
//! Every token lives exactly `ttl`, so issue order is expiry order: the store keeps the ids
//! in a queue in that order and purges expired ones from its front on every call, in
//! amortized constant time, instead of scanning the map.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::StatusCode;
use network_core::{Constraint, Identity, InvalidConfig};
use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::handshake::{Accept, HandshakeHook, HandshakeRequest, Reject};

/// Bytes of the public lookup id.
const ID_LEN: usize = 8;
/// Bytes of the secret (128 bits).
const SECRET_LEN: usize = 16;
/// Longest accepted [`TokenConfig::ttl`].
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The refusal when the request carries no token.
const MISSING: &str = "missing token";
/// The refusal for every other failure: it does not say whether the token ever existed.
const INVALID: &str = "invalid or expired token";

/// Options of a [`TokenStore`]; setters are named after the fields.
///
/// ```
/// use std::time::Duration;
/// use ws_server::TokenConfig;
/// let config = TokenConfig::default().ttl(Duration::from_secs(30)).max_tokens(10_000).max_tokens_per_identity(4);
/// assert_eq!(config.ttl, Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenConfig {
    /// How long a token stays valid after [`TokenStore::issue`]. A browser fetches its
    /// token right before opening the socket, so this only has to cover one round trip
    /// and a slow page. Positive and at most one day. Default 60 s.
    pub ttl: Duration,
    /// Tokens outstanding at once (issued, neither consumed nor expired); past it
    /// [`TokenStore::issue`] fails with [`TokenError::StoreFull`]. Positive. Default
    /// 100 000 (a few MiB at most).
    pub max_tokens: usize,
    /// Tokens outstanding at once for one identity; past it [`TokenStore::issue`] fails
    /// with [`TokenError::QuotaExceeded`], so that one user flooding the token route cannot
    /// fill the store for everyone. An identity is its `user_id`, or its `session_id` when
    /// it has no user id; identities with neither share one quota. A browser consumes its
    /// token right after fetching it, so a handful covers many tabs opening at once; set it
    /// to `max_tokens` to turn the quota off. Positive. Default 16.
    pub max_tokens_per_identity: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(60), max_tokens: 100_000, max_tokens_per_identity: 16 }
    }
}

impl TokenConfig {
    /// Sets [`ttl`](Self::ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`max_tokens`](Self::max_tokens).
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets [`max_tokens_per_identity`](Self::max_tokens_per_identity).
    pub fn max_tokens_per_identity(mut self, max_tokens_per_identity: usize) -> Self {
        self.max_tokens_per_identity = max_tokens_per_identity;
        self
    }

    /// Checks every field ([`TokenStore::new`] does); the setters only store. A store kept
    /// elsewhere (`redis_adapter::RedisTokenStore`) calls it with the same rules.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::require_positive_duration("ttl", self.ttl)?;
        if self.ttl > MAX_TTL {
            return Err(InvalidConfig::new("ttl", Constraint::AtMost(MAX_TTL)));
        }
        InvalidConfig::require_positive("max_tokens", self.max_tokens)?;
        InvalidConfig::require_positive("max_tokens_per_identity", self.max_tokens_per_identity)?;
        Ok(())
    }
}

/// Why a [`TokenStore`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// [`TokenStore::new`] was given a [`TokenConfig`] value out of range; the error names
    /// the field. Fix the configuration.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// [`TokenStore::issue`] found `max_tokens` unexpired tokens outstanding (expired ones
    /// were purged first). The store refuses new tokens rather than evicting outstanding
    /// ones. Answer 503 Service Unavailable with a `Retry-After`; if it happens under
    /// normal load, raise `max_tokens` or shorten `ttl`.
    #[error("token store full")]
    StoreFull,
    /// [`TokenStore::issue`] found `max_tokens_per_identity` unexpired tokens outstanding
    /// for this identity. The store refuses rather than evicting that identity's oldest
    /// token, which its owner may be about to present. Answer 429 Too Many Requests with a
    /// `Retry-After` of at most `ttl`: the quota frees up as the identity's tokens are
    /// consumed or expire. Under normal use it means a client fetches tokens it never uses.
    #[error("too many outstanding tokens for this identity")]
    QuotaExceeded,
    /// [`TokenStore::consume`] got a token that was never issued, was already consumed,
    /// had a wrong secret, or was malformed; an expired token the store already purged
    /// lands here too. Refuse with 401: the client should fetch a new token.
    #[error("unknown or already used token")]
    Unknown,
    /// [`TokenStore::consume`] got a genuine token older than `ttl`. Refuse with 401: the
    /// client should fetch a new token.
    #[error("expired token")]
    Expired,
}

/// Single-use tokens that let a handshake prove who the peer is.
///
/// Browsers cannot set headers on a WebSocket, and cookies alone invite cross-site
/// WebSocket hijacking; so the application serves a token from its own authenticated REST
/// route (say `GET /user/sockettoken`), and the client passes it in the upgrade URL
/// (`?token=`) or, when it can, in an `Authorization: Bearer` header. The
/// [`handshake_hook`](Self::handshake_hook) consumes it and attaches its [`Identity`] to
/// the connection; a reused, expired or unknown token gets HTTP 401 before the upgrade.
///
/// A token is valid once, for [`TokenConfig::ttl`]; at most [`TokenConfig::max_tokens`]
/// are outstanding, and at most [`TokenConfig::max_tokens_per_identity`] for any one
/// identity. Cheap to clone: every clone is the same store. It lives in this process: for
/// several nodes behind a load balancer, `redis_adapter::RedisTokenStore` has the same
/// methods, format and answers, with the tokens in Redis.
///
/// ```
/// use network_core::{Constraint, Identity, InvalidConfig};
/// use ws_server::{ServerConfig, TokenConfig, TokenError, TokenStore};
///
/// # fn main() -> Result<(), TokenError> {
/// let tokens = TokenStore::new(TokenConfig::default())?;
/// // All the server needs:
/// let config = ServerConfig::default().handshake(tokens.handshake_hook());
///
/// // In the REST route, for the logged-in user (answer 429 on `QuotaExceeded`, 503 on
/// // `StoreFull`):
/// let token = tokens.issue(Identity::user("ada").session_id("s1"))?;
/// assert_eq!(token.len(), TokenStore::TOKEN_LEN);
///
/// // The browser opens `wss://host/ws?token=…`; the hook does this:
/// let identity = tokens.consume(&token)?;
/// assert_eq!(identity.user_id.as_deref(), Some("ada"));
/// assert_eq!(tokens.consume(&token), Err(TokenError::Unknown)); // single use
/// # let _ = config;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: TokenConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; ID_LEN], Entry>,
    /// One record per issued token, in issue order (hence expiry order). Records of
    /// consumed tokens stay until they reach the front or a compaction drops them.
    order: VecDeque<Record>,
    /// Numbers the issued tokens, so that a record matches only its own entry.
    next_seq: u64,
    /// Outstanding tokens per quota key; keys with none are removed, so this never holds
    /// more keys than `entries` holds tokens.
    per_identity: HashMap<QuotaKey, usize>,
}

struct Entry {
    secret: [u8; SECRET_LEN],
    identity: Identity,
    expires_at: Instant,
    seq: u64,
    /// Whose quota the token counts against (kept so removal need not rebuild it).
    quota: QuotaKey,
}

/// What [`TokenConfig::max_tokens_per_identity`] counts per: the user, else the session.
/// The user comes first because a login makes a new session each time, so a quota per
/// session would not stop a user who logs in again and again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum QuotaKey {
    User(String),
    Session(String),
    Anonymous,
}

impl QuotaKey {
    fn of(identity: &Identity) -> Self {
        match (&identity.user_id, &identity.session_id) {
            (Some(user), _) => Self::User(user.clone()),
            (None, Some(session)) => Self::Session(session.clone()),
            (None, None) => Self::Anonymous,
        }
    }
}

struct Record {
    expires_at: Instant,
    id: [u8; ID_LEN],
    seq: u64,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Entries hold secrets (and identities): only their numbers are shown.
        let state = self.inner.lock();
        f.debug_struct("TokenStore")
            .field("config", &self.inner.config)
            .field("outstanding", &state.entries.len())
            .field("identities", &state.per_identity.len())
            .finish()
    }
}

impl TokenStore {
    /// Length of every token [`issue`](Self::issue) returns: 48 lowercase hex characters
    /// (a 64-bit lookup id, then a 128-bit secret), safe in a URL as is.
    pub const TOKEN_LEN: usize = OneTimeToken::LEN;

    /// An empty store.
    pub fn new(config: TokenConfig) -> Result<Self, TokenError> {
        config.validate()?;
        Ok(Self { inner: Arc::new(Inner { config, state: Mutex::new(State::default()) }) })
    }

    /// The options the store runs with.
    pub fn config(&self) -> &TokenConfig {
        &self.inner.config
    }

    /// Issues a token for `identity`, valid once for [`TokenConfig::ttl`].
    ///
    /// Call it from a route only an authenticated user reaches, and send the token over
    /// HTTPS only. [`TokenError::QuotaExceeded`] means this identity already has
    /// `max_tokens_per_identity` unexpired tokens outstanding: answer 429.
    /// [`TokenError::StoreFull`] means `max_tokens` unexpired tokens are outstanding in
    /// all: answer 503. In both cases the store refuses a new token rather than evicting
    /// an old one, so that whoever floods the route cannot cancel tokens about to be
    /// presented; the per-identity quota keeps one user from filling the store.
    pub fn issue(&self, identity: Identity) -> Result<String, TokenError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        state.maintain(now);
        let quota = QuotaKey::of(&identity);
        let held = state.per_identity.get(&quota).copied().unwrap_or(0);
        if held >= self.inner.config.max_tokens_per_identity {
            return Err(TokenError::QuotaExceeded);
        }
        if state.entries.len() >= self.inner.config.max_tokens {
            return Err(TokenError::StoreFull);
        }
        // A repeat among 64-bit random ids is vanishingly rare; it still must not replace
        // someone's outstanding token.
        let token = loop {
            let token = OneTimeToken::generate();
            if !state.entries.contains_key(&token.id) {
                break token;
            }
        };
        let (id, secret) = (token.id, token.secret);
        // `validate` bounds the ttl to a day, far from `Instant`'s limits.
        let expires_at = now + self.inner.config.ttl;
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.push_back(Record { expires_at, id, seq });
        state.per_identity.insert(quota.clone(), held + 1);
        state.entries.insert(id, Entry { secret, identity, expires_at, seq, quota });
        Ok(token.encode())
    }

    /// Consumes `token` and returns the identity it was issued for.
    ///
    /// The token is removed on first presentation, whatever the outcome: a reused token, or
    /// one presented with a wrong secret, is gone, which also ends any guessing of the
    /// secret of a known id. [`TokenError::Unknown`] covers never issued, already used,
    /// malformed (of any length; nothing is allocated for it) and wrong secret;
    /// [`TokenError::Expired`] a genuine token past its ttl. Both mean 401.
    pub fn consume(&self, token: &str) -> Result<Identity, TokenError> {
        let now = Instant::now();
        let mut state = self.inner.lock();
        let outcome = match OneTimeToken::parse(token) {
            None => Err(TokenError::Unknown),
            Some(presented) => match state.remove(&presented.id) {
                None => Err(TokenError::Unknown),
                Some(entry) => {
                    if !presented.secret_matches(&entry.secret) {
                        Err(TokenError::Unknown)
                    } else if entry.expires_at <= now {
                        Err(TokenError::Expired)
                    } else {
                        Ok(entry.identity)
                    }
                }
            },
        };
        state.maintain(now);
        outcome
    }

    /// Consumes the token of a handshake: the `token` query parameter if present and not
    /// empty, else an `Authorization: Bearer` header (a token in the query wins; the
    /// header's is then left untouched).
    ///
    /// Refuses with 401 and the reason "missing token" when there is none, and with
    /// "invalid or expired token" for every [`consume`](Self::consume) failure, so the
    /// response does not tell whether a token ever existed.
    pub fn authenticate(&self, request: &HandshakeRequest) -> Result<Identity, Reject> {
        let token = OneTimeToken::presented(request)?;
        self.consume(token).map_err(|error| {
            // The reason, never the token.
            tracing::debug!(%error, "handshake token refused");
            OneTimeToken::refused()
        })
    }

    /// A handshake hook that accepts a request with a valid token, attaching the token's
    /// identity to the connection, and refuses any other with 401 (see
    /// [`authenticate`](Self::authenticate)). Pass it to
    /// [`ServerConfig::handshake`](crate::ServerConfig::handshake); for more checks (the
    /// path, the origin), write a [`HandshakeHook`] that calls `authenticate` itself.
    pub fn handshake_hook(&self) -> HandshakeHook {
        let store = self.clone();
        HandshakeHook::new(move |request| {
            future::ready(store.authenticate(&request).map(|identity| Accept::new().identity(identity)))
        })
    }

    /// Tokens outstanding: issued, neither consumed nor expired.
    pub fn len(&self) -> usize {
        let mut state = self.inner.lock();
        state.maintain(Instant::now());
        state.entries.len()
    }

    /// Whether no token is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding the lock (only
        // `HashMap`/`VecDeque` calls run under it), so poisoning is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Removes the entry of `id`, giving its slot back to its identity's quota.
    fn remove(&mut self, id: &[u8; ID_LEN]) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        match self.per_identity.get_mut(&entry.quota) {
            Some(held) if *held > 1 => *held -= 1,
            _ => {
                self.per_identity.remove(&entry.quota);
            }
        }
        Some(entry)
    }

    /// Drops expired entries and the records of consumed ones, in amortized O(1) per
    /// issued token.
    fn maintain(&mut self, now: Instant) {
        while let Some(&Record { expires_at, id, seq }) = self.order.front() {
            if expires_at > now {
                break;
            }
            if self.entries.get(&id).is_some_and(|entry| entry.seq == seq) {
                self.remove(&id);
            }
            self.order.pop_front();
        }
        // Records of consumed tokens would otherwise pile up for `ttl` at the rate tokens
        // are issued. Compacting once they are more than half the queue costs at most two
        // steps per record dropped, and keeps the queue under twice the outstanding tokens.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|record| entries.get(&record.id).is_some_and(|entry| entry.seq == record.seq));
        }
    }
}

/// A one-time token taken apart: a random 64-bit lookup id and a random 128-bit secret,
/// written as [`LEN`](Self::LEN) lowercase hex characters (the id first).
///
/// [`TokenStore`] keeps its tokens in this process; a store kept elsewhere (such as
/// `redis_adapter::RedisTokenStore`, shared by every node of a cluster) uses this type to
/// make, read and refuse tokens exactly as [`TokenStore`] does: the same format, the same
/// places in the handshake request, the same 401 answers. Its `Debug` output shows
/// nothing of the token.
///
/// ```
/// use ws_server::OneTimeToken;
/// let token = OneTimeToken::generate();
/// let text = token.encode();
/// assert_eq!(text.len(), OneTimeToken::LEN);
/// let parsed = OneTimeToken::parse(&text).unwrap();
/// assert_eq!(parsed.id_hex(), &text[..16]);
/// assert!(parsed.secret_matches(token.secret()));
/// assert!(OneTimeToken::parse(&text.to_uppercase()).is_none()); // one spelling per token
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    id: [u8; ID_LEN],
    secret: [u8; SECRET_LEN],
}

impl fmt::Debug for OneTimeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeToken(..)")
    }
}

impl OneTimeToken {
    /// Length of a token's text: 48 lowercase hex characters, safe in a URL as is.
    pub const LEN: usize = 2 * (ID_LEN + SECRET_LEN);

    /// A fresh token from a cryptographically secure generator (`rand`'s thread-local
    /// ChaCha12, seeded and reseeded from the operating system).
    pub fn generate() -> Self {
        let mut rng = secure_rng();
        let mut token = Self { id: [0; ID_LEN], secret: [0; SECRET_LEN] };
        rng.fill_bytes(&mut token.id);
        rng.fill_bytes(&mut token.secret);
        token
    }

    /// Reads a token; `None` unless it is exactly [`LEN`](Self::LEN) lowercase hex digits
    /// (one spelling per token). Allocates nothing, whatever the input's length.
    pub fn parse(token: &str) -> Option<Self> {
        let digits = token.as_bytes();
        if digits.len() != Self::LEN {
            return None;
        }
        let mut raw = [0u8; ID_LEN + SECRET_LEN];
        for (byte, pair) in raw.iter_mut().zip(digits.chunks_exact(2)) {
            let &[high, low] = pair else { return None };
            *byte = (nibble(high)? << 4) | nibble(low)?;
        }
        let (id, secret) = raw.split_at(ID_LEN);
        Some(Self { id: id.try_into().ok()?, secret: secret.try_into().ok()? })
    }

    /// The token's text, [`LEN`](Self::LEN) characters. Hand it to the client only, over
    /// HTTPS; never log it.
    pub fn encode(&self) -> String {
        let mut token = String::with_capacity(Self::LEN);
        push_hex(&mut token, &self.id);
        push_hex(&mut token, &self.secret);
        token
    }

    /// The lookup id in hex (the text's first 16 characters): not secret, a store's key.
    pub fn id_hex(&self) -> String {
        let mut id = String::with_capacity(2 * ID_LEN);
        push_hex(&mut id, &self.id);
        id
    }

    /// The secret, to compare or to hash. Never log it.
    pub fn secret(&self) -> &[u8; SECRET_LEN] {
        &self.secret
    }

    /// Whether this token's secret is `secret`, compared in constant time so that response
    /// timing tells an attacker nothing about it.
    pub fn secret_matches(&self, secret: &[u8]) -> bool {
        bool::from(self.secret[..].ct_eq(secret))
    }

    /// The token a handshake presents: the `token` query parameter if present and not
    /// empty, else an `Authorization: Bearer` header. No token refuses with 401 and the
    /// reason "missing token".
    pub fn presented(request: &HandshakeRequest) -> Result<&str, Reject> {
        request
            .query_param("token")
            .filter(|token| !token.is_empty())
            .or_else(|| request.bearer_token().filter(|token| !token.is_empty()))
            .ok_or_else(|| Reject::new(StatusCode::UNAUTHORIZED, MISSING))
    }

    /// The refusal of a token that is malformed, unknown, used, expired or has a wrong
    /// secret: 401 "invalid or expired token", the same for all, so that the response
    /// does not tell whether a token ever existed.
    pub fn refused() -> Reject {
        Reject::new(StatusCode::UNAUTHORIZED, INVALID)
    }
}

/// The generator of ids and secrets: `rand`'s thread-local ChaCha12, seeded and
/// periodically reseeded from the operating system. The bound makes the compiler check
/// that it stays a cryptographically secure one.
fn secure_rng() -> impl CryptoRng {
    rand::rng()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(text: &mut String, bytes: &[u8]) {
    for byte in bytes {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, header};

    use super::*;

    fn store(ttl: Duration, max_tokens: usize) -> TokenStore {
        TokenStore::new(TokenConfig::default().ttl(ttl).max_tokens(max_tokens)).unwrap()
    }

    fn ada() -> Identity {
        Identity::user("ada").session_id("s1")
    }

    fn request(query: Option<&str>, bearer: Option<&str>) -> HandshakeRequest {
        let mut headers = HeaderMap::new();
        if let Some(token) = bearer {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        }
        HandshakeRequest { remote_addr: None, path: "/ws".into(), query: query.map(Into::into), headers }
    }

    #[test]
    fn handles_are_cheap_shared_and_thread_safe() {
        fn assert_handle<T: Clone + Send + Sync + 'static>() {}
        assert_handle::<TokenStore>();
        assert_handle::<TokenError>();
        let tokens = store(Duration::from_secs(60), 10);
        let token = tokens.clone().issue(ada()).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens.consume(&token).unwrap(), ada());
    }

    #[test]
    fn issued_tokens_are_distinct_lowercase_hex_of_the_documented_length() {
        let tokens = store(Duration::from_secs(60), 10);
        let first = tokens.issue(ada()).unwrap();
        let second = tokens.issue(ada()).unwrap();
        assert_ne!(first, second);
        assert_ne!(first[..2 * ID_LEN], second[..2 * ID_LEN]);
        assert_ne!(first[2 * ID_LEN..], second[2 * ID_LEN..]);
        for token in [&first, &second] {
            assert_eq!(token.len(), TokenStore::TOKEN_LEN);
            assert_eq!(TokenStore::TOKEN_LEN, 48);
            assert!(token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{token}");
        }
        // The encoding round-trips.
        assert_eq!(OneTimeToken::parse(&first).unwrap().encode(), first);
    }

    #[test]
    fn a_token_is_good_once() {
        let tokens = store(Duration::from_secs(60), 10);
        let token = tokens.issue(ada()).unwrap();
        assert_eq!(tokens.consume(&token), Ok(ada()));
        assert_eq!(tokens.consume(&token), Err(TokenError::Unknown));
        assert!(tokens.is_empty());
    }

    #[test]
    fn a_wrong_secret_is_unknown_and_burns_the_token() {
        let tokens = store(Duration::from_secs(60), 10);
        let token = tokens.issue(ada()).unwrap();
        let last = if token.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &token[..TokenStore::TOKEN_LEN - 1]);
        assert_eq!(tokens.consume(&forged), Err(TokenError::Unknown));
        // The id was presented: the genuine token is gone too.
        assert_eq!(tokens.consume(&token), Err(TokenError::Unknown));
    }

    #[test]
    fn malformed_tokens_are_unknown_and_never_panic() {
        let tokens = store(Duration::from_secs(60), 10);
        let token = tokens.issue(ada()).unwrap();
        let huge = "a".repeat(1 << 20);
        let accented = "é".repeat(TokenStore::TOKEN_LEN / 2); // right byte length, not hex
        for bad in [
            String::new(),
            "not a token".to_owned(),
            "g".repeat(TokenStore::TOKEN_LEN),
            token[..TokenStore::TOKEN_LEN - 1].to_owned(),
            format!("{token}0"),
            token.to_uppercase(),
            huge,
            accented,
            format!("{} ", &token[..TokenStore::TOKEN_LEN - 1]),
        ] {
            assert_eq!(tokens.consume(&bad), Err(TokenError::Unknown), "{:.60}", bad);
        }
        // None of them touched the genuine token (none decoded to its id).
        assert_eq!(tokens.consume(&token), Ok(ada()));
    }

    #[test]
    fn the_configuration_is_checked_once() {
        for (config, field) in [
            (TokenConfig::default().ttl(Duration::ZERO), "ttl"),
            (TokenConfig::default().ttl(Duration::from_secs(86_401)), "ttl"),
            (TokenConfig::default().ttl(Duration::MAX), "ttl"),
            (TokenConfig::default().max_tokens(0), "max_tokens"),
            (TokenConfig::default().max_tokens_per_identity(0), "max_tokens_per_identity"),
        ] {
            match TokenStore::new(config) {
                Err(TokenError::Config(error)) => assert_eq!(error.field, field, "{error}"),
                other => panic!("expected a config error about {field}, got {other:?}"),
            }
        }
        assert!(TokenStore::new(TokenConfig::default().ttl(MAX_TTL)).is_ok());
        let defaults = TokenConfig::default();
        assert_eq!((defaults.ttl, defaults.max_tokens), (Duration::from_secs(60), 100_000));
        assert_eq!(defaults.max_tokens_per_identity, 16);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_after_the_ttl() {
        let tokens = store(Duration::from_secs(60), 10);
        let early = tokens.issue(ada()).unwrap();
        let late = tokens.issue(ada()).unwrap();
        tokio::time::advance(Duration::from_millis(59_999)).await;
        assert_eq!(tokens.consume(&early), Ok(ada()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(tokens.consume(&late), Err(TokenError::Expired));
        assert_eq!(tokens.consume(&late), Err(TokenError::Unknown));
    }

    #[tokio::test(start_paused = true)]
    async fn the_store_is_bounded_and_expiry_frees_it() {
        let ttl = Duration::from_secs(60);
        let tokens = store(ttl, 3);
        let issued: Vec<_> = (0..3).map(|_| tokens.issue(ada()).unwrap()).collect();
        assert_eq!(tokens.issue(ada()), Err(TokenError::StoreFull));
        // Full means refusing new tokens, not evicting outstanding ones.
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.consume(&issued[0]), Ok(ada()));
        let refill = tokens.issue(ada()).unwrap();
        assert_eq!(tokens.issue(ada()), Err(TokenError::StoreFull));

        tokio::time::advance(ttl).await;
        // Nothing was consumed since: `issue` purges the expired tokens itself.
        let fresh = tokens.issue(ada()).unwrap();
        assert_eq!(tokens.len(), 1);
        for stale in issued.iter().skip(1).chain([&refill]) {
            assert_eq!(tokens.consume(stale), Err(TokenError::Unknown));
        }
        assert_eq!(tokens.consume(&fresh), Ok(ada()));
    }

    fn quota_store(per_identity: usize) -> TokenStore {
        let config = TokenConfig::default().max_tokens(100).max_tokens_per_identity(per_identity);
        TokenStore::new(config).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn each_identity_has_a_quota_that_use_and_expiry_give_back() {
        let tokens = quota_store(2);
        // A new session per login does not escape the user's quota.
        let first = tokens.issue(Identity::user("ada").session_id("1")).unwrap();
        let second = tokens.issue(Identity::user("ada").session_id("2")).unwrap();
        assert_eq!(tokens.issue(Identity::user("ada").session_id("3")), Err(TokenError::QuotaExceeded));
        // Refusing evicted nothing, and other identities are served.
        assert_eq!(tokens.len(), 2);
        tokens.issue(Identity::user("bob")).unwrap();

        // A redeemed token gives its slot back; so does one burnt by a wrong secret.
        assert_eq!(tokens.consume(&first).unwrap().session_id.as_deref(), Some("1"));
        let third = tokens.issue(ada()).unwrap();
        assert_eq!(tokens.issue(ada()), Err(TokenError::QuotaExceeded));
        let last = if second.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &second[..TokenStore::TOKEN_LEN - 1]);
        assert_eq!(tokens.consume(&forged), Err(TokenError::Unknown));
        tokens.issue(ada()).unwrap();
        assert_eq!(tokens.issue(ada()), Err(TokenError::QuotaExceeded));

        // Expiry gives everything back, and the counts go with the tokens.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(tokens.is_empty());
        assert!(tokens.inner.lock().per_identity.is_empty());
        assert_eq!(tokens.consume(&third), Err(TokenError::Unknown));
        tokens.issue(ada()).unwrap();
        tokens.issue(ada()).unwrap();
        assert_eq!(tokens.issue(ada()), Err(TokenError::QuotaExceeded));
    }

    #[test]
    fn the_quota_key_is_the_user_then_the_session() {
        let tokens = quota_store(1);
        tokens.issue(Identity::user("ada")).unwrap();
        // Same session id, different users: separate quotas.
        tokens.issue(Identity::user("bob").session_id("s")).unwrap();
        // No user: the session is the key; a user's session id is not the same key.
        tokens.issue(Identity::default().session_id("s")).unwrap();
        assert_eq!(tokens.issue(Identity::default().session_id("s")), Err(TokenError::QuotaExceeded));
        tokens.issue(Identity::default().session_id("t")).unwrap();
        // Neither: one shared quota.
        tokens.issue(Identity::default()).unwrap();
        assert_eq!(tokens.issue(Identity::default()), Err(TokenError::QuotaExceeded));
        assert_eq!(tokens.len(), 5);
    }

    #[test]
    fn the_quota_is_checked_before_the_store_is_full() {
        let tokens =
            TokenStore::new(TokenConfig::default().max_tokens(2).max_tokens_per_identity(1)).unwrap();
        tokens.issue(Identity::user("ada")).unwrap();
        tokens.issue(Identity::user("bob")).unwrap();
        // Ada is over her own quota whatever the store's state: the client's fault (429).
        assert_eq!(tokens.issue(Identity::user("ada")), Err(TokenError::QuotaExceeded));
        assert_eq!(tokens.issue(Identity::user("eve")), Err(TokenError::StoreFull));
    }

    #[tokio::test(start_paused = true)]
    async fn records_of_consumed_tokens_do_not_pile_up() {
        let tokens = store(Duration::from_secs(60), 4);
        let keep = tokens.issue(ada()).unwrap();
        for _ in 0..10_000 {
            let token = tokens.issue(ada()).unwrap();
            assert_eq!(tokens.consume(&token), Ok(ada()));
            let state = tokens.inner.lock();
            assert!(state.order.len() <= 2 * state.entries.len() + 64, "{}", state.order.len());
        }
        // Compaction kept the outstanding token's record: it still expires on time.
        assert_eq!(tokens.len(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(tokens.len(), 0);
        assert!(tokens.inner.lock().order.is_empty());
        assert_eq!(tokens.consume(&keep), Err(TokenError::Unknown));
    }

    #[test]
    fn authenticate_reads_the_query_then_the_bearer_header() {
        let tokens = store(Duration::from_secs(60), 10);
        let in_query = tokens.issue(Identity::user("query")).unwrap();
        let in_header = tokens.issue(Identity::user("header")).unwrap();

        let both = request(Some(&format!("v=1&token={in_query}")), Some(&in_header));
        assert_eq!(tokens.authenticate(&both).unwrap().user_id.as_deref(), Some("query"));
        // The header's token was left alone; an empty query parameter falls back to it.
        let header = request(Some("token="), Some(&in_header));
        assert_eq!(tokens.authenticate(&header).unwrap().user_id.as_deref(), Some("header"));
        assert!(tokens.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn every_refusal_is_401_and_says_nothing_about_the_token() {
        let tokens = store(Duration::from_secs(60), 10);
        let missing = tokens.authenticate(&request(Some("v=1"), None)).unwrap_err();
        assert_eq!((missing.status, missing.reason.as_str()), (StatusCode::UNAUTHORIZED, MISSING));

        let used = tokens.issue(ada()).unwrap();
        tokens.consume(&used).unwrap();
        let expired = tokens.issue(ada()).unwrap();
        tokio::time::advance(Duration::from_secs(60)).await;
        let unknown = "0".repeat(TokenStore::TOKEN_LEN);
        for token in [used.as_str(), expired.as_str(), unknown.as_str(), "garbage"] {
            let reject = tokens.authenticate(&request(None, Some(token))).unwrap_err();
            assert_eq!((reject.status, reject.reason.as_str()), (StatusCode::UNAUTHORIZED, INVALID));
            assert!(!reject.reason.contains(token));
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let tokens = store(Duration::from_secs(60), 10);
        let token = tokens.issue(ada()).unwrap();
        let debug = format!("{tokens:?}");
        assert!(debug.contains("outstanding: 1"), "{debug}");
        assert!(!debug.contains(&token[..2 * ID_LEN]) && !debug.contains(&token[2 * ID_LEN..]));
    }
}
