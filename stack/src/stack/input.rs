//! Receive path: the batch loop, layer 2 and ARP.
//!
//! A batch goes through stages: (1) layer 2 and IP header checks for every frame, with
//! ARP and other slow-path frames handled on the spot; (2) one batched route lookup for
//! all IPv4 and all IPv6 destinations, so their cache misses overlap; (3) forwarding or
//! local delivery of each packet, in arrival order per family.

use core::net::IpAddr;

use super::{Stack, BATCH};
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::Frame;
use crate::neighbor::Update;
use crate::time::Instant;
use crate::wire::arp::{ArpOperation, ArpPacket, ArpRepr};
use crate::wire::ethernet::{EthernetFrame, EthernetRepr};
use crate::wire::{EtherType, EthernetAddress};

/// Ethernet header length of the untagged frames the stack forwards.
pub(super) const ETH_LEN: usize = 14;

/// Ethernet plus an IPv4 header without options: the bytes the IPv4 fast path reads.
pub(super) const IPV4_FAST_LEN: usize = ETH_LEN + 20;

impl Stack {
    /// Processes one received frame.
    pub fn receive(&mut self, now: Instant, port: PortId, frame: Frame) {
        let mut one = [Some(frame)];
        self.receive_iter(now, port, one.iter_mut().filter_map(Option::take));
    }

    /// Processes a batch of frames received on `port`, leaving `frames` empty (its
    /// capacity kept for the next batch). Frames for a port this stack does not have
    /// go straight back to their pool: that is a caller bug, with no port to count on.
    pub fn receive_batch(&mut self, now: Instant, port: PortId, frames: &mut Vec<Frame>) {
        self.receive_iter(now, port, frames.drain(..));
    }

    fn receive_iter(&mut self, now: Instant, port: PortId, frames: impl Iterator<Item = Frame>) {
        let Some(p) = self.ports.get(usize::from(port.0)) else {
            return;
        };
        let up = p.up;
        self.tcp_batch_begin();
        let mut frames = frames.peekable();
        while frames.peek().is_some() {
            let mut v4 = core::mem::take(&mut self.scratch.v4_frames);
            let mut v4_dst = core::mem::take(&mut self.scratch.v4_dst);
            let mut v6 = core::mem::take(&mut self.scratch.v6_frames);
            let mut v6_dst = core::mem::take(&mut self.scratch.v6_dst);
            let mut hops = core::mem::take(&mut self.scratch.hops);

            // Stage 1: layer 2, header checks, slow path.
            for frame in frames.by_ref().take(BATCH) {
                let p = &mut self.ports[usize::from(port.0)];
                p.counters.rx_packets += 1;
                p.counters.rx_bytes += frame.len() as u64;
                if !up {
                    p.counters.drop(DropReason::PortDown);
                    continue;
                }
                match self.classify(now, port, frame) {
                    Classified::V4(frame, dst) => {
                        v4_dst.push(dst);
                        v4.push(frame);
                    }
                    Classified::V6(frame, dst) => {
                        v6_dst.push(dst);
                        v6.push(frame);
                    }
                    Classified::Done => {}
                }
            }

            // Stage 2 and 3: batched lookups, then forwarding or local delivery.
            if !v4.is_empty() {
                self.routes
                    .lookup_v4_batch(&v4_dst, &mut hops[..v4_dst.len()]);
                for (frame, hop) in v4.drain(..).zip(hops.iter()) {
                    self.ipv4_dispatch(now, port, frame, *hop);
                }
            }
            if !v6.is_empty() {
                self.routes
                    .lookup_v6_batch(&v6_dst, &mut hops[..v6_dst.len()]);
                for (frame, hop) in v6.drain(..).zip(hops.iter()) {
                    self.ipv6_dispatch(now, port, frame, *hop);
                }
            }
            v4_dst.clear();
            v6_dst.clear();
            self.scratch.v4_frames = v4;
            self.scratch.v4_dst = v4_dst;
            self.scratch.v6_frames = v6;
            self.scratch.v6_dst = v6_dst;
            self.scratch.hops = hops;
            self.scratch.consumed.clear();
        }
        self.tcp_batch_end(now);
    }

    /// A frame whose data local delivery is done with: freed with the rest of the batch
    /// (or at once when the batch's list is full).
    #[inline]
    pub(super) fn consumed(&mut self, frame: Frame) {
        if self.scratch.consumed.len() < self.scratch.consumed.capacity() {
            self.scratch.consumed.push(frame);
        }
    }

    /// Lets the neighbor cache learn from a copy of an ARP or NDP frame that another
    /// stack instance (the shard that owns `port`) received and answers: a shard of a
    /// multi-core runtime resolves its neighbors itself, but replies to its solicitations
    /// may land on any shard. The cache is updated exactly as on receive (RFC 826 merge,
    /// RFC 4861 §7.2.5), frames that waited for the neighbor are released to the transmit
    /// queue; nothing is answered and nothing counted. Other frames are ignored.
    pub fn snoop_neighbor(&mut self, now: Instant, port: PortId, frame: Frame) {
        if usize::from(port.0) >= self.ports.len() {
            return;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame.data()) else {
            return;
        };
        match eth.ethertype() {
            EtherType::Arp => self.arp_input(now, port, frame, false),
            EtherType::Ipv6 => {
                let data = frame.data();
                // Only NDP directly after the fixed header (RFC 4861 messages carry no
                // extension headers in practice); hop limit and checksum checked inside.
                if data.len() >= ETH_LEN + 40 + 4 && data[ETH_LEN + 6] == 58 {
                    let pl =
                        usize::from(u16::from_be_bytes([data[ETH_LEN + 4], data[ETH_LEN + 5]]));
                    if ETH_LEN + 40 + pl <= data.len() {
                        let data = &data[..ETH_LEN + 40 + pl];
                        self.ndp_input(now, port, data, 0, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// Layer 2 checks and dispatch by EtherType.
    #[inline]
    fn classify(&mut self, now: Instant, port: PortId, frame: Frame) -> Classified {
        // Fast path: an untagged IPv4 datagram without options, to our MAC, that passes
        // every check. Anything else (or any doubt) takes the general path below, which
        // does the counting.
        if let Some(h) = frame.data().first_chunk::<IPV4_FAST_LEN>() {
            if let Some(dst) = self.ipv4_fast_check(port, h, frame.len()) {
                return Classified::V4(frame, dst);
            }
        }
        let Ok(eth) = EthernetFrame::new_checked(frame.data()) else {
            self.count_drop(port, DropReason::EthernetMalformed);
            return Classified::Done;
        };
        let (dst, src, ethertype) = (eth.dst_addr(), eth.src_addr(), eth.ethertype());
        let p = &self.ports[usize::from(port.0)];
        if !p.accepts_mac(dst) {
            self.count_drop(port, DropReason::NotOurMac);
            return Classified::Done;
        }
        if src.is_multicast() {
            self.count_drop(port, DropReason::InvalidSourceMac);
            return Classified::Done;
        }
        match ethertype {
            EtherType::Ipv4 => match self.ipv4_check(port, &frame, dst) {
                Some(a) => Classified::V4(frame, a),
                None => Classified::Done,
            },
            EtherType::Ipv6 => self.ipv6_classify(now, port, frame, dst),
            EtherType::Arp => {
                self.arp_input(now, port, frame, true);
                Classified::Done
            }
            EtherType::Vlan | EtherType::QinQ => {
                self.count_drop(port, DropReason::VlanNotConfigured);
                Classified::Done
            }
            EtherType::Unknown(_) => {
                self.count_drop(port, DropReason::UnknownEtherType);
                Classified::Done
            }
        }
    }

    /// ARP (RFC 826) with the RFC 5227 probe and gratuitous-ARP cases. Without
    /// `answer` (a copy snooped for another shard's sake) the cache learns as usual but
    /// nothing is sent and nothing counted.
    fn arp_input(&mut self, now: Instant, port: PortId, mut frame: Frame, answer: bool) {
        let repr = match ArpPacket::new_checked(&frame.data()[ETH_LEN..])
            .and_then(|p| ArpRepr::parse(&p))
        {
            Ok(r) => r,
            Err(_) if !answer => return,
            Err(_) => return self.count_drop(port, DropReason::ArpMalformed),
        };
        let sender = repr.source_protocol_addr;
        let target = repr.target_protocol_addr;
        let sender_mac = repr.source_hardware_addr;
        if !sender_mac.is_unicast() {
            if answer {
                self.count_drop(port, DropReason::ArpMalformed);
            }
            return;
        }
        let mut released = core::mem::take(&mut self.scratch.released);
        let p = &self.ports[usize::from(port.0)];
        let for_us = p.has_ipv4(target);
        if sender == target {
            // Gratuitous ARP: refresh an existing entry, create none.
            if !sender.is_unspecified() {
                self.neighbors.update(
                    now,
                    port,
                    IpAddr::V4(sender),
                    sender_mac,
                    Update::Override,
                    &mut released,
                );
            }
        } else if for_us {
            if !sender.is_unspecified() {
                let kind = if repr.operation == ArpOperation::Reply {
                    Update::Solicited
                } else {
                    Update::Learned
                };
                self.neighbors.update(
                    now,
                    port,
                    IpAddr::V4(sender),
                    sender_mac,
                    kind,
                    &mut released,
                );
            }
            if !answer {
                // A snooped copy: the shard that owns the port answers.
            } else if repr.operation == ArpOperation::Request {
                // Answer in place: the request frame becomes the reply.
                let my_mac = p.config.mac;
                let reply = ArpRepr {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: my_mac,
                    source_protocol_addr: target,
                    target_hardware_addr: sender_mac,
                    target_protocol_addr: sender,
                };
                let eth = EthernetRepr {
                    src_addr: my_mac,
                    dst_addr: sender_mac,
                    ethertype: EtherType::Arp,
                };
                frame.truncate(ETH_LEN + reply.buffer_len());
                let data = frame.data_mut();
                eth.emit(&mut EthernetFrame::new_unchecked(&mut data[..ETH_LEN]));
                reply.emit(&mut ArpPacket::new_unchecked(&mut data[ETH_LEN..]));
                self.ports[usize::from(port.0)].counters.delivered += 1;
                self.enqueue_tx(port, frame);
            } else {
                self.ports[usize::from(port.0)].counters.delivered += 1;
            }
        } else {
            // RFC 826 merge: refresh the sender if we know it; nothing else to do.
            if !sender.is_unspecified() && self.neighbors.find(port, IpAddr::V4(sender)).is_some() {
                self.neighbors.update(
                    now,
                    port,
                    IpAddr::V4(sender),
                    sender_mac,
                    Update::Override,
                    &mut released,
                );
            }
            if answer {
                self.count_drop(port, DropReason::ArpNotForUs);
            }
        }
        self.send_released(port, sender_mac, &mut released);
        self.scratch.released = released;
    }

    /// Sends frames that waited for `mac` on `port`.
    pub(super) fn send_released(
        &mut self,
        port: PortId,
        mac: EthernetAddress,
        released: &mut Vec<Frame>,
    ) {
        for mut f in released.drain(..) {
            if f.len() >= ETH_LEN {
                f.data_mut()[..6].copy_from_slice(&mac.0);
            }
            self.enqueue_tx(port, f);
        }
    }
}

pub(super) enum Classified {
    V4(Frame, core::net::Ipv4Addr),
    V6(Frame, core::net::Ipv6Addr),
    Done,
}
