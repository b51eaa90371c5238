//! Crafted frames into one router `Stack`, and what comes out.
//!
//! Each test builds the same router (two ports, IPv4 and IPv6 on both, static neighbors
//! for a host on port 0 and a gateway on port 1), injects frames built with the wire
//! emitters, and reads the frames `drain_tx` hands back with the wire views, and the
//! per-port drop counters. Where a test shows that something is *not* sent, a control
//! case nearby shows that the same frame, minus the one property under test, is.
//!
//! ```text
//!  host 198.51.100.2          p0 198.51.100.1/24      p1 203.0.113.1/24, MTU 1400
//!       2001:db8:1::2  ----   2001:db8:1::1/64  [r]   2001:db8:2::1/64  ----  gw 203.0.113.2
//!                                                                             2001:db8:2::2
//!  routes: 10.0.0.0/8 and 2001:db8:ff::/48 via the gateway
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use stack::addr::v6;
use stack::neighbor::{NeighborConfig, NeighborState};
use stack::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use stack::wire::ethernet::{EthernetFrame, EthernetRepr};
use stack::wire::icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded};
use stack::wire::icmpv6::{Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr};
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use stack::wire::ndp::NdiscRepr;
use stack::wire::udp::UdpPacket;
use stack::wire::{EtherType, EthernetAddress, IpProtocol};
use stack::{
    DropReason, FramePool, Instant, InterfaceConfig, PoolConfig, PortId, RouteTarget, Stack,
    StackConfig,
};

const P0: PortId = PortId(0);
const P1: PortId = PortId(1);

const R0_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 0]);
const R1_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 1]);
/// The host on port 0 (a static neighbor).
const HOST_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
/// The gateway on port 1 (a static neighbor).
const GW_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 2, 0]);
/// A neighbor on port 0 the router does not know yet.
const NEW_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 7]);
/// Another MAC for that neighbor.
const MOVED_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 8]);

const R0_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const R1_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const HOST_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const NEW_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const GW_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// Behind the gateway.
const REMOTE_V4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);

const R0_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const NEW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
const GW_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
/// Behind the gateway.
const REMOTE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 3);

/// The MTU of port 1 (port 0 keeps 1500).
const EGRESS_MTU: u16 = 1400;

/// Marker byte for Ethernet padding and other junk that must not travel on.
const JUNK: u8 = 0xa5;

struct Router {
    stack: Stack,
    pool: FramePool,
    now: Instant,
}

impl Router {
    fn new() -> Self {
        let pool = FramePool::with_frames(256, PoolConfig::default()).unwrap();
        let mut stack = Stack::new(StackConfig::router("r"), pool.clone(), 7);
        let p0 = InterfaceConfig::new("p0", R0_MAC)
            .with_ipv4("198.51.100.1/24".parse().unwrap())
            .with_ipv6("2001:db8:1::1/64".parse().unwrap());
        let p1 = InterfaceConfig::new("p1", R1_MAC)
            .with_mtu(EGRESS_MTU)
            .with_ipv4("203.0.113.1/24".parse().unwrap())
            .with_ipv6("2001:db8:2::1/64".parse().unwrap());
        assert_eq!(stack.add_port(p0).unwrap(), P0);
        assert_eq!(stack.add_port(p1).unwrap(), P1);
        for (port, addr, mac) in [
            (P0, IpAddr::V4(HOST_V4), HOST_MAC),
            (P0, IpAddr::V6(HOST_V6), HOST_MAC),
            (P1, IpAddr::V4(GW_V4), GW_MAC),
            (P1, IpAddr::V6(GW_V6), GW_MAC),
        ] {
            stack.add_static_neighbor(port, addr, mac).unwrap();
        }
        stack
            .add_route(
                "10.0.0.0/8".parse().unwrap(),
                RouteTarget::Via(IpAddr::V4(GW_V4)),
            )
            .unwrap();
        stack
            .add_route(
                "2001:db8:ff::/48".parse().unwrap(),
                RouteTarget::Via(IpAddr::V6(GW_V6)),
            )
            .unwrap();
        Router {
            stack,
            pool,
            now: Instant::from_secs(1),
        }
    }

    /// Receives `bytes` as one frame on `port`.
    fn rx(&mut self, port: PortId, bytes: &[u8]) {
        let mut f = self.pool.alloc().expect("pool");
        f.append(bytes.len())
            .expect("frame fits")
            .copy_from_slice(bytes);
        self.stack.receive(self.now, port, f);
    }

    /// Receives `frames` as one batch on `port`.
    fn rx_batch(&mut self, port: PortId, frames: &[Vec<u8>]) {
        let mut batch: Vec<_> = frames
            .iter()
            .map(|bytes| {
                let mut f = self.pool.alloc().expect("pool");
                f.append(bytes.len())
                    .expect("frame fits")
                    .copy_from_slice(bytes);
                f
            })
            .collect();
        self.stack.receive_batch(self.now, port, &mut batch);
        assert!(batch.is_empty());
    }

    /// Everything queued for `port`, as bytes.
    fn tx(&mut self, port: PortId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.stack.drain_tx(port, &mut out, usize::MAX);
        out.iter().map(|f| f.data().to_vec()).collect()
    }

    /// The one frame queued for `port`, and nothing on the other port.
    fn tx_one(&mut self, port: PortId) -> Vec<u8> {
        let other = if port == P0 { P1 } else { P0 };
        let mut frames = self.tx(port);
        assert_eq!(frames.len(), 1, "frames out of {port}");
        assert!(self.tx(other).is_empty(), "frames out of {other}");
        frames.pop().unwrap()
    }

    fn drops(&self, port: PortId, reason: DropReason) -> u64 {
        self.stack.ports()[usize::from(port.0)]
            .counters()
            .drops_for(reason)
    }

    /// `reason` was counted once on `port` and nothing else was dropped anywhere.
    fn assert_only_drop(&self, port: PortId, reason: DropReason) {
        assert_eq!(
            self.drops(port, reason),
            1,
            "{reason:?} on {port}: {:?}",
            self.stack.counters()
        );
        assert_eq!(
            self.stack.counters().total_drops(),
            1,
            "{:?}",
            self.stack.counters()
        );
    }

    /// Nothing waits to be sent on any port.
    fn assert_silent(&self) {
        assert!(
            !self.stack.has_tx(),
            "unexpected frames: {:?}",
            self.stack.counters()
        );
        assert_eq!(self.stack.counters().icmp_errors_sent, 0);
    }

    fn neighbor(&self, port: PortId, addr: IpAddr) -> Option<(EthernetAddress, NeighborState)> {
        self.stack
            .neighbors()
            .find(|n| n.port == port && n.addr == addr)
            .map(|n| (n.mac, n.state))
    }
}

// Builders: each returns the bytes of one header and what follows it.

fn ethernet(
    dst: EthernetAddress,
    src: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = vec![0; 14 + payload.len()];
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    repr.emit(&mut EthernetFrame::new_unchecked(&mut b[..14]));
    b[14..].copy_from_slice(payload);
    b
}

/// A frame from the host to the router's port 0 MAC.
fn from_host(ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    ethernet(R0_MAC, HOST_MAC, ethertype, payload)
}

/// Pads a frame to the 60-byte Ethernet minimum with junk.
fn padded(mut frame: Vec<u8>) -> Vec<u8> {
    assert!(frame.len() < 60, "needs no padding");
    frame.resize(60, JUNK);
    frame
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: payload.len(),
        hop_limit: ttl,
        dont_frag: false,
        ident: 0x1234,
    };
    let mut b = vec![0; repr.buffer_len() + payload.len()];
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    repr.emit(&mut p);
    p.payload_mut().copy_from_slice(payload);
    b
}

/// Edits an IPv4 header, then fills its checksum again.
fn edit_v4(mut packet: Vec<u8>, f: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) -> Vec<u8> {
    let mut p = Ipv4Packet::new_unchecked(&mut packet[..]);
    f(&mut p);
    p.fill_checksum();
    packet
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit,
    };
    let mut b = vec![0; repr.buffer_len() + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
    b[40..].copy_from_slice(payload);
    b
}

fn udp(src: IpAddr, dst: IpAddr, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut b = vec![0; len];
    let mut u = UdpPacket::new_unchecked(&mut b[..]);
    u.set_src_port(40000);
    u.set_dst_port(9);
    u.set_len(len as u16);
    u.payload_mut().copy_from_slice(data);
    u.fill_checksum(src, dst);
    b
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, data: &[u8]) -> Vec<u8> {
    ipv4(
        src,
        dst,
        IpProtocol::Udp,
        ttl,
        &udp(IpAddr::V4(src), IpAddr::V4(dst), data),
    )
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, data: &[u8]) -> Vec<u8> {
    ipv6(
        src,
        dst,
        IpProtocol::Udp,
        hop_limit,
        &udp(IpAddr::V6(src), IpAddr::V6(dst), data),
    )
}

fn icmpv4(msg: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut b = vec![0; msg.buffer_len()];
    msg.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
    b
}

fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, msg: &Icmpv6Repr<'_>) -> Vec<u8> {
    let mut b = vec![0; msg.buffer_len()];
    msg.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut b[..]));
    b
}

fn icmp6_packet(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, msg: &Icmpv6Repr<'_>) -> Vec<u8> {
    ipv6(
        src,
        dst,
        IpProtocol::Icmpv6,
        hop_limit,
        &icmpv6(src, dst, msg),
    )
}

fn arp(
    op: ArpOperation,
    sha: EthernetAddress,
    spa: Ipv4Addr,
    tha: EthernetAddress,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut b = vec![0; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    b
}

/// A broadcast ARP request, padded as it travels on the wire.
fn arp_request(sha: EthernetAddress, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let body = arp(
        ArpOperation::Request,
        sha,
        spa,
        EthernetAddress::default(),
        tpa,
    );
    padded(ethernet(
        EthernetAddress::BROADCAST,
        sha,
        EtherType::Arp,
        &body,
    ))
}

/// A neighbor solicitation for `target` from `src` (with `slla` as its option).
fn ns(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    target: Ipv6Addr,
    slla: Option<EthernetAddress>,
) -> Vec<u8> {
    let msg = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: slla,
    });
    icmp6_packet(src, dst, hop_limit, &msg)
}

// Views over output frames; each checks what it can (lengths, checksums).

fn eth(f: &[u8]) -> EthernetFrame<&[u8]> {
    EthernetFrame::new_checked(f).expect("ethernet header")
}

fn ip4(f: &[u8]) -> Ipv4Packet<&[u8]> {
    assert_eq!(eth(f).ethertype(), EtherType::Ipv4);
    let ip = Ipv4Packet::new_checked(&f[14..]).expect("ipv4 header");
    assert_eq!(
        usize::from(ip.total_len()),
        f.len() - 14,
        "frame carries exactly the datagram"
    );
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    ip
}

fn icmp4(f: &[u8]) -> Icmpv4Packet<&[u8]> {
    let ip = ip4(f);
    assert_eq!(ip.next_header(), IpProtocol::Icmp);
    let icmp = Icmpv4Packet::new_checked(ip.into_payload()).expect("icmp header");
    assert!(icmp.verify_checksum(), "ICMP checksum");
    icmp
}

fn ip6(f: &[u8]) -> Ipv6Packet<&[u8]> {
    assert_eq!(eth(f).ethertype(), EtherType::Ipv6);
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("ipv6 header");
    assert_eq!(
        40 + usize::from(ip.payload_len()),
        f.len() - 14,
        "frame carries exactly the packet"
    );
    assert_eq!(ip.version(), 6);
    ip
}

fn icmp6(f: &[u8]) -> Icmpv6Packet<&[u8]> {
    let ip = ip6(f);
    assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6 header");
    assert!(icmp.verify_checksum(&src, &dst), "ICMPv6 checksum");
    icmp
}

/// The neighbor advertisement in `f`, with its IPv6 source, destination and hop limit.
fn na(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, NdiscRepr<'_>) {
    let ip = ip6(f);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let icmp = icmp6(f);
    match Icmpv6Repr::parse(&src, &dst, &icmp).expect("valid ICMPv6") {
        Icmpv6Repr::Ndisc(repr @ NdiscRepr::NeighborAdvert { .. }) => {
            (src, dst, ip.hop_limit(), repr)
        }
        other => panic!("not a neighbor advertisement: {other:?}"),
    }
}

/// An ICMPv4 error for the host: out of port 0 to the host's MAC, from the router's
/// port 0 address.
fn assert_icmp4_error_to_host(f: &[u8], msg: Icmpv4Message, code: u8) {
    let e = eth(f);
    assert_eq!((e.dst_addr(), e.src_addr()), (HOST_MAC, R0_MAC));
    let ip = ip4(f);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (R0_V4, HOST_V4));
    assert_eq!(ip.hop_limit(), 64);
    let icmp = icmp4(f);
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (msg, code));
}

/// An ICMPv6 error for the host, likewise.
fn assert_icmp6_error_to_host(f: &[u8], msg: Icmpv6Message, code: u8) {
    let e = eth(f);
    assert_eq!((e.dst_addr(), e.src_addr()), (HOST_MAC, R0_MAC));
    let ip = ip6(f);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (R0_V6, HOST_V6));
    assert_eq!(ip.hop_limit(), 64);
    let icmp = icmp6(f);
    assert_eq!((icmp.msg_type(), icmp.msg_code()), (msg, code));
}

// RFC 1812 §5.2.2: IPv4 header validation.

#[test]
fn ipv4_bad_version_is_dropped() {
    let mut r = Router::new();
    let packet = edit_v4(udp4(HOST_V4, REMOTE_V4, 64, b"x"), |p| p.set_version(5));
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::Ipv4BadVersion);
    r.assert_silent();
}

#[test]
fn ipv4_header_length_under_five_words_is_dropped() {
    let mut r = Router::new();
    let mut packet = udp4(HOST_V4, REMOTE_V4, 64, b"x");
    Ipv4Packet::new_unchecked(&mut packet[..]).set_header_len(16);
    assert_eq!(packet[0], 0x44);
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::Ipv4BadHeaderLen);
    r.assert_silent();
}

#[test]
fn ipv4_total_length_past_the_frame_is_dropped() {
    let mut r = Router::new();
    let packet = udp4(HOST_V4, REMOTE_V4, 64, &[7; 40]);
    let len = packet.len() as u16;
    // One byte more than the frame holds, with a valid checksum.
    let packet = edit_v4(packet, |p| p.set_total_len(len + 1));
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::Ipv4Truncated);
    r.assert_silent();
}

#[test]
fn ipv4_bad_header_checksum_is_dropped() {
    let mut r = Router::new();
    let mut packet = udp4(HOST_V4, REMOTE_V4, 64, b"x");
    packet[10] ^= 0x01;
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::Ipv4BadChecksum);
    r.assert_silent();
}

#[test]
fn ipv4_martian_sources_are_dropped() {
    for src in ["127.0.0.1", "0.0.0.1", "224.0.0.1", "240.0.0.1"] {
        let mut r = Router::new();
        let packet = udp4(src.parse().unwrap(), REMOTE_V4, 64, b"x");
        r.rx(P0, &from_host(EtherType::Ipv4, &packet));
        assert_eq!(r.drops(P0, DropReason::Ipv4MartianSource), 1, "from {src}");
        assert_eq!(r.stack.counters().total_drops(), 1, "from {src}");
        r.assert_silent();
    }
}

#[test]
fn ipv4_martian_destinations_are_dropped() {
    for dst in ["127.0.0.1", "0.1.2.3", "240.0.0.1"] {
        let mut r = Router::new();
        let packet = udp4(HOST_V4, dst.parse().unwrap(), 64, b"x");
        r.rx(P0, &from_host(EtherType::Ipv4, &packet));
        assert_eq!(
            r.drops(P0, DropReason::Ipv4MartianDestination),
            1,
            "to {dst}"
        );
        assert_eq!(r.stack.counters().total_drops(), 1, "to {dst}");
        r.assert_silent();
    }
}

// Ethernet.

#[test]
fn ethernet_frame_shorter_than_a_header_is_dropped() {
    let mut r = Router::new();
    let frame = from_host(EtherType::Ipv4, &[]);
    r.rx(P0, &frame[..13]);
    r.assert_only_drop(P0, DropReason::EthernetMalformed);
    r.assert_silent();
}

#[test]
fn ethernet_destination_not_ours_is_dropped() {
    let mut r = Router::new();
    // Port 1's MAC is the router's, but not this port's.
    for dst in [EthernetAddress([2, 0, 0, 0, 9, 9]), R1_MAC] {
        let frame = ethernet(
            dst,
            HOST_MAC,
            EtherType::Ipv4,
            &udp4(HOST_V4, REMOTE_V4, 64, b"x"),
        );
        r.rx(P0, &frame);
    }
    assert_eq!(r.drops(P0, DropReason::NotOurMac), 2);
    assert_eq!(r.stack.counters().total_drops(), 2);
    r.assert_silent();
}

#[test]
fn ethernet_multicast_source_is_dropped() {
    let mut r = Router::new();
    let src = EthernetAddress([0x03, 0, 0, 0, 0, 2]);
    let frame = ethernet(
        R0_MAC,
        src,
        EtherType::Ipv4,
        &udp4(HOST_V4, REMOTE_V4, 64, b"x"),
    );
    r.rx(P0, &frame);
    r.assert_only_drop(P0, DropReason::InvalidSourceMac);
    r.assert_silent();
}

#[test]
fn ethernet_vlan_tagged_frame_is_dropped() {
    let mut r = Router::new();
    // TCI: VLAN 10, then the inner EtherType and a valid datagram.
    let mut tagged = vec![0x00, 0x0a, 0x08, 0x00];
    tagged.extend(udp4(HOST_V4, REMOTE_V4, 64, b"x"));
    r.rx(P0, &from_host(EtherType::Vlan, &tagged));
    r.assert_only_drop(P0, DropReason::VlanNotConfigured);
    r.assert_silent();
}

#[test]
fn ethernet_unknown_ethertype_is_dropped() {
    let mut r = Router::new();
    // 0x88b5: IEEE 802 local experimental.
    r.rx(
        P0,
        &padded(from_host(EtherType::Unknown(0x88b5), &[1, 2, 3, 4])),
    );
    r.assert_only_drop(P0, DropReason::UnknownEtherType);
    r.assert_silent();
}

// Forwarding: RFC 1812 §5.3.1 (TTL), §5.2.2 (checksum update), new link-layer header.

#[test]
fn ipv4_forwarding_rewrites_ttl_checksum_and_macs() {
    let mut r = Router::new();
    let packet = udp4(HOST_V4, REMOTE_V4, 64, b"twenty bytes of data");
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    let out = r.tx_one(P1);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (GW_MAC, R1_MAC, EtherType::Ipv4)
    );
    let ip = ip4(&out);
    assert_eq!(ip.hop_limit(), 63);
    // Everything but the TTL and the checksum is as received.
    let (sent, got) = (&packet[..], &out[14..]);
    assert_eq!(got.len(), sent.len());
    assert_eq!(
        (&got[..8], &got[9..10], &got[12..]),
        (&sent[..8], &sent[9..10], &sent[12..])
    );
    assert_eq!(r.stack.ports()[1].counters().forwarded, 1);
    assert_eq!(r.stack.counters().total_drops(), 0);
}

#[test]
fn ipv4_forwarding_trims_ethernet_padding() {
    let mut r = Router::new();
    let packet = udp4(HOST_V4, REMOTE_V4, 64, b"hi");
    assert_eq!(packet.len(), 30);
    r.rx(P0, &padded(from_host(EtherType::Ipv4, &packet)));
    let out = r.tx_one(P1);
    assert_eq!(out.len(), 14 + 30, "padding left behind");
    let ip = ip4(&out);
    assert_eq!(ip.hop_limit(), 63);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert!(udp.verify_checksum(IpAddr::V4(HOST_V4), IpAddr::V4(REMOTE_V4)));
    assert_eq!(udp.payload(), b"hi");
}

#[test]
fn ipv6_forwarding_rewrites_hop_limit_and_macs_and_trims_trailing_bytes() {
    let mut r = Router::new();
    let packet = udp6(HOST_V6, REMOTE_V6, 64, b"twenty bytes of data");
    let mut frame = from_host(EtherType::Ipv6, &packet);
    frame.extend([JUNK; 6]);
    r.rx(P0, &frame);
    let out = r.tx_one(P1);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (GW_MAC, R1_MAC, EtherType::Ipv6)
    );
    assert_eq!(out.len(), 14 + packet.len(), "trailing bytes left behind");
    let ip = ip6(&out);
    assert_eq!(ip.hop_limit(), 63);
    let (sent, got) = (&packet[..], &out[14..]);
    assert_eq!((&got[..7], &got[8..]), (&sent[..7], &sent[8..]));
    assert_eq!(r.stack.ports()[1].counters().forwarded, 1);
    assert_eq!(r.stack.counters().total_drops(), 0);
}

// Too big for the egress link.

#[test]
fn ipv4_df_larger_than_egress_mtu_gets_fragmentation_needed() {
    let mut r = Router::new();
    let data = vec![0x5a; 1450 - 28];
    let packet = edit_v4(udp4(HOST_V4, REMOTE_V4, 64, &data), |p| {
        p.set_dont_frag(true)
    });
    assert_eq!(packet.len(), 1450);
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    assert_eq!(r.drops(P0, DropReason::MtuExceeded), 1);
    let out = r.tx_one(P0);
    // RFC 1191 §4: type 3 code 4 with the next-hop MTU.
    assert_icmp4_error_to_host(&out, Icmpv4Message::DstUnreachable, 4);
    let icmp = icmp4(&out);
    assert_eq!(icmp.next_hop_mtu(), EGRESS_MTU);
    // RFC 1812 §4.3.2.3: the original header as received, and as much more as fits 576.
    let quote = icmp.data();
    assert_eq!(quote.len(), 576 - 20 - 8);
    assert_eq!(quote, &packet[..quote.len()]);
    assert_eq!(r.stack.ports()[0].counters().icmp_errors_sent, 1);
}

#[test]
fn ipv6_larger_than_egress_mtu_gets_packet_too_big() {
    let mut r = Router::new();
    let packet = udp6(HOST_V6, REMOTE_V6, 64, &vec![0x5a; 1450 - 48]);
    assert_eq!(packet.len(), 1450);
    r.rx(P0, &from_host(EtherType::Ipv6, &packet));
    assert_eq!(r.drops(P0, DropReason::MtuExceeded), 1);
    let out = r.tx_one(P0);
    assert_icmp6_error_to_host(&out, Icmpv6Message::PktTooBig, 0);
    let icmp = icmp6(&out);
    assert_eq!(icmp.pkt_too_big_mtu(), u32::from(EGRESS_MTU));
    // RFC 4443 §2.4 (c): as much of the packet as fits the minimum MTU.
    let quote = icmp.payload();
    assert_eq!(quote.len(), 1280 - 40 - 8);
    assert_eq!(quote, &packet[..quote.len()]);
}

// RFC 1812 §4.3.2.7 and RFC 4443 §2.4 (e): when not to send an ICMP error.

#[test]
fn no_icmp_error_about_an_icmp_error() {
    let mut r = Router::new();
    // Control: an echo request with TTL 1 gets time exceeded.
    let echo = icmpv4(&Icmpv4Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"ping",
    });
    r.rx(
        P0,
        &from_host(
            EtherType::Ipv4,
            &ipv4(HOST_V4, REMOTE_V4, IpProtocol::Icmp, 1, &echo),
        ),
    );
    assert_icmp4_error_to_host(&r.tx_one(P0), Icmpv4Message::TimeExceeded, 0);

    let mut r = Router::new();
    let quoted = udp4(REMOTE_V4, HOST_V4, 1, b"probe");
    let error = icmpv4(&Icmpv4Repr::TimeExceeded {
        reason: Icmpv4TimeExceeded::TtlExpired,
        data: &quoted,
    });
    r.rx(
        P0,
        &from_host(
            EtherType::Ipv4,
            &ipv4(HOST_V4, REMOTE_V4, IpProtocol::Icmp, 1, &error),
        ),
    );
    r.assert_only_drop(P0, DropReason::TtlExpired);
    r.assert_silent();

    let mut r = Router::new();
    let quoted = udp6(REMOTE_V6, HOST_V6, 1, b"probe");
    let error = Icmpv6Repr::DstUnreachable {
        reason: Icmpv6DstUnreachable::PortUnreachable,
        data: &quoted,
    };
    r.rx(
        P0,
        &from_host(
            EtherType::Ipv6,
            &icmp6_packet(HOST_V6, REMOTE_V6, 1, &error),
        ),
    );
    r.assert_only_drop(P0, DropReason::TtlExpired);
    r.assert_silent();
}

#[test]
fn no_icmp_error_for_a_link_layer_broadcast() {
    // RFC 1812 §5.3.4: a link-layer broadcast is not forwarded, and (§4.3.2.7) not
    // answered with an ICMP error, whether it was for a remote host or for us.
    for dst in [REMOTE_V4, R0_V4] {
        let mut r = Router::new();
        let frame = ethernet(
            EthernetAddress::BROADCAST,
            HOST_MAC,
            EtherType::Ipv4,
            &udp4(HOST_V4, dst, 1, b"x"),
        );
        r.rx(P0, &frame);
        assert_eq!(r.drops(P0, DropReason::BroadcastIgnored), 1, "to {dst}");
        assert_eq!(r.stack.counters().total_drops(), 1, "to {dst}");
        r.assert_silent();
    }
    // IPv6 over a broadcast MAC: not forwarded either, so no hop-limit error.
    let mut r = Router::new();
    let frame = ethernet(
        EthernetAddress::BROADCAST,
        HOST_MAC,
        EtherType::Ipv6,
        &udp6(HOST_V6, REMOTE_V6, 1, b"x"),
    );
    r.rx(P0, &frame);
    r.assert_only_drop(P0, DropReason::BroadcastIgnored);
    r.assert_silent();
}

#[test]
fn no_icmp_error_for_a_non_initial_fragment() {
    for (offset, answered) in [(0, true), (1480, false)] {
        let mut r = Router::new();
        let packet = edit_v4(udp4(HOST_V4, REMOTE_V4, 1, b"fragment"), |p| {
            p.set_more_frags(true);
            p.set_frag_offset(offset);
        });
        r.rx(P0, &from_host(EtherType::Ipv4, &packet));
        r.assert_only_drop(P0, DropReason::TtlExpired);
        if answered {
            assert_icmp4_error_to_host(&r.tx_one(P0), Icmpv4Message::TimeExceeded, 0);
        } else {
            r.assert_silent();
        }
    }
    // IPv6: a fragment header (RFC 8200 §4.5) with offset 185 units (1480 bytes).
    for (units, answered) in [(0u16, true), (185, false)] {
        let mut r = Router::new();
        let mut payload = vec![u8::from(IpProtocol::Udp), 0];
        payload.extend(((units << 3) | 1).to_be_bytes());
        payload.extend(0xdead_beef_u32.to_be_bytes());
        payload.extend([0x5a; 16]);
        r.rx(
            P0,
            &from_host(
                EtherType::Ipv6,
                &ipv6(HOST_V6, REMOTE_V6, IpProtocol::Ipv6Frag, 1, &payload),
            ),
        );
        r.assert_only_drop(P0, DropReason::TtlExpired);
        if answered {
            assert_icmp6_error_to_host(&r.tx_one(P0), Icmpv6Message::TimeExceeded, 0);
        } else {
            r.assert_silent();
        }
    }
}

#[test]
fn no_icmpv6_error_about_an_icmpv6_error_behind_an_extension_header() {
    // RFC 4443 §2.4 (e.1) holds whatever extension headers come before the ICMPv6
    // message. Two packets, each a Destination Unreachable behind one header: a
    // Destination Options header (PadN), then a first fragment (offset 0, M set).
    let quoted = udp6(REMOTE_V6, HOST_V6, 64, b"probe");
    let error = Icmpv6Repr::DstUnreachable {
        reason: Icmpv6DstUnreachable::PortUnreachable,
        data: &quoted,
    };
    let message = icmpv6(HOST_V6, REMOTE_V6, &error);
    let nh = u8::from(IpProtocol::Icmpv6);
    let dest_opts = [nh, 0, 1, 4, 0, 0, 0, 0];
    let first_fragment = [nh, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    for (first, ext) in [
        (IpProtocol::Ipv6Opts, dest_opts),
        (IpProtocol::Ipv6Frag, first_fragment),
    ] {
        let mut r = Router::new();
        let payload = [&ext[..], &message[..]].concat();
        r.rx(
            P0,
            &from_host(
                EtherType::Ipv6,
                &ipv6(HOST_V6, REMOTE_V6, first, 1, &payload),
            ),
        );
        r.assert_only_drop(P0, DropReason::TtlExpired);
        assert!(
            !r.stack.has_tx(),
            "an ICMPv6 error about an ICMPv6 error behind {first:?}"
        );
    }
}

#[test]
fn no_icmpv6_error_about_a_redirect() {
    // RFC 4443 §2.4 (e.2). A Redirect from a link-local source cannot leave the link
    // (RFC 4291 §2.5.6); it is dropped without a "beyond scope" error about it.
    let mut r = Router::new();
    let from: Ipv6Addr = "fe80::2".parse().unwrap();
    let redirect = Icmpv6Repr::Ndisc(NdiscRepr::Redirect {
        target_addr: "fe80::3".parse().unwrap(),
        dest_addr: "2001:db8:ff::4".parse().unwrap(),
        lladdr: None,
        redirected_hdr: None,
    });
    r.rx(
        P0,
        &from_host(
            EtherType::Ipv6,
            &icmp6_packet(from, REMOTE_V6, 255, &redirect),
        ),
    );
    r.assert_only_drop(P0, DropReason::Ipv6LinkLocalNotForwarded);
    r.assert_silent();
}

#[test]
fn ipv6_link_layer_broadcast_or_multicast_is_not_forwarded() {
    // As for IPv4 (RFC 1812 §5.3.4, counted `BroadcastIgnored`): a unicast packet that
    // came as a link-layer broadcast or multicast is not forwarded, or every router on
    // the segment would forward its own copy. Linux's ip6_forward drops any packet whose
    // link-layer destination was not the host.
    let group_mac = EthernetAddress::ipv6_multicast(v6::ALL_NODES);
    for l2_dst in [EthernetAddress::BROADCAST, group_mac] {
        let mut r = Router::new();
        let frame = ethernet(
            l2_dst,
            HOST_MAC,
            EtherType::Ipv6,
            &udp6(HOST_V6, REMOTE_V6, 64, b"x"),
        );
        r.rx(P0, &frame);
        assert!(r.tx(P1).is_empty(), "forwarded a frame sent to {l2_dst}");
        r.assert_only_drop(P0, DropReason::BroadcastIgnored);
    }
}

// Local delivery.

#[test]
fn udp_to_the_router_gets_port_unreachable_v4() {
    let mut r = Router::new();
    let packet = udp4(HOST_V4, R0_V4, 64, b"anyone?");
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::UdpNoListener);
    let out = r.tx_one(P0);
    assert_icmp4_error_to_host(&out, Icmpv4Message::DstUnreachable, 3);
    assert_eq!(
        icmp4(&out).data(),
        &packet[..],
        "the whole datagram is quoted"
    );
}

#[test]
fn udp_to_the_router_gets_port_unreachable_v6() {
    let mut r = Router::new();
    let packet = udp6(HOST_V6, R0_V6, 64, b"anyone?");
    r.rx(P0, &from_host(EtherType::Ipv6, &packet));
    r.assert_only_drop(P0, DropReason::UdpNoListener);
    let out = r.tx_one(P0);
    assert_icmp6_error_to_host(&out, Icmpv6Message::DstUnreachable, 4);
    assert_eq!(icmp6(&out).payload(), &packet[..]);
}

#[test]
fn unknown_protocol_gets_protocol_unreachable_v4() {
    let mut r = Router::new();
    let packet = ipv4(
        HOST_V4,
        R0_V4,
        IpProtocol::Unknown(253),
        64,
        b"experimental",
    );
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::ProtocolUnreachable);
    let out = r.tx_one(P0);
    assert_icmp4_error_to_host(&out, Icmpv4Message::DstUnreachable, 2);
    assert_eq!(icmp4(&out).data(), &packet[..]);
}

#[test]
fn unknown_next_header_gets_parameter_problem_v6() {
    let mut r = Router::new();
    let packet = ipv6(
        HOST_V6,
        R0_V6,
        IpProtocol::Unknown(253),
        64,
        b"experimental",
    );
    r.rx(P0, &from_host(EtherType::Ipv6, &packet));
    r.assert_only_drop(P0, DropReason::ProtocolUnreachable);
    let out = r.tx_one(P0);
    // RFC 8200 §4: code 1, the pointer at the Next Header field of the IPv6 header.
    assert_icmp6_error_to_host(&out, Icmpv6Message::ParamProblem, 1);
    let icmp = icmp6(&out);
    assert_eq!(icmp.param_problem_ptr(), 6);
    assert_eq!(icmp.payload(), &packet[..]);
}

#[test]
fn udp_with_bad_checksum_is_dropped_without_icmp() {
    let mut r = Router::new();
    let mut packet = udp4(HOST_V4, R0_V4, 64, b"anyone?");
    packet[20 + 6] ^= 0x40; // UDP checksum; the IPv4 header is intact.
    r.rx(P0, &from_host(EtherType::Ipv4, &packet));
    r.assert_only_drop(P0, DropReason::UdpMalformed);
    r.assert_silent();

    let mut r = Router::new();
    let mut packet = udp6(HOST_V6, R0_V6, 64, b"anyone?");
    packet[40 + 6] ^= 0x40;
    r.rx(P0, &from_host(EtherType::Ipv6, &packet));
    r.assert_only_drop(P0, DropReason::UdpMalformed);
    r.assert_silent();
}

// ARP (RFC 826; RFC 5227 for gratuitous ARP).

#[test]
fn arp_request_for_our_address_is_answered_and_learns_the_sender() {
    let mut r = Router::new();
    r.rx(P0, &arp_request(NEW_MAC, NEW_V4, R0_V4));
    let out = r.tx_one(P0);
    assert_eq!(out.len(), 14 + 28, "request padding left behind");
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (NEW_MAC, R0_MAC, EtherType::Arp)
    );
    let reply = ArpRepr::parse(&ArpPacket::new_checked(&out[14..]).unwrap()).unwrap();
    assert_eq!(
        reply,
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: R0_MAC,
            source_protocol_addr: R0_V4,
            target_hardware_addr: NEW_MAC,
            target_protocol_addr: NEW_V4,
        }
    );
    assert_eq!(
        r.neighbor(P0, IpAddr::V4(NEW_V4)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    assert_eq!(r.stack.counters().total_drops(), 0);
}

#[test]
fn arp_request_for_another_address_is_not_answered() {
    let mut r = Router::new();
    r.rx(
        P0,
        &arp_request(NEW_MAC, NEW_V4, Ipv4Addr::new(198, 51, 100, 99)),
    );
    r.assert_only_drop(P0, DropReason::ArpNotForUs);
    r.assert_silent();
    assert_eq!(r.neighbor(P0, IpAddr::V4(NEW_V4)), None);
    // Port 1's address, asked on port 0: not answered either.
    r.rx(P0, &arp_request(NEW_MAC, NEW_V4, R1_V4));
    assert_eq!(r.drops(P0, DropReason::ArpNotForUs), 2);
    r.assert_silent();
}

#[test]
fn gratuitous_arp_updates_an_existing_entry_but_creates_none() {
    let mut r = Router::new();
    r.rx(P0, &arp_request(NEW_MAC, NEW_V4, R0_V4));
    r.tx_one(P0);
    assert_eq!(
        r.neighbor(P0, IpAddr::V4(NEW_V4)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    // The neighbor moved to another MAC and says so (sender = target address).
    r.rx(P0, &arp_request(MOVED_MAC, NEW_V4, NEW_V4));
    assert_eq!(
        r.neighbor(P0, IpAddr::V4(NEW_V4)).map(|n| n.0),
        Some(MOVED_MAC)
    );
    // An announcement from an address the router never talked to creates nothing.
    let stranger = Ipv4Addr::new(198, 51, 100, 8);
    r.rx(P0, &arp_request(NEW_MAC, stranger, stranger));
    assert_eq!(r.neighbor(P0, IpAddr::V4(stranger)), None);
    r.assert_silent();
    assert_eq!(r.stack.counters().total_drops(), 0);
}

#[test]
fn gratuitous_arp_leaves_a_static_neighbor_alone() {
    let mut r = Router::new();
    r.rx(P0, &arp_request(MOVED_MAC, HOST_V4, HOST_V4));
    let reply = arp(
        ArpOperation::Reply,
        MOVED_MAC,
        HOST_V4,
        EthernetAddress::BROADCAST,
        HOST_V4,
    );
    r.rx(
        P0,
        &padded(ethernet(
            EthernetAddress::BROADCAST,
            MOVED_MAC,
            EtherType::Arp,
            &reply,
        )),
    );
    assert_eq!(
        r.neighbor(P0, IpAddr::V4(HOST_V4)),
        Some((HOST_MAC, NeighborState::Static))
    );
    r.assert_silent();
    // Traffic for the host still goes to its configured MAC.
    r.rx(
        P1,
        &ethernet(
            R1_MAC,
            GW_MAC,
            EtherType::Ipv4,
            &udp4(REMOTE_V4, HOST_V4, 64, b"x"),
        ),
    );
    assert_eq!(eth(&r.tx_one(P0)).dst_addr(), HOST_MAC);
}

// Neighbor Discovery (RFC 4861).

#[test]
fn ndp_solicitation_from_a_unicast_source_gets_a_solicited_advertisement() {
    let mut r = Router::new();
    let group = v6::solicited_node(R0_V6);
    let packet = ns(NEW_V6, group, 255, R0_V6, Some(NEW_MAC));
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    let out = r.tx_one(P0);
    let e = eth(&out);
    assert_eq!((e.dst_addr(), e.src_addr()), (NEW_MAC, R0_MAC));
    let (src, dst, hop_limit, repr) = na(&out);
    assert_eq!((src, dst, hop_limit), (R0_V6, NEW_V6, 255));
    // §7.2.4: S set; R set by a router; O set for our own address (§7.2.4).
    assert_eq!(
        repr,
        NdiscRepr::NeighborAdvert {
            router: true,
            solicited: true,
            override_: true,
            target_addr: R0_V6,
            lladdr: Some(R0_MAC),
        }
    );
    // §7.2.3: the solicitation's source link-layer address creates a STALE entry.
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    assert_eq!(r.stack.counters().total_drops(), 0);
}

#[test]
fn ndp_dad_solicitation_gets_an_advertisement_to_all_nodes() {
    let mut r = Router::new();
    let group = v6::solicited_node(R0_V6);
    let packet = ns(Ipv6Addr::UNSPECIFIED, group, 255, R0_V6, None);
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    let out = r.tx_one(P0);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr()),
        (EthernetAddress::ipv6_multicast(v6::ALL_NODES), R0_MAC)
    );
    let (src, dst, hop_limit, repr) = na(&out);
    assert_eq!((src, dst, hop_limit), (R0_V6, v6::ALL_NODES, 255));
    // §7.2.4: to the unspecified source, S clear and multicast to all nodes.
    assert_eq!(
        repr,
        NdiscRepr::NeighborAdvert {
            router: true,
            solicited: false,
            override_: true,
            target_addr: R0_V6,
            lladdr: Some(R0_MAC),
        }
    );
    assert_eq!(r.stack.neighbors().count(), 4, "only the static entries");
}

#[test]
fn ndp_solicitation_with_hop_limit_64_is_invalid() {
    let mut r = Router::new();
    let group = v6::solicited_node(R0_V6);
    let packet = ns(NEW_V6, group, 64, R0_V6, Some(NEW_MAC));
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    r.assert_only_drop(P0, DropReason::NdpInvalid);
    r.assert_silent();
    assert_eq!(r.neighbor(P0, IpAddr::V6(NEW_V6)), None);
}

#[test]
fn ndp_solicitation_for_another_address_is_not_for_us() {
    let mut r = Router::new();
    // Same solicited-node group as 2001:db8:1::1 (the low 24 bits match), other address.
    let target: Ipv6Addr = "2001:db8:1:0:1::1".parse().unwrap();
    let group = v6::solicited_node(target);
    assert_eq!(group, v6::solicited_node(R0_V6));
    let packet = ns(NEW_V6, group, 255, target, Some(NEW_MAC));
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    r.assert_only_drop(P0, DropReason::NdpNotForUs);
    r.assert_silent();
}

#[test]
fn ndp_unsolicited_advertisement_with_override_updates_the_mac() {
    let mut r = Router::new();
    let group = v6::solicited_node(R0_V6);
    let packet = ns(NEW_V6, group, 255, R0_V6, Some(NEW_MAC));
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    r.tx_one(P0);
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    let advert = |target, flag_o| {
        let msg = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            router: false,
            solicited: false,
            override_: flag_o,
            target_addr: target,
            lladdr: Some(MOVED_MAC),
        });
        let packet = icmp6_packet(target, v6::ALL_NODES, 255, &msg);
        ethernet(
            EthernetAddress::ipv6_multicast(v6::ALL_NODES),
            MOVED_MAC,
            EtherType::Ipv6,
            &packet,
        )
    };
    // §7.2.5: O clear and a different address: the entry keeps its MAC.
    r.rx(P0, &advert(NEW_V6, false));
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)).map(|n| n.0),
        Some(NEW_MAC)
    );
    // O set: the new address replaces it.
    r.rx(P0, &advert(NEW_V6, true));
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((MOVED_MAC, NeighborState::Stale))
    );
    // An advertisement for an address with no entry creates none.
    let stranger: Ipv6Addr = "2001:db8:1::8".parse().unwrap();
    r.rx(P0, &advert(stranger, true));
    assert_eq!(r.neighbor(P0, IpAddr::V6(stranger)), None);
    r.assert_silent();
    assert_eq!(r.stack.counters().total_drops(), 0);
}

#[test]
fn ndp_solicited_advertisement_without_override_keeps_the_cached_mac() {
    // RFC 4861 §7.2.5: "If the Override flag is clear and the supplied link-layer address
    // differs from that in the cache": a REACHABLE entry goes STALE and nothing else
    // changes; any other entry ignores the advertisement. The Solicited flag does not
    // lift this (anycast and proxy advertisements are solicited with O clear, §7.2.7).
    let mut r = Router::new();
    let group = v6::solicited_node(R0_V6);
    let packet = ns(NEW_V6, group, 255, R0_V6, Some(NEW_MAC));
    r.rx(
        P0,
        &ethernet(
            EthernetAddress::ipv6_multicast(group),
            NEW_MAC,
            EtherType::Ipv6,
            &packet,
        ),
    );
    r.tx_one(P0);
    let advert = |mac, flag_o| {
        let msg = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            router: false,
            solicited: true,
            override_: flag_o,
            target_addr: NEW_V6,
            lladdr: Some(mac),
        });
        ethernet(
            R0_MAC,
            mac,
            EtherType::Ipv6,
            &icmp6_packet(NEW_V6, R0_V6, 255, &msg),
        )
    };
    // STALE: ignored.
    r.rx(P0, &advert(MOVED_MAC, false));
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    // Confirmed with the same address: REACHABLE.
    r.rx(P0, &advert(NEW_MAC, false));
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((NEW_MAC, NeighborState::Reachable))
    );
    // REACHABLE: STALE, the address kept.
    r.rx(P0, &advert(MOVED_MAC, false));
    assert_eq!(
        r.neighbor(P0, IpAddr::V6(NEW_V6)),
        Some((NEW_MAC, NeighborState::Stale))
    );
    r.assert_silent();
}

// Echo (RFC 792, RFC 4443 §4).

#[test]
fn echo_request_to_the_router_is_answered_v4() {
    let mut r = Router::new();
    let data = b"abcdefghijklmnopqrstuvwxyz";
    let echo = icmpv4(&Icmpv4Repr::EchoRequest {
        ident: 0x4242,
        seq_no: 7,
        data,
    });
    r.rx(
        P0,
        &from_host(
            EtherType::Ipv4,
            &ipv4(HOST_V4, R0_V4, IpProtocol::Icmp, 5, &echo),
        ),
    );
    let out = r.tx_one(P0);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (HOST_MAC, R0_MAC, EtherType::Ipv4)
    );
    let ip = ip4(&out);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (R0_V4, HOST_V4, 64)
    );
    let icmp = icmp4(&out);
    assert_eq!(
        Icmpv4Repr::parse(&icmp).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x4242,
            seq_no: 7,
            data
        }
    );
    assert_eq!(r.stack.ports()[0].counters().delivered, 1);
}

#[test]
fn echo_request_to_the_router_is_answered_v6() {
    let mut r = Router::new();
    let data = b"abcdefghijklmnopqrstuvwxyz";
    let echo = Icmpv6Repr::EchoRequest {
        ident: 0x4242,
        seq_no: 7,
        data,
    };
    r.rx(
        P0,
        &from_host(EtherType::Ipv6, &icmp6_packet(HOST_V6, R0_V6, 5, &echo)),
    );
    let out = r.tx_one(P0);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (HOST_MAC, R0_MAC, EtherType::Ipv6)
    );
    let ip = ip6(&out);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (R0_V6, HOST_V6, 64)
    );
    let icmp = icmp6(&out);
    assert_eq!(
        Icmpv6Repr::parse(&R0_V6, &HOST_V6, &icmp).unwrap(),
        Icmpv6Repr::EchoReply {
            ident: 0x4242,
            seq_no: 7,
            data
        }
    );
}

// Neighbor resolution (RFC 1122 §2.3.2.2: keep at least one packet while resolving).

#[test]
fn unresolved_next_hop_queues_up_to_the_limit_and_a_reply_releases_them() {
    let mut r = Router::new();
    let limit = NeighborConfig::default().pending_limit;
    assert_eq!(limit, 3);
    let target = Ipv4Addr::new(203, 0, 113, 9);
    let target_mac = EthernetAddress([2, 0, 0, 0, 3, 9]);
    let frames: Vec<Vec<u8>> = (0..5u8)
        .map(|i| from_host(EtherType::Ipv4, &udp4(HOST_V4, target, 64, &[i; 10])))
        .collect();
    r.rx_batch(P0, &frames);

    // One broadcast ARP request, nothing else yet.
    let out = r.tx_one(P1);
    let e = eth(&out);
    assert_eq!(
        (e.dst_addr(), e.src_addr(), e.ethertype()),
        (EthernetAddress::BROADCAST, R1_MAC, EtherType::Arp)
    );
    let request = ArpRepr::parse(&ArpPacket::new_checked(&out[14..]).unwrap()).unwrap();
    assert_eq!(
        request,
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: R1_MAC,
            source_protocol_addr: R1_V4,
            target_hardware_addr: EthernetAddress::default(),
            target_protocol_addr: target,
        }
    );
    assert_eq!(r.drops(P1, DropReason::NeighborQueueFull), 2);
    assert_eq!(r.stack.counters().total_drops(), 2);
    assert_eq!(
        r.neighbor(P1, IpAddr::V4(target)).map(|n| n.1),
        Some(NeighborState::Incomplete)
    );

    // The reply releases the first three, in order, to the resolved MAC.
    let reply = arp(ArpOperation::Reply, target_mac, target, R1_MAC, R1_V4);
    r.rx(
        P1,
        &padded(ethernet(R1_MAC, target_mac, EtherType::Arp, &reply)),
    );
    let out = r.tx(P1);
    assert_eq!(out.len(), limit);
    for (i, f) in out.iter().enumerate() {
        let e = eth(f);
        assert_eq!((e.dst_addr(), e.src_addr()), (target_mac, R1_MAC));
        let ip = ip4(f);
        assert_eq!((ip.dst_addr(), ip.hop_limit()), (target, 63));
        assert_eq!(
            UdpPacket::new_checked(ip.payload()).unwrap().payload(),
            &[i as u8; 10]
        );
    }
    assert_eq!(
        r.neighbor(P1, IpAddr::V4(target)),
        Some((target_mac, NeighborState::Reachable))
    );
    r.assert_silent();
}
