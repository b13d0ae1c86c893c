//! Node numbers: each node holds `{prefix}#lease#{n}` (value: its incarnation) with a time
//! to live, renewed with every heartbeat, so two live nodes never share a number.

use network_core::NodeId;
use redis::aio::ConnectionManager;

use crate::config::RedisConfig;
use crate::error::RedisAdapterError;
use crate::node::{ClusterNode, random_u64};

/// How many random numbers a starting node tries before giving up.
const ATTEMPTS: usize = 32;

/// Sets the lease when it is free or already ours; 1 if we hold it afterwards.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Deletes the lease if it is ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

fn ttl_ms(config: &RedisConfig) -> u64 {
    u64::try_from(config.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX)
}

/// Claims a free node number for `incarnation`.
pub(crate) async fn claim(
    commands: &mut ConnectionManager,
    config: &RedisConfig,
    incarnation: u64,
) -> Result<NodeId, RedisAdapterError> {
    for _ in 0..ATTEMPTS {
        // 1..=65535: 0 is the standalone node.
        let number = (random_u64() % u64::from(u16::MAX)) as u16 + 1;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(config.lease_key(number))
            .arg(incarnation)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(config))
            .query_async(commands)
            .await?;
        if claimed.is_some() {
            return Ok(NodeId::new(number));
        }
    }
    Err(RedisAdapterError::NoFreeNodeNumber(ATTEMPTS))
}

/// Extends this node's lease (re-taking it after a Redis restart); `false` when another
/// process holds the number.
pub(crate) async fn renew(
    commands: &mut ConnectionManager,
    shared: &ClusterNode,
) -> redis::RedisResult<bool> {
    let held: i64 = redis::cmd("EVAL")
        .arg(RENEW)
        .arg(1)
        .arg(shared.config.lease_key(shared.node.as_u16()))
        .arg(shared.incarnation())
        .arg(ttl_ms(&shared.config))
        .query_async(commands)
        .await?;
    Ok(held == 1)
}

/// Gives the number back (clean shutdown).
pub(crate) async fn release(
    commands: &mut ConnectionManager,
    shared: &ClusterNode,
) -> redis::RedisResult<()> {
    redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(shared.config.lease_key(shared.node.as_u16()))
        .arg(shared.incarnation())
        .query_async::<i64>(commands)
        .await?;
    Ok(())
}
