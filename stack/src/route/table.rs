//! The route table: prefixes of both families mapped to shared next hops.
//!
//! Prefixes live in the LPM tables ([`Lpm4`], [`Lpm6`]), which store a `u32` next-hop id.
//! Next hops are deduplicated (a full Internet table points at a handful of them), so the
//! fast path reads one small, hot array after the lookup. The table is `Clone`: the
//! control plane edits a copy and swaps it in atomically (`Arc`), workers never lock.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustc_hash::FxHashMap;

use super::lpm::{Lpm4, Lpm6};
use crate::addr::{IpPrefix, Ipv4Prefix, Ipv6Prefix};
use crate::iface::PortId;

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// Delivered to this stack (one of its addresses).
    Local,
    /// Directly connected: the destination itself is the neighbor, on `port`.
    Connected {
        /// Egress port.
        port: PortId,
    },
    /// Through a gateway on `port`.
    Gateway {
        /// Egress port.
        port: PortId,
        /// The gateway's address (on a connected network of `port`).
        via: IpAddr,
    },
    /// Silently discarded.
    Blackhole,
    /// Discarded with ICMP destination unreachable.
    Unreachable,
}

/// How a route came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteOrigin {
    /// From an interface address's subnet.
    Connected,
    /// An interface address itself.
    Local,
    /// Configured.
    Static,
}

impl RouteOrigin {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RouteOrigin::Connected => "connected",
            RouteOrigin::Local => "local",
            RouteOrigin::Static => "static",
        }
    }
}

/// A route as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination prefix.
    pub prefix: IpPrefix,
    /// Where it goes.
    pub next_hop: NextHop,
    /// Where it came from.
    pub origin: RouteOrigin,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        match self.next_hop {
            NextHop::Local => write!(f, " local")?,
            NextHop::Connected { port } => write!(f, " dev {port}")?,
            NextHop::Gateway { port, via } => write!(f, " via {via} dev {port}")?,
            NextHop::Blackhole => write!(f, " blackhole")?,
            NextHop::Unreachable => write!(f, " unreachable")?,
        }
        write!(f, " proto {}", self.origin.name())
    }
}

/// Why a route change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The gateway is not on any connected network.
    GatewayNotConnected(IpAddr),
    /// The gateway's family differs from the prefix's.
    FamilyMismatch {
        /// The prefix.
        prefix: IpPrefix,
        /// The gateway.
        via: IpAddr,
    },
    /// No route for this prefix.
    NotFound(IpPrefix),
    /// The port does not exist.
    UnknownPort(PortId),
    /// Too many distinct next hops.
    TooManyNextHops,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::GatewayNotConnected(g) => {
                write!(f, "gateway {g} is not on a connected network")
            }
            RouteError::FamilyMismatch { prefix, via } => {
                write!(f, "gateway {via} is not of the same family as {prefix}")
            }
            RouteError::NotFound(p) => write!(f, "no route for {p}"),
            RouteError::UnknownPort(p) => write!(f, "no such port {p}"),
            RouteError::TooManyNextHops => f.write_str("too many distinct next hops"),
        }
    }
}

impl std::error::Error for RouteError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HopKey {
    hop: NextHop,
    origin: RouteOrigin,
}

#[derive(Debug, Clone)]
struct HopEntry {
    key: HopKey,
    refs: u32,
}

/// Routes of both families.
#[derive(Clone, Default)]
pub struct RouteTable {
    v4: Lpm4,
    v6: Lpm6,
    hops: Vec<HopEntry>,
    hop_ids: FxHashMap<HopKey, u32>,
    free_ids: Vec<u32>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn acquire(&mut self, key: HopKey) -> Result<u32, RouteError> {
        if let Some(id) = self.hop_ids.get(&key) {
            self.hops[*id as usize].refs += 1;
            return Ok(*id);
        }
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.hops[id as usize] = HopEntry { key, refs: 1 };
                id
            }
            None => {
                if self.hops.len() >= u32::MAX as usize / 2 {
                    return Err(RouteError::TooManyNextHops);
                }
                self.hops.push(HopEntry { key, refs: 1 });
                (self.hops.len() - 1) as u32
            }
        };
        self.hop_ids.insert(key, id);
        Ok(id)
    }

    fn release(&mut self, id: u32) {
        let e = &mut self.hops[id as usize];
        e.refs -= 1;
        if e.refs == 0 {
            self.hop_ids.remove(&e.key);
            self.free_ids.push(id);
        }
    }

    /// Adds or replaces the route for `prefix`. Checks only what the table knows; the
    /// stack checks gateways and ports before calling.
    pub fn insert(
        &mut self,
        prefix: IpPrefix,
        hop: NextHop,
        origin: RouteOrigin,
    ) -> Result<Option<Route>, RouteError> {
        if let NextHop::Gateway { via, .. } = hop {
            if matches!(prefix, IpPrefix::V4(_)) != via.is_ipv4() {
                return Err(RouteError::FamilyMismatch { prefix, via });
            }
        }
        let id = self.acquire(HopKey { hop, origin })?;
        let old = match prefix {
            IpPrefix::V4(p) => self.v4.insert(p, id),
            IpPrefix::V6(p) => self.v6.insert(p, id),
        };
        Ok(old.map(|old| {
            let k = self.hops[old as usize].key;
            self.release(old);
            Route {
                prefix,
                next_hop: k.hop,
                origin: k.origin,
            }
        }))
    }

    /// Adds or replaces many routes in one bulk build of the lookup structures (much
    /// faster than one `insert` each on a full table). A prefix given twice keeps the
    /// last next hop.
    pub fn extend(
        &mut self,
        routes: impl IntoIterator<Item = (IpPrefix, NextHop)>,
        origin: RouteOrigin,
    ) -> Result<(), RouteError> {
        let mut all: Vec<(IpPrefix, NextHop)> = routes.into_iter().collect();
        for (prefix, hop) in &all {
            if let NextHop::Gateway { via, .. } = hop {
                if matches!(prefix, IpPrefix::V4(_)) != via.is_ipv4() {
                    return Err(RouteError::FamilyMismatch {
                        prefix: *prefix,
                        via: *via,
                    });
                }
            }
        }
        // Keep the last next hop of a prefix given twice.
        all.reverse();
        all.sort_by_key(|(p, _)| *p);
        all.dedup_by_key(|(p, _)| *p);
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (prefix, hop) in all {
            let id = self.acquire(HopKey { hop, origin })?;
            let old = match prefix {
                IpPrefix::V4(p) => {
                    v4.push((p, id));
                    self.v4.get(p)
                }
                IpPrefix::V6(p) => {
                    v6.push((p, id));
                    self.v6.get(p)
                }
            };
            if let Some(old) = old {
                self.release(old);
            }
        }
        self.v4.extend(v4);
        self.v6.extend(v6);
        Ok(())
    }

    /// Removes the route for `prefix`.
    pub fn remove(&mut self, prefix: IpPrefix) -> Result<Route, RouteError> {
        let old = match prefix {
            IpPrefix::V4(p) => self.v4.remove(p),
            IpPrefix::V6(p) => self.v6.remove(p),
        }
        .ok_or(RouteError::NotFound(prefix))?;
        let k = self.hops[old as usize].key;
        self.release(old);
        Ok(Route {
            prefix,
            next_hop: k.hop,
            origin: k.origin,
        })
    }

    /// The route for exactly `prefix`.
    pub fn get(&self, prefix: IpPrefix) -> Option<Route> {
        let id = match prefix {
            IpPrefix::V4(p) => self.v4.get(p),
            IpPrefix::V6(p) => self.v6.get(p),
        }?;
        let k = self.hops[id as usize].key;
        Some(Route {
            prefix,
            next_hop: k.hop,
            origin: k.origin,
        })
    }

    /// The next-hop id of the longest match for `addr` (the fast path).
    #[inline]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<u32> {
        self.v4.lookup(addr)
    }

    /// The next-hop id of the longest match for `addr`.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<u32> {
        self.v6.lookup(addr)
    }

    /// Looks up many IPv4 destinations at once (their cache misses overlap).
    #[inline]
    pub fn lookup_v4_batch(&self, addrs: &[Ipv4Addr], out: &mut [Option<u32>]) {
        self.v4.lookup_batch(addrs, out)
    }

    /// Looks up many IPv6 destinations at once.
    #[inline]
    pub fn lookup_v6_batch(&self, addrs: &[Ipv6Addr], out: &mut [Option<u32>]) {
        self.v6.lookup_batch(addrs, out)
    }

    /// The next hop behind an id from a lookup.
    #[inline]
    pub fn hop(&self, id: u32) -> NextHop {
        self.hops[id as usize].key.hop
    }

    /// The longest-match route for `addr` (control plane and tests).
    pub fn route_for(&self, addr: IpAddr) -> Option<NextHop> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
        .map(|id| self.hop(id))
    }

    /// Number of next-hop ids in use or free (an upper bound for ids).
    pub fn hop_id_bound(&self) -> usize {
        self.hops.len()
    }

    /// Number of IPv4 routes.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// Number of IPv6 routes.
    pub fn len_v6(&self) -> usize {
        self.v6.len()
    }

    /// Every route, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = Route> + '_ {
        let v4 = self.v4.iter().map(|(p, id)| (IpPrefix::V4(p), id));
        let v6 = self.v6.iter().map(|(p, id)| (IpPrefix::V6(p), id));
        v4.chain(v6).map(|(prefix, id)| {
            let k = self.hops[id as usize].key;
            Route {
                prefix,
                next_hop: k.hop,
                origin: k.origin,
            }
        })
    }

    /// Bytes used by the lookup structures.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// Removes every route whose next hop leaves through `port`, or that is local or
    /// connected because of it (used when a port goes away).
    pub fn remove_port(&mut self, port: PortId) {
        let doomed: Vec<IpPrefix> = self
            .iter()
            .filter(|r| match r.next_hop {
                NextHop::Connected { port: p } | NextHop::Gateway { port: p, .. } => p == port,
                _ => false,
            })
            .map(|r| r.prefix)
            .collect();
        for p in doomed {
            let _ = self.remove(p);
        }
    }

    /// IPv4 prefix helper for tests and configuration.
    pub fn get_v4(&self, prefix: Ipv4Prefix) -> Option<Route> {
        self.get(IpPrefix::V4(prefix))
    }

    /// IPv6 prefix helper for tests and configuration.
    pub fn get_v6(&self, prefix: Ipv6Prefix) -> Option<Route> {
        self.get(IpPrefix::V6(prefix))
    }
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteTable")
            .field("v4", &self.v4.len())
            .field("v6", &self.v6.len())
            .field("next_hops", &self.hop_ids.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn next_hops_are_shared_and_released() {
        let mut t = RouteTable::new();
        let gw = NextHop::Gateway {
            port: PortId(1),
            via: "192.0.2.1".parse().unwrap(),
        };
        for i in 0..100u32 {
            let prefix =
                IpPrefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap());
            t.insert(prefix, gw, RouteOrigin::Static).unwrap();
        }
        assert_eq!(t.hop_ids.len(), 1);
        assert_eq!(t.len_v4(), 100);
        assert_eq!(t.route_for("10.0.5.9".parse().unwrap()), Some(gw));
        for i in 0..100u32 {
            let prefix =
                IpPrefix::V4(Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap());
            t.remove(prefix).unwrap();
        }
        assert!(t.hop_ids.is_empty());
        assert_eq!(t.free_ids.len(), 1);
    }

    #[test]
    fn replace_and_remove_report_old_route() {
        let mut t = RouteTable::new();
        assert!(t
            .insert(p("2001:db8::/32"), NextHop::Blackhole, RouteOrigin::Static)
            .unwrap()
            .is_none());
        let old = t
            .insert(
                p("2001:db8::/32"),
                NextHop::Unreachable,
                RouteOrigin::Static,
            )
            .unwrap()
            .unwrap();
        assert_eq!(old.next_hop, NextHop::Blackhole);
        assert_eq!(
            t.route_for("2001:db8::1".parse().unwrap()),
            Some(NextHop::Unreachable)
        );
        assert_eq!(
            t.remove(p("2001:db8::/32")).unwrap().next_hop,
            NextHop::Unreachable
        );
        assert_eq!(
            t.remove(p("2001:db8::/32")),
            Err(RouteError::NotFound(p("2001:db8::/32")))
        );
        assert_eq!(t.route_for("2001:db8::1".parse().unwrap()), None);
    }

    #[test]
    fn bulk_extend_matches_inserts_and_keeps_last_duplicate() {
        let mut t = RouteTable::new();
        t.insert(p("10.0.0.0/8"), NextHop::Blackhole, RouteOrigin::Static)
            .unwrap();
        let hop = NextHop::Connected { port: PortId(1) };
        let routes = (0..1000u32)
            .map(|i| {
                (
                    IpPrefix::V4(
                        Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 12)), 20).unwrap(),
                    ),
                    hop,
                )
            })
            .chain([
                (p("10.0.0.0/8"), NextHop::Unreachable),
                (p("10.0.0.0/8"), hop),
            ]);
        t.extend(routes, RouteOrigin::Static).unwrap();
        assert_eq!(t.len_v4(), 1001);
        assert_eq!(t.route_for("10.255.255.1".parse().unwrap()), Some(hop));
        assert_eq!(t.route_for("10.0.16.1".parse().unwrap()), Some(hop));
        // The blackhole's next hop was released; only `hop` remains.
        assert_eq!(t.hop_ids.len(), 1);
    }

    #[test]
    fn family_mismatch_is_refused() {
        let mut t = RouteTable::new();
        let hop = NextHop::Gateway {
            port: PortId(0),
            via: "2001:db8::1".parse().unwrap(),
        };
        assert!(matches!(
            t.insert(p("198.51.100.0/24"), hop, RouteOrigin::Static),
            Err(RouteError::FamilyMismatch { .. })
        ));
    }

    #[test]
    fn longest_match_and_listing() {
        let mut t = RouteTable::new();
        t.insert(p("0.0.0.0/0"), NextHop::Blackhole, RouteOrigin::Static)
            .unwrap();
        t.insert(
            p("198.51.100.0/24"),
            NextHop::Connected { port: PortId(2) },
            RouteOrigin::Connected,
        )
        .unwrap();
        t.insert(p("198.51.100.1/32"), NextHop::Local, RouteOrigin::Local)
            .unwrap();
        assert_eq!(
            t.route_for("198.51.100.1".parse().unwrap()),
            Some(NextHop::Local)
        );
        assert_eq!(
            t.route_for("198.51.100.2".parse().unwrap()),
            Some(NextHop::Connected { port: PortId(2) })
        );
        assert_eq!(
            t.route_for("203.0.113.1".parse().unwrap()),
            Some(NextHop::Blackhole)
        );
        let listed: Vec<String> = t.iter().map(|r| r.to_string()).collect();
        assert_eq!(listed.len(), 3);
        assert!(listed.contains(&"198.51.100.0/24 dev port2 proto connected".to_string()));
        t.remove_port(PortId(2));
        assert_eq!(t.len_v4(), 2);
    }
}
