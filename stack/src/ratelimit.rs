//! Per-destination token buckets for ICMP errors (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)).
//!
//! A fixed table of buckets indexed by a hash of the destination: no allocation, O(1).
//! Two destinations that share a slot share a bucket, which only ever limits more, never
//! less. Credit is kept in nanoseconds, as Linux's `xrlim_allow` does: each message costs
//! one interval, credit grows with elapsed time up to `burst` intervals.

use core::hash::{BuildHasher, Hash};
use core::net::IpAddr;

use crate::time::{Duration, Instant};

/// Rate and burst of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained messages per second per destination (0 disables sending entirely).
    pub per_second: u32,
    /// Messages that may be sent back to back.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 10,
            burst: 10,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    credit: u64,
    last: Instant,
}

const SLOTS: usize = 256;

/// A per-destination token-bucket limiter.
pub struct RateLimiter {
    config: RateLimitConfig,
    interval: u64,
    buckets: Box<[Bucket; SLOTS]>,
    hasher: rustc_hash::FxBuildHasher,
}

impl RateLimiter {
    /// A limiter with all buckets full.
    pub fn new(config: RateLimitConfig) -> Self {
        let interval = if config.per_second == 0 {
            u64::MAX
        } else {
            Duration::from_secs(1).as_nanos() / u64::from(config.per_second)
        };
        RateLimiter {
            config,
            interval,
            buckets: Box::new(
                [Bucket {
                    credit: 0,
                    last: Instant::ZERO,
                }; SLOTS],
            ),
            hasher: rustc_hash::FxBuildHasher,
        }
    }

    /// The configuration.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// True (and one token spent) when a message to `dst` may be sent at `now`.
    pub fn allow(&mut self, now: Instant, dst: IpAddr) -> bool {
        if self.config.per_second == 0 || self.config.burst == 0 {
            return false;
        }
        let mut h = self.hasher.build_hasher();
        dst.hash(&mut h);
        let slot = (core::hash::Hasher::finish(&h) as usize) % SLOTS;
        let max = self.interval.saturating_mul(u64::from(self.config.burst));
        let b = &mut self.buckets[slot];
        if b.last == Instant::ZERO {
            b.credit = max;
        }
        // A fresh bucket (last = ZERO) fills to the burst from the elapsed time; a
        // destination that shares a slot shares its credit, which only limits more.
        let elapsed = now.saturating_since(b.last).as_nanos();
        b.credit = b.credit.saturating_add(elapsed).min(max);
        b.last = now;
        if b.credit >= self.interval {
            b.credit -= self.interval;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn a(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
    }

    #[test]
    fn burst_then_rate() {
        let mut l = RateLimiter::new(RateLimitConfig {
            per_second: 10,
            burst: 5,
        });
        let t = Instant::from_secs(100);
        let sent = (0..20).filter(|_| l.allow(t, a(1))).count();
        assert_eq!(sent, 5);
        // 100 ms buys exactly one more.
        assert!(l.allow(t + Duration::from_millis(100), a(1)));
        assert!(!l.allow(t + Duration::from_millis(100), a(1)));
        // A long pause refills only up to the burst.
        let later = t + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| l.allow(later, a(1))).count(), 5);
    }

    #[test]
    fn destinations_are_independent() {
        let mut l = RateLimiter::new(RateLimitConfig {
            per_second: 1,
            burst: 1,
        });
        let t = Instant::from_secs(1);
        assert!(l.allow(t, a(1)));
        assert!(!l.allow(t, a(1)));
        // A destination in another slot still has its token.
        let other = (2..=255).map(a).find(|d| {
            let mut probe = RateLimiter::new(l.config());
            probe.allow(t, a(1));
            probe.allow(t, *d)
        });
        assert!(l.allow(t, other.expect("some address hashes elsewhere")));
    }

    #[test]
    fn zero_rate_sends_nothing() {
        let mut l = RateLimiter::new(RateLimitConfig {
            per_second: 0,
            burst: 10,
        });
        assert!(!l.allow(Instant::from_secs(1), a(1)));
    }
}
