//! Counters: every drop has a reason, and every reason its own counter.
//!
//! A drop is one increment of `drops[reason]` in the counters of the port the frame
//! arrived on (or left from): no allocation, no formatting, no log line on the fast path.

use core::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident => $label:literal, )+) => {
        /// Why the stack dropped a frame (or declined to send one).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $name, )+
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)+];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();

            /// A short snake_case name for counters and logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DropReason::$name => $label, )+
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header, or a VLAN tag is cut off.
    EthernetMalformed => "ethernet_malformed",
    /// Destination MAC is neither ours, broadcast, nor a group we listen to.
    NotOurMac => "not_our_mac",
    /// Source MAC is a group address (never valid).
    InvalidSourceMac => "invalid_source_mac",
    /// An EtherType the stack does not handle.
    UnknownEtherType => "unknown_ethertype",
    /// An 802.1Q tagged frame on a port with no VLANs configured.
    VlanNotConfigured => "vlan_not_configured",
    /// ARP that is not Ethernet/IPv4 or is cut off.
    ArpMalformed => "arp_malformed",
    /// ARP whose target is not one of our addresses (and not gratuitous).
    ArpNotForUs => "arp_not_for_us",
    /// IPv4 shorter than its header or than its total length says.
    Ipv4Truncated => "ipv4_truncated",
    /// IPv4 version field is not 4.
    Ipv4BadVersion => "ipv4_bad_version",
    /// IPv4 header length under 20 or over the total length.
    Ipv4BadHeaderLen => "ipv4_bad_header_len",
    /// IPv4 header checksum does not verify (RFC 1812 §5.2.2).
    Ipv4BadChecksum => "ipv4_bad_checksum",
    /// IPv4 source is a martian: 0/8, 127/8, multicast, class E, broadcast (RFC 1812 §5.3.7).
    Ipv4MartianSource => "ipv4_martian_source",
    /// IPv4 destination is a martian: 0/8, 127/8 or class E (RFC 1812 §5.3.7).
    Ipv4MartianDestination => "ipv4_martian_destination",
    /// IPv6 shorter than its header or payload length.
    Ipv6Truncated => "ipv6_truncated",
    /// IPv6 version field is not 6.
    Ipv6BadVersion => "ipv6_bad_version",
    /// IPv6 source is multicast, loopback, or unspecified where not allowed (RFC 4291).
    Ipv6MartianSource => "ipv6_martian_source",
    /// IPv6 destination is unspecified or loopback (RFC 4291 §2.5.2, §2.5.3).
    Ipv6MartianDestination => "ipv6_martian_destination",
    /// A link-local source or destination that would leave its link (RFC 4291 §2.5.6).
    Ipv6LinkLocalNotForwarded => "ipv6_link_local_not_forwarded",
    /// A malformed IPv6 extension header chain.
    Ipv6BadExtHeader => "ipv6_bad_ext_header",
    /// Multicast traffic that is neither for us nor routable (no multicast routing).
    MulticastNotForwarded => "multicast_not_forwarded",
    /// Broadcast traffic for a service the stack does not offer.
    BroadcastIgnored => "broadcast_ignored",
    /// A packet not for us on a stack that does not forward (a host).
    NotForwarding => "not_forwarding",
    /// TTL or hop limit ran out (RFC 1812 §5.3.1, RFC 8200 §3).
    TtlExpired => "ttl_expired",
    /// No route to the destination.
    NoRoute => "no_route",
    /// A blackhole route.
    Blackhole => "blackhole",
    /// An unreachable (reject) route.
    RouteUnreachable => "route_unreachable",
    /// Larger than the egress MTU and may not be fragmented.
    MtuExceeded => "mtu_exceeded",
    /// The neighbor's queue of packets awaiting resolution is full.
    NeighborQueueFull => "neighbor_queue_full",
    /// Address resolution failed.
    NeighborFailed => "neighbor_failed",
    /// The neighbor table is full.
    NeighborTableFull => "neighbor_table_full",
    /// The port's transmit queue is full.
    TxQueueFull => "tx_queue_full",
    /// The frame pool is empty.
    PoolExhausted => "pool_exhausted",
    /// The stack's event queue is full (an event was lost).
    EventQueueFull => "event_queue_full",
    /// ICMP/ICMPv6 message cut off or with a bad checksum.
    IcmpMalformed => "icmp_malformed",
    /// An ICMP type the stack does not act on.
    IcmpUnhandled => "icmp_unhandled",
    /// Neighbor Discovery message failing RFC 4861 validation (hop limit 255, code 0...).
    NdpInvalid => "ndp_invalid",
    /// A neighbor solicitation for an address that is not ours.
    NdpNotForUs => "ndp_not_for_us",
    /// A router advertisement or solicitation the stack ignores.
    NdpRouterIgnored => "ndp_router_ignored",
    /// UDP cut off or with a bad checksum.
    UdpMalformed => "udp_malformed",
    /// UDP to a port nobody listens on (ICMP port unreachable sent).
    UdpNoListener => "udp_no_listener",
    /// UDP for a socket whose receive queue is full.
    UdpSocketQueueFull => "udp_socket_queue_full",
    /// TCP cut off or with a bad checksum.
    TcpMalformed => "tcp_malformed",
    /// TCP to a port nobody listens on (RST sent unless it was a RST; RFC 9293 §3.10.7.1).
    TcpNoListener => "tcp_no_listener",
    /// A TCP segment the connection's state does not take (no ACK, RST or SYN where
    /// none belongs, a SYN with ACK to a listener).
    TcpUnexpected => "tcp_unexpected",
    /// A TCP segment outside the receive window and not an old duplicate: beyond its
    /// right edge, or further below RCV.NXT than a receive buffer (RFC 9293 §3.10.7.4;
    /// an ACK answers it).
    TcpOutOfWindow => "tcp_out_of_window",
    /// A TCP segment wholly below RCV.NXT, within a receive buffer of it: a
    /// retransmission or network duplicate of data already received, a reordered old
    /// ACK, or a keepalive. Normal on lossy paths; answered with an ACK (RFC 9293
    /// §3.10.7.4), which is how the peer learns what arrived.
    TcpDuplicate => "tcp_duplicate",
    /// An in-window RST or a SYN on a synchronized connection: answered with a
    /// challenge ACK, not acted on (RFC 5961 §3.2, §4.2).
    TcpChallengeAck => "tcp_challenge_ack",
    /// A TCP ACK for data never sent or far too old (RFC 5961 §5.2, RFC 9293 §3.10.7.4).
    TcpBadAck => "tcp_bad_ack",
    /// A TCP segment with an old timestamp (PAWS, RFC 7323 §5).
    TcpPaws => "tcp_paws",
    /// Out-of-order TCP data with no reassembly range left.
    TcpOooOverflow => "tcp_ooo_overflow",
    /// A SYN for a listener whose accept queue is full.
    TcpListenOverflow => "tcp_listen_overflow",
    /// A half-open connection dropped to make room for a new SYN (backlog full).
    TcpSynQueueEvicted => "tcp_syn_queue_evicted",
    /// A SYN while the TCP socket table is full.
    TcpTableFull => "tcp_table_full",
    /// An upper-layer protocol the stack does not implement (ICMP protocol unreachable).
    ProtocolUnreachable => "protocol_unreachable",
    /// A fragment for local delivery: reassembly is not implemented yet.
    ReassemblyUnsupported => "reassembly_unsupported",
    /// The port is administratively down.
    PortDown => "port_down",
}

/// Per-port counters.
#[derive(Clone, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames queued for transmission.
    pub tx_packets: u64,
    /// Bytes queued for transmission.
    pub tx_bytes: u64,
    /// Packets forwarded out of this port, counted when the forwarding decision is made
    /// (as RFC 4293's ipSystemStatsOutForwDatagrams and Linux's ForwDatagrams): one that
    /// address resolution or a full transmit queue drops afterwards is counted again under
    /// that drop reason.
    pub forwarded: u64,
    /// Packets delivered locally from this port.
    pub delivered: u64,
    /// ICMP errors generated because of packets that arrived on this port.
    pub icmp_errors_sent: u64,
    /// ICMP errors suppressed by the rate limiter.
    pub icmp_rate_limited: u64,
    /// Drops, indexed by [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
}

impl Default for PortCounters {
    fn default() -> Self {
        PortCounters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            forwarded: 0,
            delivered: 0,
            icmp_errors_sent: 0,
            icmp_rate_limited: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl PortCounters {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops for one reason.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The reasons with a non-zero count.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.drops[*r as usize]))
            .filter(|(_, n)| *n != 0)
    }

    /// Adds `other` into `self`.
    pub fn accumulate(&mut self, other: &PortCounters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.forwarded += other.forwarded;
        self.delivered += other.delivered;
        self.icmp_errors_sent += other.icmp_errors_sent;
        self.icmp_rate_limited += other.icmp_rate_limited;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += *b;
        }
    }
}

impl fmt::Debug for PortCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PortCounters");
        d.field("rx_packets", &self.rx_packets)
            .field("rx_bytes", &self.rx_bytes)
            .field("tx_packets", &self.tx_packets)
            .field("tx_bytes", &self.tx_bytes)
            .field("forwarded", &self.forwarded)
            .field("delivered", &self.delivered)
            .field("icmp_errors_sent", &self.icmp_errors_sent)
            .field("icmp_rate_limited", &self.icmp_rate_limited);
        for (r, n) in self.nonzero_drops() {
            d.field(r.name(), &n);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_unique_names_and_indexes() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn counting_and_accumulating() {
        let mut a = PortCounters::default();
        a.drop(DropReason::NoRoute);
        a.drop(DropReason::NoRoute);
        a.drop(DropReason::TtlExpired);
        let mut b = PortCounters::default();
        b.accumulate(&a);
        b.accumulate(&a);
        assert_eq!(b.drops_for(DropReason::NoRoute), 4);
        assert_eq!(b.total_drops(), 6);
        assert_eq!(b.nonzero_drops().count(), 2);
    }
}
