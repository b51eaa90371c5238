//! The Internet checksum (RFC 1071), pseudo-header sums, and incremental update (RFC 1624).
//!
//! Hand-written rather than taken from a crate: this runs on every forwarded packet (the
//! IPv4 header check and the TTL rewrite), and it must inline into the per-packet loop
//! without a call through a generic byte-slice API. The sum folds 64-bit words, which
//! the compiler turns into a handful of `adc` instructions per cache line.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's complement sum, not yet folded.
///
/// `data` is read as big-endian 16-bit words; an odd last byte is padded with zero.
#[inline]
pub fn accumulate(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = sum.overflowing_add(w);
        sum = s + carry as u64;
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        let (s, carry) = sum.overflowing_add(u64::from(u16::from_be_bytes([w[0], w[1]])));
        sum = s + carry as u64;
    }
    if let [b] = words.remainder() {
        let (s, carry) = sum.overflowing_add(u64::from(*b) << 8);
        sum = s + carry as u64;
    }
    sum
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
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum += u64::from(protocol);
    sum += u64::from(length);
    fold(sum)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1), folded, not complemented.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum += u64::from(length);
    sum += u64::from(next_header);
    fold(sum)
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
        let x: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let y: Ipv6Addr = "2001:db8::2".parse().unwrap();
        assert_eq!(pseudo_header_v6(x, y, 58, 8), pseudo_header_v6(y, x, 58, 8));
        assert_eq!(
            pseudo_header_v6(x, y, 58, 8),
            combine(&[data(&x.octets()), data(&y.octets()), 58, 8])
        );
    }
}
