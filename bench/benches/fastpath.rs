//! Criterion: the forwarding fast path, a batch of 64 64-byte IPv4 packets through a
//! router stack (checks, batched lookup, neighbor, rewrite, TX queue), on tables of one
//! route, 100,000 routes and a full synthetic Internet table. Unlike `dpbench fastpath`,
//! the timed part here also returns the transmitted frames to the pool.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stack::{Frame, PortId};

use bench::forward::{destinations, frame_bytes, router, BATCH};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn forwarding(c: &mut Criterion) {
    let full = bench::tables::synthetic_v4(950_000, 1);
    let mid: Vec<_> = full.iter().step_by(9).copied().collect();
    let one = vec![("0.0.0.0/0".parse().expect("default route"), 0u32)];
    let mut g = c.benchmark_group("forward_ipv4_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, table) in [
        ("1_route", &one),
        ("100k_routes", &mid),
        ("950k_routes", &full),
    ] {
        let (mut r, p0) = router(table).expect("router");
        let pool = r.pool().clone();
        let dsts = destinations(&mid, 65_536, 3);
        let templates: Vec<[u8; 60]> = dsts
            .iter()
            .enumerate()
            .map(|(i, d)| frame_bytes(*d, i as u16))
            .collect();
        let mut next = 0usize;
        let mut tx: Vec<Frame> = Vec::with_capacity(BATCH * 2);
        let now = stack::Instant::from_secs(1);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let mut rx = Vec::with_capacity(BATCH);
                    for _ in 0..BATCH {
                        let mut f = pool.alloc().expect("pool");
                        f.append(60)
                            .expect("room")
                            .copy_from_slice(&templates[next]);
                        next = (next + 1) % templates.len();
                        rx.push(f);
                    }
                    rx
                },
                |rx| {
                    r.receive_batch(now, p0, rx);
                    r.drain_tx(PortId(1), &mut tx, usize::MAX);
                    black_box(&tx);
                    tx.clear();
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
