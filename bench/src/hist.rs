//! A lock-free latency histogram with 1 µs buckets up to one second.

use std::sync::atomic::{AtomicU64, Ordering};

const BUCKETS: usize = 1_000_000;

/// Counts of latencies in microseconds; the last bucket holds everything from 1 s up.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Histogram {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        Self { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Records one latency of `micros`.
    pub(crate) fn record(&self, micros: u64) {
        let index = usize::try_from(micros).unwrap_or(BUCKETS - 1).min(BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency (µs) below which `quantile` of the recorded values fall; 0 when empty.
    pub(crate) fn quantile(&self, quantile: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        // Rank of the wanted value, 1-based, rounded up.
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (micros, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return micros as u64;
            }
        }
        (BUCKETS - 1) as u64
    }
}
