//! Interfaces (ports): link facts, addresses, transmit queue and counters.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::collections::VecDeque;

use crate::addr::{v6, Ipv4Cidr, Ipv6Cidr};
use crate::counters::PortCounters;
use crate::mem::Frame;
use crate::wire::EthernetAddress;

/// Index of a port within one stack.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port{}", self.0)
    }
}

/// Configuration of one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// A name for displays and errors.
    pub name: String,
    /// The port's MAC address (must be unicast).
    pub mac: EthernetAddress,
    /// IP MTU in bytes (68..=65535 for IPv4; IPv6 needs at least 1280).
    pub mtu: u16,
    /// IPv4 addresses with their subnet lengths.
    pub ipv4: Vec<Ipv4Cidr>,
    /// IPv6 addresses with their subnet lengths (the link-local one is derived).
    pub ipv6: Vec<Ipv6Cidr>,
}

impl InterfaceConfig {
    /// A port with MTU 1500 and no addresses.
    pub fn new(name: impl Into<String>, mac: EthernetAddress) -> Self {
        InterfaceConfig {
            name: name.into(),
            mac,
            mtu: 1500,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        }
    }

    /// Adds an IPv4 address.
    pub fn with_ipv4(mut self, cidr: Ipv4Cidr) -> Self {
        self.ipv4.push(cidr);
        self
    }

    /// Adds an IPv6 address.
    pub fn with_ipv6(mut self, cidr: Ipv6Cidr) -> Self {
        self.ipv6.push(cidr);
        self
    }

    /// Sets the MTU.
    pub fn with_mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }
}

/// A port's run-time state inside a stack.
pub struct Port {
    pub(crate) config: InterfaceConfig,
    pub(crate) link_local: Ipv6Addr,
    pub(crate) up: bool,
    pub(crate) tx: VecDeque<Frame>,
    pub(crate) tx_limit: usize,
    /// Listed in the stack's `tx_ready` since the last `Stack::take_tx_ready`.
    pub(crate) tx_ready: bool,
    pub(crate) counters: PortCounters,
}

impl Port {
    pub(crate) fn new(config: InterfaceConfig, tx_limit: usize) -> Self {
        let link_local = v6::link_local_from_mac(config.mac.0);
        Port {
            config,
            link_local,
            up: true,
            tx: VecDeque::with_capacity(tx_limit),
            tx_limit,
            tx_ready: false,
            counters: PortCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InterfaceConfig {
        &self.config
    }

    /// The derived IPv6 link-local address (modified EUI-64, RFC 4291 App. A).
    pub fn link_local(&self) -> Ipv6Addr {
        self.link_local
    }

    /// Counters.
    pub fn counters(&self) -> &PortCounters {
        &self.counters
    }

    /// True when the port is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Frames waiting for transmission.
    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }

    /// True when `addr` is one of this port's IPv4 addresses.
    #[inline]
    pub fn has_ipv4(&self, addr: Ipv4Addr) -> bool {
        self.config.ipv4.iter().any(|c| c.addr() == addr)
    }

    /// True when `addr` is one of this port's IPv6 addresses (link-local included).
    #[inline]
    pub fn has_ipv6(&self, addr: Ipv6Addr) -> bool {
        addr == self.link_local || self.config.ipv6.iter().any(|c| c.addr() == addr)
    }

    /// True when `addr` is the directed broadcast of one of this port's subnets.
    pub fn is_subnet_broadcast(&self, addr: Ipv4Addr) -> bool {
        self.config.ipv4.iter().any(|c| {
            c.len() < 31 && {
                let host = !crate::addr::Ipv4Prefix::mask_bits(c.len());
                u32::from(addr) & host == host && c.network().contains(addr)
            }
        })
    }

    /// The source address for packets to `dst` from this port: one in the same subnet,
    /// else the first.
    pub fn ipv4_source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.config
            .ipv4
            .iter()
            .find(|c| c.network().contains(dst))
            .or(self.config.ipv4.first())
            .map(|c| c.addr())
    }

    /// The source address for packets to `dst` from this port (RFC 6724, simplified):
    /// link-local for link-local destinations, else an address in the same subnet, else
    /// the first global one, else the link-local one.
    pub fn ipv6_source_for(&self, dst: Ipv6Addr) -> Ipv6Addr {
        if v6::is_link_local(dst) || dst.segments()[0] == 0xff02 {
            return self.link_local;
        }
        self.config
            .ipv6
            .iter()
            .find(|c| c.network().contains(dst))
            .or(self.config.ipv6.first())
            .map(|c| c.addr())
            .unwrap_or(self.link_local)
    }

    /// True when a frame to `mac` is for this port: its own MAC, broadcast, or an IPv6
    /// multicast group (filtered further at layer 3).
    #[inline]
    pub fn accepts_mac(&self, mac: EthernetAddress) -> bool {
        mac == self.config.mac || mac.is_broadcast() || (mac.0[0] == 0x33 && mac.0[1] == 0x33)
    }
}
