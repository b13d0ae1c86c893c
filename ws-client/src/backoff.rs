//! The reconnection delay schedule, as pure arithmetic.

use std::time::Duration;

use crate::error::ConfigError;

/// The delay before each reconnection attempt: exponential growth from a minimum to a cap,
/// as in the npm package `reconnecting-websocket`.
///
/// Attempt 0 is the first connection (or the first after a reset) and has no delay.
/// Attempt `n >= 1` waits `min(max, min * grow^(n-1))`.
///
/// ```
/// use std::time::Duration;
/// use ws_client::Backoff;
///
/// let ms = Duration::from_millis;
/// let backoff = Backoff::new(ms(100), ms(1000), 2.0).unwrap();
/// let delays: Vec<_> = (1..=6).map(|n| backoff.delay(n)).collect();
/// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
/// assert_eq!(backoff.delay(0), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    grow: f64,
}

impl Backoff {
    /// A schedule from `min` to `max` growing by `grow` per attempt.
    ///
    /// Fails when `min > max` ([`ConfigError::DelayRange`]) or when `grow` is below 1 or
    /// not finite ([`ConfigError::GrowFactor`]).
    pub fn new(min: Duration, max: Duration, grow: f64) -> Result<Self, ConfigError> {
        if min > max {
            return Err(ConfigError::DelayRange { min, max });
        }
        if !grow.is_finite() || grow < 1.0 {
            return Err(ConfigError::GrowFactor(grow));
        }
        Ok(Self { min, max, grow })
    }

    /// The shortest delay (before attempt 1).
    pub fn min(&self) -> Duration {
        self.min
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before attempt `attempt`: zero for attempt 0, else
    /// `min(max, min * grow^(attempt-1))`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let Some(exponent) = attempt.checked_sub(1) else {
            return Duration::ZERO;
        };
        // Whole nanoseconds as f64 keep the usual schedules exact (100 ms * 2^k).
        let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
        let nanos = self.min.as_nanos() as f64 * self.grow.powi(exponent);
        if !nanos.is_finite() || nanos >= self.max.as_nanos() as f64 {
            return self.max;
        }
        // `nanos` is below `max`, so it fits in a u64 for any sane `max`.
        Duration::from_nanos(nanos.round() as u64).min(self.max)
    }

    /// Shortens `delay` by up to the fraction `jitter` (0 to 1), using `random` (a number
    /// in `0..1`): `delay * (1 - jitter * random)`. The result never exceeds `delay`, so
    /// the configured maximum stays a maximum. Out-of-range inputs are clamped.
    pub fn jittered(delay: Duration, jitter: f64, random: f64) -> Duration {
        let cut = jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        if !cut.is_finite() || cut <= 0.0 {
            return delay;
        }
        delay.mul_f64(1.0 - cut)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reconnecting_websocket_schedule() {
        let backoff = Backoff::new(ms(100), ms(1000), 2.0).unwrap();
        let delays: Vec<_> = (1..=6).map(|n| backoff.delay(n)).collect();
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
    }

    #[test]
    fn first_attempt_is_immediate() {
        let backoff = Backoff::new(ms(100), ms(1000), 2.0).unwrap();
        assert_eq!(backoff.delay(0), Duration::ZERO);
    }

    #[test]
    fn default_grow_factor() {
        let backoff = Backoff::new(ms(1000), ms(10_000), 1.3).unwrap();
        assert_eq!(backoff.delay(1), ms(1000));
        assert_eq!(backoff.delay(2), ms(1300));
        assert_eq!(backoff.delay(3), ms(1690));
        assert_eq!(backoff.delay(100), ms(10_000));
    }

    #[test]
    fn huge_attempts_saturate_at_max() {
        let backoff = Backoff::new(ms(1), ms(5000), 10.0).unwrap();
        assert_eq!(backoff.delay(u32::MAX), ms(5000));
        let constant = Backoff::new(ms(250), ms(250), 1.0).unwrap();
        assert_eq!(constant.delay(u32::MAX), ms(250));
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        assert_eq!(Backoff::new(ms(2), ms(1), 2.0), Err(ConfigError::DelayRange { min: ms(2), max: ms(1) }));
        assert!(matches!(Backoff::new(ms(1), ms(2), 0.5), Err(ConfigError::GrowFactor(_))));
        assert!(matches!(Backoff::new(ms(1), ms(2), f64::NAN), Err(ConfigError::GrowFactor(_))));
        assert!(matches!(Backoff::new(ms(1), ms(2), f64::INFINITY), Err(ConfigError::GrowFactor(_))));
    }

    #[test]
    fn jitter_only_shortens() {
        assert_eq!(Backoff::jittered(ms(1000), 0.0, 0.7), ms(1000));
        assert_eq!(Backoff::jittered(ms(1000), 0.5, 0.0), ms(1000));
        assert_eq!(Backoff::jittered(ms(1000), 0.5, 0.5), ms(750));
        assert_eq!(Backoff::jittered(ms(1000), 1.0, 1.0), Duration::ZERO);
        assert_eq!(Backoff::jittered(ms(1000), 7.0, 2.0), Duration::ZERO);
    }
}
