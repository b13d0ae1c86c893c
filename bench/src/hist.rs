//! A lock-free latency histogram: 1 µs buckets up to one second, then 1 ms buckets up to a
//! minute (fan-out to 10,000 members with 32 broadcasts in flight can take seconds on a slow
//! server, and a histogram that stopped at 1 s would report every such run as "1 s"); and
//! [`spread`], the summary of a list of per-client values.

use std::sync::atomic::{AtomicU64, Ordering};

/// Latencies below this many µs get a bucket per µs.
const FINE_LIMIT: u64 = 1_000_000;
/// Width of the buckets from [`FINE_LIMIT`] up, in µs.
const COARSE_WIDTH: u64 = 1_000;
/// Latencies from this many µs up share the last bucket.
const COARSE_LIMIT: u64 = 60_000_000;
const BUCKETS: usize = (FINE_LIMIT + (COARSE_LIMIT - FINE_LIMIT) / COARSE_WIDTH) as usize + 1;

/// Counts of latencies in microseconds; the last bucket holds everything from 60 s up.
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
        let index = if micros < FINE_LIMIT {
            micros
        } else {
            FINE_LIMIT + (micros.min(COARSE_LIMIT) - FINE_LIMIT) / COARSE_WIDTH
        };
        let index = usize::try_from(index).unwrap_or(BUCKETS - 1).min(BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency (µs) below which `quantile` of the recorded values fall (the lower
    /// edge of its bucket); 0 when empty.
    pub(crate) fn quantile(&self, quantile: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        // Rank of the wanted value, 1-based, rounded up.
        let rank = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return lower_edge(index as u64);
            }
        }
        COARSE_LIMIT
    }
}

/// The smallest latency (µs) that bucket `index` holds.
fn lower_edge(index: u64) -> u64 {
    if index < FINE_LIMIT { index } else { FINE_LIMIT + (index - FINE_LIMIT) * COARSE_WIDTH }
}

/// The count, minimum, median, 99th percentile and maximum of `values`.
pub(crate) fn spread(mut values: Vec<u64>) -> serde_json::Value {
    values.sort_unstable();
    let quantile =
        |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    serde_json::json!({"count": values.len(), "min": quantile(0.0), "p50": quantile(0.5), "p99": quantile(0.99), "max": quantile(1.0)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_keep_microseconds_below_a_second_and_milliseconds_above() {
        let histogram = Histogram::new();
        histogram.record(250);
        histogram.record(2_345_678);
        histogram.record(u64::MAX);
        assert_eq!(histogram.quantile(0.2), 250);
        assert_eq!(histogram.quantile(0.5), 2_345_000);
        assert_eq!(histogram.quantile(1.0), COARSE_LIMIT);
    }
}
