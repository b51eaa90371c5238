//! The forwarding path allocates nothing per packet after warm-up.
//!
//! A counting global allocator wraps the system one; one million 64-byte IPv4 packets
//! go through a router stack (parse, route lookup on a 10,000-route table, neighbor,
//! rewrite, transmit queue) and the allocation count must not move.
#![allow(unsafe_code)] // The counting global allocator needs it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use core::net::{IpAddr, Ipv4Addr};

use stack::addr::Ipv4Prefix;
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::udp::UdpPacket;
use stack::wire::{EthernetAddress, IpProtocol};
use stack::{
    Frame, FramePool, InterfaceConfig, IpPrefix, PoolConfig, RouteTarget, Stack, StackConfig,
};

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

const ROUTER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0]);

fn packet(frame: &mut Frame, dst: Ipv4Addr, sport: u16) {
    frame.reset();
    let d = frame.append(14 + 20 + 8 + 18).unwrap();
    d[..6].copy_from_slice(&ROUTER_MAC.0);
    d[6..12].copy_from_slice(&[2, 0, 0, 0, 9, 9]);
    d[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let repr = Ipv4Repr {
        src_addr: Ipv4Addr::new(198, 51, 100, 2),
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: 26,
        hop_limit: 64,
        dont_frag: true,
        ident: 0,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut d[14..]);
    repr.emit(&mut ip);
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp.set_src_port(sport);
    udp.set_dst_port(9);
    udp.set_len(26);
    udp.fill_checksum(IpAddr::V4(repr.src_addr), IpAddr::V4(dst));
}

#[test]
fn forwarding_one_million_packets_allocates_nothing() {
    let pool = FramePool::with_frames(1024, PoolConfig::default()).unwrap();
    let mut r = Stack::new(StackConfig::router("r"), pool.clone(), 1);
    let p0 = r
        .add_port(
            InterfaceConfig::new("p0", ROUTER_MAC).with_ipv4("198.51.100.1/24".parse().unwrap()),
        )
        .unwrap();
    let p1 = r
        .add_port(
            InterfaceConfig::new("p1", EthernetAddress([2, 0, 0, 0, 1, 1]))
                .with_ipv4("203.0.113.1/24".parse().unwrap()),
        )
        .unwrap();
    let gw: IpAddr = "203.0.113.2".parse().unwrap();
    r.add_static_neighbor(p1, gw, EthernetAddress([2, 0, 0, 0, 2, 0]))
        .unwrap();
    for i in 0..10_000u32 {
        let prefix = Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap();
        r.add_route(IpPrefix::V4(prefix), RouteTarget::Via(gw))
            .unwrap();
    }
    let mut rx: Vec<Frame> = Vec::with_capacity(64);
    let mut tx: Vec<Frame> = Vec::with_capacity(64);
    let mut run = |r: &mut Stack, n: u32| {
        let now = stack::Instant::from_secs(1);
        let mut sent = 0u32;
        while sent < n {
            for k in 0..32u32 {
                let mut f = pool.alloc().expect("pool");
                let i = sent + k;
                packet(
                    &mut f,
                    Ipv4Addr::from(0x0a00_0000 + ((i % 10_000) << 8) + 7),
                    i as u16,
                );
                rx.push(f);
            }
            r.receive_batch(now, p0, &mut rx);
            r.drain_tx(p1, &mut tx, usize::MAX);
            assert_eq!(tx.len(), 32);
            tx.clear();
            sent += 32;
        }
    };
    run(&mut r, 64 * 32); // warm-up
    let before = allocs();
    run(&mut r, 1_000_000);
    let after = allocs();
    assert_eq!(after - before, 0, "allocations on the forwarding path");
    assert_eq!(r.ports()[1].counters().forwarded, 1_000_000 + 64 * 32);
    assert_eq!(r.counters().total_drops(), 0);
}
