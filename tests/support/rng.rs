//! A small seeded random number generator (SplitMix64) for load tests, so that a failing
//! run can be replayed with its seed. Not for anything that needs real randomness.
//!
//! A test binary includes it with `#[path = "../support/rng.rs"] mod rng;` in its `main.rs`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::ops::Range;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A seed from the environment variable `name` when set (to replay a run), else from
    /// the clock.
    pub fn seed_from_env(name: &str) -> u64 {
        match std::env::var(name) {
            Ok(value) => {
                value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a u64, got {value:?}"))
            }
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(0x5eed),
        }
    }

    /// An independent generator derived from this one's seed and `stream`.
    pub fn fork(&self, stream: u64) -> Self {
        let mut mixed = Self(self.0 ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Self(mixed.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `range` (which must not be empty).
    pub fn range(&mut self, range: Range<u64>) -> u64 {
        assert!(range.start < range.end, "empty range");
        range.start + self.next_u64() % (range.end - range.start)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.range(0..100) < percent
    }

    /// A duration between `min_ms` and `max_ms` milliseconds.
    pub fn millis(&mut self, min_ms: u64, max_ms: u64) -> Duration {
        Duration::from_millis(self.range(min_ms..max_ms + 1))
    }
}
