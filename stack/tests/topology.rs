//! Stacks wired back to back in memory: neighbor resolution, ping, forwarding, ICMP.

mod common;

use core::net::IpAddr;

use common::{mac, Net};
use stack::neighbor::NeighborState;
use stack::stack::IcmpErrorKind;
use stack::{DropReason, Duration, EchoRequest, Event, IpPrefix, PortId, RouteTarget, StackConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ping(dst: &str, seq: u16, ttl: Option<u8>, len: usize) -> EchoRequest {
    EchoRequest {
        dst: ip(dst),
        ident: 0x4242,
        seq,
        data_len: len,
        ttl,
    }
}

fn replies(events: &[Event]) -> Vec<(IpAddr, u16, u8)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::EchoReply { from, seq, ttl, .. } => Some((*from, *seq, *ttl)),
            _ => None,
        })
        .collect()
}

/// (from, kind, quoted echo identifier and sequence)
type IcmpErrorSeen = (IpAddr, IcmpErrorKind, Option<(u16, u16)>);

fn errors(events: &[Event]) -> Vec<IcmpErrorSeen> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IcmpError {
                from, kind, echo, ..
            } => Some((*from, *kind, *echo)),
            _ => None,
        })
        .collect()
}

/// h1 — h2 on one link.
fn two_hosts() -> Net {
    let mut net = Net::new();
    let h1 = net.add(StackConfig::host("h1"));
    let h2 = net.add(StackConfig::host("h2"));
    let p1 = net.port(h1, &["192.0.2.1/24"], &["2001:db8::1/64"]);
    let p2 = net.port(h2, &["192.0.2.2/24"], &["2001:db8::2/64"]);
    net.link((h1, p1), (h2, p2));
    net
}

/// h1 — r — h2 with default routes on the hosts.
fn routed() -> Net {
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
    for (h, gw4, gw6) in [
        (h1, "198.51.100.1", "2001:db8:1::1"),
        (h2, "203.0.113.1", "2001:db8:2::1"),
    ] {
        net.nodes[h]
            .add_route("0.0.0.0/0".parse().unwrap(), RouteTarget::Via(ip(gw4)))
            .unwrap();
        net.nodes[h]
            .add_route("::/0".parse().unwrap(), RouteTarget::Via(ip(gw6)))
            .unwrap();
    }
    net
}

#[test]
fn two_stacks_resolve_arp_and_ping() {
    let mut net = two_hosts();
    let now = net.now;
    net.nodes[0]
        .send_echo_request(now, ping("192.0.2.2", 1, None, 56))
        .unwrap();
    net.run(50);
    let ev = net.events(0);
    assert_eq!(replies(&ev), vec![(ip("192.0.2.2"), 1, 64)]);
    let n1: Vec<_> = net.nodes[0].neighbors().collect();
    assert_eq!(n1.len(), 1);
    assert_eq!(
        (n1[0].addr, n1[0].mac, n1[0].state),
        (ip("192.0.2.2"), mac(1, 0), NeighborState::Reachable)
    );
    // h2 learned h1 from the ARP request it answered (RFC 826 merge) as STALE, then
    // used it for the reply: DELAY (RFC 4861 §7.3.3, which the stack applies to ARP too).
    let n2: Vec<_> = net.nodes[1].neighbors().collect();
    assert_eq!(
        (n2[0].addr, n2[0].mac, n2[0].state),
        (ip("192.0.2.1"), mac(0, 0), NeighborState::Delay)
    );
    // A second ping needs no resolution: request and reply only.
    net.nodes[0]
        .send_echo_request(net.now, ping("192.0.2.2", 2, None, 56))
        .unwrap();
    assert_eq!(net.run(50), 2);
    assert_eq!(replies(&net.events(0)), vec![(ip("192.0.2.2"), 2, 64)]);
}

#[test]
fn two_stacks_resolve_ndp_and_ping_global_and_link_local() {
    let mut net = two_hosts();
    let now = net.now;
    net.nodes[0]
        .send_echo_request(now, ping("2001:db8::2", 7, None, 100))
        .unwrap();
    net.run(50);
    assert_eq!(replies(&net.events(0)), vec![(ip("2001:db8::2"), 7, 64)]);
    let n1: Vec<_> = net.nodes[0].neighbors().collect();
    assert_eq!(
        (n1[0].addr, n1[0].mac, n1[0].state),
        (ip("2001:db8::2"), mac(1, 0), NeighborState::Reachable)
    );
    // Link-local: derived from the MAC by modified EUI-64.
    let ll = net.nodes[1].ports()[0].link_local();
    assert_eq!(
        ll,
        "fe80::ff:fe00:100".parse::<core::net::Ipv6Addr>().unwrap()
    );
    let now = net.now;
    net.nodes[0]
        .send_echo_request(
            now,
            EchoRequest {
                dst: IpAddr::V6(ll),
                ident: 1,
                seq: 8,
                data_len: 8,
                ttl: None,
            },
        )
        .unwrap();
    net.run(50);
    assert_eq!(replies(&net.events(0)), vec![(IpAddr::V6(ll), 8, 64)]);
}

#[test]
fn host_router_host_forwards_v4_and_v6() {
    let mut net = routed();
    for (i, dst) in ["203.0.113.2", "2001:db8:2::2"].iter().enumerate() {
        let now = net.now;
        net.nodes[0]
            .send_echo_request(now, ping(dst, i as u16, None, 64))
            .unwrap();
        net.run(100);
        // One hop: the reply's TTL was decremented once by the router.
        assert_eq!(
            replies(&net.events(0)),
            vec![(ip(dst), i as u16, 63)],
            "to {dst}"
        );
    }
    // And back the other way.
    let now = net.now;
    net.nodes[2]
        .send_echo_request(now, ping("198.51.100.2", 9, None, 64))
        .unwrap();
    net.run(100);
    assert_eq!(replies(&net.events(2)), vec![(ip("198.51.100.2"), 9, 63)]);
    let r = &net.nodes[1];
    assert_eq!(r.ports()[0].counters().forwarded, 3, "replies to h1");
    assert_eq!(r.ports()[1].counters().forwarded, 3, "requests to h2");
    assert_eq!(r.counters().total_drops(), 0, "{:?}", r.counters());
}

#[test]
fn ttl_one_gets_time_exceeded_from_the_router() {
    let mut net = routed();
    for (dst, from) in [
        ("203.0.113.2", "198.51.100.1"),
        ("2001:db8:2::2", "2001:db8:1::1"),
    ] {
        let now = net.now;
        net.nodes[0]
            .send_echo_request(now, ping(dst, 5, Some(1), 32))
            .unwrap();
        net.run(100);
        let ev = net.events(0);
        assert!(replies(&ev).is_empty());
        assert_eq!(
            errors(&ev),
            vec![(ip(from), IcmpErrorKind::TimeExceeded, Some((0x4242, 5)))],
            "to {dst}"
        );
    }
    assert_eq!(net.nodes[1].drops(DropReason::TtlExpired), 2);
    // TTL 2 reaches h2.
    let now = net.now;
    net.nodes[0]
        .send_echo_request(now, ping("203.0.113.2", 6, Some(2), 32))
        .unwrap();
    net.run(100);
    assert_eq!(replies(&net.events(0)).len(), 1);
}

#[test]
fn unknown_prefix_gets_network_unreachable() {
    let mut net = routed();
    for (dst, from, code) in [
        ("192.0.2.99", "198.51.100.1", 0),
        ("2001:db8:99::1", "2001:db8:1::1", 0),
    ] {
        let now = net.now;
        net.nodes[0]
            .send_echo_request(now, ping(dst, 1, None, 8))
            .unwrap();
        net.run(100);
        assert_eq!(
            errors(&net.events(0)),
            vec![(
                ip(from),
                IcmpErrorKind::Unreachable(code),
                Some((0x4242, 1))
            )]
        );
    }
    assert_eq!(net.nodes[1].drops(DropReason::NoRoute), 2);
}

#[test]
fn failed_resolution_gets_host_unreachable() {
    let mut net = routed();
    for (dst, code) in [("203.0.113.77", 1u8), ("2001:db8:2::77", 3u8)] {
        let now = net.now;
        net.nodes[0]
            .send_echo_request(now, ping(dst, 1, None, 8))
            .unwrap();
        net.advance(Duration::from_secs(4));
        let errs = errors(&net.events(0));
        assert_eq!(errs.len(), 1, "to {dst}: {errs:?}");
        assert_eq!(errs[0].1, IcmpErrorKind::Unreachable(code));
    }
    assert_eq!(
        net.nodes[1].ports()[1]
            .counters()
            .drops_for(DropReason::NeighborFailed),
        2
    );
}

#[test]
fn icmp_rate_limit_holds() {
    let mut net = routed();
    // Resolve first so the burst is not limited by the neighbor queue.
    net.nodes[0]
        .send_echo_request(net.now, ping("203.0.113.2", 0, None, 8))
        .unwrap();
    net.run(100);
    net.events(0);
    let now = net.now;
    for seq in 0..100 {
        net.nodes[0]
            .send_echo_request(now, ping("203.0.113.2", seq, Some(1), 8))
            .unwrap();
    }
    net.run(100);
    let burst = stack::ratelimit::RateLimitConfig::default().burst as usize;
    assert_eq!(errors(&net.events(0)).len(), burst);
    assert_eq!(
        net.nodes[1].ports()[0].counters().icmp_rate_limited,
        (100 - burst) as u64
    );
    assert_eq!(net.nodes[1].drops(DropReason::TtlExpired), 100);
    // A second later the bucket has refilled.
    net.advance(Duration::from_secs(2));
    let now = net.now;
    for seq in 0..100 {
        net.nodes[0]
            .send_echo_request(now, ping("203.0.113.2", seq, Some(1), 8))
            .unwrap();
    }
    net.run(100);
    assert_eq!(errors(&net.events(0)).len(), burst);
}

#[test]
fn routes_change_at_run_time() {
    let mut net = routed();
    let r = 1;
    net.nodes[r]
        .add_route("192.0.2.0/24".parse().unwrap(), RouteTarget::Blackhole)
        .unwrap();
    net.nodes[0]
        .send_echo_request(net.now, ping("192.0.2.1", 1, None, 8))
        .unwrap();
    net.run(100);
    assert!(net.events(0).is_empty());
    assert_eq!(net.nodes[r].drops(DropReason::Blackhole), 1);
    // Replace with a route via h2: h2 answers for nothing there, so its own stack drops.
    net.nodes[r]
        .add_route(
            "192.0.2.0/24".parse().unwrap(),
            RouteTarget::Via(ip("203.0.113.2")),
        )
        .unwrap();
    net.nodes[0]
        .send_echo_request(net.now, ping("192.0.2.1", 2, None, 8))
        .unwrap();
    net.run(100);
    assert_eq!(net.nodes[2].drops(DropReason::NotForwarding), 1);
    net.nodes[r]
        .remove_route("192.0.2.0/24".parse::<IpPrefix>().unwrap())
        .unwrap();
    assert!(net.nodes[r]
        .remove_route("192.0.2.0/24".parse::<IpPrefix>().unwrap())
        .is_err());
    assert!(
        net.nodes[r]
            .add_route(
                "10.0.0.0/8".parse().unwrap(),
                RouteTarget::Via(ip("192.0.2.50"))
            )
            .is_err(),
        "a gateway off every connected network is refused"
    );
    assert_eq!(
        net.nodes[r]
            .add_route("10.0.0.0/8".parse().unwrap(), RouteTarget::Port(PortId(9)))
            .unwrap_err()
            .to_string(),
        "no such port port9"
    );
}

#[test]
fn ipv4_without_df_is_fragmented_to_the_egress_mtu() {
    let mut net = Net::new();
    let h1 = net.add(StackConfig::host("h1"));
    let r = net.add(StackConfig::router("r"));
    let h2 = net.add(StackConfig::host("h2"));
    let a = net.port(h1, &["198.51.100.2/24"], &[]);
    let b = net.port(r, &["198.51.100.1/24"], &[]);
    let mut cfg = stack::InterfaceConfig::new("small", mac(1, 1)).with_mtu(576);
    cfg = cfg.with_ipv4("203.0.113.1/24".parse().unwrap());
    let c = net.nodes[r].add_port(cfg).unwrap();
    let d = net.port(h2, &["203.0.113.2/24"], &[]);
    net.link((h1, a), (r, b));
    net.link((r, c), (h2, d));
    net.nodes[h1]
        .add_route(
            "0.0.0.0/0".parse().unwrap(),
            RouteTarget::Via(ip("198.51.100.1")),
        )
        .unwrap();
    // 1000 bytes of ICMP data: 1028-byte datagram, two fragments at MTU 576.
    net.nodes[h1]
        .send_echo_request(net.now, ping("203.0.113.2", 1, None, 1000))
        .unwrap();
    net.run(100);
    assert_eq!(net.nodes[r].ports()[1].counters().forwarded, 2);
    // h2 has no reassembly yet: both fragments are counted as such.
    assert_eq!(net.nodes[h2].drops(DropReason::ReassemblyUnsupported), 2);
}
