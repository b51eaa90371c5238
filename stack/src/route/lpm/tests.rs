//! Tests of [`Lpm4`] and [`Lpm6`] against a naive reference: a list of routes scanned for
//! the longest match.

use super::*;
use proptest::prelude::*;

/// A tiny deterministic generator (splitmix64) so the tests need no `rand`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// The reference: routes scanned for the longest match.
struct Naive<P> {
    routes: Vec<(P, u32)>,
}

impl<P> Default for Naive<P> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

trait Pfx: Copy + PartialEq + core::fmt::Debug {
    type A: Copy + core::fmt::Debug;
    fn contains_addr(&self, a: Self::A) -> bool;
    fn plen(&self) -> u8;
}

impl Pfx for Ipv4Prefix {
    type A = Ipv4Addr;
    fn contains_addr(&self, a: Ipv4Addr) -> bool {
        self.contains(a)
    }
    fn plen(&self) -> u8 {
        self.len()
    }
}

impl Pfx for Ipv6Prefix {
    type A = Ipv6Addr;
    fn contains_addr(&self, a: Ipv6Addr) -> bool {
        self.contains(a)
    }
    fn plen(&self) -> u8 {
        self.len()
    }
}

impl<P: Pfx> Naive<P> {
    fn insert(&mut self, p: P, v: u32) -> Option<u32> {
        for r in &mut self.routes {
            if r.0 == p {
                return Some(core::mem::replace(&mut r.1, v));
            }
        }
        self.routes.push((p, v));
        None
    }
    fn remove(&mut self, p: P) -> Option<u32> {
        let i = self.routes.iter().position(|r| r.0 == p)?;
        Some(self.routes.swap_remove(i).1)
    }
    fn lookup(&self, a: P::A) -> Option<u32> {
        self.routes
            .iter()
            .filter(|r| r.0.contains_addr(a))
            .max_by_key(|r| r.0.plen())
            .map(|r| r.1)
    }
}

fn p4(bits: u32, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::truncating(Ipv4Addr::from(bits), len).unwrap()
}

fn p6(bits: u128, len: u8) -> Ipv6Prefix {
    Ipv6Prefix::truncating(Ipv6Addr::from(bits), len).unwrap()
}

/// A random IPv4 route: clustered under a few bases so routes nest, all lengths.
fn rand_p4(rng: &mut Rng, bases: &[u32]) -> Ipv4Prefix {
    let base = bases[rng.below(bases.len() as u64) as usize];
    let len = match rng.below(10) {
        0 => rng.below(33) as u8,
        1..=2 => 16 + rng.below(17) as u8,
        3..=6 => 24,
        _ => 17 + rng.below(16) as u8,
    };
    // Keep the top bits of the base, randomise the rest.
    let keep = rng.below(20) as u32;
    let bits = (base & Ipv4Prefix::mask_bits(keep as u8))
        | (rng.next() as u32 & !Ipv4Prefix::mask_bits(keep as u8));
    p4(bits, len)
}

fn rand_p6(rng: &mut Rng, bases: &[u128]) -> Ipv6Prefix {
    let base = bases[rng.below(bases.len() as u64) as usize];
    let len = match rng.below(10) {
        0 => rng.below(129) as u8,
        1..=3 => 48,
        4 => 64 + rng.below(65) as u8,
        _ => 16 + rng.below(50) as u8,
    };
    let keep = 8 + rng.below(40) as u8;
    let bits = (base & Ipv6Prefix::mask_bits(keep)) | (rng.u128() & !Ipv6Prefix::mask_bits(keep));
    p6(bits, len)
}

/// Addresses worth checking: random ones, and around every route's first and last address.
fn probes4(rng: &mut Rng, routes: &[(Ipv4Prefix, u32)], random: usize) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = (0..random)
        .map(|_| Ipv4Addr::from(rng.next() as u32))
        .collect();
    out.extend([Ipv4Addr::from(0), Ipv4Addr::from(u32::MAX)]);
    for (p, _) in routes {
        let first = p.bits();
        let last = first | !Ipv4Prefix::mask_bits(p.len());
        for a in [
            first.wrapping_sub(1),
            first,
            first.wrapping_add(1),
            last.wrapping_sub(1),
            last,
            last.wrapping_add(1),
        ] {
            out.push(Ipv4Addr::from(a));
        }
        out.push(Ipv4Addr::from(
            first | (rng.next() as u32 & !Ipv4Prefix::mask_bits(p.len())),
        ));
    }
    out
}

fn probes6(rng: &mut Rng, routes: &[(Ipv6Prefix, u32)], random: usize) -> Vec<Ipv6Addr> {
    let mut out: Vec<Ipv6Addr> = (0..random).map(|_| Ipv6Addr::from(rng.u128())).collect();
    out.extend([Ipv6Addr::from(0), Ipv6Addr::from(u128::MAX)]);
    for (p, _) in routes {
        let first = p.bits();
        let last = first | !Ipv6Prefix::mask_bits(p.len());
        for a in [
            first.wrapping_sub(1),
            first,
            first.wrapping_add(1),
            last.wrapping_sub(1),
            last,
            last.wrapping_add(1),
        ] {
            out.push(Ipv6Addr::from(a));
        }
        out.push(Ipv6Addr::from(
            first | (rng.u128() & !Ipv6Prefix::mask_bits(p.len())),
        ));
    }
    out
}

fn check4(t: &Lpm4, n: &Naive<Ipv4Prefix>, probes: &[Ipv4Addr]) {
    let mut batch = vec![Some(12345); probes.len()];
    t.lookup_batch(probes, &mut batch);
    for (i, &a) in probes.iter().enumerate() {
        let want = n.lookup(a);
        assert_eq!(t.lookup(a), want, "lookup {a}");
        assert_eq!(batch[i], want, "lookup_batch {a}");
    }
    assert_eq!(t.len(), n.routes.len());
}

fn check6(t: &Lpm6, n: &Naive<Ipv6Prefix>, probes: &[Ipv6Addr]) {
    let mut batch = vec![Some(12345); probes.len()];
    t.lookup_batch(probes, &mut batch);
    for (i, &a) in probes.iter().enumerate() {
        let want = n.lookup(a);
        assert_eq!(t.lookup(a), want, "lookup {a}");
        assert_eq!(batch[i], want, "lookup_batch {a}");
    }
    assert_eq!(t.len(), n.routes.len());
}

#[test]
fn empty_table() {
    let t = Lpm4::new();
    assert_eq!(t.lookup(Ipv4Addr::new(1, 2, 3, 4)), None);
    assert!(t.is_empty());
    let mut out = [Some(1); 3];
    t.lookup_batch(
        &[
            Ipv4Addr::from(0),
            Ipv4Addr::from(7),
            Ipv4Addr::from(u32::MAX),
        ],
        &mut out,
    );
    assert_eq!(out, [None; 3]);
    let t6 = Lpm6::default();
    assert_eq!(t6.lookup(Ipv6Addr::LOCALHOST), None);
    assert_eq!(t6.iter().count(), 0);
}

#[test]
fn default_and_host_routes() {
    let mut t = Lpm4::new();
    assert_eq!(t.insert(Ipv4Prefix::default_route(), 7), None);
    assert_eq!(t.lookup(Ipv4Addr::new(8, 8, 8, 8)), Some(7));
    assert_eq!(t.lookup(Ipv4Addr::from(u32::MAX)), Some(7));
    let host: Ipv4Prefix = "192.0.2.33/32".parse().unwrap();
    t.insert(host, 9);
    t.insert("192.0.2.0/24".parse().unwrap(), 8);
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 2, 33)), Some(9));
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 2, 32)), Some(8));
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 2, 34)), Some(8));
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 3, 0)), Some(7));
    t.insert("255.255.255.255/32".parse().unwrap(), 1);
    t.insert("0.0.0.0/32".parse().unwrap(), 2);
    assert_eq!(t.lookup(Ipv4Addr::from(u32::MAX)), Some(1));
    assert_eq!(t.lookup(Ipv4Addr::from(u32::MAX - 1)), Some(7));
    assert_eq!(t.lookup(Ipv4Addr::from(0)), Some(2));
    assert_eq!(t.lookup(Ipv4Addr::from(1)), Some(7));
    assert_eq!(t.remove(Ipv4Prefix::default_route()), Some(7));
    assert_eq!(t.lookup(Ipv4Addr::new(8, 8, 8, 8)), None);
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 2, 33)), Some(9));
    assert_eq!(t.remove(host), Some(9));
    assert_eq!(t.remove(host), None);
    assert_eq!(t.lookup(Ipv4Addr::new(192, 0, 2, 33)), Some(8));
    assert_eq!(t.get("192.0.2.0/24".parse().unwrap()), Some(8));
    assert_eq!(t.get("192.0.2.0/25".parse().unwrap()), None);

    let mut t6 = Lpm6::new();
    t6.insert(Ipv6Prefix::default_route(), 1);
    let h: Ipv6Prefix = "2001:db8::1/128".parse().unwrap();
    t6.insert(h, 2);
    t6.insert("2001:db8::/127".parse().unwrap(), 3);
    t6.insert("2001:db8::/96".parse().unwrap(), 4);
    assert_eq!(t6.lookup("2001:db8::1".parse().unwrap()), Some(2));
    assert_eq!(t6.lookup("2001:db8::".parse().unwrap()), Some(3));
    assert_eq!(t6.lookup("2001:db8::2".parse().unwrap()), Some(4));
    assert_eq!(t6.lookup("2001:db9::".parse().unwrap()), Some(1));
    t6.insert(
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
            .parse()
            .unwrap(),
        5,
    );
    assert_eq!(t6.lookup(Ipv6Addr::from(u128::MAX)), Some(5));
    assert_eq!(t6.lookup(Ipv6Addr::from(u128::MAX - 1)), Some(1));
}

#[test]
fn values_of_every_size() {
    let mut t = Lpm4::new();
    let mut n = Naive::default();
    let vals = [
        0,
        1,
        (1 << 30) - 3,
        (1 << 30) - 2,
        (1 << 30) - 1,
        1 << 30,
        u32::MAX - 1,
        u32::MAX,
    ];
    let mut rng = Rng(5);
    let bases = [0x0a00_0000, 0xc000_0200];
    let mut routes = Vec::new();
    for i in 0..400 {
        let p = rand_p4(&mut rng, &bases);
        let v = vals[i % vals.len()];
        assert_eq!(t.insert(p, v), n.insert(p, v));
        routes.push((p, v));
    }
    let probes = probes4(&mut rng, &routes, 1000);
    check4(&t, &n, &probes);
    // Remove half, so escape entries are freed and reused.
    for (p, _) in routes.iter().step_by(2) {
        assert_eq!(t.remove(*p), n.remove(*p));
    }
    for (i, (p, _)) in routes.iter().enumerate().step_by(3) {
        let v = vals[(i + 3) % vals.len()];
        assert_eq!(t.insert(*p, v), n.insert(*p, v));
    }
    check4(&t, &n, &probes);
}

#[test]
fn random_v4_bulk_and_incremental() {
    let mut rng = Rng(1);
    let bases: Vec<u32> = (0..24).map(|_| rng.next() as u32).collect();
    let mut naive = Naive::default();
    let mut routes = Vec::new();
    for _ in 0..5000 {
        let p = rand_p4(&mut rng, &bases);
        let v = rng.below(300) as u32;
        naive.insert(p, v);
        routes.push((p, v));
    }
    naive.insert(Ipv4Prefix::default_route(), 999);
    routes.push((Ipv4Prefix::default_route(), 999));
    let probes = probes4(&mut rng, &routes[..1000], 4000);
    // Bulk build (duplicates keep their last value).
    let bulk: Lpm4 = routes.iter().copied().collect();
    check4(&bulk, &naive, &probes);
    // The same by repeated insert.
    let mut inc = Lpm4::new();
    for &(p, v) in &routes {
        inc.insert(p, v);
    }
    check4(&inc, &naive, &probes);
    assert_eq!(
        bulk.iter().collect::<Vec<_>>(),
        inc.iter().collect::<Vec<_>>()
    );
    for (p, v) in bulk.iter() {
        assert_eq!(bulk.get(p), Some(v));
    }
}

#[test]
fn random_v4_updates_then_lookups() {
    let mut rng = Rng(2);
    let bases: Vec<u32> = (0..8).map(|_| rng.next() as u32).collect();
    let mut naive: Naive<Ipv4Prefix> = Naive::default();
    let mut seed_routes = Vec::new();
    for _ in 0..3000 {
        let p = rand_p4(&mut rng, &bases);
        let v = rng.below(50) as u32;
        naive.insert(p, v);
        seed_routes.push((p, v));
    }
    let mut t: Lpm4 = seed_routes.iter().copied().collect();
    let wide = probes4(&mut rng, &seed_routes[..300], 1000);
    for step in 0..2000 {
        let op = rng.below(10);
        let p = if op < 5 || naive.routes.is_empty() {
            rand_p4(&mut rng, &bases)
        } else {
            naive.routes[rng.below(naive.routes.len() as u64) as usize].0
        };
        if op < 7 {
            let v = rng.below(50) as u32;
            assert_eq!(t.insert(p, v), naive.insert(p, v), "insert {p}");
        } else {
            assert_eq!(t.remove(p), naive.remove(p), "remove {p}");
        }
        // Re-lookup around the route just changed, and now and then everywhere.
        let local = probes4(&mut rng, &[(p, 0)], 4);
        check4(&t, &naive, &local);
        if step % 500 == 0 {
            check4(&t, &naive, &wide);
        }
    }
    check4(&t, &naive, &wide);
    let fresh: Lpm4 = t.iter().collect();
    check4(&fresh, &naive, &wide);
}

#[test]
fn short_routes_and_compaction() {
    // Many short routes over many long ones: every short update rebuilds subtrees, which
    // piles up garbage and forces compactions.
    let mut rng = Rng(3);
    let bases: Vec<u32> = (0..4).map(|_| rng.next() as u32).collect();
    let mut naive: Naive<Ipv4Prefix> = Naive::default();
    let mut routes = Vec::new();
    for _ in 0..2000 {
        let p = rand_p4(&mut rng, &bases);
        let p = p4(p.bits(), p.len().max(19));
        let v = rng.below(20) as u32;
        naive.insert(p, v);
        routes.push((p, v));
    }
    let mut t: Lpm4 = routes.iter().copied().collect();
    let probes = probes4(&mut rng, &routes[..300], 1000);
    for i in 0..300 {
        let base = bases[i % bases.len()];
        let p = p4(base, 4 + rng.below(15) as u8);
        if rng.below(3) == 0 {
            assert_eq!(t.remove(p), naive.remove(p));
        } else {
            let v = rng.below(20) as u32;
            assert_eq!(t.insert(p, v), naive.insert(p, v));
        }
        if i % 50 == 0 {
            check4(&t, &naive, &probes);
        }
    }
    check4(&t, &naive, &probes);
    let [.., rebuilds] = t.table.stats();
    assert!(rebuilds > 0, "no compaction ran: {t:?}");
}

#[test]
fn random_v6() {
    let mut rng = Rng(4);
    let bases: Vec<u128> = (0..16)
        .map(|i| (0x2001u128 + i * 0x100) << 112 | (rng.u128() >> 16))
        .collect();
    let mut naive: Naive<Ipv6Prefix> = Naive::default();
    let mut routes = Vec::new();
    for _ in 0..4000 {
        let p = rand_p6(&mut rng, &bases);
        let v = rng.below(1000) as u32;
        naive.insert(p, v);
        routes.push((p, v));
    }
    let probes = probes6(&mut rng, &routes[..400], 1000);
    let mut t: Lpm6 = routes.iter().copied().collect();
    check6(&t, &naive, &probes);
    for step in 0..1000 {
        let p = if rng.below(2) == 0 {
            rand_p6(&mut rng, &bases)
        } else {
            naive.routes[rng.below(naive.routes.len() as u64) as usize].0
        };
        if rng.below(3) == 0 {
            assert_eq!(t.remove(p), naive.remove(p));
        } else {
            let v = rng.below(1000) as u32;
            assert_eq!(t.insert(p, v), naive.insert(p, v));
        }
        check6(&t, &naive, &probes6(&mut rng, &[(p, 0)], 2));
        if step % 500 == 0 {
            check6(&t, &naive, &probes);
        }
    }
    check6(&t, &naive, &probes);
}

#[test]
fn v6_longer_than_64() {
    let mut t = Lpm6::new();
    let base: u128 = 0x2001_0db8_0000_0000_1234_5678_9abc_def0;
    let mut naive: Naive<Ipv6Prefix> = Naive::default();
    for len in 60..=128u8 {
        let p = p6(base, len);
        t.insert(p, u32::from(len));
        naive.insert(p, u32::from(len));
    }
    let mut probes = Vec::new();
    for bit in 0..128 {
        probes.push(Ipv6Addr::from(base ^ (1u128 << bit)));
    }
    probes.push(Ipv6Addr::from(base));
    check6(&t, &naive, &probes);
    assert_eq!(t.lookup(Ipv6Addr::from(base)), Some(128));
    assert_eq!(t.lookup(Ipv6Addr::from(base ^ 1)), Some(127));
    assert_eq!(t.lookup(Ipv6Addr::from(base ^ (1 << 40))), Some(87));
}

#[test]
fn batch_of_odd_lengths() {
    let mut rng = Rng(6);
    let bases: Vec<u32> = (0..8).map(|_| rng.next() as u32).collect();
    let t: Lpm4 = (0..2000)
        .map(|_| (rand_p4(&mut rng, &bases), rng.below(9) as u32))
        .collect();
    for n in [0, 1, 15, 16, 17, 33] {
        let addrs: Vec<Ipv4Addr> = (0..n).map(|_| Ipv4Addr::from(rng.next() as u32)).collect();
        let mut out = vec![Some(77); n + 2];
        t.lookup_batch(&addrs, &mut out);
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(out[i], t.lookup(a));
        }
        assert_eq!(&out[n..], &[Some(77); 2]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matches_reference_v4(
        ops in prop::collection::vec((any::<u32>(), 0u8..=32, 0u32..8, any::<bool>()), 1..200),
        addrs in prop::collection::vec(any::<u32>(), 1..100),
    ) {
        let mut t = Lpm4::new();
        let mut n: Naive<Ipv4Prefix> = Naive::default();
        // Route addresses share the top byte with the probes half of the time.
        for (i, &(bits, len, v, ins)) in ops.iter().enumerate() {
            let bits = if i % 2 == 0 { bits } else { (addrs[i % addrs.len()] & 0xffff_0000) | (bits & 0xffff) };
            let p = p4(bits, len);
            if ins {
                prop_assert_eq!(t.insert(p, v), n.insert(p, v));
            } else {
                prop_assert_eq!(t.remove(p), n.remove(p));
            }
        }
        for &a in &addrs {
            let a = Ipv4Addr::from(a);
            prop_assert_eq!(t.lookup(a), n.lookup(a));
        }
        let bulk: Lpm4 = n.routes.iter().copied().collect();
        for &a in &addrs {
            let a = Ipv4Addr::from(a);
            prop_assert_eq!(bulk.lookup(a), n.lookup(a));
        }
    }

    #[test]
    fn matches_reference_v6(
        ops in prop::collection::vec((any::<u128>(), 0u8..=128, 0u32..8, any::<bool>()), 1..100),
        addrs in prop::collection::vec(any::<u128>(), 1..50),
    ) {
        let mut t = Lpm6::new();
        let mut n: Naive<Ipv6Prefix> = Naive::default();
        for (i, &(bits, len, v, ins)) in ops.iter().enumerate() {
            let bits = if i % 2 == 0 { bits } else { (addrs[i % addrs.len()] & !((1u128 << 80) - 1)) | (bits & ((1u128 << 80) - 1)) };
            let p = p6(bits, len);
            if ins {
                prop_assert_eq!(t.insert(p, v), n.insert(p, v));
            } else {
                prop_assert_eq!(t.remove(p), n.remove(p));
            }
        }
        for &a in &addrs {
            let a = Ipv6Addr::from(a);
            prop_assert_eq!(t.lookup(a), n.lookup(a));
        }
    }
}

#[test]
fn many_distinct_values_switch_to_wide_leaves() {
    // Disjoint /24s, so the expected answer of an address is its own route's value.
    let route = |i: u32| p4(0x0a00_0000 + (i << 8), 24);
    let value = |i: u32| {
        if i.is_multiple_of(3) {
            u32::MAX - i
        } else {
            i * 7
        }
    };
    let check = |t: &Lpm4, upto: u32| {
        for i in (0..upto).step_by(97) {
            let a = Ipv4Addr::from(route(i).bits() | 0x42);
            assert_eq!(t.lookup(a), Some(value(i)), "route {i}");
        }
        let mut out = vec![None; 64];
        let addrs: Vec<Ipv4Addr> = (0..64)
            .map(|i| Ipv4Addr::from(route(i).bits() | 1))
            .collect();
        t.lookup_batch(&addrs, &mut out);
        for i in 0..64 {
            assert_eq!(out[i as usize], Some(value(i)));
        }
    };
    // Grow past 65,535 distinct values one insert at a time.
    let mut t: Lpm4 = (0..65_000).map(|i| (route(i), value(i))).collect();
    assert!(!t.table.leaves.is_wide());
    check(&t, 65_000);
    for i in 65_000..66_000 {
        t.insert(route(i), value(i));
    }
    assert!(t.table.leaves.is_wide());
    check(&t, 66_000);
    for i in (0..66_000).step_by(2) {
        assert_eq!(t.remove(route(i)), Some(value(i)));
    }
    assert_eq!(t.lookup(Ipv4Addr::from(route(0).bits())), None);
    assert_eq!(t.lookup(Ipv4Addr::from(route(1).bits())), Some(value(1)));
    // A bulk build of as many values is wide from the start.
    let w: Lpm4 = (0..70_000).map(|i| (route(i), value(i))).collect();
    assert!(w.table.leaves.is_wide());
    check(&w, 70_000);
    // And a rebuild with few values left is narrow again.
    let n: Lpm4 = w.iter().filter(|(_, v)| v % 1000 == 0).collect();
    assert!(!n.table.leaves.is_wide());
}

#[test]
fn leaves_widen_from_bytes_to_u16() {
    let mut rng = Rng(9);
    let bases: Vec<u32> = (0..8).map(|_| rng.next() as u32).collect();
    let mut naive: Naive<Ipv4Prefix> = Naive::default();
    let mut routes = Vec::new();
    for i in 0..600 {
        let p = rand_p4(&mut rng, &bases);
        // Few distinct values at first, then more than 255.
        let v = if i < 300 { i % 7 } else { i };
        routes.push((p, v));
    }
    let mut t: Lpm4 = routes[..300].iter().copied().collect();
    for &(p, v) in &routes[..300] {
        naive.insert(p, v);
    }
    assert_eq!(t.table.leaves.width(), super::values::Width::Byte);
    let probes = probes4(&mut rng, &routes, 500);
    check4(&t, &naive, &probes);
    for &(p, v) in &routes[300..] {
        assert_eq!(t.insert(p, v), naive.insert(p, v));
    }
    assert_eq!(t.table.leaves.width(), super::values::Width::Narrow);
    check4(&t, &naive, &probes);
}

#[test]
fn extend_a_filled_table() {
    let mut rng = Rng(10);
    let bases: Vec<u32> = (0..8).map(|_| rng.next() as u32).collect();
    let routes: Vec<(Ipv4Prefix, u32)> = (0..2000)
        .map(|_| (rand_p4(&mut rng, &bases), rng.below(40) as u32))
        .collect();
    let mut naive: Naive<Ipv4Prefix> = Naive::default();
    for &(p, v) in &routes {
        naive.insert(p, v);
    }
    let mut t: Lpm4 = routes[..1000].iter().copied().collect();
    t.extend(routes[1000..1010].iter().copied());
    t.extend(routes[1010..].iter().copied());
    check4(&t, &naive, &probes4(&mut rng, &routes[..300], 1000));
}
