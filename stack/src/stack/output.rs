//! Transmit path: neighbor resolution, Ethernet headers, the per-port transmit queues,
//! solicitations, and the routing of packets the stack originates.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::input::ETH_LEN;
use super::{SendError, Stack};
use crate::addr::v6;
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::Frame;
use crate::neighbor::{NeighborHandle, Resolve, ResolveDrop, Solicit};
use crate::route::NextHop;
use crate::time::Instant;
use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use crate::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::wire::ndp::NdiscRepr;
use crate::wire::{EtherType, EthernetAddress, IpProtocol};

impl Stack {
    /// Queues a finished frame on a port.
    #[inline]
    pub(super) fn enqueue_tx(&mut self, port: PortId, frame: Frame) {
        let Some(p) = self.ports.get_mut(usize::from(port.0)) else {
            return;
        };
        if !p.up {
            p.counters.drop(DropReason::PortDown);
        } else if p.tx.len() >= p.tx_limit {
            p.counters.drop(DropReason::TxQueueFull);
        } else {
            p.counters.tx_packets += 1;
            p.counters.tx_bytes += frame.len() as u64;
            p.tx.push_back(frame);
            if !p.tx_ready {
                p.tx_ready = true;
                self.tx_ready.push(port);
            }
        }
    }

    /// Writes the source MAC and EtherType of an outgoing frame.
    #[inline]
    pub(super) fn write_l2_src(&self, frame: &mut Frame, port: PortId, ethertype: EtherType) {
        let mac = self.ports[usize::from(port.0)].config.mac;
        let d = frame.data_mut();
        d[6..12].copy_from_slice(&mac.0);
        d[12..14].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Sends a frame (Ethernet source and type already written) to neighbor `addr` on
    /// `port`, resolving it first if needed. `hop_id` selects the adjacency cache slot
    /// of a gateway next hop.
    #[inline]
    pub(super) fn transmit_via(
        &mut self,
        now: Instant,
        port: PortId,
        addr: IpAddr,
        hop_id: Option<u32>,
        frame: Frame,
    ) {
        let hint = hop_id.and_then(|id| self.adjacency.get(id as usize).copied().flatten());
        if let Some((mac, h)) = self.neighbors.ready(now, port, addr, hint) {
            if let Some(slot) = hop_id.and_then(|id| self.adjacency.get_mut(id as usize)) {
                *slot = Some(h);
            }
            let mut frame = frame;
            frame.data_mut()[..6].copy_from_slice(&mac.0);
            return self.enqueue_tx(port, frame);
        }
        self.resolve_slow(now, port, addr, hop_id, hint, frame);
    }

    /// Address resolution when the neighbor has no usable MAC yet.
    #[cold]
    fn resolve_slow(
        &mut self,
        now: Instant,
        port: PortId,
        addr: IpAddr,
        hop_id: Option<u32>,
        hint: Option<NeighborHandle>,
        frame: Frame,
    ) {
        let (res, handle) = self.neighbors.resolve(now, port, addr, hint, frame);
        if let (Some(id), Some(h)) = (hop_id, handle) {
            if let Some(slot) = self.adjacency.get_mut(id as usize) {
                *slot = Some(h);
            }
        }
        match res {
            Resolve::Ready(mut frame, mac, solicit) => {
                frame.data_mut()[..6].copy_from_slice(&mac.0);
                self.enqueue_tx(port, frame);
                self.send_solicit(now, solicit);
            }
            Resolve::Queued(solicit) => self.send_solicit(now, solicit),
            Resolve::Dropped(frame, why) => {
                let reason = match why {
                    ResolveDrop::QueueFull => DropReason::NeighborQueueFull,
                    ResolveDrop::Failed => DropReason::NeighborFailed,
                    ResolveDrop::TableFull => DropReason::NeighborTableFull,
                };
                if why == ResolveDrop::Failed {
                    // Counted there, on the egress port.
                    self.resolution_failed(now, frame);
                } else {
                    self.count_drop(port, reason);
                }
            }
        }
    }

    /// Sends a solicitation the neighbor cache asked for.
    pub(super) fn send_solicit(&mut self, now: Instant, s: Solicit) {
        let (port, addr, unicast) = match s {
            Solicit::None => return,
            Solicit::Multicast { port, addr } => (port, addr, None),
            Solicit::Unicast { port, addr, mac } => (port, addr, Some(mac)),
        };
        let Some(mut frame) = self.pool.alloc() else {
            return self.count_drop(port, DropReason::PoolExhausted);
        };
        let p = &self.ports[usize::from(port.0)];
        let my_mac = p.config.mac;
        match addr {
            IpAddr::V4(target) => {
                let Some(src) = p.ipv4_source_for(target) else {
                    return;
                };
                let arp = ArpRepr {
                    operation: ArpOperation::Request,
                    source_hardware_addr: my_mac,
                    source_protocol_addr: src,
                    target_hardware_addr: EthernetAddress::default(),
                    target_protocol_addr: target,
                };
                if frame.append(ETH_LEN + arp.buffer_len()).is_err() {
                    return;
                }
                let dst = unicast.unwrap_or(EthernetAddress::BROADCAST);
                let d = frame.data_mut();
                d[..6].copy_from_slice(&dst.0);
                arp.emit(&mut ArpPacket::new_unchecked(&mut d[ETH_LEN..]));
                self.write_l2_src(&mut frame, port, EtherType::Arp);
            }
            IpAddr::V6(target) => {
                let src = p.ipv6_source_for(target);
                let dst_ip = if unicast.is_some() {
                    target
                } else {
                    v6::solicited_node(target)
                };
                let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(my_mac),
                });
                let dst_mac = unicast.unwrap_or_else(|| EthernetAddress::ipv6_multicast(dst_ip));
                if !self.emit_icmpv6(&mut frame, src, dst_ip, 255, &ns) {
                    return;
                }
                frame.data_mut()[..6].copy_from_slice(&dst_mac.0);
                self.write_l2_src(&mut frame, port, EtherType::Ipv6);
            }
        }
        let _ = now;
        self.enqueue_tx(port, frame);
    }

    /// Fills `frame` (fresh from the pool) with room for Ethernet, then an IPv6 header
    /// and the ICMPv6 message. Returns false when it does not fit.
    pub(super) fn emit_icmpv6(
        &self,
        frame: &mut Frame,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        msg: &Icmpv6Repr<'_>,
    ) -> bool {
        let icmp_len = msg.buffer_len();
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp_len,
            hop_limit,
        };
        if frame.append(ETH_LEN + ip.buffer_len() + icmp_len).is_err() {
            return false;
        }
        let d = frame.data_mut();
        let mut pkt = Ipv6Packet::new_unchecked(&mut d[ETH_LEN..]);
        ip.emit(&mut pkt);
        let mut icmp = Icmpv6Packet::new_unchecked(pkt.payload_mut());
        msg.emit(&src, &dst, &mut icmp);
        true
    }

    /// Routes and sends an IPv4 packet the stack built (Ethernet header space first).
    pub(super) fn output_v4(
        &mut self,
        now: Instant,
        mut frame: Frame,
        dst: Ipv4Addr,
        origin: PortId,
    ) -> Result<(), SendError> {
        let Some(id) = self.routes.lookup_v4(dst) else {
            self.count_drop(origin, DropReason::NoRoute);
            return Err(SendError::NoRoute);
        };
        let (port, nh) = match self.routes.hop(id) {
            NextHop::Connected { port } => (port, IpAddr::V4(dst)),
            NextHop::Gateway { port, via } => (port, via),
            NextHop::Local | NextHop::Blackhole | NextHop::Unreachable => {
                self.count_drop(origin, DropReason::NoRoute);
                return Err(SendError::NoRoute);
            }
        };
        if frame.len() - ETH_LEN > usize::from(self.ports[usize::from(port.0)].config.mtu) {
            self.count_drop(port, DropReason::MtuExceeded);
            return Err(SendError::TooBig);
        }
        self.write_l2_src(&mut frame, port, EtherType::Ipv4);
        let gw = matches!(self.routes.hop(id), NextHop::Gateway { .. });
        self.transmit_via(now, port, nh, gw.then_some(id), frame);
        Ok(())
    }

    /// Routes and sends an IPv6 packet the stack built. Link-local and link-scoped
    /// multicast destinations leave through `origin`.
    pub(super) fn output_v6(
        &mut self,
        now: Instant,
        mut frame: Frame,
        dst: Ipv6Addr,
        origin: PortId,
    ) -> Result<(), SendError> {
        let (port, nh, hop_id) = if v6::is_link_local(dst) {
            (origin, IpAddr::V6(dst), None)
        } else {
            let Some(id) = self.routes.lookup_v6(dst) else {
                self.count_drop(origin, DropReason::NoRoute);
                return Err(SendError::NoRoute);
            };
            match self.routes.hop(id) {
                NextHop::Connected { port } => (port, IpAddr::V6(dst), None),
                NextHop::Gateway { port, via } => (port, via, Some(id)),
                NextHop::Local | NextHop::Blackhole | NextHop::Unreachable => {
                    self.count_drop(origin, DropReason::NoRoute);
                    return Err(SendError::NoRoute);
                }
            }
        };
        if frame.len() - ETH_LEN > usize::from(self.ports[usize::from(port.0)].config.mtu) {
            self.count_drop(port, DropReason::MtuExceeded);
            return Err(SendError::TooBig);
        }
        self.write_l2_src(&mut frame, port, EtherType::Ipv6);
        self.transmit_via(now, port, nh, hop_id, frame);
        Ok(())
    }

    /// A packet whose next hop could not be resolved: ICMP address unreachable to its
    /// source (RFC 1812 §5.2.7.1, RFC 4861 §7.2.2), then dropped.
    pub(super) fn resolution_failed(&mut self, now: Instant, frame: Frame) {
        let src_mac = frame.data().get(6..12).map(EthernetAddress::from_bytes);
        let egress = self
            .ports
            .iter()
            .position(|p| Some(p.config.mac) == src_mac)
            .unwrap_or(0);
        self.count_drop(PortId(egress as u16), DropReason::NeighborFailed);
        if frame.len() < ETH_LEN + 20 {
            return;
        }
        let ethertype = u16::from_be_bytes([frame.data()[12], frame.data()[13]]);
        let origin = self.ingress_guess(&frame);
        match EtherType::from(ethertype) {
            EtherType::Ipv4 => self.icmp_error_v4(
                now,
                origin,
                &frame,
                super::ipv4::Icmp4Error::HostUnreachable,
            ),
            EtherType::Ipv6 => self.icmp_error_v6(
                now,
                origin,
                &frame,
                super::ipv6::Icmp6Error::AddressUnreachable,
            ),
            _ => {}
        }
    }

    /// The port whose subnet holds the frame's IP source, else port 0 (for choosing the
    /// source address of an ICMP error about a frame that waited in the neighbor queue).
    fn ingress_guess(&self, frame: &Frame) -> PortId {
        let d = frame.data();
        let src = match EtherType::from(u16::from_be_bytes([d[12], d[13]])) {
            EtherType::Ipv4 if d.len() >= ETH_LEN + 20 => {
                IpAddr::V4(Ipv4Addr::new(d[26], d[27], d[28], d[29]))
            }
            EtherType::Ipv6 if d.len() >= ETH_LEN + 40 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&d[22..38]);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            _ => return PortId(0),
        };
        match self.routes.route_for(src) {
            Some(NextHop::Connected { port }) | Some(NextHop::Gateway { port, .. }) => port,
            _ => PortId(0),
        }
    }
}
