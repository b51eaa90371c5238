//! Synthetic Internet routing tables for the LPM and forwarding benchmarks.
//!
//! Deterministic (one seed, [`SmallRng`]) and shaped like today's global tables, so that a
//! lookup structure sees realistic prefix lengths, nesting and density:
//!
//! - **IPv4** ([`synthetic_v4`]): lengths follow the shares of the public IPv4 table
//!   as reported by APNIC's and CIDR-Report's weekly analyses (about 1,000,000 routes in
//!   2025; figures approximate): /24 about 60 %, /23 10 %, /22 12 %, /21 5 %, /20 4.5 %,
//!   /19 2.5 %, /18 1.3 %, /17 0.8 %, /16 1.4 %, /8-/15 about 1 % together, /25-/32 a
//!   trace. Routes cluster the way allocations do: a few thousand provider blocks (/12 to
//!   /20) inside 1.0.0.0-223.255.255.255, with most longer routes carved out of a block,
//!   so more-specifics lie inside less-specifics.
//! - **IPv6** ([`synthetic_v6`]): routes inside the RIR blocks 2001::/16, 2400::/12,
//!   2600::/12, 2800::/12, 2a00::/12 and 2c00::/12, carved out of /29-/32 allocations;
//!   lengths /48 about 50 %, /32-/36 15 %, /40 7 %, /44 10 %, /29 3 %, the rest spread
//!   over /19-/64.
//!
//! Prefixes are unique, values are next-hop ids in `0..256`, and the order is shuffled.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use stack::addr::{Ipv4Prefix, Ipv6Prefix};

/// Next-hop ids are drawn from `0..NEXT_HOPS`.
pub const NEXT_HOPS: u32 = 256;

/// Share of each IPv4 prefix length, in parts per 100,000 (approximate, see module docs).
const V4_SHARES: &[(u8, u32)] = &[
    (8, 2),
    (9, 3),
    (10, 8),
    (11, 15),
    (12, 40),
    (13, 90),
    (14, 250),
    (15, 400),
    (16, 1400),
    (17, 800),
    (18, 1300),
    (19, 2500),
    (20, 4500),
    (21, 5000),
    (22, 12000),
    (23, 10000),
    (24, 60000),
    (25, 60),
    (26, 50),
    (27, 40),
    (28, 30),
    (29, 30),
    (30, 20),
    (31, 2),
    (32, 60),
];

/// Lengths of IPv4 provider blocks, with weights.
const V4_BLOCKS: &[(u8, u32)] = &[
    (12, 1),
    (13, 2),
    (14, 4),
    (15, 6),
    (16, 30),
    (17, 12),
    (18, 14),
    (19, 16),
    (20, 15),
];

/// Share of each IPv6 prefix length, in parts per 100,000 (approximate, see module docs).
const V6_SHARES: &[(u8, u32)] = &[
    (19, 30),
    (20, 100),
    (22, 70),
    (23, 40),
    (24, 150),
    (25, 20),
    (26, 60),
    (27, 60),
    (28, 500),
    (29, 3000),
    (30, 400),
    (31, 300),
    (32, 9000),
    (33, 1200),
    (34, 1200),
    (35, 800),
    (36, 2800),
    (37, 200),
    (38, 500),
    (39, 200),
    (40, 7000),
    (41, 300),
    (42, 1000),
    (43, 300),
    (44, 10000),
    (45, 500),
    (46, 1700),
    (47, 2200),
    (48, 50000),
    (52, 500),
    (56, 1200),
    (60, 200),
    (64, 2000),
];

/// The RIR blocks that hold IPv6 routes: (first 16 bits, length), with weights.
const V6_RIRS: &[(u16, u8, u32)] = &[
    (0x2001, 16, 15),
    (0x2400, 12, 25),
    (0x2600, 12, 25),
    (0x2800, 12, 8),
    (0x2a00, 12, 25),
    (0x2c00, 12, 2),
];

/// Route counts per length for `n` routes; the rounding remainder goes to `main_len`.
fn counts(n: usize, shares: &[(u8, u32)], main_len: u8) -> Vec<(u8, usize)> {
    let total: u64 = shares.iter().map(|&(_, s)| u64::from(s)).sum();
    let mut out: Vec<(u8, usize)> = shares
        .iter()
        .map(|&(l, s)| (l, (n as u64 * u64::from(s) / total) as usize))
        .collect();
    let sum: usize = out.iter().map(|&(_, c)| c).sum();
    if let Some(e) = out.iter_mut().find(|(l, _)| *l == main_len) {
        e.1 += n - sum;
    }
    out
}

/// Picks from `(item, weight)` pairs.
fn weighted<T: Copy>(rng: &mut SmallRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|&(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for &(t, w) in items {
        if x < w {
            return t;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// `n` unique IPv4 routes shaped like the global table (see the module docs), seeded.
pub fn synthetic_v4(n: usize, seed: u64) -> Vec<(Ipv4Prefix, u32)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mask = Ipv4Prefix::mask_bits;
    // Provider blocks inside 1.0.0.0-223.255.255.255, not in 10/8 or 127/8.
    let first_octet = |rng: &mut SmallRng| loop {
        let o = rng.random_range(1u32..=223);
        if o != 10 && o != 127 {
            return o << 24;
        }
    };
    let nblocks = (n / 40).max(16);
    let mut blocks: Vec<(u32, u8)> = Vec::with_capacity(nblocks);
    for _ in 0..nblocks {
        let len = weighted(&mut rng, V4_BLOCKS);
        let bits = (first_octet(&mut rng) | (rng.random::<u32>() & 0x00ff_ffff)) & mask(len);
        blocks.push((bits, len));
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut spill = 0usize;
    for (len, count) in counts(n, V4_SHARES, 24) {
        let usable: Vec<(u32, u8)> = blocks.iter().copied().filter(|b| b.1 <= len).collect();
        let mut made = 0;
        let mut tries = 0usize;
        while made < count && tries < count * 20 + 100 {
            tries += 1;
            // Most routes are carved out of a provider block; the rest (and all routes
            // shorter than every block) sit anywhere in the unicast range.
            let bits = if !usable.is_empty() && rng.random_range(0..10) < 9 {
                let (b, bl) = usable[rng.random_range(0..usable.len())];
                b | (rng.random::<u32>() & !mask(bl))
            } else {
                first_octet(&mut rng) | (rng.random::<u32>() & 0x00ff_ffff)
            } & mask(len);
            if seen.insert((bits, len)) {
                let p = Ipv4Prefix::new(Ipv4Addr::from(bits), len).expect("masked prefix");
                out.push((p, rng.random_range(0..NEXT_HOPS)));
                made += 1;
            }
        }
        spill += count - made;
    }
    // Lengths that ran out of room (/8s, say) are made up with /24s.
    while spill > 0 {
        let (b, bl) = blocks[rng.random_range(0..blocks.len())];
        let bits = (b | (rng.random::<u32>() & !mask(bl))) & mask(24);
        if seen.insert((bits, 24)) {
            let p = Ipv4Prefix::new(Ipv4Addr::from(bits), 24).expect("masked prefix");
            out.push((p, rng.random_range(0..NEXT_HOPS)));
            spill -= 1;
        }
    }
    out.shuffle(&mut rng);
    out
}

/// `n` unique IPv6 routes shaped like the global table (see the module docs), seeded.
pub fn synthetic_v6(n: usize, seed: u64) -> Vec<(Ipv6Prefix, u32)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mask = Ipv6Prefix::mask_bits;
    let rirs: Vec<((u128, u8), u32)> = V6_RIRS
        .iter()
        .map(|&(top, len, w)| (((u128::from(top)) << 112, len), w))
        .collect();
    let in_block = |rng: &mut SmallRng, (b, bl): (u128, u8)| b | (rng.random::<u128>() & !mask(bl));
    // LIR allocations, /29 to /32, inside the RIR blocks.
    let nalloc = (n / 6).max(16);
    let mut allocs: Vec<(u128, u8)> = Vec::with_capacity(nalloc);
    for _ in 0..nalloc {
        let rir = weighted(&mut rng, &rirs);
        let len = weighted(&mut rng, &[(29u8, 3), (30, 1), (31, 1), (32, 10)]);
        allocs.push((in_block(&mut rng, rir) & mask(len), len));
    }
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut spill = 0usize;
    for (len, count) in counts(n, V6_SHARES, 48) {
        let usable: Vec<(u128, u8)> = allocs.iter().copied().filter(|a| a.1 <= len).collect();
        let mut made = 0;
        let mut tries = 0usize;
        while made < count && tries < count * 20 + 100 {
            tries += 1;
            let block = if !usable.is_empty() && rng.random_range(0..10) < 9 {
                usable[rng.random_range(0..usable.len())]
            } else {
                weighted(&mut rng, &rirs)
            };
            let bits = in_block(&mut rng, block) & mask(len);
            if seen.insert((bits, len)) {
                let p = Ipv6Prefix::new(Ipv6Addr::from(bits), len).expect("masked prefix");
                out.push((p, rng.random_range(0..NEXT_HOPS)));
                made += 1;
            }
        }
        spill += count - made;
    }
    while spill > 0 {
        let block = allocs[rng.random_range(0..allocs.len())];
        let bits = in_block(&mut rng, block) & mask(48);
        if seen.insert((bits, 48)) {
            let p = Ipv6Prefix::new(Ipv6Addr::from(bits), 48).expect("masked prefix");
            out.push((p, rng.random_range(0..NEXT_HOPS)));
            spill -= 1;
        }
    }
    out.shuffle(&mut rng);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_is_deterministic_unique_and_shaped() {
        let a = synthetic_v4(20_000, 7);
        assert_eq!(a, synthetic_v4(20_000, 7));
        assert_ne!(a, synthetic_v4(20_000, 8));
        assert_eq!(a.len(), 20_000);
        let set: HashSet<_> = a.iter().map(|r| r.0).collect();
        assert_eq!(set.len(), a.len());
        let n24 = a.iter().filter(|r| r.0.len() == 24).count();
        assert!((11_000..13_500).contains(&n24), "{n24} /24s");
        for (p, v) in &a {
            let first = p.addr().octets()[0];
            assert!((1..=223).contains(&first), "{p}");
            assert!(*v < NEXT_HOPS);
        }
        // Clustered: most /24s lie inside a shorter route.
        let short: Vec<Ipv4Prefix> = a.iter().map(|r| r.0).filter(|p| p.len() < 24).collect();
        let nested = a
            .iter()
            .filter(|r| r.0.len() == 24)
            .take(500)
            .filter(|r| short.iter().any(|s| s.covers(&r.0)))
            .count();
        assert!(nested > 200, "{nested} of 500 /24s nested");
    }

    #[test]
    fn v6_is_deterministic_unique_and_shaped() {
        let a = synthetic_v6(10_000, 7);
        assert_eq!(a, synthetic_v6(10_000, 7));
        assert_eq!(a.len(), 10_000);
        let set: HashSet<_> = a.iter().map(|r| r.0).collect();
        assert_eq!(set.len(), a.len());
        let n48 = a.iter().filter(|r| r.0.len() == 48).count();
        assert!((4_500..5_500).contains(&n48), "{n48} /48s");
        for (p, _) in &a {
            let top = p.addr().segments()[0];
            assert!(top == 0x2001 || (0x2400..0x2d00).contains(&top), "{p}");
        }
    }
}
