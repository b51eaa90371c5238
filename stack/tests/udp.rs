//! UDP sockets between stacks: h1 — r — h2 on the in-memory test net.

mod common;

use std::net::SocketAddr;

use common::Net;
use stack::stack::IcmpErrorKind;
use stack::{DropReason, PortId, RouteTarget, SocketError, StackConfig};

fn setup() -> Net {
    let mut net = Net::new();
    let h1 = net.add(StackConfig::host("h1"));
    let r = net.add(StackConfig::router("r"));
    let h2 = net.add(StackConfig::host("h2"));
    let h1p = net.port(h1, &["198.51.100.2/24"], &["2001:db8:1::2/64"]);
    let r0 = net.port(r, &["198.51.100.1/24"], &["2001:db8:1::1/64"]);
    let r1 = net.port(r, &["203.0.113.1/24"], &["2001:db8:2::1/64"]);
    let h2p = net.port(h2, &["203.0.113.2/24"], &["2001:db8:2::2/64"]);
    net.link((h1, h1p), (r, r0));
    net.link((r, r1), (h2, h2p));
    for (node, v4, v6) in [
        (h1, "198.51.100.1", "2001:db8:1::1"),
        (h2, "203.0.113.1", "2001:db8:2::1"),
    ] {
        let s = &mut net.nodes[node];
        s.add_route(
            "0.0.0.0/0".parse().unwrap(),
            RouteTarget::Via(v4.parse().unwrap()),
        )
        .unwrap();
        s.add_route(
            "::/0".parse().unwrap(),
            RouteTarget::Via(v6.parse().unwrap()),
        )
        .unwrap();
    }
    net
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn exchange(any: &str, h1_addr: &str, server: &str) {
    let mut net = setup();
    let (h1, h2) = (0, 2);
    let srv = net.nodes[h2].udp_bind(sa(any)).unwrap();
    let cli = net.nodes[h1].udp_bind(sa(h1_addr)).unwrap();
    let local = net.nodes[h1].udp_local_addr(cli).unwrap();
    assert!(local.port() >= 49152, "ephemeral port {local}");
    let now = net.now;
    net.nodes[h1]
        .udp_send_to(now, cli, sa(server), b"hello over udp")
        .unwrap();
    net.run(50);
    let mut buf = [0u8; 64];
    let (n, from) = net.nodes[h2]
        .udp_recv_from(srv, &mut buf)
        .expect("a datagram");
    assert_eq!(&buf[..n], b"hello over udp");
    assert_eq!(from.port(), local.port());
    assert_eq!(
        from.ip().to_string(),
        if any.contains('[') {
            "2001:db8:1::2"
        } else {
            "198.51.100.2"
        }
    );
    // The reply goes back to the sender's address and port.
    let now = net.now;
    net.nodes[h2].udp_send_to(now, srv, from, b"pong").unwrap();
    net.run(50);
    let (n, from2) = net.nodes[h1]
        .udp_recv_from(cli, &mut buf)
        .expect("the reply");
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(from2, sa(server));
    assert!(net.nodes[h1].udp_recv_from(cli, &mut buf).is_none());
}

#[test]
fn datagrams_cross_a_router_both_ways_v4() {
    exchange("0.0.0.0:7000", "0.0.0.0:0", "203.0.113.2:7000");
}

#[test]
fn datagrams_cross_a_router_both_ways_v6() {
    exchange("[::]:7000", "[2001:db8:1::2]:0", "[2001:db8:2::2]:7000");
}

/// RFC 1122 §4.1.3.1 / RFC 4443 §3.1: a datagram to a closed port is answered with
/// port unreachable, which the sending socket sees.
#[test]
fn closed_port_reports_port_unreachable_to_the_sender() {
    for (bind, dst, code) in [
        ("0.0.0.0:0", "203.0.113.2:9", 3u8),
        ("[::]:0", "[2001:db8:2::2]:9", 4u8),
    ] {
        let mut net = setup();
        let cli = net.nodes[0].udp_bind(sa(bind)).unwrap();
        let now = net.now;
        net.nodes[0].udp_send_to(now, cli, sa(dst), b"x").unwrap();
        net.run(50);
        assert_eq!(net.nodes[2].drops(DropReason::UdpNoListener), 1, "{dst}");
        assert_eq!(
            net.nodes[0].udp_take_error(cli).unwrap(),
            Some(IcmpErrorKind::Unreachable(code)),
            "{dst}"
        );
        assert_eq!(
            net.nodes[0].udp_take_error(cli).unwrap(),
            None,
            "taken once"
        );
    }
}

#[test]
fn a_full_queue_drops_and_counts_and_recv_truncates() {
    let mut net = setup();
    let srv = net.nodes[2].udp_bind(sa("203.0.113.2:7000")).unwrap();
    net.nodes[2].udp_set_queue_limit(srv, 3).unwrap();
    let cli = net.nodes[0].udp_bind(sa("0.0.0.0:0")).unwrap();
    for i in 0..5u8 {
        let now = net.now;
        net.nodes[0]
            .udp_send_to(now, cli, sa("203.0.113.2:7000"), &[i; 10])
            .unwrap();
        net.run(50);
    }
    assert_eq!(net.nodes[2].udp_queue(srv).unwrap(), (3, 2));
    assert_eq!(net.nodes[2].drops(DropReason::UdpSocketQueueFull), 2);
    let mut small = [0u8; 4];
    let (n, _) = net.nodes[2].udp_recv_from(srv, &mut small).unwrap();
    assert_eq!(n, 10, "the full length is reported");
    assert_eq!(small, [0u8; 4], "the first datagram, cut to the buffer");
}

#[test]
fn binding_rules() {
    let mut net = setup();
    let s = &mut net.nodes[0];
    let a = s.udp_bind(sa("198.51.100.2:53")).unwrap();
    assert_eq!(
        s.udp_bind(sa("198.51.100.2:53")),
        Err(SocketError::AddrInUse(sa("198.51.100.2:53")))
    );
    assert!(
        matches!(s.udp_bind(sa("0.0.0.0:53")), Err(SocketError::AddrInUse(_))),
        "wildcard over a specific"
    );
    assert!(s.udp_bind(sa("[::]:53")).is_ok(), "families are separate");
    assert_eq!(
        s.udp_bind(sa("192.0.2.1:53")),
        Err(SocketError::AddrNotAvailable("192.0.2.1".parse().unwrap()))
    );
    s.udp_close(a);
    assert_eq!(
        s.udp_local_addr(a),
        Err(SocketError::InvalidHandle),
        "stale handle"
    );
    let b = s.udp_bind(sa("198.51.100.2:53")).unwrap();
    assert_ne!(a, b, "a reused slot gets a new generation");
    let now = net.now;
    assert_eq!(
        net.nodes[0].udp_send_to(now, a, sa("203.0.113.2:1"), b""),
        Err(SocketError::InvalidHandle)
    );
    assert_eq!(
        net.nodes[0].udp_send_to(now, b, sa("[2001:db8:2::2]:1"), b""),
        Err(SocketError::FamilyMismatch)
    );
    assert_eq!(
        net.nodes[0].udp_send_to(now, b, sa("203.0.113.2:0"), b""),
        Err(SocketError::BadDestination)
    );
    // Ephemeral ports are distinct.
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let h = net.nodes[0].udp_bind(sa("0.0.0.0:0")).unwrap();
        ports.insert(net.nodes[0].udp_local_addr(h).unwrap().port());
    }
    assert_eq!(ports.len(), 100);
}

/// RFC 768: a zero checksum means none over IPv4; RFC 8200 §8.1: IPv6 requires one.
#[test]
fn zero_checksum_accepted_over_ipv4_only() {
    for (dst, ok) in [("203.0.113.2:7000", true), ("[2001:db8:2::2]:7000", false)] {
        let mut net = setup();
        let any = if ok { "0.0.0.0:7000" } else { "[::]:7000" };
        let srv = net.nodes[2].udp_bind(sa(any)).unwrap();
        let cli = net.nodes[0]
            .udp_bind(sa(if ok { "0.0.0.0:0" } else { "[::]:0" }))
            .unwrap();
        // Resolve neighbors first, so the datagram below is one frame on h1's port.
        let now = net.now;
        net.nodes[0]
            .udp_send_to(now, cli, sa(dst), b"warm-up")
            .unwrap();
        net.run(50);
        let mut buf = [0u8; 16];
        assert!(net.nodes[2].udp_recv_from(srv, &mut buf).is_some());
        let now = net.now;
        net.nodes[0]
            .udp_send_to(now, cli, sa(dst), b"no sum")
            .unwrap();
        let mut out = Vec::new();
        net.nodes[0].drain_tx(PortId(0), &mut out, usize::MAX);
        assert_eq!(out.len(), 1);
        let l4 = if ok { 14 + 20 } else { 14 + 40 };
        out[0].data_mut()[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
        let now = net.now;
        net.nodes[1].receive_batch(now, PortId(0), &mut out);
        net.run(50);
        let got = net.nodes[2].udp_recv_from(srv, &mut buf);
        assert_eq!(got.is_some(), ok, "{dst}");
        assert_eq!(
            net.nodes[2].drops(DropReason::UdpMalformed),
            u64::from(!ok),
            "{dst}"
        );
    }
}
