//! An established TCP connection allocates nothing per segment.
//!
//! A counting global allocator wraps the system one; after a warm-up transfer (buffers,
//! queues and tables at their working size), 8 MB more go from one stack to another
//! (segments built from the send ring, parsed, reassembled, acknowledged, timers
//! scheduled) and the allocation count must not move.
#![allow(unsafe_code)] // The counting global allocator needs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; the counter is a thread-local Cell with a
// const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

use stack::addr::Ipv4Cidr;
use stack::wire::EthernetAddress;
use stack::{
    FramePool, Instant, InterfaceConfig, PoolConfig, PortId, SocketError, Stack, StackConfig,
};

fn host(name: &str, ip: &str, mac: u8) -> Stack {
    let pool = FramePool::with_frames(4096, PoolConfig::default()).unwrap();
    let mut s = Stack::new(StackConfig::host(name), pool, u64::from(mac));
    let port = InterfaceConfig::new(name, EthernetAddress([2, 0, 0, 0, 0, mac]))
        .with_ipv4(ip.parse::<Ipv4Cidr>().unwrap());
    s.add_port(port).unwrap();
    s
}

#[test]
fn tcp_transfer_allocates_nothing_per_segment() {
    transfer(0);
}

/// Loss recovery too (RFC 6675: the SACK scoreboard, pipe, retransmissions of holes;
/// and the out-of-order reassembly on the other side) allocates nothing: every 97th
/// frame from the sender is lost.
#[test]
fn tcp_loss_recovery_allocates_nothing_per_segment() {
    transfer(97);
}

/// A 2 MB warm-up then 8 MB from a to b, losing every `drop_every`th frame from a (none
/// for 0); the 8 MB must not allocate.
fn transfer(drop_every: usize) {
    let mut a = host("a", "10.0.0.1/24", 1);
    let mut b = host("b", "10.0.0.2/24", 2);
    let p = PortId(0);
    let mut now = Instant::from_secs(1);
    let server = "10.0.0.2:80".parse().unwrap();
    let l = b.tcp_listen(server, 4).unwrap();
    let c = a.tcp_connect(now, server, None).unwrap();
    let mut frames = Vec::with_capacity(4096);
    let chunk = vec![7u8; 64 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let mut s = None;
    let mut seen = 0usize;
    let mut recovering = 0usize;
    let mut run = |bytes: usize, now: &mut Instant| {
        let (mut sent, mut got) = (0, 0);
        while got < bytes {
            *now += stack::Duration::from_micros(100);
            if s.is_none() {
                s = b.tcp_accept(l);
            }
            if sent < bytes && s.is_some() {
                sent += a
                    .tcp_send(*now, c, &chunk[..(bytes - sent).min(chunk.len())])
                    .unwrap();
            }
            a.drain_tx(p, &mut frames, usize::MAX);
            if drop_every > 0 {
                frames.retain(|_| {
                    seen += 1;
                    !seen.is_multiple_of(drop_every)
                });
            }
            b.receive_batch(*now, p, &mut frames);
            frames.clear();
            if let Some(s) = s {
                loop {
                    match b.tcp_recv(s, &mut sink) {
                        Ok(0) | Err(SocketError::WouldBlock) => break,
                        Ok(n) => got += n,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            b.drain_tx(p, &mut frames, usize::MAX);
            a.receive_batch(*now, p, &mut frames);
            frames.clear();
            a.poll(*now);
            b.poll(*now);
            recovering += usize::from(a.tcp_connection(c).unwrap().in_recovery());
        }
    };
    run(2 << 20, &mut now);
    let before = allocs();
    run(8 << 20, &mut now);
    assert_eq!(allocs() - before, 0, "allocations while 8 MB flowed");
    assert_eq!(
        drop_every > 0,
        recovering > 0,
        "recovery ran when frames were lost"
    );
}
