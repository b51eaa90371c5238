//! Criterion benches of route lookup: our Poptrie ([`Lpm4`]) batched and one at a time
//! against the `poptrie` crate, on a 100k-route and a full (950k) synthetic IPv4 table,
//! with uniformly random destinations. `dpbench fastpath` is the side-by-side figure of
//! record; this is for quick comparisons while tuning.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bench::tables::synthetic_v4;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use poptrie::Poptrie;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stack::route::lpm::Lpm4;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lookups per iteration: enough distinct destinations that the table's lines are not
/// all cached between iterations.
const N: usize = 1 << 20;

fn lookups(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(3);
    let addrs: Vec<Ipv4Addr> = (0..N)
        .map(|_| Ipv4Addr::from(rng.random::<u32>()))
        .collect();
    let keys: Vec<u32> = addrs.iter().map(|&a| u32::from(a)).collect();
    let mut g = c.benchmark_group("lpm_v4");
    g.throughput(Throughput::Elements(N as u64));
    for routes in [100_000usize, 950_000] {
        let table = synthetic_v4(routes, 1);
        let ours: Lpm4 = table.iter().copied().collect();
        let pop: Poptrie<(u32, u8), u32> = table
            .iter()
            .map(|&(p, v)| ((p.bits(), p.len()), v))
            .collect();
        g.bench_with_input(
            BenchmarkId::new("ours_batch", routes),
            &addrs,
            |b, addrs| {
                let mut out = vec![None; 256];
                b.iter(|| {
                    let mut sum = 0u64;
                    for chunk in addrs.chunks(256) {
                        ours.lookup_batch(chunk, &mut out);
                        sum += out[..chunk.len()]
                            .iter()
                            .map(|v| u64::from(v.unwrap_or(0)))
                            .sum::<u64>();
                    }
                    black_box(sum)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("ours_single", routes),
            &addrs,
            |b, addrs| {
                b.iter(|| {
                    black_box(
                        addrs
                            .iter()
                            .map(|&a| u64::from(ours.lookup(a).unwrap_or(0)))
                            .sum::<u64>(),
                    )
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("poptrie_crate", routes),
            &keys,
            |b, keys| {
                b.iter(|| {
                    black_box(
                        keys.iter()
                            .map(|&k| u64::from(pop.lookup(k).copied().unwrap_or(0)))
                            .sum::<u64>(),
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
