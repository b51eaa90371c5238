//! IPv4: input checks (RFC 1812 §5.2.2), forwarding, local delivery, ICMP, fragmentation.

use core::net::{IpAddr, Ipv4Addr};

use super::input::{ETH_LEN, IPV4_FAST_LEN};
use super::{EchoRequest, Event, IcmpErrorKind, SendError, Stack};
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::Frame;
use crate::route::NextHop;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::wire::udp::UdpPacket;
use crate::wire::{Error as WireError, EthernetAddress, IpProtocol};

/// ICMPv4 errors the stack generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Icmp4Error {
    NetUnreachable,
    HostUnreachable,
    ProtoUnreachable,
    PortUnreachable,
    FragNeeded(u16),
    TtlExceeded,
}

/// Most bytes of an ICMPv4 error datagram (RFC 1812 §4.3.2.3).
const ICMP4_ERROR_MAX: usize = 576;

/// RFC 1812 §5.3.7: never-valid sources. 0/8, 127/8, multicast, 240/4 (with broadcast).
#[inline]
fn martian_source(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o == 0 || o == 127 || o >= 224
}

/// Never-valid destinations: 0/8, 127/8, and 240/4 short of the limited broadcast.
#[inline]
fn martian_destination(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    (o == 0 || o == 127 || o >= 240) && !a.is_broadcast()
}

/// The fast path reads headers through a fixed-size array, so that after one length
/// check every field access is a constant offset with no bounds check. The typed views
/// in `wire` remain the one parser for everything off this path; these offsets are
/// RFC 791's and are checked against them by the tests.
mod fast {
    pub const ETHERTYPE: usize = 12;
    pub const VER_IHL: usize = 14;
    pub const TOTAL_LEN: usize = 16;
    pub const FLAGS: usize = 20;
    pub const TTL: usize = 22;
    pub const PROTO: usize = 23;
    pub const CHECKSUM: usize = 24;
    pub const SRC: usize = 26;
    pub const DST: usize = 30;
}

#[inline(always)]
fn be16(h: &[u8; IPV4_FAST_LEN], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

#[inline(always)]
fn addr_at(h: &[u8; IPV4_FAST_LEN], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(h[at], h[at + 1], h[at + 2], h[at + 3])
}

impl Stack {
    /// The IPv4 fast path's checks: Ethernet to our MAC with a unicast source, IPv4 with
    /// IHL 5, total length within the frame, a valid header checksum, no martian or
    /// group addresses (RFC 1812 §5.2.2, §5.3.7). `None` means "not the common case":
    /// the caller takes the general path, which re-checks and counts the drop.
    #[inline]
    pub(super) fn ipv4_fast_check(
        &self,
        port: PortId,
        h: &[u8; IPV4_FAST_LEN],
        len: usize,
    ) -> Option<Ipv4Addr> {
        if h[fast::ETHERTYPE] != 0x08 || h[fast::ETHERTYPE + 1] != 0x00 || h[fast::VER_IHL] != 0x45
        {
            return None;
        }
        let mac = &self.ports[usize::from(port.0)].config.mac.0;
        if h[..6] != mac[..] || h[6] & 1 != 0 {
            return None;
        }
        let total = usize::from(be16(h, fast::TOTAL_LEN));
        if total < 20 || ETH_LEN + total > len {
            return None;
        }
        let mut sum = 0u32;
        let mut i = ETH_LEN;
        while i < IPV4_FAST_LEN {
            sum += u32::from(be16(h, i));
            i += 2;
        }
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        if sum != 0xffff {
            return None;
        }
        let (src, dst) = (addr_at(h, fast::SRC), addr_at(h, fast::DST));
        if martian_source(src)
            || martian_destination(dst)
            || dst.is_multicast()
            || dst.is_broadcast()
        {
            return None;
        }
        Some(dst)
    }

    /// Stage 1 for IPv4: header checks, trailing padding trimmed; the destination to look
    /// up, or `None` when the frame was consumed (dropped or handled).
    #[inline]
    pub(super) fn ipv4_check(
        &mut self,
        port: PortId,
        frame: &Frame,
        l2_dst: EthernetAddress,
    ) -> Option<Ipv4Addr> {
        let d = &frame.data()[ETH_LEN..];
        if let Some(b) = d.first() {
            if b >> 4 != 4 {
                self.count_drop(port, DropReason::Ipv4BadVersion);
                return None;
            }
        }
        let ip = match Ipv4Packet::new_checked(d) {
            Ok(ip) => ip,
            Err(e) => {
                let reason = match e {
                    WireError::BadHeaderLen | WireError::BadLength => DropReason::Ipv4BadHeaderLen,
                    _ => DropReason::Ipv4Truncated,
                };
                self.count_drop(port, reason);
                return None;
            }
        };
        if !ip.verify_checksum() {
            self.count_drop(port, DropReason::Ipv4BadChecksum);
            return None;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if martian_source(src) {
            self.count_drop(port, DropReason::Ipv4MartianSource);
            return None;
        }
        if martian_destination(dst) {
            self.count_drop(port, DropReason::Ipv4MartianDestination);
            return None;
        }
        if dst.is_multicast() {
            self.count_drop(port, DropReason::MulticastNotForwarded);
            return None;
        }
        if dst.is_broadcast() || l2_dst.is_broadcast() {
            self.count_drop(port, DropReason::BroadcastIgnored);
            return None;
        }
        Some(dst)
    }

    /// Stage 3 for IPv4: act on the route found for the destination.
    #[inline]
    pub(super) fn ipv4_dispatch(
        &mut self,
        now: Instant,
        port: PortId,
        mut frame: Frame,
        hop: Option<u32>,
    ) {
        // Trim Ethernet padding so that only the datagram travels on. (Stage 1 checked
        // that the header is there.)
        let Some(h) = frame.data().first_chunk::<IPV4_FAST_LEN>() else {
            return self.count_drop(port, DropReason::Ipv4Truncated);
        };
        let total = usize::from(be16(h, fast::TOTAL_LEN));
        let dst = addr_at(h, fast::DST);
        frame.truncate(ETH_LEN + total);
        let Some(id) = hop else {
            if !self.config.forwarding {
                return self.count_drop(port, DropReason::NotForwarding);
            }
            self.count_drop(port, DropReason::NoRoute);
            if self.config.icmp_unreachable {
                self.icmp_error_v4(now, port, &frame, Icmp4Error::NetUnreachable);
            }
            return;
        };
        match self.routes.hop(id) {
            NextHop::Local => self.local_v4(now, port, frame),
            NextHop::Connected { port: out } => {
                if self.ports[usize::from(out.0)].is_subnet_broadcast(dst) {
                    // RFC 2644: directed broadcasts are not forwarded by default.
                    return self.count_drop(port, DropReason::BroadcastIgnored);
                }
                self.forward_v4(now, port, frame, out, IpAddr::V4(dst), None)
            }
            NextHop::Gateway { port: out, via } => {
                self.forward_v4(now, port, frame, out, via, Some(id))
            }
            NextHop::Blackhole => self.count_drop(port, DropReason::Blackhole),
            NextHop::Unreachable => {
                self.count_drop(port, DropReason::RouteUnreachable);
                self.icmp_error_v4(now, port, &frame, Icmp4Error::HostUnreachable);
            }
        }
    }

    /// Forwards one datagram (RFC 1812 §5.2): TTL, MTU, rewrite, neighbor, queue.
    #[inline]
    fn forward_v4(
        &mut self,
        now: Instant,
        in_port: PortId,
        mut frame: Frame,
        out: PortId,
        nh: IpAddr,
        hop_id: Option<u32>,
    ) {
        if !self.config.forwarding {
            return self.count_drop(in_port, DropReason::NotForwarding);
        }
        let port_out = &self.ports[usize::from(out.0)];
        let (mtu, mac) = (usize::from(port_out.config.mtu), port_out.config.mac);
        let Some(h) = frame.data_mut().first_chunk_mut::<IPV4_FAST_LEN>() else {
            return self.count_drop(in_port, DropReason::Ipv4Truncated);
        };
        let ttl = h[fast::TTL];
        let total = usize::from(be16(h, fast::TOTAL_LEN));
        if ttl <= 1 {
            self.count_drop(in_port, DropReason::TtlExpired);
            return self.icmp_error_v4(now, in_port, &frame, Icmp4Error::TtlExceeded);
        }
        if total > mtu {
            let df = h[fast::FLAGS] & 0x40 != 0;
            if df {
                self.count_drop(in_port, DropReason::MtuExceeded);
                return self.icmp_error_v4(
                    now,
                    in_port,
                    &frame,
                    Icmp4Error::FragNeeded(mtu as u16),
                );
            }
            return self.fragment_v4(now, in_port, frame, out, nh, hop_id, mtu);
        }
        // RFC 1812 §5.3.1 TTL decrement, checksum updated incrementally (RFC 1624).
        let old = u16::from_be_bytes([ttl, h[fast::PROTO]]);
        h[fast::TTL] = ttl - 1;
        let new = u16::from_be_bytes([ttl - 1, h[fast::PROTO]]);
        let c = checksum::update16(be16(h, fast::CHECKSUM), old, new);
        h[fast::CHECKSUM..fast::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        h[6..12].copy_from_slice(&mac.0);
        self.ports[usize::from(out.0)].counters.forwarded += 1;
        self.transmit_via(now, out, nh, hop_id, frame);
    }

    /// Splits a datagram that may be fragmented to fit `mtu` (RFC 791 §3.2, RFC 1812
    /// §5.2.6): options with the copy flag travel in every fragment, the rest only in the
    /// first. Fragmentation is a slow path: each fragment takes a frame from the pool.
    #[allow(clippy::too_many_arguments)]
    fn fragment_v4(
        &mut self,
        now: Instant,
        in_port: PortId,
        mut frame: Frame,
        out: PortId,
        nh: IpAddr,
        hop_id: Option<u32>,
        mtu: usize,
    ) {
        Ipv4Packet::new_unchecked(&mut frame.data_mut()[ETH_LEN..]).decrement_hop_limit();
        let ip = Ipv4Packet::new_unchecked(&frame.data()[ETH_LEN..]);
        let hl = usize::from(ip.header_len());
        let payload = ip.payload();
        let (orig_off, orig_mf) = (usize::from(ip.frag_offset()), ip.more_frags());
        // Options copied into later fragments.
        let mut copied = [0u8; 40];
        let mut clen = 0;
        let opts = ip.options();
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    let Some(&len) = opts.get(i + 1) else { break };
                    let len = usize::from(len);
                    if len < 2 || i + len > opts.len() {
                        break;
                    }
                    if kind & 0x80 != 0 {
                        copied[clen..clen + len].copy_from_slice(&opts[i..i + len]);
                        clen += len;
                    }
                    i += len;
                }
            }
        }
        let clen_padded = (clen + 3) & !3;
        if mtu < hl + 8 || mtu < 20 + clen_padded + 8 {
            return self.count_drop(in_port, DropReason::MtuExceeded);
        }
        let eth_ip_hdr: [u8; ETH_LEN + 20] = {
            let mut h = [0u8; ETH_LEN + 20];
            h.copy_from_slice(&frame.data()[..ETH_LEN + 20]);
            h
        };
        let mac = self.ports[usize::from(out.0)].config.mac;
        let mut offset = 0;
        while offset < payload.len() {
            let this_hl = if offset == 0 { hl } else { 20 + clen_padded };
            let max = (mtu - this_hl) & !7;
            let chunk = max.min(payload.len() - offset);
            let last = offset + chunk == payload.len();
            let Some(mut f) = self.pool.alloc() else {
                return self.count_drop(in_port, DropReason::PoolExhausted);
            };
            if f.append(ETH_LEN + this_hl + chunk).is_err() {
                return self.count_drop(in_port, DropReason::MtuExceeded);
            }
            let d = f.data_mut();
            d[..ETH_LEN + 20].copy_from_slice(&eth_ip_hdr);
            d[6..12].copy_from_slice(&mac.0);
            if offset == 0 {
                d[ETH_LEN..ETH_LEN + hl].copy_from_slice(&frame.data()[ETH_LEN..ETH_LEN + hl]);
            } else {
                d[ETH_LEN + 20..ETH_LEN + 20 + clen].copy_from_slice(&copied[..clen]);
                d[ETH_LEN + 20 + clen..ETH_LEN + this_hl].fill(0);
            }
            d[ETH_LEN + this_hl..].copy_from_slice(&payload[offset..offset + chunk]);
            let mut p = Ipv4Packet::new_unchecked(&mut d[ETH_LEN..]);
            p.set_header_len(this_hl as u8);
            p.set_total_len((this_hl + chunk) as u16);
            p.set_frag_offset((orig_off + offset) as u16);
            p.set_more_frags(!last || orig_mf);
            p.fill_checksum();
            self.ports[usize::from(out.0)].counters.forwarded += 1;
            self.transmit_via(now, out, nh, hop_id, f);
            offset += chunk;
        }
    }

    /// A datagram for one of our addresses.
    fn local_v4(&mut self, now: Instant, port: PortId, frame: Frame) {
        let ip = Ipv4Packet::new_unchecked(&frame.data()[ETH_LEN..]);
        if ip.is_fragment() {
            return self.count_drop(port, DropReason::ReassemblyUnsupported);
        }
        let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
        match proto {
            IpProtocol::Icmp => self.icmp_input_v4(now, port, frame),
            IpProtocol::Udp => {
                let ok = UdpPacket::new_checked(ip.payload())
                    .map(|u| u.verify_checksum(IpAddr::V4(src), IpAddr::V4(dst)))
                    .unwrap_or(false);
                if !ok {
                    return self.count_drop(port, DropReason::UdpMalformed);
                }
                let l4 = ETH_LEN + usize::from(ip.header_len());
                let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
                if let Some(frame) = self.udp_deliver(port, frame, l4, s, d) {
                    self.count_drop(port, DropReason::UdpNoListener);
                    self.icmp_error_v4(now, port, &frame, Icmp4Error::PortUnreachable);
                }
            }
            IpProtocol::Tcp => {
                let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
                self.tcp_input(now, port, ip.payload(), s, d);
                self.consumed(frame);
            }
            _ => {
                self.count_drop(port, DropReason::ProtocolUnreachable);
                self.icmp_error_v4(now, port, &frame, Icmp4Error::ProtoUnreachable);
            }
        }
    }

    fn icmp_input_v4(&mut self, now: Instant, port: PortId, mut frame: Frame) {
        let (src, ttl, msg) = {
            let ip = Ipv4Packet::new_unchecked(&frame.data()[ETH_LEN..]);
            let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
                return self.count_drop(port, DropReason::IcmpMalformed);
            };
            if !icmp.verify_checksum() {
                return self.count_drop(port, DropReason::IcmpMalformed);
            }
            (ip.src_addr(), ip.hop_limit(), icmp.msg_type())
        };
        self.ports[usize::from(port.0)].counters.delivered += 1;
        match msg {
            Icmpv4Message::EchoRequest => {
                // Answer in place (RFC 792; RFC 1122 §3.2.2.6): swap addresses, new TTL,
                // type 0 with the checksum updated incrementally.
                let ttl = self.config.default_ttl;
                let d = frame.data_mut();
                let mut ip = Ipv4Packet::new_unchecked(&mut d[ETH_LEN..]);
                let me = ip.dst_addr();
                ip.set_dst_addr(src);
                ip.set_src_addr(me);
                ip.set_hop_limit(ttl);
                ip.fill_checksum();
                let mut icmp = Icmpv4Packet::new_unchecked(ip.payload_mut());
                let old = u16::from(u8::from(Icmpv4Message::EchoRequest)) << 8
                    | u16::from(icmp.msg_code());
                icmp.set_msg_type(Icmpv4Message::EchoReply);
                let new =
                    u16::from(u8::from(Icmpv4Message::EchoReply)) << 8 | u16::from(icmp.msg_code());
                let c = checksum::update16(icmp.checksum(), old, new);
                icmp.set_checksum(c);
                let _ = self.output_v4(now, frame, src, port);
            }
            Icmpv4Message::EchoReply => {
                let ip = Ipv4Packet::new_unchecked(&frame.data()[ETH_LEN..]);
                let icmp = Icmpv4Packet::new_unchecked(ip.payload());
                let e = Event::EchoReply {
                    at: now,
                    from: IpAddr::V4(src),
                    ident: icmp.echo_ident(),
                    seq: icmp.echo_seq_no(),
                    len: icmp.data().len(),
                    ttl,
                };
                self.push_event(port, e);
            }
            Icmpv4Message::DstUnreachable
            | Icmpv4Message::TimeExceeded
            | Icmpv4Message::ParamProblem => {
                let ip = Ipv4Packet::new_unchecked(&frame.data()[ETH_LEN..]);
                let icmp = Icmpv4Packet::new_unchecked(ip.payload());
                let kind = match msg {
                    Icmpv4Message::TimeExceeded => IcmpErrorKind::TimeExceeded,
                    Icmpv4Message::ParamProblem => IcmpErrorKind::ParamProblem,
                    _ if icmp.msg_code() == u8::from(Icmpv4DstUnreachable::FragRequired) => {
                        IcmpErrorKind::TooBig(u32::from(icmp.next_hop_mtu()))
                    }
                    _ => IcmpErrorKind::Unreachable(icmp.msg_code()),
                };
                let Ok(inner) = Ipv4Packet::new_checked(icmp.data()).or_else(|_| {
                    // The quote may be cut short of the inner total length: read the header.
                    let q = icmp.data();
                    if q.len() >= 20 {
                        Ok(Ipv4Packet::new_unchecked(q))
                    } else {
                        Err(WireError::Truncated)
                    }
                }) else {
                    return self.count_drop(port, DropReason::IcmpMalformed);
                };
                let hl = usize::from(inner.header_len()).max(20);
                let quoted_l4 = icmp.data().get(hl..).unwrap_or(&[]);
                let echo = (inner.next_header() == IpProtocol::Icmp
                    && quoted_l4.len() >= 8
                    && quoted_l4[0] == 8)
                    .then(|| {
                        (
                            u16::from_be_bytes([quoted_l4[4], quoted_l4[5]]),
                            u16::from_be_bytes([quoted_l4[6], quoted_l4[7]]),
                        )
                    });
                if inner.next_header() == IpProtocol::Udp {
                    self.udp_icmp_error(IpAddr::V4(inner.src_addr()), quoted_l4, kind);
                }
                if inner.next_header() == IpProtocol::Tcp {
                    let (s, d) = (IpAddr::V4(inner.src_addr()), IpAddr::V4(inner.dst_addr()));
                    self.tcp_icmp_error(now, s, d, quoted_l4, kind);
                }
                let e = Event::IcmpError {
                    at: now,
                    from: IpAddr::V4(src),
                    kind,
                    original_dst: IpAddr::V4(inner.dst_addr()),
                    echo,
                };
                self.push_event(port, e);
            }
            _ => self.count_drop(port, DropReason::IcmpUnhandled),
        }
    }

    /// Sends an ICMPv4 error about `frame` (which arrived on `in_port`), unless RFC 1812
    /// §4.3.2.7 forbids it or the per-destination rate limit is spent.
    pub(super) fn icmp_error_v4(
        &mut self,
        now: Instant,
        in_port: PortId,
        frame: &Frame,
        err: Icmp4Error,
    ) {
        let d = frame.data();
        if d.len() < ETH_LEN + 20 || d[0] & 1 != 0 {
            return; // Too short to quote, or a link-layer broadcast/multicast.
        }
        let Ok(ip) = Ipv4Packet::new_checked(&d[ETH_LEN..]) else {
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if src.is_unspecified() || martian_source(src) || dst.is_multicast() || dst.is_broadcast() {
            return;
        }
        if self
            .ports
            .iter()
            .any(|p| p.is_subnet_broadcast(dst) || p.is_subnet_broadcast(src))
        {
            return;
        }
        if ip.frag_offset() != 0 {
            return; // Only about the first fragment.
        }
        if ip.next_header() == IpProtocol::Icmp {
            match Icmpv4Packet::new_checked(ip.payload()) {
                Ok(inner) if !inner.msg_type().is_error() => {}
                _ => return, // Never about an ICMP error (or an unreadable ICMP message).
            }
        }
        if !self.limiter.allow(now, IpAddr::V4(src)) {
            self.ports[usize::from(in_port.0)]
                .counters
                .icmp_rate_limited += 1;
            return;
        }
        let me = self.ports[usize::from(in_port.0)]
            .ipv4_source_for(src)
            .or_else(|| {
                self.ports
                    .iter()
                    .find_map(|p| p.config.ipv4.first().map(|c| c.addr()))
            });
        let Some(me) = me else { return };
        let quote = &d[ETH_LEN..ETH_LEN + usize::from(ip.total_len()).min(ICMP4_ERROR_MAX - 28)];
        let msg = match err {
            Icmp4Error::TtlExceeded => Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                data: quote,
            },
            other => {
                let (reason, mtu) = match other {
                    Icmp4Error::NetUnreachable => (Icmpv4DstUnreachable::NetUnreachable, 0),
                    Icmp4Error::HostUnreachable => (Icmpv4DstUnreachable::HostUnreachable, 0),
                    Icmp4Error::ProtoUnreachable => (Icmpv4DstUnreachable::ProtoUnreachable, 0),
                    Icmp4Error::PortUnreachable => (Icmpv4DstUnreachable::PortUnreachable, 0),
                    Icmp4Error::FragNeeded(mtu) => (Icmpv4DstUnreachable::FragRequired, mtu),
                    Icmp4Error::TtlExceeded => unreachable!("handled above"),
                };
                Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu: mtu,
                    data: quote,
                }
            }
        };
        let ident = self.next_ident();
        let ttl = self.config.default_ttl;
        let Some(f) = self.build_v4(me, src, ttl, ident, &msg) else {
            return self.count_drop(in_port, DropReason::PoolExhausted);
        };
        self.ports[usize::from(in_port.0)].counters.icmp_errors_sent += 1;
        let _ = self.output_v4(now, f, src, in_port);
    }

    /// A frame holding Ethernet space, an IPv4 header and an ICMP message.
    fn build_v4(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        ident: u16,
        msg: &Icmpv4Repr<'_>,
    ) -> Option<Frame> {
        let mut f = self.pool.alloc()?;
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmp,
            payload_len: msg.buffer_len(),
            hop_limit: ttl,
            dont_frag: false,
            ident,
        };
        f.append(ETH_LEN + repr.buffer_len() + msg.buffer_len())
            .ok()?;
        let mut ip = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH_LEN..]);
        repr.emit(&mut ip);
        msg.emit(&mut Icmpv4Packet::new_unchecked(ip.payload_mut()));
        Some(f)
    }

    pub(super) fn send_echo_v4(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        req: EchoRequest,
    ) -> Result<(), SendError> {
        if dst.is_unspecified() || dst.is_multicast() || dst.is_broadcast() {
            return Err(SendError::BadDestination);
        }
        let port = match self.routes.route_for(IpAddr::V4(dst)) {
            Some(NextHop::Connected { port }) | Some(NextHop::Gateway { port, .. }) => port,
            _ => return Err(SendError::NoRoute),
        };
        let src = self.ports[usize::from(port.0)]
            .ipv4_source_for(dst)
            .ok_or(SendError::NoSourceAddress)?;
        if req.data_len > 1500
            || req.data_len + 28 > usize::from(self.ports[usize::from(port.0)].config.mtu)
        {
            return Err(SendError::TooBig);
        }
        let mut data = [0u8; 1500];
        for (i, b) in data.iter_mut().enumerate().take(req.data_len) {
            *b = i as u8;
        }
        let msg = Icmpv4Repr::EchoRequest {
            ident: req.ident,
            seq_no: req.seq,
            data: &data[..req.data_len],
        };
        let ident = self.next_ident();
        let ttl = req.ttl.unwrap_or(self.config.default_ttl);
        let f = self
            .build_v4(src, dst, ttl, ident, &msg)
            .ok_or(SendError::PoolExhausted)?;
        self.output_v4(now, f, dst, port)
    }
}
