//! Two stack instances on two threads, joined by an in-memory link: frames (and the
//! pool memory behind them) cross threads, each stack keeps its own state.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use drivers::MemLink;
use stack::wire::EthernetAddress;
use stack::{
    Duration, EchoRequest, Event, FramePool, Instant, InterfaceConfig, PoolConfig, Stack,
    StackConfig,
};

fn host(name: &str, mac: u8, v4: &str, v6: &str, seed: u64) -> Stack {
    let pool = FramePool::with_frames(512, PoolConfig::default()).unwrap();
    let mut s = Stack::new(StackConfig::host(name), pool, seed);
    s.add_port(
        InterfaceConfig::new(name, EthernetAddress([2, 0, 0, 0, 0, mac]))
            .with_ipv4(v4.parse().unwrap())
            .with_ipv6(v6.parse().unwrap()),
    )
    .unwrap();
    s
}

/// Moves frames between one stack and its link end, with a clock of its own.
fn pump(
    s: &mut Stack,
    link: &mut MemLink,
    now: Instant,
    rx: &mut Vec<stack::Frame>,
    tx: &mut Vec<stack::Frame>,
) {
    let port = stack::PortId(0);
    while link.recv_batch(rx, 64) > 0 {
        s.receive_batch(now, port, rx);
    }
    s.poll(now);
    s.drain_tx(port, tx, usize::MAX);
    link.send_batch(tx);
}

#[test]
fn stacks_on_two_threads_ping_each_other() {
    let (mut a_link, mut b_link) = MemLink::pair(256);
    let stop = Arc::new(AtomicBool::new(false));
    let stop_b = stop.clone();
    // The responder runs on its own thread with its own clock.
    let responder = thread::spawn(move || {
        let mut b = host("b", 2, "192.0.2.2/24", "2001:db8::2/64", 2);
        let (mut rx, mut tx) = (Vec::new(), Vec::new());
        let mut now = Instant::from_secs(1);
        while !stop_b.load(Ordering::Relaxed) {
            pump(&mut b, &mut b_link, now, &mut rx, &mut tx);
            now += Duration::from_micros(100);
            thread::yield_now();
        }
        b.counters()
    });
    let mut a = host("a", 1, "192.0.2.1/24", "2001:db8::1/64", 1);
    let (mut rx, mut tx) = (Vec::new(), Vec::new());
    let mut now = Instant::from_secs(1);
    let mut replies = Vec::new();
    for (seq, dst) in ["192.0.2.2", "2001:db8::2", "192.0.2.2", "2001:db8::2"]
        .iter()
        .enumerate()
    {
        let dst: IpAddr = dst.parse().unwrap();
        a.send_echo_request(
            now,
            EchoRequest {
                dst,
                ident: 9,
                seq: seq as u16,
                data_len: 100,
                ttl: None,
            },
        )
        .unwrap();
        // Bounded wait: at most 200,000 rounds of the loop.
        for _ in 0..200_000 {
            pump(&mut a, &mut a_link, now, &mut rx, &mut tx);
            now += Duration::from_micros(100);
            if let Some(Event::EchoReply { from, seq, .. }) = a.pop_event() {
                replies.push((from, seq));
                break;
            }
            thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let b_counters = responder.join().unwrap();
    let expect: Vec<(IpAddr, u16)> = vec![
        ("192.0.2.2".parse().unwrap(), 0),
        ("2001:db8::2".parse().unwrap(), 1),
        ("192.0.2.2".parse().unwrap(), 2),
        ("2001:db8::2".parse().unwrap(), 3),
    ];
    assert_eq!(replies, expect);
    assert_eq!(b_counters.total_drops(), 0, "{b_counters:?}");
    // Every frame went back to its own pool.
    drop(rx);
    drop(tx);
    assert_eq!(a.pool().available(), a.pool().capacity() as usize);
}
