//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).

use core::cmp::Ordering;
use core::ops::{Add, Sub};

/// A sequence number. Ordering is the RFC 9293 §3.4 comparison: `a < b` when
/// `b - a` (mod 2^32) is below 2^31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The larger of two sequence numbers.
    #[inline]
    pub fn max(self, other: Seq) -> Seq {
        if self >= other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers.
    #[inline]
    pub fn min(self, other: Seq) -> Seq {
        if self <= other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for Seq {
    #[inline]
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some((self.0.wrapping_sub(other.0) as i32).cmp(&0))
    }
}

impl Add<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }
}

impl Sub<u32> for Seq {
    type Output = Seq;
    #[inline]
    fn sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }
}

impl Sub<Seq> for Seq {
    type Output = u32;
    /// The distance from `other` up to `self`; callers ensure `self >= other`.
    #[inline]
    fn sub(self, other: Seq) -> u32 {
        self.0.wrapping_sub(other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_wrap() {
        assert!(Seq(u32::MAX) < Seq(0));
        assert!(Seq(0) > Seq(u32::MAX - 10));
        assert_eq!(Seq(5) - Seq(u32::MAX), 6);
        assert_eq!(Seq(u32::MAX) + 2, Seq(1));
        assert_eq!(Seq(3).max(Seq(u32::MAX)), Seq(3));
    }
}
