//! Saturating time arithmetic: a recipe may ask for absurd durations; none of them may
//! overflow an `Instant`.

use std::time::{Duration, Instant};

/// About a century: what "never" means for a deadline.
pub const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, saturating far in the future instead of overflowing.
pub fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// The earlier of two optional instants.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `d × factor`, saturating at `max` (a NaN or negative factor counts as 1).
pub fn scale(d: Duration, factor: f64, max: Duration) -> Duration {
    let factor = if factor.is_finite() && factor >= 0.0 {
        factor
    } else {
        1.0
    };
    Duration::try_from_secs_f64(d.as_secs_f64() * factor)
        .unwrap_or(max)
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(
            scale(Duration::from_secs(1), 1e300, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            scale(Duration::from_secs(2), f64::NAN, Duration::from_secs(5)),
            Duration::from_secs(2)
        );
        assert_eq!(earliest(Some(now), None), Some(now));
    }
}
