//! Flow classification for spreading frames over shards.
//!
//! A multi-core runtime whose port has fewer receive queues than workers spreads the
//! frames of that port over its shards in software, like RSS in a NIC: every frame of
//! one flow goes to the same shard, so a flow's packets keep their order and its state
//! (neighbor resolution, later TCP connections) lives on one core. [`dispatch`] reads
//! only the few header bytes it needs, at fixed offsets, and never fails: a frame too
//! short or of an unknown kind hashes to flow 0 and is checked (and counted) by the
//! stack of whichever shard gets it.
//!
//! The flow is the addresses plus, for TCP and UDP, the ports; the ports are left out
//! of IPv4 fragments (every fragment of a datagram must meet on one shard) and of
//! IPv6 packets with extension headers. ARP and the NDP messages are
//! [`Dispatch::Neighbor`]: the owning shard answers them and the others learn from a
//! copy ([`crate::Stack::snoop_neighbor`]).

use core::net::{IpAddr, SocketAddr};

/// Where a received frame should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// ARP or an NDP message (ICMPv6 types 133–137): answered by the shard that owns
    /// the port, its neighbor information wanted by every shard.
    Neighbor,
    /// Any other frame, with its flow hash.
    Flow(u32),
}

/// Classifies an Ethernet frame (untagged) for shard dispatch.
#[inline]
pub fn dispatch(frame: &[u8]) -> Dispatch {
    let Some(eth) = frame.first_chunk::<14>() else {
        return Dispatch::Flow(0);
    };
    let l3 = &frame[14..];
    match u16::from_be_bytes([eth[12], eth[13]]) {
        0x0806 => Dispatch::Neighbor,
        0x0800 => Dispatch::Flow(ipv4_hash(l3)),
        0x86dd => ipv6(l3),
        _ => Dispatch::Flow(0),
    }
}

fn ipv4_hash(ip: &[u8]) -> u32 {
    let Some(h) = ip.first_chunk::<20>() else {
        return 0;
    };
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let proto = h[9];
    // Offset or more-fragments set: a fragment, whose later parts carry no ports.
    let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let ports = if !fragment && (proto == 6 || proto == 17) {
        ports_at(ip, ihl)
    } else {
        0
    };
    mix_v4(src, dst, proto, ports)
}

fn mix_v4(src: u32, dst: u32, proto: u8, ports: u32) -> u32 {
    mix(
        (u64::from(src) << 32) | u64::from(dst),
        (u64::from(proto) << 32) | u64::from(ports),
    )
}

fn mix_v6(src: &[u8; 16], dst: &[u8; 16], next: u8, ports: u32) -> u32 {
    let word =
        |b: &[u8; 16], i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let a = word(src, 0) ^ word(src, 8).rotate_left(17);
    let b = word(dst, 0) ^ word(dst, 8).rotate_left(31);
    mix(
        a ^ b.rotate_left(7),
        (u64::from(next) << 32) | u64::from(ports),
    )
}

/// The flow hash [`dispatch`] gives a TCP (6) or UDP (17) packet from `src` to `dst`
/// (`None` when the families differ): a connection's opener uses it to pick a local
/// port whose return traffic lands on its own shard.
pub fn tuple_hash(src: SocketAddr, dst: SocketAddr, proto: u8) -> Option<u32> {
    let ports = (u32::from(src.port()) << 16) | u32::from(dst.port());
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(mix_v4(u32::from(s), u32::from(d), proto, ports)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(mix_v6(&s.octets(), &d.octets(), proto, ports)),
        _ => None,
    }
}

fn ipv6(ip: &[u8]) -> Dispatch {
    let Some(h) = ip.first_chunk::<40>() else {
        return Dispatch::Flow(0);
    };
    let next = h[6];
    if next == 58 && ip.get(40).is_some_and(|t| (133..=137).contains(t)) {
        return Dispatch::Neighbor;
    }
    let ports = if next == 6 || next == 17 {
        ports_at(ip, 40)
    } else {
        0
    };
    let addr = |i: usize| -> [u8; 16] { h[i..i + 16].try_into().unwrap_or([0; 16]) };
    Dispatch::Flow(mix_v6(&addr(8), &addr(24), next, ports))
}

/// Source and destination port as one word, or 0 when the header is cut short.
fn ports_at(ip: &[u8], off: usize) -> u32 {
    ip.get(off..off + 4)
        .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
}

/// Two words into 32 well-mixed bits (the murmur3 64-bit finalizer). Hand-written: it
/// runs once per received frame and inlines to a few multiplies, where a `Hasher`
/// would stream bytes through a state.
#[inline]
fn mix(a: u64, b: u64) -> u32 {
    let mut h = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}

/// The shard of a flow hash among `shards` (at least 1): a multiply-shift, which
/// spreads the hash evenly without a division.
#[inline]
pub fn shard_of(hash: u32, shards: usize) -> usize {
    ((u64::from(hash) * shards as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn v6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40];
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f[14] = 0x60;
        f[14 + 6] = next;
        f[14 + 8..14 + 24]
            .copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f[14 + 24..14 + 40]
            .copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(l4);
        f
    }

    fn hash(f: &[u8]) -> u32 {
        match dispatch(f) {
            Dispatch::Flow(h) => h,
            Dispatch::Neighbor => panic!("not a flow"),
        }
    }

    #[test]
    fn same_flow_same_hash_other_ports_other_hash() {
        let a = v4([198, 51, 100, 2], [203, 0, 113, 2], 17, 0, 4000, 9000);
        assert_eq!(hash(&a), hash(&a.clone()));
        let b = v4([198, 51, 100, 2], [203, 0, 113, 2], 17, 0, 4000, 9001);
        assert_ne!(hash(&a), hash(&b));
        let c = v4([198, 51, 100, 3], [203, 0, 113, 2], 17, 0, 4000, 9000);
        assert_ne!(hash(&a), hash(&c));
    }

    #[test]
    fn fragments_of_a_datagram_hash_alike_whatever_their_payload() {
        // First fragment (MF set) carries ports; a later one carries data where the
        // ports would be. Both must land on one shard.
        let first = v4([198, 51, 100, 2], [203, 0, 113, 2], 17, 0x2000, 4000, 9000);
        let later = v4(
            [198, 51, 100, 2],
            [203, 0, 113, 2],
            17,
            0x0010,
            0xabcd,
            0x1234,
        );
        assert_eq!(hash(&first), hash(&later));
    }

    #[test]
    fn arp_and_ndp_are_neighbor_traffic_other_icmpv6_is_a_flow() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(dispatch(&arp), Dispatch::Neighbor);
        for t in 133..=137u8 {
            assert_eq!(
                dispatch(&v6(58, &[t, 0, 0, 0])),
                Dispatch::Neighbor,
                "type {t}"
            );
        }
        assert!(matches!(
            dispatch(&v6(58, &[128, 0, 0, 0])),
            Dispatch::Flow(_)
        ));
        let u1 = v6(17, &[0x0f, 0xa0, 0x23, 0x28]);
        let u2 = v6(17, &[0x0f, 0xa0, 0x23, 0x29]);
        assert_ne!(hash(&u1), hash(&u2));
    }

    #[test]
    fn short_and_unknown_frames_never_panic() {
        for len in 0..80 {
            let mut f = vec![0xffu8; len];
            if len >= 14 {
                f[12] = 0x08;
                f[13] = 0x00;
            }
            let _ = dispatch(&f);
            if len >= 14 {
                f[12] = 0x86;
                f[13] = 0xdd;
            }
            let _ = dispatch(&f);
        }
    }

    #[test]
    fn tuple_hash_matches_dispatch() {
        let f = v4([198, 51, 100, 2], [203, 0, 113, 2], 6, 0, 4000, 80);
        let t = tuple_hash(
            "198.51.100.2:4000".parse().unwrap(),
            "203.0.113.2:80".parse().unwrap(),
            6,
        );
        assert_eq!(t, Some(hash(&f)));
        let f6 = v6(17, &[0x0f, 0xa0, 0x23, 0x28]);
        let t6 = tuple_hash(
            "[2001:db8:1::2]:4000".parse().unwrap(),
            "[2001:db8:2::2]:9000".parse().unwrap(),
            17,
        );
        assert_eq!(t6, Some(hash(&f6)));
        assert_eq!(
            tuple_hash(
                "198.51.100.2:1".parse().unwrap(),
                "[::1]:1".parse().unwrap(),
                6
            ),
            None
        );
    }

    #[test]
    fn shards_are_in_range_and_evenly_used() {
        let mut count = [0u32; 3];
        for p in 0..3000u16 {
            let f = v4([198, 51, 100, 2], [203, 0, 113, 2], 17, 0, 4000, p);
            let s = shard_of(hash(&f), 3);
            count[s] += 1;
        }
        for c in count {
            assert!((800..1200).contains(&c), "{count:?}");
        }
        assert_eq!(shard_of(u32::MAX, 1), 0);
    }
}
