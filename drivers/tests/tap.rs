//! TAP against the Linux stack: our stack pings the kernel's side of a TAP interface
//! in a namespace, over IPv4 (ARP) and IPv6 (NDP), with one and with two queues; and
//! 10,000 UDP datagrams cross each way between the driver and a kernel socket, none
//! lost, duplicated or altered (`common/bulk.rs`).

mod common;

use std::net::IpAddr;

use common::{bulk, pool, Host, Netns};
use drivers::{Driver, DriverError, Tap, TapConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Opens `dtap0` in `ns` with `queues` queues, gives the kernel side addresses, and
/// returns the driver.
fn open_tap(ns: &Netns, queues: u16) -> Tap {
    open_tap_named(ns, "dtap0", queues)
}

/// The same with another name.
fn open_tap_named(ns: &Netns, name: &str, queues: u16) -> Tap {
    let tap = Tap::open(&TapConfig::new(name).with_queues(queues), pool()).unwrap();
    ns.ip(&format!("addr add 192.0.2.2/24 dev {name}"));
    ns.ip(&format!("addr add 2001:db8::2/64 dev {name} nodad"));
    ns.ip(&format!("link set {name} up"));
    ns.wait_up(name);
    tap
}

#[test]
fn our_stack_pings_the_kernel_through_tap_v4_and_v6() {
    let ns = Netns::new();
    ns.run(|| {
        let tap = open_tap(&ns, 1);
        let link = tap.link();
        assert_eq!(
            (link.name.as_str(), link.mtu, link.queues),
            ("dtap0", 1500, 1)
        );
        assert_ne!(link.mac, tap.kernel_mac(), "our side has its own MAC");
        assert_eq!(
            ns.mac("dtap0"),
            tap.kernel_mac(),
            "SIOCGIFHWADDR agrees with ip"
        );
        let p = tap.pool().clone();
        let mut h = Host::new(tap, p, "192.0.2.1/24", "2001:db8::1/64");
        assert_eq!(h.ping("192.0.2.2", 1), (ip("192.0.2.2"), 1));
        assert_eq!(h.ping("2001:db8::2", 2), (ip("2001:db8::2"), 2));
        assert_eq!(h.ping("192.0.2.2", 3), (ip("192.0.2.2"), 3));
        let s = h.drv.stats();
        assert!(s.rx_packets >= 4 && s.tx_packets >= 4, "{s:?}");
        assert_eq!((s.rx_errors, s.tx_errors), (0, 0));
    });
}

#[test]
fn multi_queue_tap_has_a_descriptor_per_queue_and_pings() {
    let ns = Netns::new();
    ns.run(|| {
        let mut tap = open_tap(&ns, 2);
        assert_eq!(tap.link().queues, 2);
        let (a, b) = (tap.poll_fd(0).unwrap(), tap.poll_fd(1).unwrap());
        assert_ne!(a, b);
        assert!(tap.poll_fd(2).is_none());
        let err = tap.recv(2, &mut Vec::new(), 8).unwrap_err();
        assert!(
            matches!(
                err,
                DriverError::NoSuchQueue {
                    queue: 2,
                    queues: 2,
                    ..
                }
            ),
            "{err}"
        );
        let p = tap.pool().clone();
        let mut h = Host::new(tap, p, "192.0.2.1/24", "2001:db8::1/64");
        assert_eq!(h.ping("192.0.2.2", 1), (ip("192.0.2.2"), 1));
        assert_eq!(h.ping("2001:db8::2", 2), (ip("2001:db8::2"), 2));
    });
}

#[test]
fn tap_configuration_errors_name_the_interface() {
    let ns = Netns::new();
    ns.ip("link add dveth0 type veth peer name dveth1");
    ns.run(|| {
        let e = Tap::open(&TapConfig::new("a-name-far-too-long"), pool())
            .err()
            .unwrap();
        assert!(matches!(e, DriverError::BadConfig { .. }));
        assert!(e.to_string().contains("a-name-far-too-long"), "{e}");
        let e = Tap::open(&TapConfig::new("dveth0"), pool()).err().unwrap();
        assert!(e.to_string().starts_with("interface dveth0: "), "{e}");
        let e = Tap::open(&TapConfig::new("dtap1").with_queues(0), pool())
            .err()
            .unwrap();
        assert!(e.to_string().contains("0 queues"), "{e}");
    });
}

#[test]
fn ten_thousand_datagrams_cross_a_tap_each_way_intact() {
    let ns = Netns::new();
    // Our driver to a kernel socket.
    let tap = ns.run(|| open_tap_named(&ns, "dtap0", 1));
    let kernel_mac = tap.kernel_mac();
    bulk::to_kernel(&ns, tap, kernel_mac);
    // A kernel socket to our driver, over a TAP with two queues.
    let tap = ns.run(|| open_tap_named(&ns, "dtap1", 2));
    ns.ip(&format!(
        "neigh add 192.0.2.1 lladdr {} dev dtap1 nud permanent",
        tap.link().mac
    ));
    bulk::from_kernel(&ns, tap);
}

#[test]
fn a_frame_larger_than_a_pool_frame_is_counted_and_dropped() {
    let ns = Netns::new();
    let mut tap = ns.run(|| open_tap(&ns, 1));
    let our_mac = tap.link().mac;
    ns.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev dtap0 nud permanent"
    ));
    // Raise the MTU past what a 2048-byte pool frame holds after opening.
    ns.ip("link set dtap0 mtu 4000");
    ns.run(|| {
        let sock = std::net::UdpSocket::bind((bulk::KERNEL_IP, 0)).unwrap();
        let mut big = bulk::payload(0);
        big.resize(3000, 0xee);
        sock.send_to(&big, (bulk::OUR_IP, 4000)).unwrap();
        sock.send_to(&bulk::payload(1), (bulk::OUR_IP, 4000))
            .unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (mut rx, mut seqs) = (Vec::new(), Vec::new());
    while seqs.is_empty() && std::time::Instant::now() < deadline {
        tap.recv(0, &mut rx, 64).unwrap();
        seqs.extend(
            rx.drain(..)
                .filter_map(|f| bulk::datagram_from_kernel(f.data(), our_mac)),
        );
    }
    assert_eq!(
        seqs,
        vec![1],
        "the small datagram arrives, the large one does not"
    );
    assert_eq!(tap.stats().rx_errors, 1);
}
