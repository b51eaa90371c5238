//! Out-of-order segments: which byte ranges past the next expected byte have arrived.
//!
//! The bytes themselves sit in the receive ring's free space (see
//! [`RingBuffer::write_at`](super::ring::RingBuffer::write_at)), so memory is bounded by
//! the receive buffer; this keeps at most [`MAX_RANGES`] disjoint ranges, offsets from
//! the next expected byte. A segment that would need one more range is dropped (the
//! peer sends it again).

/// Most disjoint out-of-order ranges tracked.
pub const MAX_RANGES: usize = 16;

/// Disjoint, sorted, non-adjacent `(start, end)` ranges, offsets from `RCV.NXT`.
#[derive(Debug, Clone, Default)]
pub struct Assembler {
    ranges: [(u32, u32); MAX_RANGES],
    count: u8,
}

impl Assembler {
    /// True when no range is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ranges held.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges[..usize::from(self.count)]
    }

    /// Records `start..end`; false when it needs a range and none is left.
    pub fn add(&mut self, start: u32, end: u32) -> bool {
        if start >= end {
            return true;
        }
        let n = usize::from(self.count);
        // First range that ends at or after `start` (may merge).
        let mut i = 0;
        while i < n && self.ranges[i].1 < start {
            i += 1;
        }
        // Ranges i..j overlap or touch start..end.
        let mut j = i;
        let (mut s, mut e) = (start, end);
        while j < n && self.ranges[j].0 <= end {
            s = s.min(self.ranges[j].0);
            e = e.max(self.ranges[j].1);
            j += 1;
        }
        if i == j {
            if n == MAX_RANGES {
                return false;
            }
            self.ranges.copy_within(i..n, i + 1);
            self.ranges[i] = (s, e);
            self.count += 1;
        } else {
            self.ranges[i] = (s, e);
            self.ranges.copy_within(j..n, i + 1);
            self.count -= (j - i - 1) as u8;
        }
        true
    }

    /// When the first range starts at offset 0, removes it and returns its length (the
    /// bytes now in order); every other offset moves down by that much.
    pub fn take_front(&mut self) -> u32 {
        if self.count == 0 || self.ranges[0].0 != 0 {
            return 0;
        }
        let n = self.ranges[0].1;
        let c = usize::from(self.count);
        self.ranges.copy_within(1..c, 0);
        self.count -= 1;
        for r in &mut self.ranges[..usize::from(self.count)] {
            r.0 -= n;
            r.1 -= n;
        }
        n
    }

    /// Moves the base up by `n` bytes: ranges below it go, the rest shift down.
    pub fn advance(&mut self, n: u32) {
        let mut w = 0;
        for i in 0..usize::from(self.count) {
            let (s, e) = self.ranges[i];
            if e > n {
                self.ranges[w] = (s.saturating_sub(n), e - n);
                w += 1;
            }
        }
        self.count = w as u8;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_takes_front() {
        let mut a = Assembler::default();
        assert!(a.add(10, 20));
        assert!(a.add(30, 40));
        assert!(a.add(20, 30));
        assert_eq!(a.ranges(), &[(10, 40)]);
        assert_eq!(a.take_front(), 0);
        assert!(a.add(0, 5));
        assert!(a.add(5, 10));
        assert_eq!(a.take_front(), 40);
        assert!(a.is_empty());
        for i in 0..MAX_RANGES as u32 {
            assert!(a.add(10 * i + 1, 10 * i + 2));
        }
        let top = 10 * MAX_RANGES as u32;
        assert!(!a.add(top + 100, top + 101));
        assert!(a.add(0, top));
        assert_eq!(a.ranges(), &[(0, top)]);
        a.clear();
        a.add(10, 20);
        a.add(30, 40);
        a.advance(15);
        assert_eq!(a.ranges(), &[(0, 5), (15, 25)]);
        a.advance(30);
        assert!(a.is_empty());
    }
}
