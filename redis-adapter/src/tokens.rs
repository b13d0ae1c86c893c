//! One-time handshake tokens kept in Redis, so that a token issued by one node is accepted
//! by every node of the cluster.
//!
//! Keys, all under the cluster's prefix:
//! - `{prefix}#token#{id}`: a hash with the SHA-256 of the token's secret (`d`), the
//!   identity (`i`, MessagePack) and the key of its identity's quota (`q`); it expires
//!   with the token (`PX ttl`). The token itself is never stored.
//! - `{prefix}#tokens`: a sorted set of the outstanding ids, scored by expiry (ms, Redis'
//!   clock), for `max_tokens`;
//! - `{prefix}#tokens#user:{user}` (else `#session:{session}`, else `#anonymous`): the
//!   same for one identity, for `max_tokens_per_identity`.
//!
//! Issuing and consuming are each one Lua script, so they are atomic across nodes: of two
//! nodes consuming one token at once, one gets the record and the other nothing. The
//! sets expire with their newest member, so idle identities leave nothing behind.

use std::sync::Arc;
use std::time::Duration;

use network_core::{Identity, InvalidConfig};
use sha2::{Digest, Sha256};
use tokio::time::timeout;
use ws_server::{Accept, HandshakeHook, HandshakeRequest, OneTimeToken, Reject, TokenConfig, TokenError};

use crate::commands::Commands;
use crate::config::RedisConfig;
use crate::error::RedisAdapterError;

/// Issues a token. KEYS: the token, the set of all tokens, the identity's set. ARGV: id,
/// digest, identity, ttl (ms), max_tokens, max_tokens_per_identity. Returns 0 (issued),
/// 1 (quota exceeded), 2 (store full) or 3 (the id is taken: draw another).
const ISSUE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%d', now))
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 3 end
local expires = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'i', ARGV[3], 'q', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
for set = 2, 3 do
  redis.call('ZADD', KEYS[set], expires, ARGV[1])
  redis.call('PEXPIRE', KEYS[set], ARGV[4])
end
return 0";

/// Takes a token: returns its digest and identity and deletes it, with its places in the
/// sets; nil when there is none. KEYS: the token, the set of all tokens. ARGV: id.
const CONSUME: &str = r"
local record = redis.call('HMGET', KEYS[1], 'd', 'i', 'q')
if not record[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if record[3] then redis.call('ZREM', record[3], ARGV[1]) end
return {record[1], record[2]}";

/// Counts the unexpired tokens. KEYS: the set of all tokens. A key set to expire at `t`
/// (`PX`) lives through `t` itself, so a score is dropped only once it is past: the counts
/// agree with the keys.
const COUNT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now))
return redis.call('ZCARD', KEYS[1])";

/// How many ids [`RedisTokenStore::issue`] draws before giving up (a repeat among 64-bit
/// random ids is vanishingly rare; this only bounds the loop).
const ID_ATTEMPTS: usize = 4;

/// Why a [`RedisTokenStore`] call failed: what [`ws_server::TokenStore`] would say, or
/// Redis' own trouble.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisTokenError {
    /// The token store's refusal, with [`TokenError`]'s meaning, counted across the
    /// cluster: `Config` (a [`TokenConfig`] or [`RedisConfig`] value out of range),
    /// `QuotaExceeded` (429), `StoreFull` (503; also when Redis refuses the write for lack
    /// of memory, under `maxmemory` with `noeviction`), `Unknown` (401). Never `Expired`:
    /// Redis deletes a token at its ttl, so an expired token is `Unknown`.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Redis refused the command or could not be reached. Nothing was issued or consumed
    /// (a command that failed midway never ran: scripts are atomic). Answer 503: the
    /// client's token may still be good once Redis is back.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the command timeout; the command may or may not have
    /// run. Answer 503.
    #[error("redis did not answer within the command timeout")]
    Timeout,
    /// [`RedisTokenStore::connect`] could not reach Redis at all (connection refused,
    /// unknown or unreachable host). Check the URL and that Redis is up.
    #[error("cannot connect to redis")]
    Unreachable(#[source] redis::RedisError),
}

impl From<InvalidConfig> for RedisTokenError {
    fn from(error: InvalidConfig) -> Self {
        Self::Token(TokenError::Config(error))
    }
}

impl RedisTokenError {
    /// Whether the error is Redis' (down, refusing, slow) rather than the token's or the
    /// caller's: the handshake answers 503, not 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Redis(_) | Self::Timeout | Self::Unreachable(_))
    }
}

/// Single-use handshake tokens shared by every node of a cluster: the Redis counterpart of
/// [`ws_server::TokenStore`], with the same token format, limits and handshake answers.
///
/// Behind a load balancer, the node that serves the application's token route is rarely
/// the node that gets the WebSocket upgrade; with the tokens in Redis any node accepts
/// any node's token, without sticky sessions. Each token is valid once across the whole
/// cluster, for [`TokenConfig::ttl`]; [`TokenConfig::max_tokens`] and
/// [`TokenConfig::max_tokens_per_identity`] are counted across the cluster too. Redis
/// keeps only a SHA-256 of each token's secret, never the token: whoever reads Redis
/// cannot present a token.
///
/// When Redis is down, [`issue`](Self::issue) and [`consume`](Self::consume) fail with
/// [`RedisTokenError::Redis`] or [`RedisTokenError::Timeout`], and the
/// [`handshake_hook`](Self::handshake_hook) answers 503 (not 401: the token may well be
/// good, and a 401 would send the client to fetch another one for nothing). The
/// connection to Redis comes back by itself.
///
/// Memory: a token takes about 200 bytes of Redis plus its identity. Set Redis'
/// `maxmemory-policy` to `noeviction` or a `volatile-*` policy that only evicts keys with
/// a ttl of the applications sharing it deliberately: an `allkeys-*` policy could evict
/// an outstanding token (it would then be refused with 401, as an unknown one).
///
/// ```no_run
/// use network_core::Identity;
/// use redis_adapter::{RedisConfig, RedisTokenStore};
/// use ws_server::{ServerConfig, TokenConfig};
///
/// # async fn run() -> Result<(), redis_adapter::RedisTokenError> {
/// let redis = RedisConfig::new("redis://127.0.0.1:6379").prefix("chat");
/// let tokens = RedisTokenStore::connect(&redis, TokenConfig::default()).await?;
/// let config = ServerConfig::default().handshake(tokens.handshake_hook());
///
/// // In the REST route, on any node:
/// let token = tokens.issue(Identity::user("ada")).await?;
/// // Any node's handshake hook does this, once:
/// let identity = tokens.consume(&token).await?;
/// assert_eq!(identity.user_id.as_deref(), Some("ada"));
/// # let _ = config;
/// # Ok(()) }
/// ```
///
/// Cheap to clone: clones share one multiplexed, reconnecting connection (replaced when a
/// command goes unanswered, as on a half-open link).
#[derive(Clone)]
pub struct RedisTokenStore {
    config: TokenConfig,
    prefix: String,
    command_timeout: Duration,
    commands: Arc<Commands>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore").field("config", &self.config).field("prefix", &self.prefix).finish()
    }
}

impl RedisTokenStore {
    /// Length of every token [`issue`](Self::issue) returns, the same as
    /// [`ws_server::TokenStore::TOKEN_LEN`].
    pub const TOKEN_LEN: usize = OneTimeToken::LEN;

    /// Connects to the Redis of `redis` (its `url`, `prefix` and `command_timeout`; the
    /// rest is the adapter's). Fails if a configuration is out of range, or if Redis
    /// cannot be reached within the command timeout; once connected, the store rides out
    /// Redis outages by itself (each call fails meanwhile).
    pub async fn connect(redis: &RedisConfig, config: TokenConfig) -> Result<Self, RedisTokenError> {
        redis.validate()?;
        config.validate()?;
        let client = redis::Client::open(redis.url.as_str())?;
        let commands = Commands::connect(client, redis).await.map_err(|error| match error {
            RedisAdapterError::Redis(error) => RedisTokenError::Redis(error),
            RedisAdapterError::Unreachable(error) => RedisTokenError::Unreachable(error),
            RedisAdapterError::InvalidConfig(error) => error.into(),
            _ => RedisTokenError::Timeout,
        })?;
        let command_timeout = redis.command_timeout;
        Ok(Self { config, prefix: redis.prefix.clone(), command_timeout, commands: Arc::new(commands) })
    }

    /// The options the store runs with.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// Issues a token for `identity`, valid once, on any node of the cluster, for
    /// [`TokenConfig::ttl`].
    ///
    /// As [`ws_server::TokenStore::issue`]: call it from a route only an authenticated user
    /// reaches; [`TokenError::QuotaExceeded`] means 429,
    /// [`TokenError::StoreFull`] 503, and both refuse rather than evict. Redis'
    /// errors mean 503 too.
    ///
    /// # Cancel safety
    /// Dropped before it returns, a token may have been issued that nobody holds: it
    /// counts against the quotas until it expires.
    pub async fn issue(&self, identity: Identity) -> Result<String, RedisTokenError> {
        // Strings and a JSON value always encode; should that change, a client-side Redis
        // error (503) rather than a panic.
        let encoded = rmp_serde::to_vec_named(&identity).map_err(|error| {
            redis::RedisError::from((redis::ErrorKind::Client, "identity", error.to_string()))
        })?;
        let quota = quota_key(&self.prefix, &identity);
        let ttl_ms = u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX);
        for _ in 0..ID_ATTEMPTS {
            let token = OneTimeToken::generate();
            let id = token.id_hex();
            let mut script = redis::cmd("EVAL");
            script
                .arg(ISSUE)
                .arg(3)
                .arg(self.token_key(&id))
                .arg(self.all_key())
                .arg(&quota)
                .arg(&id)
                .arg(&digest(&token)[..])
                .arg(&encoded[..])
                .arg(ttl_ms)
                .arg(self.config.max_tokens)
                .arg(self.config.max_tokens_per_identity);
            match self.run::<i64>(&script).await? {
                0 => return Ok(token.encode()),
                1 => return Err(TokenError::QuotaExceeded.into()),
                2 => return Err(TokenError::StoreFull.into()),
                _ => continue,
            }
        }
        Err(TokenError::StoreFull.into())
    }

    /// Consumes `token` and returns the identity it was issued for: exactly once across
    /// the cluster, however many nodes present it at once.
    ///
    /// As [`ws_server::TokenStore::consume`], the token is gone after its first
    /// presentation whatever the outcome (a wrong secret burns it too), and every refusal
    /// is [`TokenError::Unknown`]: 401. Redis' errors leave the token as it was.
    ///
    /// # Cancel safety
    /// Dropped after Redis ran the command, the token is consumed and its identity lost.
    pub async fn consume(&self, token: &str) -> Result<Identity, RedisTokenError> {
        let Some(presented) = OneTimeToken::parse(token) else { return Err(TokenError::Unknown.into()) };
        let id = presented.id_hex();
        let mut script = redis::cmd("EVAL");
        script.arg(CONSUME).arg(2).arg(self.token_key(&id)).arg(self.all_key()).arg(&id);
        let Some((stored, identity)) = self.run::<Option<(Vec<u8>, Vec<u8>)>>(&script).await? else {
            return Err(TokenError::Unknown.into());
        };
        // Constant time, although an attacker learning the stored digest bit by bit would
        // still need a preimage of it; and the token is gone after this one try.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&digest(&presented)[..], &stored[..])) {
            return Err(TokenError::Unknown.into());
        }
        rmp_serde::from_slice(&identity).map_err(|error| {
            tracing::warn!(%error, "unreadable identity in a token record");
            RedisTokenError::Token(TokenError::Unknown)
        })
    }

    /// Consumes the token of a handshake, found where [`ws_server::TokenStore::authenticate`]
    /// finds it (`?token=`, else `Authorization: Bearer`), with the same 401 refusals
    /// ("missing token", "invalid or expired token"). When Redis is down or slow it
    /// refuses with 503 "token store unavailable" instead: the token was not judged.
    pub async fn authenticate(&self, request: &HandshakeRequest) -> Result<Identity, Reject> {
        let token = OneTimeToken::presented(request)?;
        self.consume(token).await.map_err(|error| {
            if error.is_unavailable() {
                tracing::warn!(%error, "cannot check a handshake token");
                Reject::new(http::StatusCode::SERVICE_UNAVAILABLE, "token store unavailable")
            } else {
                // The reason, never the token.
                tracing::debug!(%error, "handshake token refused");
                OneTimeToken::refused()
            }
        })
    }

    /// A handshake hook that accepts a request with a valid token, attaching its identity
    /// to the connection, and refuses any other as [`authenticate`](Self::authenticate)
    /// says. Pass it to `ServerConfig::handshake`.
    pub fn handshake_hook(&self) -> HandshakeHook {
        let store = self.clone();
        HandshakeHook::new(move |request| {
            let store = store.clone();
            async move { store.authenticate(&request).await.map(|identity| Accept::new().identity(identity)) }
        })
    }

    /// Tokens outstanding across the cluster: issued, neither consumed nor expired.
    pub async fn len(&self) -> Result<usize, RedisTokenError> {
        let mut script = redis::cmd("EVAL");
        script.arg(COUNT).arg(1).arg(self.all_key());
        self.run(&script).await
    }

    /// Whether no token is outstanding across the cluster.
    pub async fn is_empty(&self) -> Result<bool, RedisTokenError> {
        Ok(self.len().await? == 0)
    }

    /// Runs one command within the command timeout; replaces the connection when the
    /// command went unanswered.
    async fn run<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, RedisTokenError> {
        let outcome = match timeout(self.command_timeout, command.query_async(&mut self.commands.get())).await
        {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) if error.code() == Some("OOM") => return Err(TokenError::StoreFull.into()),
            Ok(Err(error)) if !error.is_timeout() => return Err(RedisTokenError::Redis(error)),
            Ok(Err(error)) => RedisTokenError::Redis(error),
            Err(_) => RedisTokenError::Timeout,
        };
        self.commands.replace().await;
        Err(outcome)
    }

    fn token_key(&self, id: &str) -> String {
        format!("{}#token#{id}", self.prefix)
    }

    fn all_key(&self) -> String {
        format!("{}#tokens", self.prefix)
    }
}

/// The key of the identity's quota, by the rule of [`TokenConfig::max_tokens_per_identity`]:
/// the user, else the session, else one quota for all identities with neither.
fn quota_key(prefix: &str, identity: &Identity) -> String {
    match (&identity.user_id, &identity.session_id) {
        (Some(user), _) => format!("{prefix}#tokens#user:{user}"),
        (None, Some(session)) => format!("{prefix}#tokens#session:{session}"),
        (None, None) => format!("{prefix}#tokens#anonymous"),
    }
}

/// What Redis keeps of a token's secret.
fn digest(token: &OneTimeToken) -> [u8; 32] {
    Sha256::digest(token.secret()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use testkit::RedisServer;

    use super::*;

    async fn store(redis: &RedisServer, config: TokenConfig) -> RedisTokenStore {
        let redis = RedisConfig::new(redis.url()).prefix("unit");
        RedisTokenStore::connect(&redis, config).await.unwrap()
    }

    async fn query<T: redis::FromRedisValue>(tokens: &RedisTokenStore, command: &redis::Cmd) -> T {
        tokens.run(command).await.unwrap()
    }

    #[test]
    fn handles_are_cheap_shared_and_thread_safe() {
        fn assert_handle<T: Clone + Send + Sync + 'static>() {}
        fn assert_send<T: Send>(_: &T) {}
        assert_handle::<RedisTokenStore>();
        fn assert_error<T: Send + Sync + 'static>() {}
        assert_error::<RedisTokenError>();
        let _ = |tokens: RedisTokenStore| {
            assert_send(&tokens.issue(Identity::default()));
            assert_send(&tokens.consume(""));
        };
    }

    #[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
    #[tokio::test]
    async fn redis_holds_a_hash_of_the_secret_never_the_token_and_expires_it() {
        let Some(redis) = RedisServer::start() else { return };
        let ttl = Duration::from_secs(30);
        let tokens = store(&redis, TokenConfig::default().ttl(ttl)).await;
        let token = tokens.issue(Identity::user("ada").session_id("s1")).await.unwrap();
        let parsed = OneTimeToken::parse(&token).unwrap();
        let key = tokens.token_key(&parsed.id_hex());

        // Every key of the store, and every value in them: no trace of the secret.
        let keys: Vec<String> = query(&tokens, redis::cmd("KEYS").arg("unit#*")).await;
        assert_eq!(keys.len(), 3, "{keys:?}"); // the token, all tokens, ada's tokens
        let secret_hex = &token[token.len() - 2 * parsed.secret().len()..];
        for key in &keys {
            let dump: Vec<u8> = query(&tokens, redis::cmd("DUMP").arg(key)).await;
            assert!(!dump.windows(parsed.secret().len()).any(|window| window == parsed.secret()), "{key}");
            let text = String::from_utf8_lossy(&dump);
            assert!(!text.contains(secret_hex) && !text.contains(&token), "{key}");
        }
        let stored: Vec<u8> = query(&tokens, redis::cmd("HGET").arg(&key).arg("d")).await;
        assert_eq!(stored, digest(&parsed));

        // Every key expires within the ttl.
        for key in &keys {
            let left: i64 = query(&tokens, redis::cmd("PTTL").arg(key)).await;
            assert!(0 < left && left <= 30_000, "{key}: {left}");
        }
        assert_eq!(tokens.consume(&token).await.unwrap().session_id.as_deref(), Some("s1"));
        // Consumed: the token's key is gone, and the sets with it (they held only it).
        let left: Vec<String> = query(&tokens, redis::cmd("KEYS").arg("unit#*")).await;
        assert!(left.is_empty(), "{left:?}");
    }

    #[cfg_attr(redis_server_missing, ignore = "needs redis-server on PATH (apt-get install redis-server)")]
    #[tokio::test]
    async fn the_configuration_is_checked() {
        let Some(redis) = RedisServer::start() else { return };
        let config = RedisConfig::new(redis.url());
        let error =
            RedisTokenStore::connect(&config, TokenConfig::default().max_tokens(0)).await.unwrap_err();
        assert!(
            matches!(&error, RedisTokenError::Token(TokenError::Config(invalid)) if invalid.field == "max_tokens"),
            "{error}"
        );
        let error =
            RedisTokenStore::connect(&config.prefix("a#b"), TokenConfig::default()).await.unwrap_err();
        assert!(
            matches!(&error, RedisTokenError::Token(TokenError::Config(invalid)) if invalid.field == "prefix"),
            "{error}"
        );
    }

    #[test]
    fn quota_keys_follow_the_in_memory_rule() {
        let identities = [
            (Identity::user("ada").session_id("s"), "p#tokens#user:ada"),
            (Identity::default().session_id("s"), "p#tokens#session:s"),
            (Identity::default(), "p#tokens#anonymous"),
        ];
        for (identity, key) in identities {
            assert_eq!(quota_key("p", &identity), key);
        }
    }
}
