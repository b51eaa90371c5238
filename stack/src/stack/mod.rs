//! The stack instance: ports, routes, neighbors and the receive/transmit entry points.
//!
//! A [`Stack`] is a plain value. The caller drives it:
//! - [`Stack::receive_batch`] with frames from a port and `now`;
//! - [`Stack::poll`] with `now` when [`Stack::poll_at`] says a timer is due;
//! - [`Stack::drain_tx`] to collect frames to transmit on each port;
//! - [`Stack::pop_event`] for what happened locally (echo replies, ICMP errors).
//!
//! Nothing here reads a clock, spawns a thread, or calls the OS, so any number of stacks
//! share a process, each with its own frame pool, tables and counters.

mod input;
mod ipv4;
mod ipv6;
mod output;
mod tcp;
mod udp;

pub use udp::{SocketError, UdpHandle};

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::VecDeque;
use std::sync::Arc;

use crate::addr::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use crate::counters::{DropReason, PortCounters};
use crate::iface::{InterfaceConfig, Port, PortId};
use crate::mem::{Frame, FramePool};
use crate::neighbor::{Neighbor, NeighborCache, NeighborConfig, NeighborHandle, Solicit};
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::route::{NextHop, Route, RouteError, RouteOrigin, RouteTable};
use crate::time::Instant;
use crate::wire::EthernetAddress;

/// Frames processed per stage of [`Stack::receive_batch`].
pub const BATCH: usize = 64;

/// Configuration of a stack instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// A name for displays.
    pub name: String,
    /// Forward packets not addressed to us (a router) or drop them (a host).
    pub forwarding: bool,
    /// TTL / hop limit of packets the stack originates.
    pub default_ttl: u8,
    /// Neighbor cache parameters.
    pub neighbor: NeighborConfig,
    /// Per-destination rate of ICMP errors.
    pub icmp_rate: RateLimitConfig,
    /// Frames each port's transmit queue holds.
    pub tx_queue_len: usize,
    /// Events the local event queue holds.
    pub event_queue_len: usize,
    /// Send IPv4 ICMP destination unreachable for packets that match no route.
    pub icmp_unreachable: bool,
    /// TCP parameters.
    pub tcp: crate::tcp::TcpConfig,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            name: "stack".into(),
            forwarding: false,
            default_ttl: 64,
            neighbor: NeighborConfig::default(),
            icmp_rate: RateLimitConfig::default(),
            tx_queue_len: 1024,
            event_queue_len: 1024,
            icmp_unreachable: true,
            tcp: crate::tcp::TcpConfig::default(),
        }
    }
}

impl StackConfig {
    /// A router: forwarding on.
    pub fn router(name: impl Into<String>) -> Self {
        StackConfig {
            name: name.into(),
            forwarding: true,
            ..Default::default()
        }
    }

    /// A host: forwarding off.
    pub fn host(name: impl Into<String>) -> Self {
        StackConfig {
            name: name.into(),
            forwarding: false,
            ..Default::default()
        }
    }
}

/// Why a configuration call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The MAC address is not unicast.
    BadMac {
        /// Port name.
        port: String,
        /// The address.
        mac: EthernetAddress,
    },
    /// The MTU is out of range.
    BadMtu {
        /// Port name.
        port: String,
        /// The MTU.
        mtu: u16,
        /// Why.
        why: &'static str,
    },
    /// An address is configured twice.
    DuplicateAddress {
        /// Port name.
        port: String,
        /// The address.
        addr: IpAddr,
    },
    /// An address is not a usable unicast address.
    BadAddress {
        /// Port name.
        port: String,
        /// The address.
        addr: IpAddr,
    },
    /// Too many ports.
    TooManyPorts,
    /// A route could not be added or removed.
    Route(RouteError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadMac { port, mac } => {
                write!(f, "port {port}: MAC {mac} is not a unicast address")
            }
            ConfigError::BadMtu { port, mtu, why } => write!(f, "port {port}: MTU {mtu} {why}"),
            ConfigError::DuplicateAddress { port, addr } => {
                write!(f, "port {port}: address {addr} is already configured")
            }
            ConfigError::BadAddress { port, addr } => {
                write!(f, "port {port}: {addr} is not a unicast address")
            }
            ConfigError::TooManyPorts => f.write_str("too many ports (at most 65535)"),
            ConfigError::Route(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<RouteError> for ConfigError {
    fn from(e: RouteError) -> Self {
        ConfigError::Route(e)
    }
}

/// Where a configured route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    /// Through a gateway; the port is the one whose connected network holds it.
    Via(IpAddr),
    /// Through a gateway on a given port.
    ViaPort(IpAddr, PortId),
    /// Directly connected on a port.
    Port(PortId),
    /// Discard silently.
    Blackhole,
    /// Discard with ICMP unreachable.
    Unreachable,
}

/// Why a locally originated packet was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The frame pool is empty.
    PoolExhausted,
    /// No route to the destination.
    NoRoute,
    /// No source address of the right family.
    NoSourceAddress,
    /// The payload does not fit a frame.
    TooBig,
    /// The destination is not a unicast address.
    BadDestination,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::PoolExhausted => "frame pool exhausted",
            SendError::NoRoute => "no route to destination",
            SendError::NoSourceAddress => "no source address for this family",
            SendError::TooBig => "payload does not fit a frame",
            SendError::BadDestination => "destination is not unicast",
        })
    }
}

impl std::error::Error for SendError {}

/// An ICMP error received for a packet we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// TTL / hop limit exceeded in transit.
    TimeExceeded,
    /// Destination unreachable with its code (ICMPv4 or ICMPv6 numbering).
    Unreachable(u8),
    /// Fragmentation needed / packet too big, with the MTU.
    TooBig(u32),
    /// Parameter problem.
    ParamProblem,
}

/// What happened locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An echo reply arrived.
    EchoReply {
        /// When.
        at: Instant,
        /// From whom.
        from: IpAddr,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// ICMP data length.
        len: usize,
        /// TTL / hop limit on arrival.
        ttl: u8,
    },
    /// An ICMP error arrived about a packet we sent.
    IcmpError {
        /// When.
        at: Instant,
        /// The router or host that sent it.
        from: IpAddr,
        /// What it says.
        kind: IcmpErrorKind,
        /// The destination of the packet it quotes.
        original_dst: IpAddr,
        /// The echo identifier and sequence of the quoted packet, when it was an echo.
        echo: Option<(u16, u16)>,
    },
}

/// An echo request to originate (ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRequest {
    /// Destination.
    pub dst: IpAddr,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Bytes of ICMP data.
    pub data_len: usize,
    /// TTL / hop limit; the stack's default when `None`.
    pub ttl: Option<u8>,
}

/// A neighbor as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborInfo {
    /// Port.
    pub port: PortId,
    /// Address.
    pub addr: IpAddr,
    /// Link-layer address (zero while incomplete).
    pub mac: EthernetAddress,
    /// State.
    pub state: crate::neighbor::NeighborState,
}

/// One stack instance.
pub struct Stack {
    config: StackConfig,
    ports: Vec<Port>,
    routes: Arc<RouteTable>,
    neighbors: NeighborCache,
    limiter: RateLimiter,
    pool: FramePool,
    events: VecDeque<Event>,
    /// Per next-hop id, the neighbor entry of a gateway (a cache; handles never dangle).
    adjacency: Vec<Option<NeighborHandle>>,
    ip_ident: u16,
    /// State of the stack's random sequence (splitmix64 over the seed).
    rng: u64,
    udp: udp::UdpSockets,
    /// Ports that had frames queued since the last [`Stack::take_tx_ready`] (room for
    /// every port is reserved as ports are added, so listing one never allocates).
    tx_ready: Vec<PortId>,
    tcp: tcp::TcpSockets,
    scratch: Scratch,
}

/// Reusable buffers so the receive path never allocates.
struct Scratch {
    v4_frames: Vec<Frame>,
    v4_dst: Vec<Ipv4Addr>,
    v6_frames: Vec<Frame>,
    v6_dst: Vec<Ipv6Addr>,
    hops: Vec<Option<u32>>,
    released: Vec<Frame>,
    solicits: Vec<Solicit>,
    failed: Vec<Frame>,
    /// Frames whose payload local delivery consumed, freed together at the end of the
    /// receive batch: freeing one takes atomic operations (the pool's refcount and free
    /// list), which would otherwise wait on the copy of its payload just made.
    consumed: Vec<Frame>,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            v4_frames: Vec::with_capacity(BATCH),
            v4_dst: Vec::with_capacity(BATCH),
            v6_frames: Vec::with_capacity(BATCH),
            v6_dst: Vec::with_capacity(BATCH),
            hops: vec![None; BATCH],
            released: Vec::with_capacity(crate::neighbor::MAX_PENDING),
            solicits: Vec::with_capacity(64),
            failed: Vec::with_capacity(64),
            consumed: Vec::with_capacity(BATCH),
        }
    }
}

impl Stack {
    /// A stack with no ports. `pool` supplies frames for packets the stack originates
    /// (replies, ICMP errors, solicitations); `seed` drives every random choice.
    pub fn new(config: StackConfig, pool: FramePool, seed: u64) -> Self {
        let neighbors = NeighborCache::new(config.neighbor, seed ^ 0x9e37_79b9_7f4a_7c15);
        let limiter = RateLimiter::new(config.icmp_rate);
        let events = VecDeque::with_capacity(config.event_queue_len);
        let tcp = tcp::TcpSockets::new(&config.tcp, seed);
        Stack {
            config,
            ports: Vec::new(),
            routes: Arc::new(RouteTable::new()),
            neighbors,
            limiter,
            pool,
            events,
            adjacency: Vec::new(),
            ip_ident: (seed >> 16) as u16,
            tx_ready: Vec::new(),
            rng: seed ^ 0x5851_f42d_4c95_7f2d,
            udp: udp::UdpSockets::default(),
            tcp,
            scratch: Scratch::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// The frame pool.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// Adds a port with its addresses; connected and local routes follow from them.
    pub fn add_port(&mut self, config: InterfaceConfig) -> Result<PortId, ConfigError> {
        let name = config.name.clone();
        if !config.mac.is_unicast() {
            return Err(ConfigError::BadMac {
                port: name,
                mac: config.mac,
            });
        }
        if config.mtu < 68 {
            return Err(ConfigError::BadMtu {
                port: name,
                mtu: config.mtu,
                why: "is below 68 (RFC 791)",
            });
        }
        if !config.ipv6.is_empty() && config.mtu < 1280 {
            return Err(ConfigError::BadMtu {
                port: name,
                mtu: config.mtu,
                why: "is below 1280, the IPv6 minimum (RFC 8200 §5)",
            });
        }
        if usize::from(config.mtu) + 14
            > self.pool.frame_size() as usize - self.pool.headroom() as usize
        {
            return Err(ConfigError::BadMtu {
                port: name,
                mtu: config.mtu,
                why: "does not fit a frame of the pool",
            });
        }
        if self.ports.len() >= usize::from(u16::MAX) {
            return Err(ConfigError::TooManyPorts);
        }
        let mut seen: Vec<IpAddr> = self
            .ports
            .iter()
            .flat_map(|p| {
                p.config
                    .ipv4
                    .iter()
                    .map(|c| IpAddr::V4(c.addr()))
                    .chain(p.config.ipv6.iter().map(|c| IpAddr::V6(c.addr())))
            })
            .collect();
        for addr in config
            .ipv4
            .iter()
            .map(|c| IpAddr::V4(c.addr()))
            .chain(config.ipv6.iter().map(|c| IpAddr::V6(c.addr())))
        {
            let usable = match addr {
                IpAddr::V4(a) => {
                    !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback())
                }
                IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
            };
            if !usable {
                return Err(ConfigError::BadAddress { port: name, addr });
            }
            if seen.contains(&addr) {
                return Err(ConfigError::DuplicateAddress { port: name, addr });
            }
            seen.push(addr);
        }
        let id = PortId(self.ports.len() as u16);
        let routes = Arc::make_mut(&mut self.routes);
        for c in &config.ipv4 {
            if c.len() < 32 {
                routes.insert(
                    IpPrefix::V4(c.network()),
                    NextHop::Connected { port: id },
                    RouteOrigin::Connected,
                )?;
            }
            let host = Ipv4Prefix::new(c.addr(), 32).map_err(|_| ConfigError::BadAddress {
                port: name.clone(),
                addr: IpAddr::V4(c.addr()),
            })?;
            routes.insert(IpPrefix::V4(host), NextHop::Local, RouteOrigin::Local)?;
        }
        let port = Port::new(config, self.config.tx_queue_len);
        for c in &port.config.ipv6 {
            if c.len() < 128 {
                routes.insert(
                    IpPrefix::V6(c.network()),
                    NextHop::Connected { port: id },
                    RouteOrigin::Connected,
                )?;
            }
            let host = Ipv6Prefix::new(c.addr(), 128).map_err(|_| ConfigError::BadAddress {
                port: name.clone(),
                addr: IpAddr::V6(c.addr()),
            })?;
            routes.insert(IpPrefix::V6(host), NextHop::Local, RouteOrigin::Local)?;
        }
        self.ports.push(port);
        self.tx_ready
            .reserve(self.ports.len() - self.tx_ready.len());
        self.reset_adjacency();
        Ok(id)
    }

    /// The ports.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// One port.
    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.get(usize::from(id.0))
    }

    /// Brings a port up or down; a down port drops what it receives and sends.
    pub fn set_port_up(&mut self, id: PortId, up: bool) -> Result<(), ConfigError> {
        let p = self
            .ports
            .get_mut(usize::from(id.0))
            .ok_or(ConfigError::Route(RouteError::UnknownPort(id)))?;
        p.up = up;
        if !up {
            p.tx.clear();
        }
        Ok(())
    }

    /// Counters of every port added together.
    pub fn counters(&self) -> PortCounters {
        let mut total = PortCounters::default();
        for p in &self.ports {
            total.accumulate(&p.counters);
        }
        total
    }

    /// Drops for `reason` over all ports.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.ports
            .iter()
            .map(|p| p.counters.drops_for(reason))
            .sum()
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The route table as a shared value (for publishing to other shards).
    pub fn routes_arc(&self) -> Arc<RouteTable> {
        self.routes.clone()
    }

    /// Replaces the route table (an atomic swap from the control plane).
    pub fn set_routes(&mut self, routes: Arc<RouteTable>) {
        self.routes = routes;
        self.reset_adjacency();
    }

    fn reset_adjacency(&mut self) {
        self.adjacency.clear();
        self.adjacency.resize(self.routes.hop_id_bound(), None);
    }

    fn check_port(&self, port: PortId) -> Result<(), RouteError> {
        if usize::from(port.0) < self.ports.len() {
            Ok(())
        } else {
            Err(RouteError::UnknownPort(port))
        }
    }

    fn resolve_target(&self, target: RouteTarget) -> Result<NextHop, RouteError> {
        Ok(match target {
            RouteTarget::Via(via) => match self.routes.route_for(via) {
                Some(NextHop::Connected { port }) => NextHop::Gateway { port, via },
                // A link-local gateway needs its port named (RouteTarget::ViaPort).
                _ => return Err(RouteError::GatewayNotConnected(via)),
            },
            RouteTarget::ViaPort(via, port) => {
                self.check_port(port)?;
                NextHop::Gateway { port, via }
            }
            RouteTarget::Port(port) => {
                self.check_port(port)?;
                NextHop::Connected { port }
            }
            RouteTarget::Blackhole => NextHop::Blackhole,
            RouteTarget::Unreachable => NextHop::Unreachable,
        })
    }

    /// Adds or replaces a static route.
    pub fn add_route(
        &mut self,
        prefix: IpPrefix,
        target: RouteTarget,
    ) -> Result<Option<Route>, RouteError> {
        let hop = self.resolve_target(target)?;
        let old = Arc::make_mut(&mut self.routes).insert(prefix, hop, RouteOrigin::Static)?;
        self.reset_adjacency();
        Ok(old)
    }

    /// Adds many static routes in one bulk build (for example a full table). Gateways are
    /// resolved against the routes in place before the call.
    pub fn extend_routes(
        &mut self,
        routes: impl IntoIterator<Item = (IpPrefix, RouteTarget)>,
    ) -> Result<(), RouteError> {
        let mut resolved = Vec::new();
        for (p, t) in routes {
            resolved.push((p, self.resolve_target(t)?));
        }
        Arc::make_mut(&mut self.routes).extend(resolved, RouteOrigin::Static)?;
        self.reset_adjacency();
        Ok(())
    }

    /// Removes a route.
    pub fn remove_route(&mut self, prefix: IpPrefix) -> Result<Route, RouteError> {
        let r = Arc::make_mut(&mut self.routes).remove(prefix)?;
        self.reset_adjacency();
        Ok(r)
    }

    /// Adds a static neighbor entry.
    pub fn add_static_neighbor(
        &mut self,
        port: PortId,
        addr: IpAddr,
        mac: EthernetAddress,
    ) -> Result<(), RouteError> {
        self.check_port(port)?;
        if self.neighbors.add_static(port, addr, mac) {
            Ok(())
        } else {
            Err(RouteError::TooManyNextHops)
        }
    }

    /// Removes a neighbor entry.
    pub fn remove_neighbor(&mut self, port: PortId, addr: IpAddr) -> bool {
        self.neighbors.delete(port, addr)
    }

    /// Removes all dynamic neighbor entries.
    pub fn flush_neighbors(&mut self) {
        self.neighbors.flush();
    }

    /// The neighbor cache.
    pub fn neighbors(&self) -> impl Iterator<Item = NeighborInfo> + '_ {
        self.neighbors.iter().map(|n: &Neighbor| NeighborInfo {
            port: n.port(),
            addr: n.addr(),
            mac: n.mac(),
            state: n.state(),
        })
    }

    /// The next event, if any.
    pub fn pop_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, port: PortId, e: Event) {
        if self.events.len() >= self.config.event_queue_len {
            self.count_drop(port, DropReason::EventQueueFull);
        } else {
            self.events.push_back(e);
        }
    }

    /// Moves up to `max` frames queued for `port` into `out`; returns how many.
    pub fn drain_tx(&mut self, port: PortId, out: &mut Vec<Frame>, max: usize) -> usize {
        let Some(p) = self.ports.get_mut(usize::from(port.0)) else {
            return 0;
        };
        let n = max.min(p.tx.len());
        out.extend(p.tx.drain(..n));
        n
    }

    /// Moves into `out` the ports that had frames queued since the last call, each once,
    /// in the order they first had one. A caller with many mostly idle ports (the
    /// simulator's routers) drains only these instead of asking every port; it should
    /// drain them fully, as a port is listed again only when a frame is queued on it.
    /// A listed port may have been drained meanwhile.
    pub fn take_tx_ready(&mut self, out: &mut Vec<PortId>) {
        for &p in &self.tx_ready {
            if let Some(port) = self.ports.get_mut(usize::from(p.0)) {
                port.tx_ready = false;
            }
        }
        out.append(&mut self.tx_ready);
    }

    /// The next frame queued for `port`.
    pub fn pop_tx(&mut self, port: PortId) -> Option<Frame> {
        self.ports.get_mut(usize::from(port.0))?.tx.pop_front()
    }

    /// True when any port has frames to send.
    pub fn has_tx(&self) -> bool {
        self.ports.iter().any(|p| !p.tx.is_empty())
    }

    /// When [`Stack::poll`] next has work (neighbor timers); `None` when idle.
    pub fn poll_at(&self) -> Option<Instant> {
        match (self.neighbors.poll_at(), self.tcp_poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs timers due at `now`: neighbor retransmissions, probes, expiry; packets whose
    /// resolution failed are answered with ICMP address unreachable.
    pub fn poll(&mut self, now: Instant) {
        let mut solicits = core::mem::take(&mut self.scratch.solicits);
        let mut failed = core::mem::take(&mut self.scratch.failed);
        self.neighbors.poll(now, &mut solicits, &mut failed);
        for s in solicits.drain(..) {
            self.send_solicit(now, s);
        }
        for f in failed.drain(..) {
            self.resolution_failed(now, f);
        }
        self.scratch.solicits = solicits;
        self.scratch.failed = failed;
        self.tcp_poll(now);
    }

    #[inline]
    fn count_drop(&mut self, port: PortId, reason: DropReason) {
        if let Some(p) = self.ports.get_mut(usize::from(port.0)) {
            p.counters.drop(reason);
        }
    }

    /// Counts a drop unless `count` is false (a snooped copy, see
    /// [`Stack::snoop_neighbor`]).
    #[inline]
    fn count_drop_if(&mut self, count: bool, port: PortId, reason: DropReason) {
        if count {
            self.count_drop(port, reason);
        }
    }

    /// The next number of the stack's random sequence (splitmix64), which the seed
    /// given to [`Stack::new`] determines.
    pub(super) fn random_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    /// Originates an ICMP echo request (ping).
    pub fn send_echo_request(&mut self, now: Instant, req: EchoRequest) -> Result<(), SendError> {
        match req.dst {
            IpAddr::V4(dst) => self.send_echo_v4(now, dst, req),
            IpAddr::V6(dst) => self.send_echo_v6(now, dst, req),
        }
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("name", &self.config.name)
            .field("ports", &self.ports.len())
            .field("routes", &self.routes)
            .field("neighbors", &self.neighbors.len())
            .finish()
    }
}
