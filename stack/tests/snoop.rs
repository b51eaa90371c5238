//! Two shards of one router: the shard that owns a port answers ARP/NDP, the other
//! learns from copies (`Stack::snoop_neighbor`), as the multi-core runtime does.

mod common;

use common::{mac, Net};
use stack::neighbor::NeighborState;
use stack::{EchoRequest, Frame, InterfaceConfig, PortId, StackConfig};

/// h1 (node 0) — router shard A (node 1) — h2 (node 3); shard B (node 2) has A's ports
/// and MACs but no links: what it sends is moved by hand, what A receives it sees as
/// snooped copies.
fn setup() -> (Net, PortId) {
    let mut net = Net::new();
    let h1 = net.add(StackConfig::host("h1"));
    let a = net.add(StackConfig::router("a"));
    let b = net.add(StackConfig::router("b"));
    let h2 = net.add(StackConfig::host("h2"));
    let h1p = net.port(h1, &["198.51.100.2/24"], &["2001:db8:1::2/64"]);
    let a0 = net.port(a, &["198.51.100.1/24"], &["2001:db8:1::1/64"]);
    let a1 = net.port(a, &["203.0.113.1/24"], &["2001:db8:2::1/64"]);
    for (n, v4, v6) in [
        (0u8, "198.51.100.1/24", "2001:db8:1::1/64"),
        (1u8, "203.0.113.1/24", "2001:db8:2::1/64"),
    ] {
        let cfg = InterfaceConfig::new(format!("b{n}"), mac(a as u8, n))
            .with_ipv4(v4.parse().unwrap())
            .with_ipv6(v6.parse().unwrap());
        net.nodes[b].add_port(cfg).unwrap();
    }
    let h2p = net.port(h2, &["203.0.113.2/24"], &["2001:db8:2::2/64"]);
    net.link((h1, h1p), (a, a0));
    net.link((a, a1), (h2, h2p));
    (net, a1)
}

fn copy(net: &Net, node: usize, f: &Frame) -> Frame {
    let mut c = net.nodes[node].pool().alloc().unwrap();
    c.append(f.len()).unwrap().copy_from_slice(f.data());
    c
}

/// Shard B pings h2 through the owner's port: its solicitation goes out, the answer
/// arrives at shard A, and B's copy resolves B's entry and releases the waiting packet.
fn resolve_via_snoop(dst: &str) {
    let (mut net, port) = setup();
    let (a, b, h2) = (1, 2, 3);
    let now = net.now;
    let dst = dst.parse().unwrap();
    let req = EchoRequest {
        dst,
        ident: 7,
        seq: 1,
        data_len: 8,
        ttl: None,
    };
    net.nodes[b].send_echo_request(now, req).unwrap();
    let mut out = Vec::new();
    net.nodes[b].drain_tx(port, &mut out, usize::MAX);
    assert_eq!(out.len(), 1, "one solicitation while the echo waits");
    net.nodes[h2].receive_batch(now, PortId(0), &mut out);
    net.nodes[h2].drain_tx(PortId(0), &mut out, usize::MAX);
    assert_eq!(out.len(), 1, "h2 answers the solicitation");
    let before = net.nodes[b].counters();
    let reply = out.pop().unwrap();
    let snooped = copy(&net, b, &reply);
    net.nodes[a].receive(now, port, reply);
    net.nodes[b].snoop_neighbor(now, port, snooped);
    let n = net.nodes[b]
        .neighbors()
        .find(|n| n.addr == dst)
        .expect("shard B learned h2");
    assert_eq!(n.state, NeighborState::Reachable);
    assert_eq!(n.mac, mac(h2 as u8, 0));
    // The echo request went out, to h2's MAC, and snooping counted nothing.
    net.nodes[b].drain_tx(port, &mut out, usize::MAX);
    assert_eq!(out.len(), 1, "the waiting echo request is released");
    assert_eq!(&out[0].data()[..6], &mac(h2 as u8, 0).0);
    let after = net.nodes[b].counters();
    assert_eq!(
        (after.rx_packets, after.delivered),
        (0, 0),
        "snooping counts nothing"
    );
    assert_eq!(
        after.tx_packets,
        before.tx_packets + 1,
        "only the echo request was sent"
    );
    assert_eq!(after.total_drops(), 0);
}

#[test]
fn a_shard_resolves_ipv4_neighbors_from_snooped_arp() {
    resolve_via_snoop("203.0.113.2");
}

#[test]
fn a_shard_resolves_ipv6_neighbors_from_snooped_ndp() {
    resolve_via_snoop("2001:db8:2::2");
}

#[test]
fn snooped_solicitations_are_learned_but_never_answered() {
    let (mut net, port) = setup();
    let (a, b, h2) = (1, 2, 3);
    // h2 pings the router: it solicits the router first.
    for dst in ["203.0.113.1", "2001:db8:2::1"] {
        let now = net.now;
        let req = EchoRequest {
            dst: dst.parse().unwrap(),
            ident: 1,
            seq: 1,
            data_len: 8,
            ttl: None,
        };
        net.nodes[h2].send_echo_request(now, req).unwrap();
        let mut out = Vec::new();
        net.nodes[h2].drain_tx(PortId(0), &mut out, usize::MAX);
        assert_eq!(out.len(), 1);
        let sol = out.pop().unwrap();
        let snooped = copy(&net, b, &sol);
        net.nodes[b].snoop_neighbor(now, port, snooped);
        assert!(
            !net.nodes[b].has_tx(),
            "{dst}: a snooped copy is never answered"
        );
        assert!(
            net.nodes[b]
                .neighbors()
                .any(|n| n.addr.to_string().starts_with(if dst.contains(':') {
                    "2001:db8:2::2"
                } else {
                    "203.0.113.2"
                })),
            "{dst}: B learned the solicitor"
        );
        net.nodes[a].receive(now, port, sol);
        assert!(net.nodes[a].has_tx(), "{dst}: the owner answers");
        net.run(20);
    }
}

#[test]
fn snooping_garbage_or_other_frames_changes_nothing() {
    let (mut net, port) = setup();
    let b = 2;
    let now = net.now;
    for bytes in [
        &[][..],
        &[0u8; 13][..],
        &[0xffu8; 60][..],
        // An IPv4 frame.
        &[2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 3, 0, 8, 0, 0x45, 0, 0, 20][..],
        // IPv6, next header ICMPv6, cut short.
        &[
            2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 3, 0, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 58, 255,
        ][..],
    ] {
        let mut f = net.nodes[b].pool().alloc().unwrap();
        f.append(bytes.len()).unwrap().copy_from_slice(bytes);
        net.nodes[b].snoop_neighbor(now, port, f);
        let mut f = net.nodes[b].pool().alloc().unwrap();
        f.append(bytes.len()).unwrap().copy_from_slice(bytes);
        net.nodes[b].snoop_neighbor(now, PortId(9), f);
    }
    assert!(!net.nodes[b].has_tx());
    assert_eq!(net.nodes[b].neighbors().count(), 0);
}
