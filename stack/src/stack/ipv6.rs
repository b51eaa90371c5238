//! IPv6: input checks, forwarding (RFC 8200), local delivery, ICMPv6 (RFC 4443) and
//! Neighbor Discovery (RFC 4861).

use core::net::{IpAddr, Ipv6Addr};

use super::input::{Classified, ETH_LEN};
use super::{EchoRequest, Event, IcmpErrorKind, SendError, Stack};
use crate::addr::v6;
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::Frame;
use crate::neighbor::Update;
use crate::route::NextHop;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::icmpv6::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6ParamProblem, Icmpv6Repr,
    Icmpv6TimeExceeded,
};
use crate::wire::ipv6::{walk_ext_headers, Ipv6OptionFailureAction, Ipv6Packet};
use crate::wire::ndp::NdiscRepr;
use crate::wire::udp::UdpPacket;
use crate::wire::{EtherType, EthernetAddress, IpProtocol};

/// ICMPv6 errors the stack generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Icmp6Error {
    NoRoute,
    BeyondScope,
    AddressUnreachable,
    PortUnreachable,
    RejectRoute,
    PacketTooBig(u32),
    HopLimitExceeded,
    UnrecognizedNextHeader(u32),
}

/// Most bytes of an ICMPv6 error packet: the minimum MTU (RFC 4443 §2.4(c)).
const ICMP6_ERROR_MAX: usize = 1280;

impl Stack {
    /// Stage 1 for IPv6: header checks; link-scoped multicast for us is handled now.
    #[inline]
    pub(super) fn ipv6_classify(
        &mut self,
        now: Instant,
        port: PortId,
        mut frame: Frame,
        l2_dst: EthernetAddress,
    ) -> Classified {
        let d = &frame.data()[ETH_LEN..];
        if let Some(b) = d.first() {
            if b >> 4 != 6 {
                self.count_drop(port, DropReason::Ipv6BadVersion);
                return Classified::Done;
            }
        }
        let Ok(ip) = Ipv6Packet::new_checked(d) else {
            self.count_drop(port, DropReason::Ipv6Truncated);
            return Classified::Done;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let total = Ipv6Packet::<&[u8]>::HEADER_LEN + usize::from(ip.payload_len());
        if src.is_multicast() || src.is_loopback() || (src.is_unspecified() && !dst.is_multicast())
        {
            self.count_drop(port, DropReason::Ipv6MartianSource);
            return Classified::Done;
        }
        if dst.is_unspecified() || dst.is_loopback() {
            self.count_drop(port, DropReason::Ipv6MartianDestination);
            return Classified::Done;
        }
        frame.truncate(ETH_LEN + total);
        if dst.is_multicast() {
            let p = &self.ports[usize::from(port.0)];
            let ours = dst == v6::ALL_NODES
                || (self.config.forwarding && dst == v6::ALL_ROUTERS)
                || (dst.segments()[..6] == [0xff02, 0, 0, 0, 0, 1]
                    && dst.octets()[12] == 0xff
                    && {
                        let tail = &dst.octets()[13..];
                        p.link_local().octets()[13..] == *tail
                            || p.config()
                                .ipv6
                                .iter()
                                .any(|c| c.addr().octets()[13..] == *tail)
                    });
            if ours {
                self.local_v6(now, port, frame);
            } else {
                self.count_drop(port, DropReason::MulticastNotForwarded);
            }
            return Classified::Done;
        }
        if src.is_unspecified() {
            self.count_drop(port, DropReason::Ipv6MartianSource);
            return Classified::Done;
        }
        if l2_dst.is_multicast() {
            // A unicast packet in a link-layer group frame: every router on the segment
            // got a copy; none forwards it (as RFC 1812 §5.3.4 for IPv4, and Linux).
            self.count_drop(port, DropReason::BroadcastIgnored);
            return Classified::Done;
        }
        Classified::V6(frame, dst)
    }

    /// Stage 3 for IPv6.
    #[inline]
    pub(super) fn ipv6_dispatch(
        &mut self,
        now: Instant,
        port: PortId,
        frame: Frame,
        hop: Option<u32>,
    ) {
        let dst = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]).dst_addr();
        if v6::is_link_local(dst) {
            if self.ports[usize::from(port.0)].has_ipv6(dst) {
                return self.local_v6(now, port, frame);
            }
            return self.count_drop(port, DropReason::Ipv6LinkLocalNotForwarded);
        }
        let Some(id) = hop else {
            if !self.config.forwarding {
                return self.count_drop(port, DropReason::NotForwarding);
            }
            self.count_drop(port, DropReason::NoRoute);
            return self.icmp_error_v6(now, port, &frame, Icmp6Error::NoRoute);
        };
        match self.routes.hop(id) {
            NextHop::Local => self.local_v6(now, port, frame),
            NextHop::Connected { port: out } => {
                self.forward_v6(now, port, frame, out, IpAddr::V6(dst), None)
            }
            NextHop::Gateway { port: out, via } => {
                self.forward_v6(now, port, frame, out, via, Some(id))
            }
            NextHop::Blackhole => self.count_drop(port, DropReason::Blackhole),
            NextHop::Unreachable => {
                self.count_drop(port, DropReason::RouteUnreachable);
                self.icmp_error_v6(now, port, &frame, Icmp6Error::RejectRoute);
            }
        }
    }

    #[inline]
    fn forward_v6(
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
        let (hop_limit, src, len) = {
            let ip = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]);
            (
                ip.hop_limit(),
                ip.src_addr(),
                40 + usize::from(ip.payload_len()),
            )
        };
        if v6::is_link_local(src) {
            // RFC 4291 §2.5.6, RFC 4443 §3.1 code 2.
            self.count_drop(in_port, DropReason::Ipv6LinkLocalNotForwarded);
            return self.icmp_error_v6(now, in_port, &frame, Icmp6Error::BeyondScope);
        }
        if hop_limit <= 1 {
            self.count_drop(in_port, DropReason::TtlExpired);
            return self.icmp_error_v6(now, in_port, &frame, Icmp6Error::HopLimitExceeded);
        }
        let mtu = usize::from(self.ports[usize::from(out.0)].config.mtu);
        if len > mtu {
            // Routers never fragment IPv6 (RFC 8200 §5).
            self.count_drop(in_port, DropReason::MtuExceeded);
            return self.icmp_error_v6(now, in_port, &frame, Icmp6Error::PacketTooBig(mtu as u32));
        }
        Ipv6Packet::new_unchecked(&mut frame.data_mut()[ETH_LEN..]).decrement_hop_limit();
        let mac = self.ports[usize::from(out.0)].config.mac;
        frame.data_mut()[6..12].copy_from_slice(&mac.0);
        self.ports[usize::from(out.0)].counters.forwarded += 1;
        self.transmit_via(now, out, nh, hop_id, frame);
    }

    /// A packet for one of our addresses or groups: walk the extension headers, deliver.
    fn local_v6(&mut self, now: Instant, port: PortId, frame: Frame) {
        let ip = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let chain = match walk_ext_headers(ip.next_header(), ip.payload()) {
            Ok(c) => c,
            Err(_) => return self.count_drop(port, DropReason::Ipv6BadExtHeader),
        };
        if let Some((_, action)) = chain.unknown_option {
            if action != Ipv6OptionFailureAction::Skip {
                return self.count_drop(port, DropReason::Ipv6BadExtHeader);
            }
        }
        if chain.fragment.is_some_and(|f| f.offset != 0 || f.more) {
            return self.count_drop(port, DropReason::ReassemblyUnsupported);
        }
        let off = chain.upper_offset;
        match chain.upper {
            IpProtocol::Icmpv6 => self.icmpv6_input(now, port, frame, off),
            IpProtocol::Udp => {
                let ok = ip
                    .payload()
                    .get(off..)
                    .and_then(|p| UdpPacket::new_checked(p).ok())
                    .map(|u| u.verify_checksum(IpAddr::V6(src), IpAddr::V6(dst)))
                    .unwrap_or(false);
                if !ok {
                    return self.count_drop(port, DropReason::UdpMalformed);
                }
                let l4 = ETH_LEN + 40 + off;
                let (s, d) = (IpAddr::V6(src), IpAddr::V6(dst));
                if let Some(frame) = self.udp_deliver(port, frame, l4, s, d) {
                    self.count_drop(port, DropReason::UdpNoListener);
                    if !dst.is_multicast() {
                        self.icmp_error_v6(now, port, &frame, Icmp6Error::PortUnreachable);
                    }
                }
            }
            IpProtocol::Tcp => {
                let seg = ip.payload().get(off..).unwrap_or(&[]);
                self.tcp_input(now, port, seg, IpAddr::V6(src), IpAddr::V6(dst));
                self.consumed(frame);
            }
            IpProtocol::Ipv6NoNxt => self.ports[usize::from(port.0)].counters.delivered += 1,
            _ => {
                self.count_drop(port, DropReason::ProtocolUnreachable);
                if off == 0 && !dst.is_multicast() {
                    // RFC 8200 §4: parameter problem code 1 at the Next Header field.
                    self.icmp_error_v6(now, port, &frame, Icmp6Error::UnrecognizedNextHeader(6));
                }
            }
        }
    }

    fn icmpv6_input(&mut self, now: Instant, port: PortId, mut frame: Frame, off: usize) {
        let (src, dst, hop_limit, msg) = {
            let ip = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let Some(Ok(icmp)) = ip.payload().get(off..).map(Icmpv6Packet::new_checked) else {
                return self.count_drop(port, DropReason::IcmpMalformed);
            };
            if !icmp.verify_checksum(&src, &dst) {
                return self.count_drop(port, DropReason::IcmpMalformed);
            }
            (src, dst, ip.hop_limit(), icmp.msg_type())
        };
        match msg {
            Icmpv6Message::EchoRequest if off == 0 && !dst.is_multicast() => {
                self.ports[usize::from(port.0)].counters.delivered += 1;
                let hl = self.config.default_ttl;
                let d = frame.data_mut();
                let mut ip = Ipv6Packet::new_unchecked(&mut d[ETH_LEN..]);
                ip.set_src_addr(dst);
                ip.set_dst_addr(src);
                ip.set_hop_limit(hl);
                // The pseudo-header sum does not change when the addresses swap; only the
                // type word does (RFC 1624).
                let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
                let code = u16::from(icmp.msg_code());
                icmp.set_msg_type(Icmpv6Message::EchoReply);
                let c = checksum::update16(icmp.checksum(), (128 << 8) | code, (129 << 8) | code);
                icmp.set_checksum(c);
                let _ = self.output_v6(now, frame, src, port);
            }
            Icmpv6Message::EchoReply => {
                self.ports[usize::from(port.0)].counters.delivered += 1;
                let ip = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]);
                let icmp = Icmpv6Packet::new_unchecked(&ip.payload()[off..]);
                let e = Event::EchoReply {
                    at: now,
                    from: IpAddr::V6(src),
                    ident: icmp.echo_ident(),
                    seq: icmp.echo_seq_no(),
                    len: icmp.payload().len(),
                    ttl: hop_limit,
                };
                self.push_event(port, e);
            }
            Icmpv6Message::DstUnreachable
            | Icmpv6Message::PktTooBig
            | Icmpv6Message::TimeExceeded
            | Icmpv6Message::ParamProblem => {
                self.ports[usize::from(port.0)].counters.delivered += 1;
                let ip = Ipv6Packet::new_unchecked(&frame.data()[ETH_LEN..]);
                let icmp = Icmpv6Packet::new_unchecked(&ip.payload()[off..]);
                let kind = match msg {
                    Icmpv6Message::PktTooBig => IcmpErrorKind::TooBig(icmp.pkt_too_big_mtu()),
                    Icmpv6Message::TimeExceeded => IcmpErrorKind::TimeExceeded,
                    Icmpv6Message::ParamProblem => IcmpErrorKind::ParamProblem,
                    _ => IcmpErrorKind::Unreachable(icmp.msg_code()),
                };
                let q = icmp.payload();
                if q.len() < 40 {
                    return self.count_drop(port, DropReason::IcmpMalformed);
                }
                let inner = Ipv6Packet::new_unchecked(q);
                let l4 = &q[40..];
                let echo =
                    (inner.next_header() == IpProtocol::Icmpv6 && l4.len() >= 8 && l4[0] == 128)
                        .then(|| {
                            (
                                u16::from_be_bytes([l4[4], l4[5]]),
                                u16::from_be_bytes([l4[6], l4[7]]),
                            )
                        });
                if inner.next_header() == IpProtocol::Udp {
                    self.udp_icmp_error(IpAddr::V6(inner.src_addr()), l4, kind);
                }
                if inner.next_header() == IpProtocol::Tcp {
                    let (s, d) = (IpAddr::V6(inner.src_addr()), IpAddr::V6(inner.dst_addr()));
                    self.tcp_icmp_error(now, s, d, l4, kind);
                }
                let e = Event::IcmpError {
                    at: now,
                    from: IpAddr::V6(src),
                    kind,
                    original_dst: IpAddr::V6(inner.dst_addr()),
                    echo,
                };
                self.push_event(port, e);
            }
            Icmpv6Message::NeighborSolicit
            | Icmpv6Message::NeighborAdvert
            | Icmpv6Message::RouterSolicit
            | Icmpv6Message::RouterAdvert
            | Icmpv6Message::Redirect => self.ndp_input(now, port, frame.data(), off, true),
            _ => self.count_drop(port, DropReason::IcmpUnhandled),
        }
    }

    /// Neighbor Discovery messages (RFC 4861 §7.1 validation, §7.2 processing) in the
    /// Ethernet frame `data`, the ICMPv6 message `off` bytes into the IPv6 payload.
    /// Without `answer` (a copy snooped for another shard's sake) the cache learns as
    /// usual but nothing is sent and nothing counted.
    pub(super) fn ndp_input(
        &mut self,
        now: Instant,
        port: PortId,
        data: &[u8],
        off: usize,
        answer: bool,
    ) {
        let ip = Ipv6Packet::new_unchecked(&data[ETH_LEN..]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Some(Ok(icmp)) = ip.payload().get(off..).map(Icmpv6Packet::new_checked) else {
            if answer {
                self.count_drop(port, DropReason::NdpInvalid);
            }
            return;
        };
        let repr = match Icmpv6Repr::parse(&src, &dst, &icmp) {
            Ok(Icmpv6Repr::Ndisc(repr)) if ip.hop_limit() == 255 => repr,
            _ if !answer => return,
            _ => return self.count_drop(port, DropReason::NdpInvalid),
        };
        if !answer && !icmp.verify_checksum(&src, &dst) {
            return;
        }
        let mut released = core::mem::take(&mut self.scratch.released);
        match repr {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                let p = &self.ports[usize::from(port.0)];
                if !p.has_ipv6(target_addr) {
                    self.count_drop_if(answer, port, DropReason::NdpNotForUs);
                } else if src.is_unspecified() && (lladdr.is_some() || !dst.is_multicast()) {
                    self.count_drop_if(answer, port, DropReason::NdpInvalid);
                } else {
                    if answer {
                        self.ports[usize::from(port.0)].counters.delivered += 1;
                    }
                    let (reply_to, solicited) = if src.is_unspecified() {
                        (v6::ALL_NODES, false)
                    } else {
                        (src, true)
                    };
                    if let (Some(mac), false) = (lladdr, src.is_unspecified()) {
                        self.neighbors.update(
                            now,
                            port,
                            IpAddr::V6(src),
                            mac,
                            Update::Learned,
                            &mut released,
                        );
                        self.send_released(port, mac, &mut released);
                    }
                    let dst_mac = if reply_to.is_multicast() {
                        Some(EthernetAddress::ipv6_multicast(reply_to))
                    } else {
                        lladdr.or_else(|| self.neighbors.peek_mac(port, IpAddr::V6(src)))
                    };
                    if answer {
                        self.send_na(now, port, target_addr, reply_to, dst_mac, solicited);
                    }
                }
            }
            NdiscRepr::NeighborAdvert {
                solicited,
                override_,
                target_addr,
                lladdr,
                ..
            } => {
                if dst.is_multicast() && solicited {
                    self.count_drop_if(answer, port, DropReason::NdpInvalid);
                } else {
                    if answer {
                        self.ports[usize::from(port.0)].counters.delivered += 1;
                    }
                    let kind = if solicited && override_ {
                        Update::Solicited
                    } else if solicited {
                        Update::SolicitedNoOverride
                    } else if override_ {
                        Update::Override
                    } else {
                        Update::NoOverride
                    };
                    let addr = IpAddr::V6(target_addr);
                    if let Some(mac) = lladdr.or_else(|| self.neighbors.peek_mac(port, addr)) {
                        if let Some(mac) =
                            self.neighbors
                                .update(now, port, addr, mac, kind, &mut released)
                        {
                            self.send_released(port, mac, &mut released);
                        }
                    }
                }
            }
            _ => self.count_drop_if(answer, port, DropReason::NdpRouterIgnored),
        }
        self.scratch.released = released;
    }

    /// Sends a neighbor advertisement for our `target` to `dst`.
    fn send_na(
        &mut self,
        now: Instant,
        port: PortId,
        target: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: Option<EthernetAddress>,
        solicited: bool,
    ) {
        let Some(mut f) = self.pool.alloc() else {
            return self.count_drop(port, DropReason::PoolExhausted);
        };
        let my_mac = self.ports[usize::from(port.0)].config.mac;
        let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            router: self.config.forwarding,
            solicited,
            override_: true,
            target_addr: target,
            lladdr: Some(my_mac),
        });
        if !self.emit_icmpv6(&mut f, target, dst, 255, &na) {
            return;
        }
        self.write_l2_src(&mut f, port, EtherType::Ipv6);
        match dst_mac {
            Some(mac) => {
                f.data_mut()[..6].copy_from_slice(&mac.0);
                self.enqueue_tx(port, f);
            }
            None => self.transmit_via(now, port, IpAddr::V6(dst), None, f),
        }
    }

    /// Sends an ICMPv6 error about `frame`, unless RFC 4443 §2.4(e) forbids it or the
    /// rate limit (§2.4(f)) is spent.
    pub(super) fn icmp_error_v6(
        &mut self,
        now: Instant,
        in_port: PortId,
        frame: &Frame,
        err: Icmp6Error,
    ) {
        let d = frame.data();
        let too_big = matches!(err, Icmp6Error::PacketTooBig(_));
        if d.len() < ETH_LEN + 40 || (d[0] & 1 != 0 && !too_big) {
            return;
        }
        let Ok(ip) = Ipv6Packet::new_checked(&d[ETH_LEN..]) else {
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        if src.is_unspecified() || src.is_multicast() || (dst.is_multicast() && !too_big) {
            return;
        }
        let payload = ip.payload();
        // RFC 4443 §2.4(e): never about an ICMPv6 error or a Redirect, nor about a
        // fragment other than the first; look past the extension headers to know.
        if let Ok(chain) = walk_ext_headers(ip.next_header(), payload) {
            if chain.fragment.is_some_and(|f| f.offset != 0) {
                return;
            }
            if chain.upper == IpProtocol::Icmpv6 {
                match payload.get(chain.upper_offset) {
                    Some(t) if *t >= 128 && *t != u8::from(Icmpv6Message::Redirect) => {}
                    _ => return,
                }
            }
        }
        if !self.limiter.allow(now, IpAddr::V6(src)) {
            self.ports[usize::from(in_port.0)]
                .counters
                .icmp_rate_limited += 1;
            return;
        }
        let me = self.ports[usize::from(in_port.0)].ipv6_source_for(src);
        let quote_len = (40 + payload.len()).min(ICMP6_ERROR_MAX - 48);
        let data = &d[ETH_LEN..ETH_LEN + quote_len];
        let unreachable = |reason| Icmpv6Repr::DstUnreachable { reason, data };
        let msg = match err {
            Icmp6Error::NoRoute => unreachable(Icmpv6DstUnreachable::NoRoute),
            Icmp6Error::BeyondScope => unreachable(Icmpv6DstUnreachable::BeyondScope),
            Icmp6Error::AddressUnreachable => unreachable(Icmpv6DstUnreachable::AddrUnreachable),
            Icmp6Error::PortUnreachable => unreachable(Icmpv6DstUnreachable::PortUnreachable),
            Icmp6Error::RejectRoute => unreachable(Icmpv6DstUnreachable::RejectRoute),
            Icmp6Error::PacketTooBig(mtu) => Icmpv6Repr::PktTooBig { mtu, data },
            Icmp6Error::HopLimitExceeded => Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                data,
            },
            Icmp6Error::UnrecognizedNextHeader(pointer) => Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::UnrecognizedNxtHdr,
                pointer,
                data,
            },
        };
        let Some(mut f) = self.pool.alloc() else {
            return self.count_drop(in_port, DropReason::PoolExhausted);
        };
        let hl = self.config.default_ttl;
        if !self.emit_icmpv6(&mut f, me, src, hl, &msg) {
            return;
        }
        self.ports[usize::from(in_port.0)].counters.icmp_errors_sent += 1;
        let _ = self.output_v6(now, f, src, in_port);
    }

    pub(super) fn send_echo_v6(
        &mut self,
        now: Instant,
        dst: Ipv6Addr,
        req: EchoRequest,
    ) -> Result<(), SendError> {
        if dst.is_unspecified() || dst.is_multicast() {
            return Err(SendError::BadDestination);
        }
        let port = if v6::is_link_local(dst) {
            // A link-local destination needs a port; the first one is used.
            if self.ports.is_empty() {
                return Err(SendError::NoRoute);
            }
            PortId(0)
        } else {
            match self.routes.route_for(IpAddr::V6(dst)) {
                Some(NextHop::Connected { port }) | Some(NextHop::Gateway { port, .. }) => port,
                _ => return Err(SendError::NoRoute),
            }
        };
        let src = self.ports[usize::from(port.0)].ipv6_source_for(dst);
        if req.data_len > 1500
            || req.data_len + 48 > usize::from(self.ports[usize::from(port.0)].config.mtu)
        {
            return Err(SendError::TooBig);
        }
        let mut data = [0u8; 1500];
        for (i, b) in data.iter_mut().enumerate().take(req.data_len) {
            *b = i as u8;
        }
        let msg = Icmpv6Repr::EchoRequest {
            ident: req.ident,
            seq_no: req.seq,
            data: &data[..req.data_len],
        };
        let mut f = self.pool.alloc().ok_or(SendError::PoolExhausted)?;
        let hl = req.ttl.unwrap_or(self.config.default_ttl);
        if !self.emit_icmpv6(&mut f, src, dst, hl, &msg) {
            return Err(SendError::TooBig);
        }
        self.output_v6(now, f, dst, port)
    }
}
