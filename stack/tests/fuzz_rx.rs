//! Property tests of the receive path: whatever arrives, the stack does not panic, what
//! it sends is well formed, and every frame goes back to the pool.
//!
//! Three sources of frames go into a router with IPv4 and IPv6 on both ports (the same
//! topology as `frames.rs`, with some neighbors static and some left to resolve):
//! arbitrary bytes; arbitrary bytes behind a valid Ethernet header; and valid frames
//! (IPv4/UDP, echo, IPv6/UDP, neighbor solicitations and advertisements, ARP) with
//! bytes flipped, cut short, length fields overwritten and, half the time, checksums
//! made valid again so the damage reaches past the checksum checks. After the frames,
//! `poll` runs at later times (neighbor retries, failures, expiry) and `drain_tx`
//! empties the queues; at the end, with the output dropped and the neighbor queues
//! flushed, the pool must be full again.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use stack::addr::v6;
use stack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use stack::wire::ethernet::{EthernetFrame, EthernetRepr};
use stack::wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use stack::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use stack::wire::ndp::NdiscRepr;
use stack::wire::udp::UdpPacket;
use stack::wire::{EtherType, EthernetAddress, IpProtocol};
use stack::{
    Duration, Frame, FramePool, Instant, InterfaceConfig, PoolConfig, PortId, RouteTarget, Stack,
    StackConfig,
};

const PORT_MACS: [EthernetAddress; 2] = [
    EthernetAddress([2, 0, 0, 0, 1, 0]),
    EthernetAddress([2, 0, 0, 0, 1, 1]),
];
const HOST_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const GW_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 2, 0]);
const POOL_FRAMES: u32 = 512;

/// Link-layer destinations: the port's MAC (`run` makes it the receiving port's),
/// broadcast, an IPv6 group, a stranger.
const L2_DST: [EthernetAddress; 4] = [
    PORT_MACS[0],
    EthernetAddress::BROADCAST,
    EthernetAddress([0x33, 0x33, 0xff, 0, 0, 1]),
    EthernetAddress([2, 0, 0, 0, 9, 9]),
];
/// Link-layer sources: the static host, a new neighbor, a group address (invalid).
const L2_SRC: [EthernetAddress; 3] = [
    HOST_MAC,
    EthernetAddress([2, 0, 0, 0, 0, 7]),
    EthernetAddress([3, 0, 0, 0, 0, 7]),
];

/// IPv4 addresses: ours, static neighbors, neighbors to resolve, routed, unroutable,
/// broadcasts and martians.
const V4: [Ipv4Addr; 12] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(203, 0, 113, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(203, 0, 113, 2),
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(203, 0, 113, 9),
    Ipv4Addr::new(10, 1, 2, 3),
    Ipv4Addr::new(192, 0, 2, 1),
    Ipv4Addr::new(198, 51, 100, 255),
    Ipv4Addr::BROADCAST,
    Ipv4Addr::new(127, 0, 0, 1),
    Ipv4Addr::UNSPECIFIED,
];

/// IPv6 addresses, likewise, with link-local and multicast ones.
fn v6_addr(i: usize) -> Ipv6Addr {
    const R0: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    let all = [
        R0,
        Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2),
        Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2),
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7),
        Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 9),
        Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 3),
        Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1),
        v6::link_local_from_mac(PORT_MACS[0].0),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7),
        v6::solicited_node(R0),
        v6::ALL_NODES,
        Ipv6Addr::UNSPECIFIED,
        Ipv6Addr::LOCALHOST,
    ];
    all[i % all.len()]
}

fn router() -> (Stack, FramePool) {
    let pool = FramePool::with_frames(POOL_FRAMES, PoolConfig::default()).unwrap();
    let mut stack = Stack::new(StackConfig::router("fuzz"), pool.clone(), 11);
    let p0 = InterfaceConfig::new("p0", PORT_MACS[0])
        .with_ipv4("198.51.100.1/24".parse().unwrap())
        .with_ipv6("2001:db8:1::1/64".parse().unwrap());
    let p1 = InterfaceConfig::new("p1", PORT_MACS[1])
        .with_mtu(1400)
        .with_ipv4("203.0.113.1/24".parse().unwrap())
        .with_ipv6("2001:db8:2::1/64".parse().unwrap());
    let p0 = stack.add_port(p0).unwrap();
    let p1 = stack.add_port(p1).unwrap();
    stack
        .add_static_neighbor(p0, IpAddr::V4(V4[2]), HOST_MAC)
        .unwrap();
    stack
        .add_static_neighbor(p0, IpAddr::V6(v6_addr(2)), HOST_MAC)
        .unwrap();
    stack
        .add_static_neighbor(p1, IpAddr::V4(V4[3]), GW_MAC)
        .unwrap();
    stack
        .add_static_neighbor(p1, IpAddr::V6(v6_addr(3)), GW_MAC)
        .unwrap();
    stack
        .add_route(
            "10.0.0.0/8".parse().unwrap(),
            RouteTarget::Via(IpAddr::V4(V4[3])),
        )
        .unwrap();
    stack
        .add_route(
            "2001:db8:ff::/48".parse().unwrap(),
            RouteTarget::Via(IpAddr::V6(v6_addr(3))),
        )
        .unwrap();
    (stack, pool)
}

// Builders (as in frames.rs).

fn ethernet(
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = vec![0; 14 + payload.len()];
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut b[..14]));
    b[14..].copy_from_slice(payload);
    b
}

fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    ttl: u8,
    df: bool,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: ttl,
        dont_frag: df,
        ident: 7,
    };
    let mut b = vec![0; 20 + payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    repr.emit(&mut p);
    p.payload_mut().copy_from_slice(payload);
    b
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit,
    };
    let mut b = vec![0; 40 + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
    b[40..].copy_from_slice(payload);
    b
}

fn udp(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..8 + len).map(|i| i as u8).collect();
    let mut u = UdpPacket::new_unchecked(&mut b[..]);
    u.set_src_port(40000);
    u.set_dst_port(53);
    u.set_len((8 + len) as u16);
    u.fill_checksum(src, dst);
    b
}

fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, msg: &Icmpv6Repr<'_>) -> Vec<u8> {
    let mut b = vec![0; msg.buffer_len()];
    msg.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut b[..]));
    b
}

/// A valid frame of one kind, before mutation.
#[derive(Debug, Clone)]
enum Base {
    Udp4 {
        src: usize,
        dst: usize,
        ttl: u8,
        df: bool,
        len: usize,
    },
    Echo4 {
        src: usize,
        dst: usize,
        ttl: u8,
        len: usize,
    },
    Udp6 {
        src: usize,
        dst: usize,
        hop: u8,
        len: usize,
    },
    Echo6 {
        src: usize,
        dst: usize,
        hop: u8,
        len: usize,
    },
    Ns {
        src: usize,
        dst: usize,
        target: usize,
        slla: bool,
        hop: u8,
    },
    Na {
        src: usize,
        dst: usize,
        target: usize,
        solicited: bool,
        override_: bool,
        tlla: bool,
    },
    Arp {
        request: bool,
        sender: usize,
        target: usize,
    },
}

impl Base {
    fn build(&self, l2_dst: EthernetAddress, l2_src: EthernetAddress) -> Vec<u8> {
        let v4 = |i: usize| V4[i % V4.len()];
        match *self {
            Base::Udp4 {
                src,
                dst,
                ttl,
                df,
                len,
            } => {
                let (s, d) = (v4(src), v4(dst));
                let packet = ipv4(
                    s,
                    d,
                    IpProtocol::Udp,
                    ttl,
                    df,
                    &udp(IpAddr::V4(s), IpAddr::V4(d), len),
                );
                ethernet(l2_dst, l2_src, EtherType::Ipv4, &packet)
            }
            Base::Echo4 { src, dst, ttl, len } => {
                let data = vec![0x5a; len];
                let msg = Icmpv4Repr::EchoRequest {
                    ident: 1,
                    seq_no: 2,
                    data: &data,
                };
                let mut icmp = vec![0; msg.buffer_len()];
                msg.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]));
                ethernet(
                    l2_dst,
                    l2_src,
                    EtherType::Ipv4,
                    &ipv4(v4(src), v4(dst), IpProtocol::Icmp, ttl, false, &icmp),
                )
            }
            Base::Udp6 { src, dst, hop, len } => {
                let (s, d) = (v6_addr(src), v6_addr(dst));
                let packet = ipv6(
                    s,
                    d,
                    IpProtocol::Udp,
                    hop,
                    &udp(IpAddr::V6(s), IpAddr::V6(d), len),
                );
                ethernet(l2_dst, l2_src, EtherType::Ipv6, &packet)
            }
            Base::Echo6 { src, dst, hop, len } => {
                let (s, d) = (v6_addr(src), v6_addr(dst));
                let data = vec![0x5a; len];
                let icmp = icmpv6(
                    s,
                    d,
                    &Icmpv6Repr::EchoRequest {
                        ident: 1,
                        seq_no: 2,
                        data: &data,
                    },
                );
                ethernet(
                    l2_dst,
                    l2_src,
                    EtherType::Ipv6,
                    &ipv6(s, d, IpProtocol::Icmpv6, hop, &icmp),
                )
            }
            Base::Ns {
                src,
                dst,
                target,
                slla,
                hop,
            } => {
                let (s, d) = (v6_addr(src), v6_addr(dst));
                let lladdr = slla.then_some(l2_src);
                let msg = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: v6_addr(target),
                    lladdr,
                });
                ethernet(
                    l2_dst,
                    l2_src,
                    EtherType::Ipv6,
                    &ipv6(s, d, IpProtocol::Icmpv6, hop, &icmpv6(s, d, &msg)),
                )
            }
            Base::Na {
                src,
                dst,
                target,
                solicited,
                override_,
                tlla,
            } => {
                let (s, d) = (v6_addr(src), v6_addr(dst));
                let msg = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                    router: false,
                    solicited,
                    override_,
                    target_addr: v6_addr(target),
                    lladdr: tlla.then_some(l2_src),
                });
                ethernet(
                    l2_dst,
                    l2_src,
                    EtherType::Ipv6,
                    &ipv6(s, d, IpProtocol::Icmpv6, 255, &icmpv6(s, d, &msg)),
                )
            }
            Base::Arp {
                request,
                sender,
                target,
            } => {
                let repr = ArpRepr {
                    operation: if request {
                        ArpOperation::Request
                    } else {
                        ArpOperation::Reply
                    },
                    source_hardware_addr: l2_src,
                    source_protocol_addr: v4(sender),
                    target_hardware_addr: if request {
                        EthernetAddress::default()
                    } else {
                        l2_dst
                    },
                    target_protocol_addr: v4(target),
                };
                let mut body = vec![0; repr.buffer_len()];
                repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
                let mut f = ethernet(l2_dst, l2_src, EtherType::Arp, &body);
                f.resize(60, 0xa5);
                f
            }
        }
    }
}

/// Damage done to a valid frame.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte (position taken modulo the length).
    Flip { at: usize, mask: u8 },
    /// Cut the frame to `to` bytes (modulo the length + 1).
    Truncate { to: usize },
    /// Overwrite a 16-bit length field: IPv4 total length, UDP length over IPv4, IPv6
    /// payload length, UDP length over IPv6.
    SetLen16 { field: usize, value: u16 },
    /// Overwrite a byte that holds a length: IPv4 version/IHL, the first NDP option's
    /// length, an ARP hardware or protocol length.
    SetLen8 { field: usize, value: u8 },
    /// Append junk, as Ethernet padding would.
    Pad { n: usize },
}

const LEN16: [usize; 4] = [14 + 2, 14 + 20 + 4, 14 + 4, 14 + 40 + 4];
const LEN8: [usize; 4] = [14, 14 + 40 + 24 + 1, 14 + 4, 14 + 5];

impl Mutation {
    fn apply(&self, f: &mut Vec<u8>) {
        match *self {
            Mutation::Flip { at, mask } => {
                if !f.is_empty() {
                    let i = at % f.len();
                    f[i] ^= mask;
                }
            }
            Mutation::Truncate { to } => f.truncate(to % (f.len() + 1)),
            Mutation::SetLen16 { field, value } => {
                let at = LEN16[field % LEN16.len()];
                if let Some(b) = f.get_mut(at..at + 2) {
                    b.copy_from_slice(&value.to_be_bytes());
                }
            }
            Mutation::SetLen8 { field, value } => {
                if let Some(b) = f.get_mut(LEN8[field % LEN8.len()]) {
                    *b = value;
                }
            }
            Mutation::Pad { n } => f.extend((0..n).map(|i| i as u8 ^ 0xa5)),
        }
    }
}

/// Makes the IPv4 header checksum and the UDP or ICMPv6 checksum valid again where the
/// (mutated) lengths still let them be computed, so mutations reach the checks behind.
fn fix_checksums(f: &mut [u8]) {
    if f.len() < 14 {
        return;
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let ip = &mut f[14..];
    if ethertype == u16::from(EtherType::Ipv4) && ip.len() >= 20 {
        let hl = usize::from(ip[0] & 0x0f) * 4;
        if hl < 20 || hl > ip.len() {
            return;
        }
        Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let (src, dst) = (
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        );
        if ip[9] == u8::from(IpProtocol::Udp) && total >= hl + 8 {
            let l4 = &mut ip[hl..total];
            let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if (8..=l4.len()).contains(&len) {
                UdpPacket::new_unchecked(l4).fill_checksum(IpAddr::V4(src), IpAddr::V4(dst));
            }
        }
    } else if ethertype == u16::from(EtherType::Ipv6) && ip.len() >= 40 {
        let end = (40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))).min(ip.len());
        let mut a = [0u8; 16];
        a.copy_from_slice(&ip[8..24]);
        let src = Ipv6Addr::from(a);
        a.copy_from_slice(&ip[24..40]);
        let dst = Ipv6Addr::from(a);
        let next = ip[6];
        let l4 = &mut ip[40..end];
        if next == u8::from(IpProtocol::Icmpv6) && l4.len() >= 8 {
            Icmpv6Packet::new_unchecked(l4).fill_checksum(&src, &dst);
        } else if next == u8::from(IpProtocol::Udp) && l4.len() >= 8 {
            let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if (8..=l4.len()).contains(&len) {
                UdpPacket::new_unchecked(l4).fill_checksum(IpAddr::V6(src), IpAddr::V6(dst));
            }
        }
    }
}

/// Drains every port, checking each frame the stack sends, and drops them.
fn drain_and_check(stack: &mut Stack, out: &mut Vec<Frame>) {
    for i in 0..stack.ports().len() {
        let port = PortId(i as u16);
        let (mac, mtu) = {
            let c = stack.ports()[i].config();
            (c.mac, usize::from(c.mtu))
        };
        out.clear();
        stack.drain_tx(port, out, usize::MAX);
        for f in out.drain(..) {
            let d = f.data();
            assert!(
                d.len() >= 14 && d.len() <= 14 + mtu,
                "{} bytes out of {port} (MTU {mtu})",
                d.len()
            );
            let eth = EthernetFrame::new_checked(d).unwrap();
            assert_eq!(eth.src_addr(), mac, "source MAC of a frame out of {port}");
            assert!(
                !eth.dst_addr().is_multicast()
                    || eth.dst_addr().is_broadcast()
                    || eth.dst_addr().0[..2] == [0x33, 0x33]
            );
            assert!(
                matches!(
                    eth.ethertype(),
                    EtherType::Ipv4 | EtherType::Ipv6 | EtherType::Arp
                ),
                "EtherType {:?} out of {port}",
                eth.ethertype()
            );
        }
    }
}

/// Feeds `batches` of (port, frame bytes) to a fresh router, runs its timers for a few
/// minutes, and checks that no frame leaked.
fn run(batches: &[(u8, Vec<Vec<u8>>)]) {
    let (mut stack, pool) = router();
    let mut out = Vec::with_capacity(64);
    let mut rx = Vec::with_capacity(16);
    let start = Instant::from_secs(1);
    let mut received = 0;
    for (k, (port, frames)) in batches.iter().enumerate() {
        let port = PortId(u16::from(*port % 2));
        for bytes in frames {
            let mut f = pool.alloc().expect("pool");
            let d = f.append(bytes.len()).expect("frame fits");
            d.copy_from_slice(bytes);
            // A frame for either port's MAC is for the port it arrives on; a stranger's
            // MAC stays as it is.
            if d.len() >= 6 && PORT_MACS.iter().any(|m| d[..6] == m.0) {
                d[..6].copy_from_slice(&PORT_MACS[usize::from(port.0)].0);
            }
            rx.push(f);
        }
        received += frames.len() as u64;
        let now = start + Duration::from_millis(k as u64);
        stack.receive_batch(now, port, &mut rx);
        assert!(rx.is_empty());
        drain_and_check(&mut stack, &mut out);
    }
    assert_eq!(stack.counters().rx_packets, received);
    for ms in [
        500, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_000, 10_000, 40_000, 70_000, 200_000,
    ] {
        stack.poll(start + Duration::from_millis(ms));
        drain_and_check(&mut stack, &mut out);
    }
    stack.flush_neighbors();
    drain_and_check(&mut stack, &mut out);
    assert_eq!(
        pool.available(),
        pool.capacity() as usize,
        "frames leaked: {:?}",
        stack.counters()
    );
}

fn index() -> impl Strategy<Value = usize> {
    0..16usize
}

fn ttl() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(1),
        Just(2),
        Just(64),
        Just(255),
        any::<u8>()
    ]
}

fn data_len() -> impl Strategy<Value = usize> {
    prop_oneof![0..64usize, 1300..1500usize]
}

/// Mostly a port's MAC (made the receiving port's by `run`), sometimes the others.
fn l2_dst() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(0usize), 1 => 1..L2_DST.len()]
}

/// Mostly a unicast neighbor, sometimes the group address.
fn l2_src() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0..2usize, 1 => Just(2usize)]
}

fn base() -> impl Strategy<Value = Base> {
    prop_oneof![
        (index(), index(), ttl(), any::<bool>(), data_len()).prop_map(
            |(src, dst, ttl, df, len)| Base::Udp4 {
                src,
                dst,
                ttl,
                df,
                len
            }
        ),
        (index(), index(), ttl(), data_len()).prop_map(|(src, dst, ttl, len)| Base::Echo4 {
            src,
            dst,
            ttl,
            len
        }),
        (index(), index(), ttl(), data_len()).prop_map(|(src, dst, hop, len)| Base::Udp6 {
            src,
            dst,
            hop,
            len
        }),
        (index(), index(), ttl(), data_len()).prop_map(|(src, dst, hop, len)| Base::Echo6 {
            src,
            dst,
            hop,
            len
        }),
        (
            index(),
            index(),
            index(),
            any::<bool>(),
            prop_oneof![Just(255u8), ttl()]
        )
            .prop_map(|(src, dst, target, slla, hop)| Base::Ns {
                src,
                dst,
                target,
                slla,
                hop
            }),
        (
            index(),
            index(),
            index(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(src, dst, target, solicited, override_, tlla)| Base::Na {
                src,
                dst,
                target,
                solicited,
                override_,
                tlla
            }),
        (any::<bool>(), index(), index()).prop_map(|(request, sender, target)| Base::Arp {
            request,
            sender,
            target
        }),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        (0..LEN16.len(), any::<u16>())
            .prop_map(|(field, value)| Mutation::SetLen16 { field, value }),
        (0..LEN8.len(), any::<u8>()).prop_map(|(field, value)| Mutation::SetLen8 { field, value }),
        (0..48usize).prop_map(|n| Mutation::Pad { n }),
    ]
}

/// A valid frame on its way in, damaged by up to four mutations, its checksums maybe
/// made valid again.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        base(),
        l2_dst(),
        l2_src(),
        prop::collection::vec(mutation(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(base, dst, src, mutations, fix)| {
            let mut f = base.build(L2_DST[dst], L2_SRC[src]);
            for m in &mutations {
                m.apply(&mut f);
            }
            if fix {
                fix_checksums(&mut f);
            }
            f.truncate(1600);
            f
        })
}

/// Arbitrary bytes behind a valid Ethernet header with an EtherType the stack handles.
fn headed_frame() -> impl Strategy<Value = Vec<u8>> {
    let ethertype = prop_oneof![
        Just(EtherType::Ipv4),
        Just(EtherType::Ipv6),
        Just(EtherType::Arp),
        Just(EtherType::Vlan),
        any::<u16>().prop_map(EtherType::from),
    ];
    (
        l2_dst(),
        l2_src(),
        ethertype,
        prop::collection::vec(any::<u8>(), 0..1586),
    )
        .prop_map(|(dst, src, ethertype, payload)| {
            ethernet(L2_DST[dst], L2_SRC[src], ethertype, &payload)
        })
}

fn batches(
    frame: impl Strategy<Value = Vec<u8>>,
) -> impl Strategy<Value = Vec<(u8, Vec<Vec<u8>>)>> {
    prop::collection::vec((0..2u8, prop::collection::vec(frame, 1..6)), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_nor_leak(batches in batches(prop::collection::vec(any::<u8>(), 0..1600))) {
        run(&batches);
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_ethernet_header_never_panic_nor_leak(batches in batches(headed_frame())) {
        run(&batches);
    }

    #[test]
    fn mutated_valid_frames_never_panic_nor_leak(batches in batches(mutated_frame())) {
        run(&batches);
    }
}

/// The same properties hold for the valid frames before any mutation, and those do
/// reach past the input checks: a guard against a generator that only ever produces
/// frames the first check throws away.
#[test]
fn unmutated_frames_are_mostly_accepted() {
    let (mut stack, pool) = router();
    let mut out = Vec::new();
    let now = Instant::from_secs(1);
    let frames = [
        Base::Udp4 {
            src: 2,
            dst: 6,
            ttl: 64,
            df: true,
            len: 10,
        }
        .build(PORT_MACS[0], HOST_MAC),
        Base::Echo4 {
            src: 2,
            dst: 0,
            ttl: 64,
            len: 10,
        }
        .build(PORT_MACS[0], HOST_MAC),
        Base::Udp6 {
            src: 2,
            dst: 6,
            hop: 64,
            len: 10,
        }
        .build(PORT_MACS[0], HOST_MAC),
        Base::Echo6 {
            src: 2,
            dst: 0,
            hop: 64,
            len: 10,
        }
        .build(PORT_MACS[0], HOST_MAC),
        Base::Ns {
            src: 4,
            dst: 10,
            target: 0,
            slla: true,
            hop: 255,
        }
        .build(L2_DST[2], L2_SRC[1]),
        Base::Arp {
            request: true,
            sender: 4,
            target: 0,
        }
        .build(EthernetAddress::BROADCAST, L2_SRC[1]),
    ];
    for bytes in &frames {
        let mut f = pool.alloc().unwrap();
        f.append(bytes.len()).unwrap().copy_from_slice(bytes);
        stack.receive(now, PortId(0), f);
    }
    assert_eq!(stack.counters().total_drops(), 0, "{:?}", stack.counters());
    // Forwarded twice (out of port 1); echo replies, NA and ARP reply out of port 0.
    assert_eq!(stack.ports()[1].tx_pending(), 2);
    assert_eq!(stack.ports()[0].tx_pending(), 4);
    drain_and_check(&mut stack, &mut out);
    stack.flush_neighbors();
    assert_eq!(pool.available(), pool.capacity() as usize);
}
