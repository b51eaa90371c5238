//! AF_XDP against the Linux stack on a veth pair, our side and the kernel's side in two
//! namespaces (see `common`): our stack pings the kernel through the AF_XDP driver
//! (IPv4 with ARP, IPv6 with NDP) in take-all mode; 10,000 UDP datagrams cross in each
//! direction, none lost, duplicated or altered (`common/bulk.rs`), and 100,000 each way
//! (transmitting frames of the UMEM pool itself, without a copy); receive in generic
//! mode, and with two queues in native mode sharing one UMEM; in host mode the
//! kernel's own address on the same interface keeps working; after the driver is
//! dropped no XDP program is left on the interface, and a new driver binds at once.
//!
//! On veth, AF_XDP runs in copy mode; the XDP program attaches in native mode.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use bpf::AttachMode;
use common::bulk;
use common::{Host, VethPair};
use drivers::{AfXdp, AfXdpConfig, Driver};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn our_stack_pings_the_kernel_through_af_xdp_v4_and_v6() {
    let pair = VethPair::new();
    let kernel_mac = pair.kernel.mac("k0");
    pair.ours.run(|| {
        let drv = AfXdp::open(&AfXdpConfig::new("dp0")).unwrap();
        let link = drv.link();
        assert_eq!(
            (link.name.as_str(), link.mtu, link.queues),
            ("dp0", 1500, 1)
        );
        assert_eq!(drv.xdp_mode(), AttachMode::Native, "veth runs XDP natively");
        assert!(!drv.zero_copy(), "veth has copy mode only");
        let p = drv.pool().clone();
        let mut h = Host::new(drv, p, "192.0.2.1/24", "2001:db8::1/64");
        assert_eq!(h.ping("192.0.2.2", 1), (ip("192.0.2.2"), 1));
        assert_eq!(h.ping("2001:db8::2", 2), (ip("2001:db8::2"), 2));
        assert_eq!(h.ping("192.0.2.2", 3), (ip("192.0.2.2"), 3));
        let learned: Vec<_> = h.stack.neighbors().map(|n| n.mac).collect();
        assert!(learned.iter().all(|m| *m == kernel_mac), "{learned:?}");
        let s = h.drv.stats();
        assert_eq!((s.rx_errors, s.tx_errors, s.rx_dropped), (0, 0, 0), "{s:?}");
        assert!(s.rx_packets >= 4 && s.tx_packets >= 4, "{s:?}");
        let c = h.drv.xdp_counters(0).unwrap();
        assert!(c.redirected >= s.rx_packets, "{c:?} {s:?}");
        assert_eq!(c.passed, 0, "take-all mode passes nothing: {c:?}");
    });
}

#[test]
fn ten_thousand_datagrams_from_af_xdp_reach_a_kernel_socket_intact() {
    let pair = VethPair::new();
    let kernel_mac = pair.kernel.mac("k0");
    let drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0")).unwrap());
    bulk::to_kernel(&pair.kernel, drv, kernel_mac);
}

#[test]
fn ten_thousand_datagrams_from_a_kernel_socket_reach_af_xdp_intact() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0")).unwrap());
    let stats = bulk::from_kernel(&pair.kernel, drv);
    assert!(stats.rx_packets >= bulk::N as u64, "{stats:?}");
}

#[test]
fn in_host_mode_the_kernels_own_address_on_the_interface_still_answers() {
    let pair = VethPair::new();
    // The kernel on our side has its own address on dp0; our stack has 192.0.2.1 and
    // 2001:db8::1, steered to AF_XDP.
    pair.ours.ip("addr add 192.0.2.3/24 dev dp0");
    let cfg = AfXdpConfig::new("dp0").host([ip("192.0.2.1"), ip("2001:db8::1")]);
    pair.ours.run(|| {
        let drv = AfXdp::open(&cfg).unwrap();
        let p = drv.pool().clone();
        let mut h = Host::new(drv, p, "192.0.2.1/24", "2001:db8::1/64");
        assert_eq!(h.ping("192.0.2.2", 1), (ip("192.0.2.2"), 1));
        assert_eq!(h.ping("2001:db8::2", 2), (ip("2001:db8::2"), 2));

        // A kernel UDP echo on 192.0.2.3 in our namespace, asked from the kernel's
        // namespace: its ARP and datagrams pass our XDP program to the kernel.
        let echo = UdpSocket::bind(("192.0.2.3", 7000)).unwrap();
        echo.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                let mut buf = [0u8; 64];
                let (n, from) = echo.recv_from(&mut buf).expect("datagram to the kernel");
                echo.send_to(&buf[..n], from).unwrap();
            });
            let answer = pair.kernel.run(|| {
                let c = UdpSocket::bind(("192.0.2.2", 0)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c.send_to(b"hello kernel", ("192.0.2.3", 7000)).unwrap();
                let mut buf = [0u8; 64];
                let (n, _) = c.recv_from(&mut buf).expect("the kernel's echo");
                buf[..n].to_vec()
            });
            server.join().unwrap();
            assert_eq!(answer, b"hello kernel");
        });
        // Our stack still answers through AF_XDP afterwards.
        assert_eq!(h.ping("192.0.2.2", 3), (ip("192.0.2.2"), 3));
        let c = h.drv.xdp_counters(0).unwrap();
        assert!(c.redirected >= 4, "{c:?}");
        assert!(c.passed >= 2, "ARP and the datagram passed: {c:?}");
        let s = h.drv.stats();
        assert_eq!((s.rx_errors, s.tx_errors, s.rx_dropped), (0, 0, 0), "{s:?}");
    });
}

#[test]
fn dropping_the_driver_detaches_the_program_and_a_new_driver_binds_at_once() {
    let pair = VethPair::new();
    pair.ours.run(|| {
        for round in 0..3 {
            let drv = AfXdp::open(&AfXdpConfig::new("dp0")).unwrap();
            let shown = pair.ours.ip("link show dev dp0");
            assert!(shown.contains("xdp"), "round {round}: attached: {shown}");
            drop(drv);
            // Closing the BPF link's descriptor detaches the program, but a child that
            // another test thread is forking at that moment holds a copy of our
            // descriptors until it execs (close-on-exec), and with it the link: allow
            // that window (up to 2 s), and still require the program to go.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            let mut shown = pair.ours.ip("link show dev dp0");
            while shown.contains("xdp") && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
                shown = pair.ours.ip("link show dev dp0");
            }
            assert!(
                !shown.contains("xdp"),
                "round {round}: left behind: {shown}"
            );
        }
    });
}

#[test]
fn a_missing_interface_or_queue_is_a_one_line_error() {
    let pair = VethPair::new();
    pair.ours.run(|| {
        let e = AfXdp::open(&AfXdpConfig::new("nosuch0")).err().unwrap();
        assert_eq!(e.iface(), "nosuch0");
        assert!(!e.to_string().contains('\n'));
        let e = AfXdp::open(&AfXdpConfig::new("dp0").with_queues(2))
            .err()
            .unwrap();
        assert!(
            matches!(e, drivers::DriverError::NoSuchQueue { queues: 1, .. }),
            "{e}"
        );
    });
}

/// Datagrams of the large test.
const BIG: u32 = 100_000;

/// Payload of datagram `seq` of the large test: the number, then bytes derived from it.
fn big_payload(seq: u32) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((0..(16 + seq % 41)).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    p
}

/// Has the kernel in `pair.kernel` send [`BIG`] datagrams from `ports` source ports
/// (round robin) to 192.0.2.1:4000 with at most 256 in flight, and receives them with
/// `drv` on all its queues; asserts each arrives once and intact; returns how many
/// frames each queue received.
fn big_from_kernel(pair: &VethPair, mut drv: AfXdp, ports: u16) -> Vec<u64> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let received = &AtomicU32::new(0);
    std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let queues = drv.link().queues;
            let mut per_queue = vec![0u64; usize::from(queues)];
            let mut seen = vec![false; BIG as usize];
            let mut rx = Vec::new();
            let mut count = 0u32;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while count < BIG && std::time::Instant::now() < deadline {
                let mut got = 0;
                for q in 0..queues {
                    let n = drv.recv(q, &mut rx, 64).unwrap();
                    per_queue[usize::from(q)] += n as u64;
                    got += n;
                }
                if got == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
                for f in rx.drain(..) {
                    let d = f.data();
                    // IPv4 (no options) UDP to port 4000; other frames are the kernel's
                    // chatter.
                    if d.len() < 42
                        || d[12..14] != [8, 0]
                        || d[23] != 17
                        || d[36..38] != [0x0f, 0xa0]
                    {
                        continue;
                    }
                    let p = &d[42..];
                    let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    assert!(seq < BIG, "sequence {seq}");
                    assert_eq!(p, &big_payload(seq)[..], "payload of {seq}");
                    assert!(!seen[seq as usize], "datagram {seq} twice");
                    seen[seq as usize] = true;
                    count += 1;
                }
                received.store(count, Ordering::Release);
            }
            let s = drv.stats();
            assert_eq!((s.rx_errors, s.rx_dropped), (0, 0), "{s:?}");
            (count, per_queue)
        });
        s.spawn(|| {
            pair.kernel.enter();
            let socks: Vec<UdpSocket> = (0..ports)
                .map(|i| UdpSocket::bind(("192.0.2.2", 6000 + i)).unwrap())
                .collect();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut seq = 0;
            while seq < BIG && std::time::Instant::now() < deadline {
                if seq >= received.load(Ordering::Acquire) + 256 {
                    std::thread::sleep(Duration::from_micros(10));
                    continue;
                }
                let sock = &socks[(seq % u32::from(ports)) as usize];
                sock.send_to(&big_payload(seq), ("192.0.2.1", 4000))
                    .unwrap();
                seq += 1;
            }
        })
        .join()
        .unwrap();
        let (count, per_queue) = receiver.join().unwrap();
        assert_eq!(count, BIG, "datagrams received");
        per_queue
    })
}

#[test]
fn a_hundred_thousand_datagrams_from_the_kernel_reach_af_xdp_intact() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0")).unwrap());
    big_from_kernel(&pair, drv, 1);
}

#[test]
fn generic_mode_receives_on_queue_zero() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0").with_attach(AttachMode::Generic)).unwrap());
    assert_eq!(drv.xdp_mode(), AttachMode::Generic);
    assert!(pair.ours.ip("link show dev dp0").contains("xdpgeneric"));
    bulk::from_kernel(&pair.kernel, drv);
}

#[test]
fn two_queues_in_native_mode_share_one_umem() {
    let ours = common::Netns::new();
    let kernel = common::Netns::new();
    ours.ip(&format!(
        "link add dp0 numtxqueues 2 numrxqueues 2 type veth peer name k0 numtxqueues 2 numrxqueues 2 netns {}",
        kernel.name
    ));
    ours.ip("link set dp0 addrgenmode none");
    ours.ip("link set dp0 up");
    kernel.ip("addr add 192.0.2.2/24 dev k0");
    kernel.ip("link set k0 up");
    ours.wait_up("dp0");
    kernel.wait_up("k0");
    let our_mac = ours.mac("dp0");
    kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let pair = VethPair { ours, kernel };
    let drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0").with_queues(2)).unwrap());
    assert_eq!(drv.xdp_mode(), AttachMode::Native);
    assert_eq!(drv.link().queues, 2);
    let per_queue = big_from_kernel(&pair, drv, 16);
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "both queues received: {per_queue:?}"
    );
}

#[test]
fn a_hundred_thousand_datagrams_from_the_umem_pool_reach_a_kernel_socket_intact() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let pair = VethPair::new();
    let kernel_mac = pair.kernel.mac("k0");
    let mut drv = pair
        .ours
        .run(|| AfXdp::open(&AfXdpConfig::new("dp0")).unwrap());
    let received = &AtomicU32::new(0);
    let ready = &std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            pair.kernel.enter();
            let sock = UdpSocket::bind(("192.0.2.2", 5000)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            ready.store(true, Ordering::Release);
            let mut seen = vec![false; BIG as usize];
            let mut buf = [0u8; 2048];
            let mut count = 0;
            while count < BIG {
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    break;
                };
                let seq = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                assert!(seq < BIG, "sequence {seq}");
                assert_eq!(&buf[..n], &bulk::payload(seq)[..], "payload of {seq}");
                assert!(!seen[seq as usize], "datagram {seq} twice");
                seen[seq as usize] = true;
                count += 1;
                received.store(count, Ordering::Release);
            }
            count
        });
        let our_mac = drv.link().mac;
        while !ready.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        // Frames of the driver's own pool: transmitted without a copy.
        let pool = drv.pool().clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (mut seq, mut batch) = (0u32, Vec::new());
        while seq < BIG || !batch.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "sending stalled at {seq}"
            );
            // 32 in flight: with 256 the kernel socket's default receive buffer
            // overflowed (copy-mode frames arrive as skbs with a large truesize), and
            // with 64 it still did when the receiving thread was starved of CPU.
            let window_end = received.load(Ordering::Acquire) + 32;
            while seq < BIG && batch.len() < 64 && seq < window_end {
                let Some(mut f) = pool.alloc() else { break };
                bulk::udp_frame(&mut f, our_mac, kernel_mac, seq);
                batch.push(f);
                seq += 1;
            }
            drv.send(0, &mut batch).unwrap();
            if !batch.is_empty() || seq >= window_end {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
        assert_eq!(
            receiver.join().unwrap(),
            BIG,
            "datagrams received by the kernel"
        );
        let st = drv.stats();
        assert_eq!((st.tx_packets, st.tx_errors), (u64::from(BIG), 0), "{st:?}");
    });
}
