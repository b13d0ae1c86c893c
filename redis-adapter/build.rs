//! Sets `cfg(redis_server_missing)` when `redis-server` is not on `PATH` and `CI` is not
//! set: the tests that need it are then marked ignored, with the reason, so that the test
//! summary shows them as skipped instead of passed. Under `CI` they run, and fail without
//! Redis (`testkit::RedisServer::start`).

include!("redis_server_cfg.rs");
