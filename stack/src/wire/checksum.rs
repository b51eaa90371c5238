//! The Internet checksum (RFC 1071), pseudo-header sums, and incremental update (RFC 1624).
//!
//! Hand-written rather than taken from a crate: this runs on every forwarded packet (the
//! IPv4 header check and the TTL rewrite), and it must inline into the per-packet loop
//! without a call through a generic byte-slice API. The sum adds 32-bit words into four
//! independent 64-bit accumulators (no carry chain), 64 bytes per loop iteration.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's complement sum, not yet folded.
///
/// `data` is read as big-endian 16-bit words; an odd last byte is padded with zero.
///
/// The bulk of the buffer is summed as native-endian 32-bit words into four independent
/// 64-bit accumulators (no carry chain: each would need 2^32 additions to overflow, and
/// the loop folds them well before that), 64 bytes per iteration; the one's complement
/// sum does not depend on the byte order of its words (RFC 1071 §2(B)), so the folded
/// native sum is byte-swapped once at the end. A tail of up to three bytes is added as
/// big-endian words.
#[inline]
pub fn accumulate(sum: u64, data: &[u8]) -> u64 {
    let body = data.len() & !3;
    let (head, tail) = data.split_at(body);
    let mut sum = sum;
    if body >= 64 {
        sum = add_carry(sum, u64::from(native_sum_be(head)));
    } else {
        for w in head.chunks_exact(4) {
            sum = add_carry(sum, u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])));
        }
    }
    let mut words = tail.chunks_exact(2);
    for w in &mut words {
        sum = add_carry(sum, u64::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [b] = words.remainder() {
        sum = add_carry(sum, u64::from(*b) << 8);
    }
    sum
}

/// `a + b` with the carry out added back (one's complement addition on 64 bits).
#[inline(always)]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Bytes summed per block before the accumulators are folded: far below the 2^32 words
/// per accumulator that could overflow them.
const BLOCK: usize = 1 << 20;

/// The folded one's complement sum of `data` (a multiple of 4 bytes long) as big-endian
/// 16-bit words. Kept out of line so that [`accumulate`] stays small enough to inline.
#[inline(never)]
fn native_sum_be(data: &[u8]) -> u16 {
    let word =
        |c: &[u8], i: usize| u64::from(u32::from_ne_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]));
    let mut total: u64 = 0;
    for block in data.chunks(BLOCK) {
        let (mut a0, mut a1, mut a2, mut a3) = (0u64, 0u64, 0u64, 0u64);
        let mut chunks = block.chunks_exact(64);
        for c in &mut chunks {
            a0 += word(c, 0) + word(c, 16) + word(c, 32) + word(c, 48);
            a1 += word(c, 4) + word(c, 20) + word(c, 36) + word(c, 52);
            a2 += word(c, 8) + word(c, 24) + word(c, 40) + word(c, 56);
            a3 += word(c, 12) + word(c, 28) + word(c, 44) + word(c, 60);
        }
        let mut quads = chunks.remainder().chunks_exact(4);
        for c in &mut quads {
            a0 += word(c, 0);
        }
        // Each accumulator is below 2^48 here (2^16 words under 2^32 each per
        // block), so their sum cannot overflow.
        total = add_carry(total, u64::from(fold(a0 + a1 + a2 + a3)));
    }
    let native = fold(total);
    if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    }
}

/// Folds a running sum to 16 bits (not complemented).
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The one's complement sum of `data`, folded to 16 bits (not complemented).
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The Internet checksum of `data` (RFC 1071): the complement of its one's complement sum.
#[inline]
pub fn checksum(data_bytes: &[u8]) -> u16 {
    !data(data_bytes)
}

/// Combines folded sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    let mut acc: u64 = 0;
    for s in sums {
        acc += u64::from(*s);
    }
    fold(acc)
}

/// The sum of the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1) for `protocol` and a
/// transport length of `length` bytes, folded, not complemented.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let (s, d) = (src.to_bits(), dst.to_bits());
    let sum = u64::from(s >> 16)
        + u64::from(s & 0xffff)
        + u64::from(d >> 16)
        + u64::from(d & 0xffff)
        + u64::from(protocol)
        + u64::from(length);
    fold(sum)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1), folded, not complemented.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let words = |a: u128| {
        (0..4).fold(0u64, |acc, i| {
            let w = (a >> (32 * i)) as u32;
            acc + u64::from(w >> 16) + u64::from(w & 0xffff)
        })
    };
    fold(words(src.to_bits()) + words(dst.to_bits()) + u64::from(length) + u64::from(next_header))
}

/// Incrementally updates checksum `hc` after a 16-bit field changed from `old` to `new`:
/// `HC' = ~(~HC + ~m + m')` (RFC 1624 §3, equation 3), which, unlike equation 2 of
/// RFC 1141, never produces the invalid `0x0000` for a header whose sum is `0xffff`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Incrementally updates checksum `hc` after a 32-bit field changed from `old` to `new`.
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
    update16(hc, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 word by word: the reference for the wide sum.
    fn reference(mut sum: u64, data: &[u8]) -> u64 {
        for w in data.chunks(2) {
            let v = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from(w[0]) << 8
            };
            sum += u64::from(v);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum
    }

    #[test]
    fn every_length_and_alignment_matches_the_reference() {
        let buf: Vec<u8> = (0..700u32).map(|i| (i * 151 + 17) as u8).collect();
        for start in 0..8 {
            for len in 0..buf.len() - start {
                let d = &buf[start..start + len];
                assert_eq!(
                    fold(accumulate(0, d)),
                    fold(reference(0, d)),
                    "start {start} len {len}"
                );
            }
        }
    }

    #[test]
    fn all_ones_words_fold_to_ffff() {
        // The largest sums: every accumulator full of 0xffff_ffff words, over blocks.
        let buf = vec![0xffu8; (1 << 21) + 68];
        assert_eq!(data(&buf), 0xffff);
        assert_eq!(data(&buf[..1 << 20]), 0xffff);
        assert_eq!(
            data(&[0xff, 0xff, 0xff]),
            0xff00_u16.wrapping_add(0xffff) + 1
        );
    }

    // IPv4 header from a captured ICMP echo request, checksum 0xb861 (a textbook example).
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn verifies_and_computes_rfc1071() {
        assert_eq!(checksum(&IPV4_HEADER), 0);
        let mut h = IPV4_HEADER;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn long_buffers_match_word_by_word_sum() {
        let buf: Vec<u8> = (0..1501u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut slow: u32 = 0;
        for w in buf.chunks(2) {
            let v = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from(w[0]) << 8
            };
            slow += u32::from(v);
            slow = (slow & 0xffff) + (slow >> 16);
        }
        assert_eq!(data(&buf), slow as u16);
    }

    #[test]
    fn incremental_ttl_decrement_matches_recompute() {
        let mut h = IPV4_HEADER;
        for _ in 0..64 {
            let old = u16::from_be_bytes([h[8], h[9]]);
            h[8] -= 1;
            let new = u16::from_be_bytes([h[8], h[9]]);
            let hc = u16::from_be_bytes([h[10], h[11]]);
            let updated = update16(hc, old, new);
            h[10..12].copy_from_slice(&updated.to_be_bytes());
            assert_eq!(checksum(&h), 0, "ttl {}", h[8]);
        }
    }

    #[test]
    fn incremental_32bit_update_matches_recompute() {
        let mut h = IPV4_HEADER;
        let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new = 0xcb00_7107u32;
        h[12..16].copy_from_slice(&new.to_be_bytes());
        let hc = u16::from_be_bytes([h[10], h[11]]);
        h[10..12].copy_from_slice(&update32(hc, old, new).to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn pseudo_headers_are_consistent() {
        let a = Ipv4Addr::new(192, 0, 2, 1);
        let b = Ipv4Addr::new(198, 51, 100, 2);
        // Commutative in the addresses.
        assert_eq!(pseudo_header_v4(a, b, 17, 8), pseudo_header_v4(b, a, 17, 8));
        assert_eq!(
            pseudo_header_v4(a, b, 6, 1480),
            combine(&[data(&a.octets()), data(&b.octets()), 6, 1480])
        );
        let x: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let y: Ipv6Addr = "2001:db8::2".parse().unwrap();
        assert_eq!(pseudo_header_v6(x, y, 58, 8), pseudo_header_v6(y, x, 58, 8));
        assert_eq!(
            pseudo_header_v6(x, y, 58, 8),
            combine(&[data(&x.octets()), data(&y.octets()), 58, 8])
        );
    }

    proptest! {
        #[test]
        fn wide_sum_matches_word_by_word(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            start in 0usize..16,
            initial in any::<u32>(),
        ) {
            let d = &data[start.min(data.len())..];
            let initial = u64::from(initial);
            prop_assert_eq!(fold(accumulate(initial, d)), fold(reference(initial, d)));
            prop_assert_eq!(checksum(d), !fold(reference(0, d)));
        }
    }
}
