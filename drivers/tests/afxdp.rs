//! AF_XDP against the Linux stack on a veth pair, our side and the kernel's side in two
//! namespaces (see `common`): our stack pings the kernel through the AF_XDP driver
//! (IPv4 with ARP, IPv6 with NDP) in take-all mode; 10,000 UDP datagrams cross in each
//! direction, none lost, duplicated or altered (`common/bulk.rs`); in host mode the
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
            let shown = pair.ours.ip("link show dev dp0");
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
