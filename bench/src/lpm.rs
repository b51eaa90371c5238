//! The LPM part of `dpbench fastpath`: our Poptrie ([`Lpm4`]/[`Lpm6`]) against the
//! `poptrie` and `prefix-trie` crates, side by side on the same synthetic full table and
//! the same destinations.
//!
//! For each family: bulk-build time, lookup rate (median of `--rounds`; ours batched and
//! one at a time, the crates one at a time, as they have no batch call), agreement of all
//! on a sample, memory, and the cost of one insert plus remove on the full table.
//!
//! Destinations: IPv4, uniformly random 32-bit addresses (the workload; about
//! 13 % fall outside 1.0.0.0-223.255.255.255 and most of the rest in routed space).
//! IPv6, a random address inside a random route of the table, since uniformly random
//! 128-bit addresses would almost all miss every route at the first step.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use poptrie::Poptrie;
use prefix_trie::PrefixMap;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use stack::route::lpm::{Lpm4, Lpm6};

use crate::tables::{synthetic_v4, synthetic_v6};

/// Options of the LPM measurement (flattened into `dpbench fastpath`).
#[derive(Debug, Clone, clap::Args)]
pub struct LpmArgs {
    /// IPv4 routes in the synthetic table.
    #[arg(long, default_value_t = 950_000)]
    pub routes_v4: usize,
    /// IPv6 routes in the synthetic table.
    #[arg(long, default_value_t = 200_000)]
    pub routes_v6: usize,
    /// Timed rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Random IPv4 destinations per round (IPv6: a quarter of this).
    #[arg(long, default_value_t = 16 << 20)]
    pub lookups: usize,
    /// Insert+remove pairs timed for the update cost.
    #[arg(long, default_value_t = 2000)]
    pub updates: usize,
    /// Seed of the tables and destinations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Default for LpmArgs {
    fn default() -> Self {
        Self {
            routes_v4: 950_000,
            routes_v6: 200_000,
            rounds: 5,
            lookups: 16 << 20,
            updates: 2000,
            seed: 1,
        }
    }
}

pub mod counting {
    #![allow(unsafe_code)]
    //! A global allocator wrapper that counts live heap bytes, so that table sizes can be
    //! measured for crates that do not report them: the bytes a `clone()` adds.

    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    /// Wraps an allocator and counts the bytes live through it.
    pub struct Counting<A>(pub A);

    // SAFETY: every call is forwarded unchanged to the wrapped allocator, which upholds
    // the `GlobalAlloc` contract; the counters are only statistics.
    unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ACTIVE.store(true, Ordering::Relaxed);
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `alloc` is passed on as is.
            unsafe { self.0.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: `ptr` came from `self.0` with this layout (the caller's contract).
            unsafe { self.0.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ACTIVE.store(true, Ordering::Relaxed);
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `alloc_zeroed` is passed on as is.
            unsafe { self.0.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            // SAFETY: the caller's contract for `realloc` is passed on as is.
            unsafe { self.0.realloc(ptr, layout, new_size) }
        }
    }

    /// Live heap bytes, or `None` when the global allocator does not count.
    pub fn live() -> Option<usize> {
        ACTIVE
            .load(Ordering::Relaxed)
            .then(|| LIVE.load(Ordering::Relaxed))
    }

    /// The heap bytes a clone of `t` occupies (`None` without a counting allocator).
    pub fn clone_bytes<T: Clone>(t: &T) -> Option<usize> {
        let before = live()?;
        let c = t.clone();
        let after = live()?;
        drop(c);
        Some(after.saturating_sub(before))
    }
}

/// The median of `xs` (sorted in place).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Million lookups per second of `f` over `rounds` after one warm-up run: the median,
/// slowest and fastest round. `f` performs `n` lookups and returns a checksum so that
/// none is optimised away.
/// Our batched and single lookup rates (million lookups per second) over `addrs`.
fn ours_rates<A: Copy>(
    rounds: usize,
    addrs: &[A],
    batch: impl Fn(&[A], &mut [Option<u32>]),
    single: impl Fn(A) -> Option<u32>,
) -> (Rate, Rate) {
    let n = addrs.len();
    let b = mlps(rounds, n, || {
        let mut out = [None; 256];
        let mut sum = 0u64;
        for c in addrs.chunks(256) {
            batch(c, &mut out);
            sum += out[..c.len()]
                .iter()
                .map(|v| u64::from(v.unwrap_or(0)))
                .sum::<u64>();
        }
        sum
    });
    let s = mlps(rounds, n, || {
        addrs
            .iter()
            .map(|&a| u64::from(single(a).unwrap_or(0)))
            .sum()
    });
    (b, s)
}

/// Up to `count` prefixes of `generated` that `routes` does not hold yet.
fn fresh_prefixes<P: Copy + Eq + std::hash::Hash>(
    routes: &[(P, u32)],
    generated: Vec<(P, u32)>,
    count: usize,
) -> Vec<P> {
    let present: std::collections::HashSet<P> = routes.iter().map(|r| r.0).collect();
    generated
        .into_iter()
        .map(|r| r.0)
        .filter(|p| !present.contains(p))
        .take(count)
        .collect()
}

fn mlps(rounds: usize, n: usize, mut f: impl FnMut() -> u64) -> Rate {
    black_box(f());
    let mut r: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            n as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    let med = median(&mut r);
    Rate {
        median: med,
        min: r[0],
        max: r[r.len() - 1],
    }
}

/// Lookup rates over the rounds, in million lookups per second.
#[derive(Debug, Clone, Copy)]
struct Rate {
    median: f64,
    min: f64,
    max: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} ({:.0}-{:.0})", self.median, self.min, self.max)
    }
}

/// Milliseconds `f` takes, and its result.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64() * 1e3)
}

/// Microseconds per call of `f` over `items`: (mean, median, max).
fn per_item<T: Copy>(items: &[T], mut f: impl FnMut(T)) -> (f64, f64, f64) {
    let mut us: Vec<f64> = items
        .iter()
        .map(|&x| {
            let t = Instant::now();
            f(x);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    let max = us.iter().copied().fold(0.0, f64::max);
    (mean, median(&mut us), max)
}

fn mib(b: usize) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn opt_mib(b: Option<usize>) -> String {
    b.map_or_else(|| "n/a".into(), mib)
}

/// One row of the results table.
struct Row {
    name: &'static str,
    build_ms: f64,
    batch: Option<Rate>,
    single: Rate,
    bytes: Option<usize>,
    note: String,
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("{title}");
    println!("  table         build ms        batch Mlk/s       single Mlk/s     memory  note");
    for r in rows {
        let batch = r.batch.map_or_else(|| "-".into(), |b| b.to_string());
        println!(
            "  {:<12} {:>9.1} {:>18} {:>18} {:>10}  {}",
            r.name,
            r.build_ms,
            batch,
            r.single.to_string(),
            opt_mib(r.bytes),
            r.note
        );
    }
}

/// The best of the reference rows: (name, rate).
fn best_ref(rows: &[Row]) -> (&'static str, f64) {
    rows.iter()
        .filter(|r| r.name != "ours")
        .map(|r| (r.name, r.single.median))
        .fold(("none", 0.0), |a, b| if b.1 > a.1 { b } else { a })
}

/// Runs the LPM measurement, prints a readable table and returns the figures for the
/// JSON summary.
pub fn run(args: &LpmArgs) -> Map<String, Value> {
    let mut m = Map::new();
    v4(args, &mut m);
    v6(args, &mut m);
    m
}

fn v4(args: &LpmArgs, m: &mut Map<String, Value>) {
    let (routes, gen_ms) = timed(|| synthetic_v4(args.routes_v4, args.seed));
    let mut rng = SmallRng::seed_from_u64(args.seed ^ 0xadd2);
    let addrs: Vec<Ipv4Addr> = (0..args.lookups)
        .map(|_| Ipv4Addr::from(rng.random::<u32>()))
        .collect();
    let keys: Vec<u32> = addrs.iter().map(|&a| u32::from(a)).collect();
    println!(
        "IPv4: {} routes (generated in {gen_ms:.0} ms), {} random destinations, {} rounds",
        routes.len(),
        addrs.len(),
        args.rounds
    );

    let (ours, ours_ms) = timed(|| routes.iter().copied().collect::<Lpm4>());
    let (pop, pop_ms) = timed(|| {
        routes
            .iter()
            .map(|&(p, v)| ((p.bits(), p.len()), v))
            .collect::<Poptrie<(u32, u8), u32>>()
    });
    let (pt, pt_ms) = timed(|| {
        routes
            .iter()
            .map(|&(p, v)| ((p.bits(), p.len()), v))
            .collect::<PrefixMap<(u32, u8), u32>>()
    });

    // Agreement on a sample.
    let sample = addrs.len().min(1 << 20);
    let mut batch = vec![None; sample];
    ours.lookup_batch(&addrs[..sample], &mut batch);
    let mut disagree = 0usize;
    for (i, &a) in addrs[..sample].iter().enumerate() {
        let k = keys[i];
        let want = ours.lookup(a);
        let p = pop.lookup(k).copied();
        let t = pt.get_lpm(&(k, 32)).map(|(_, &v)| v);
        if batch[i] != want || p != want || t != want {
            if disagree < 5 {
                eprintln!("IPv4 disagreement at {a}: ours {want:?} batch {:?} poptrie {p:?} prefix-trie {t:?}", batch[i]);
            }
            disagree += 1;
        }
    }
    let hits = batch.iter().filter(|v| v.is_some()).count();
    println!(
        "  agreement on {sample} destinations: {}; {:.1} % of them match a route",
        if disagree == 0 {
            "all agree".to_string()
        } else {
            format!("{disagree} DISAGREE")
        },
        100.0 * hits as f64 / sample as f64
    );

    let n = addrs.len();
    let rounds = args.rounds;
    let (ours_batch, ours_single) = ours_rates(
        rounds,
        &addrs,
        |c, out| ours.lookup_batch(c, out),
        |a| ours.lookup(a),
    );
    let pop_single = mlps(rounds, n, || {
        keys.iter()
            .map(|&k| u64::from(pop.lookup(k).copied().unwrap_or(0)))
            .sum()
    });
    let pt_single = mlps(rounds, n, || {
        keys.iter()
            .map(|&k| u64::from(pt.get_lpm(&(k, 32)).map_or(0, |(_, &v)| v)))
            .sum()
    });

    // Memory: ours as reported, everyone's as the heap bytes of a clone.
    let ours_clone = counting::clone_bytes(&ours);
    let pop_bytes = counting::clone_bytes(&pop);
    let pt_bytes = counting::clone_bytes(&pt);

    // Updates on the full table: routes of the same shape that are not in it yet.
    let fresh = fresh_prefixes(
        &routes,
        synthetic_v4(args.updates * 2 + 100, args.seed ^ 0x0bad),
        args.updates,
    );
    let mut ours_u = ours.clone();
    let (upd_mean, upd_median, upd_max) = per_item(&fresh, |p| {
        ours_u.insert(p, 7);
        ours_u.remove(p);
    });
    let mut pop_u = pop.clone();
    let pop_fresh = &fresh[..fresh.len().min(20)];
    let (pop_upd, _, _) = per_item(pop_fresh, |p| {
        pop_u.insert((p.bits(), p.len()), 7);
        pop_u.remove((p.bits(), p.len()));
    });
    let mut pt_u = pt.clone();
    let (pt_upd, _, _) = per_item(&fresh, |p| {
        pt_u.insert((p.bits(), p.len()), 7);
        pt_u.remove(&(p.bits(), p.len()));
    });
    drop((ours_u, pop_u, pt_u));

    let rows = [
        Row {
            name: "ours",
            build_ms: ours_ms,
            batch: Some(ours_batch),
            single: ours_single,
            bytes: Some(ours.memory_bytes()),
            note: format!(
                "lookup structure; RIB {} more (clone: {})",
                mib(ours.rib_memory_bytes()),
                opt_mib(ours_clone)
            ),
        },
        Row {
            name: "poptrie",
            build_ms: pop_ms,
            batch: None,
            single: pop_single,
            bytes: pop_bytes,
            note: "poptrie 0.2, heap bytes of a clone".into(),
        },
        Row {
            name: "prefix-trie",
            build_ms: pt_ms,
            batch: None,
            single: pt_single,
            bytes: pt_bytes,
            note: "prefix-trie 0.10, heap bytes of a clone".into(),
        },
    ];
    print_rows(
        "  IPv4 lookups (million lookups per second: median of the rounds, slowest-fastest):",
        &rows,
    );
    println!(
        "  IPv4 update (insert + remove of a new route, {} routes of the table's shape): \
         ours mean {upd_mean:.2} us, median {upd_median:.2} us, max {upd_max:.0} us; \
         poptrie mean {pop_upd:.0} us ({} routes); prefix-trie mean {pt_upd:.2} us",
        fresh.len(),
        pop_fresh.len()
    );
    println!("  ours after updates: {:?}", ours);
    let (ref_name, ref_rate) = best_ref(&rows);
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    put("routes_v4", json!(routes.len()));
    put("lpm_v4_mlookups_per_s", json!(round1(ours_batch.median)));
    put(
        "lpm_v4_single_mlookups_per_s",
        json!(round1(ours_single.median)),
    );
    put(
        "lpm_v4_mlookups_per_s_range",
        json!([round1(ours_batch.min), round1(ours_batch.max)]),
    );
    put("lpm_v4_ref_mlookups_per_s", json!(round1(ref_rate)));
    put("lpm_v4_ref_crate", json!(ref_name));
    put(
        "lpm_v4_poptrie_mlookups_per_s",
        json!(round1(pop_single.median)),
    );
    put(
        "lpm_v4_prefix_trie_mlookups_per_s",
        json!(round1(pt_single.median)),
    );
    put("lpm_v4_bytes", json!(ours.memory_bytes()));
    put("lpm_v4_rib_bytes", json!(ours.rib_memory_bytes()));
    put("lpm_v4_poptrie_bytes", json!(pop_bytes));
    put("lpm_v4_prefix_trie_bytes", json!(pt_bytes));
    put("lpm_v4_build_ms", json!(round1(ours_ms)));
    put("lpm_v4_poptrie_build_ms", json!(round1(pop_ms)));
    put("lpm_v4_prefix_trie_build_ms", json!(round1(pt_ms)));
    put("lpm_update_us", json!(round2(upd_mean)));
    put("lpm_update_median_us", json!(round2(upd_median)));
    put("lpm_update_max_us", json!(round1(upd_max)));
    put("lpm_v4_poptrie_update_us", json!(round1(pop_upd)));
    put("lpm_v4_prefix_trie_update_us", json!(round2(pt_upd)));
    put("lpm_v4_agree", json!(disagree == 0));
}

fn v6(args: &LpmArgs, m: &mut Map<String, Value>) {
    let (routes, gen_ms) = timed(|| synthetic_v6(args.routes_v6, args.seed));
    let mut rng = SmallRng::seed_from_u64(args.seed ^ 0xadd6);
    let count = (args.lookups / 4).max(1);
    let addrs: Vec<Ipv6Addr> = (0..count)
        .map(|_| {
            let (p, _) = routes[rng.random_range(0..routes.len())];
            let host = rng.random::<u128>() & !stack::addr::Ipv6Prefix::mask_bits(p.len());
            Ipv6Addr::from(p.bits() | host)
        })
        .collect();
    let keys: Vec<u128> = addrs.iter().map(|&a| u128::from(a)).collect();
    println!(
        "IPv6: {} routes (generated in {gen_ms:.0} ms), {} destinations inside random routes",
        routes.len(),
        addrs.len()
    );
    let (ours, ours_ms) = timed(|| routes.iter().copied().collect::<Lpm6>());
    let (pop, pop_ms) = timed(|| {
        routes
            .iter()
            .map(|&(p, v)| ((p.bits(), p.len()), v))
            .collect::<Poptrie<(u128, u8), u32>>()
    });
    let (pt, pt_ms) = timed(|| {
        routes
            .iter()
            .map(|&(p, v)| ((p.bits(), p.len()), v))
            .collect::<PrefixMap<(u128, u8), u32>>()
    });
    let sample = addrs.len().min(1 << 18);
    let mut batch = vec![None; sample];
    ours.lookup_batch(&addrs[..sample], &mut batch);
    let mut disagree = 0usize;
    for (i, &a) in addrs[..sample].iter().enumerate() {
        let k = keys[i];
        let want = ours.lookup(a);
        let p = pop.lookup(k).copied();
        let t = pt.get_lpm(&(k, 128)).map(|(_, &v)| v);
        if batch[i] != want || p != want || t != want {
            if disagree < 5 {
                eprintln!("IPv6 disagreement at {a}: ours {want:?} batch {:?} poptrie {p:?} prefix-trie {t:?}", batch[i]);
            }
            disagree += 1;
        }
    }
    println!(
        "  agreement on {sample} destinations: {}",
        if disagree == 0 {
            "all agree".to_string()
        } else {
            format!("{disagree} DISAGREE")
        }
    );
    let n = addrs.len();
    let rounds = args.rounds;
    let (ours_batch, ours_single) = ours_rates(
        rounds,
        &addrs,
        |c, out| ours.lookup_batch(c, out),
        |a| ours.lookup(a),
    );
    let pop_single = mlps(rounds, n, || {
        keys.iter()
            .map(|&k| u64::from(pop.lookup(k).copied().unwrap_or(0)))
            .sum()
    });
    let pt_single = mlps(rounds, n, || {
        keys.iter()
            .map(|&k| u64::from(pt.get_lpm(&(k, 128)).map_or(0, |(_, &v)| v)))
            .sum()
    });
    let ours_clone = counting::clone_bytes(&ours);
    let pop_bytes = counting::clone_bytes(&pop);
    let pt_bytes = counting::clone_bytes(&pt);
    let fresh = fresh_prefixes(
        &routes,
        synthetic_v6(args.updates * 2 + 100, args.seed ^ 0x0bad),
        args.updates,
    );
    let mut ours_u = ours.clone();
    let (upd_mean, upd_median, upd_max) = per_item(&fresh, |p| {
        ours_u.insert(p, 7);
        ours_u.remove(p);
    });
    drop(ours_u);
    let rows = [
        Row {
            name: "ours",
            build_ms: ours_ms,
            batch: Some(ours_batch),
            single: ours_single,
            bytes: Some(ours.memory_bytes()),
            note: format!(
                "lookup structure; RIB {} more (clone: {})",
                mib(ours.rib_memory_bytes()),
                opt_mib(ours_clone)
            ),
        },
        Row {
            name: "poptrie",
            build_ms: pop_ms,
            batch: None,
            single: pop_single,
            bytes: pop_bytes,
            note: "poptrie 0.2, heap bytes of a clone".into(),
        },
        Row {
            name: "prefix-trie",
            build_ms: pt_ms,
            batch: None,
            single: pt_single,
            bytes: pt_bytes,
            note: "prefix-trie 0.10, heap bytes of a clone".into(),
        },
    ];
    print_rows(
        "  IPv6 lookups (million lookups per second, as above):",
        &rows,
    );
    println!(
        "  IPv6 update (insert + remove, {} routes): ours mean {upd_mean:.2} us, median \
         {upd_median:.2} us, max {upd_max:.0} us",
        fresh.len()
    );
    let (ref_name, ref_rate) = best_ref(&rows);
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    put("routes_v6", json!(routes.len()));
    put("lpm_v6_mlookups_per_s", json!(round1(ours_batch.median)));
    put(
        "lpm_v6_single_mlookups_per_s",
        json!(round1(ours_single.median)),
    );
    put("lpm_v6_ref_mlookups_per_s", json!(round1(ref_rate)));
    put("lpm_v6_ref_crate", json!(ref_name));
    put(
        "lpm_v6_mlookups_per_s_range",
        json!([round1(ours_batch.min), round1(ours_batch.max)]),
    );
    put(
        "lpm_v6_poptrie_mlookups_per_s",
        json!(round1(pop_single.median)),
    );
    put(
        "lpm_v6_prefix_trie_mlookups_per_s",
        json!(round1(pt_single.median)),
    );
    put("lpm_v6_bytes", json!(ours.memory_bytes()));
    put("lpm_v6_rib_bytes", json!(ours.rib_memory_bytes()));
    put("lpm_v6_poptrie_bytes", json!(pop_bytes));
    put("lpm_v6_prefix_trie_bytes", json!(pt_bytes));
    put("lpm_v6_build_ms", json!(round1(ours_ms)));
    put("lpm_v6_update_us", json!(round2(upd_mean)));
    put("lpm_v6_agree", json!(disagree == 0));
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
