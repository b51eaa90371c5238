//! The neighbor cache: ARP (RFC 826) and NDP (RFC 4861 §7.3) in one state machine.
//!
//! Entries live in a fixed-capacity [`Slab`], found by `(port, address)` in a hash index.
//! States follow RFC 4861 §7.3.2 for both families (Linux does the same for ARP):
//!
//! ```text
//! INCOMPLETE --reply--> REACHABLE --reachable_time--> STALE --use--> DELAY
//!     |  retrans x max_multicast                  ^          delay_first_probe |
//!     v                                     reply |                            v
//!   FAILED (held, then removed)          PROBE <--+---------------------------+
//!                                          | retrans x max_unicast -> removed
//! ```
//!
//! Packets for an INCOMPLETE entry wait in a small per-entry queue (overflow is a
//! counted drop); when resolution fails they are handed back so the caller can answer
//! with ICMP address unreachable. Static entries never change. Methods return what the
//! caller must do (send a solicitation, transmit released frames): the cache itself
//! builds no packets.

use core::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::iface::PortId;
use crate::mem::{Frame, Slab, SlabHandle};
use crate::time::{Duration, Instant};
use crate::wire::EthernetAddress;

/// Most packets an entry can hold while resolving.
pub const MAX_PENDING: usize = 8;

/// Neighbor cache parameters (RFC 4861 §10 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// Entries the cache holds.
    pub capacity: usize,
    /// How long a confirmation keeps an entry REACHABLE (base; jittered 0.5x-1.5x).
    pub reachable_time: Duration,
    /// Interval between solicitations.
    pub retrans_time: Duration,
    /// Wait in DELAY before probing.
    pub delay_first_probe: Duration,
    /// Broadcast/multicast solicitations before INCOMPLETE fails.
    pub max_multicast_solicit: u8,
    /// Unicast probes before PROBE fails.
    pub max_unicast_solicit: u8,
    /// Packets queued per entry while resolving (at most [`MAX_PENDING`]).
    pub pending_limit: usize,
    /// How long a FAILED entry answers new packets with failure at once.
    pub failed_hold: Duration,
    /// How long an unused STALE entry is kept.
    pub gc_stale_time: Duration,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            capacity: 4096,
            reachable_time: Duration::from_secs(30),
            retrans_time: Duration::from_secs(1),
            delay_first_probe: Duration::from_secs(5),
            max_multicast_solicit: 3,
            max_unicast_solicit: 3,
            pending_limit: 3,
            failed_hold: Duration::from_secs(3),
            gc_stale_time: Duration::from_secs(60),
        }
    }
}

/// The state of an entry (RFC 4861 §7.3.2, plus STATIC and FAILED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Resolution under way; packets wait.
    Incomplete,
    /// Recently confirmed.
    Reachable,
    /// Not recently confirmed; usable, will be verified on use.
    Stale,
    /// Used while STALE; waiting before probing.
    Delay,
    /// Being verified with unicast probes.
    Probe,
    /// Resolution failed; held briefly to answer failure at once.
    Failed,
    /// Configured; never expires or changes.
    Static,
}

impl NeighborState {
    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            NeighborState::Incomplete => "incomplete",
            NeighborState::Reachable => "reachable",
            NeighborState::Stale => "stale",
            NeighborState::Delay => "delay",
            NeighborState::Probe => "probe",
            NeighborState::Failed => "failed",
            NeighborState::Static => "permanent",
        }
    }
}

/// One neighbor.
pub struct Neighbor {
    port: PortId,
    addr: IpAddr,
    mac: EthernetAddress,
    state: NeighborState,
    /// When the current state's timer fires.
    deadline: Instant,
    /// Solicitations sent in this state.
    probes: u8,
    pending: [Option<Frame>; MAX_PENDING],
    pending_len: u8,
}

impl Neighbor {
    /// The port the neighbor is on.
    pub fn port(&self) -> PortId {
        self.port
    }
    /// The neighbor's IP address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// The link-layer address (meaningless while INCOMPLETE or FAILED).
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }
    /// The state.
    pub fn state(&self) -> NeighborState {
        self.state
    }
    /// Packets waiting for resolution.
    pub fn pending(&self) -> usize {
        self.pending_len as usize
    }
    fn has_mac(&self) -> bool {
        !matches!(
            self.state,
            NeighborState::Incomplete | NeighborState::Failed
        )
    }
    fn take_pending(&mut self, out: &mut Vec<Frame>) {
        for slot in self.pending.iter_mut().take(self.pending_len as usize) {
            if let Some(f) = slot.take() {
                out.push(f);
            }
        }
        self.pending_len = 0;
    }
}

/// A handle to a cache entry (generation-checked; never dangles).
pub type NeighborHandle = SlabHandle<Neighbor>;

/// What the caller must do after a cache operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solicit {
    /// Nothing.
    None,
    /// Send a broadcast ARP request / multicast NS for `addr` on `port`.
    Multicast {
        /// Port.
        port: PortId,
        /// Address to resolve.
        addr: IpAddr,
    },
    /// Send a unicast ARP request / NS to `mac` for `addr` on `port`.
    Unicast {
        /// Port.
        port: PortId,
        /// Address to verify.
        addr: IpAddr,
        /// Its last known link-layer address.
        mac: EthernetAddress,
    },
}

/// The result of asking the cache where to send a packet.
#[derive(Debug)]
pub enum Resolve {
    /// Send the frame now to this MAC (and perhaps also solicit, when a probe is due).
    Ready(Frame, EthernetAddress, Solicit),
    /// The packet was queued; send the solicitation if any.
    Queued(Solicit),
    /// Not sent: the frame is handed back with the reason.
    Dropped(Frame, ResolveDrop),
}

/// Why [`NeighborCache::resolve`] handed a frame back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveDrop {
    /// The entry's queue is full.
    QueueFull,
    /// Resolution failed recently.
    Failed,
    /// No room for a new entry.
    TableFull,
}

/// What a received ARP/NDP message says about a neighbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// An answer to our solicitation (ARP reply to us, solicited NA with O set).
    Solicited,
    /// A solicited NA with the Override flag clear (anycast, proxies): confirms the
    /// cached address but never replaces it (RFC 4861 §7.2.5).
    SolicitedNoOverride,
    /// An unsolicited announcement that may override (gratuitous ARP, NA with O set).
    Override,
    /// An unsolicited advertisement without override (NA with O clear): RFC 4861 §7.2.5.
    NoOverride,
    /// The sender's address seen in a request for us (ARP request, NS with SLLA): create
    /// or refresh as STALE (RFC 4861 §7.2.3; RFC 826 merge).
    Learned,
}

/// The neighbor cache of one stack.
pub struct NeighborCache {
    config: NeighborConfig,
    slab: Slab<Neighbor>,
    index: FxHashMap<(PortId, IpAddr), NeighborHandle>,
    next_timer: Instant,
    seed: u64,
}

impl NeighborCache {
    /// An empty cache; `seed` jitters reachable times.
    pub fn new(mut config: NeighborConfig, seed: u64) -> Self {
        config.pending_limit = config.pending_limit.min(MAX_PENDING);
        let mut index = FxHashMap::default();
        index.reserve(config.capacity);
        NeighborCache {
            slab: Slab::with_capacity(config.capacity),
            index,
            config,
            next_timer: Instant::from_nanos(u64::MAX),
            seed: seed | 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The entry for `(port, addr)`.
    #[inline]
    pub fn find(&self, port: PortId, addr: IpAddr) -> Option<NeighborHandle> {
        self.index.get(&(port, addr)).copied()
    }

    /// The entry behind a handle.
    #[inline]
    pub fn get(&self, h: NeighborHandle) -> Option<&Neighbor> {
        self.slab.get(h)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Neighbor> + '_ {
        self.slab.iter().map(|(_, n)| n)
    }

    /// The earliest time a timer needs [`NeighborCache::poll`].
    pub fn poll_at(&self) -> Option<Instant> {
        (!self.slab.is_empty()).then_some(self.next_timer)
    }

    fn jitter(&mut self, base: Duration) -> Duration {
        // xorshift64*: only spreads timers (RFC 4861 §6.3.2 random factor 0.5-1.5).
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 54; // 0..1024
        Duration::from_nanos(base.as_nanos() / 2 + base.as_nanos() / 1024 * r)
    }

    fn arm(&mut self, at: Instant) {
        if at < self.next_timer {
            self.next_timer = at;
        }
    }

    /// Stores an entry; `None` (the entry dropped) when the table is full.
    fn insert(&mut self, n: Neighbor) -> Option<NeighborHandle> {
        let key = (n.port, n.addr);
        let h = self.slab.insert(n).ok()?;
        self.index.insert(key, h);
        Some(h)
    }

    fn remove(&mut self, h: NeighborHandle, released: &mut Vec<Frame>) {
        if let Some(mut n) = self.slab.remove(h) {
            self.index.remove(&(n.port, n.addr));
            n.take_pending(released);
        }
    }

    /// Adds or replaces a static entry.
    pub fn add_static(&mut self, port: PortId, addr: IpAddr, mac: EthernetAddress) -> bool {
        let mut released = Vec::new();
        if let Some(h) = self.find(port, addr) {
            self.remove(h, &mut released);
        }
        let n = Neighbor {
            port,
            addr,
            mac,
            state: NeighborState::Static,
            deadline: Instant::ZERO,
            probes: 0,
            pending: Default::default(),
            pending_len: 0,
        };
        self.insert(n).is_some()
    }

    /// Removes the entry for `(port, addr)`; queued packets are dropped.
    pub fn delete(&mut self, port: PortId, addr: IpAddr) -> bool {
        match self.find(port, addr) {
            Some(h) => {
                let mut released = Vec::new();
                self.remove(h, &mut released);
                true
            }
            None => false,
        }
    }

    /// Removes every dynamic entry (static ones stay).
    pub fn flush(&mut self) {
        let dynamic: Vec<NeighborHandle> = self
            .slab
            .iter()
            .filter(|(_, n)| n.state != NeighborState::Static)
            .map(|(h, _)| h)
            .collect();
        let mut released = Vec::new();
        for h in dynamic {
            self.remove(h, &mut released);
        }
    }

    /// The fast path of [`NeighborCache::resolve`]: the MAC to send to now, when the entry
    /// has one (a STALE entry moves to DELAY, RFC 4861 §7.3.3), without touching the
    /// frame. `None` means the caller must take the slow path.
    #[inline]
    pub fn ready(
        &mut self,
        now: Instant,
        port: PortId,
        addr: IpAddr,
        hint: Option<NeighborHandle>,
    ) -> Option<(EthernetAddress, NeighborHandle)> {
        let h = match hint {
            Some(h) if self.slab.contains(h) => h,
            _ => self.find(port, addr)?,
        };
        let delay = self.config.delay_first_probe;
        let n = self.slab.get_mut(h)?;
        match n.state {
            NeighborState::Reachable
            | NeighborState::Static
            | NeighborState::Delay
            | NeighborState::Probe => Some((n.mac, h)),
            NeighborState::Stale => {
                n.state = NeighborState::Delay;
                n.deadline = now + delay;
                let (mac, at) = (n.mac, n.deadline);
                self.arm(at);
                Some((mac, h))
            }
            NeighborState::Incomplete | NeighborState::Failed => None,
        }
    }

    /// Where to send a packet for `addr` on `port` at `now`. A packet that must wait is
    /// taken into the entry's queue; `hint` is a cached handle to try before hashing.
    #[inline]
    pub fn resolve(
        &mut self,
        now: Instant,
        port: PortId,
        addr: IpAddr,
        hint: Option<NeighborHandle>,
        frame: Frame,
    ) -> (Resolve, Option<NeighborHandle>) {
        let h = match hint
            .filter(|h| self.slab.contains(*h))
            .or_else(|| self.find(port, addr))
        {
            Some(h) => h,
            None if self.slab.len() >= self.slab.capacity() => {
                return (Resolve::Dropped(frame, ResolveDrop::TableFull), None);
            }
            None => {
                let at = now + self.config.retrans_time;
                let mut n = Neighbor {
                    port,
                    addr,
                    mac: EthernetAddress::default(),
                    state: NeighborState::Incomplete,
                    deadline: at,
                    probes: 1,
                    pending: Default::default(),
                    pending_len: 0,
                };
                n.pending[0] = Some(frame);
                n.pending_len = 1;
                // Cannot fail: the capacity was checked above.
                let h = self.insert(n);
                self.arm(at);
                return (Resolve::Queued(Solicit::Multicast { port, addr }), h);
            }
        };
        let limit = self.config.pending_limit;
        let delay = self.config.delay_first_probe;
        let Some(n) = self.slab.get_mut(h) else {
            return (Resolve::Dropped(frame, ResolveDrop::TableFull), None);
        };
        match n.state {
            NeighborState::Reachable
            | NeighborState::Static
            | NeighborState::Delay
            | NeighborState::Probe => (Resolve::Ready(frame, n.mac, Solicit::None), Some(h)),
            NeighborState::Stale => {
                // RFC 4861 §7.3.3: first use of a STALE entry moves it to DELAY.
                n.state = NeighborState::Delay;
                n.deadline = now + delay;
                let (mac, at) = (n.mac, n.deadline);
                self.arm(at);
                (Resolve::Ready(frame, mac, Solicit::None), Some(h))
            }
            NeighborState::Incomplete => {
                if (n.pending_len as usize) < limit {
                    n.pending[n.pending_len as usize] = Some(frame);
                    n.pending_len += 1;
                    (Resolve::Queued(Solicit::None), Some(h))
                } else {
                    (Resolve::Dropped(frame, ResolveDrop::QueueFull), Some(h))
                }
            }
            NeighborState::Failed => (Resolve::Dropped(frame, ResolveDrop::Failed), Some(h)),
        }
    }

    /// The MAC to use for `(port, addr)` right now, without queueing or state changes
    /// (used for replies to a neighbor that just spoke to us).
    pub fn peek_mac(&self, port: PortId, addr: IpAddr) -> Option<EthernetAddress> {
        let n = self.slab.get(self.find(port, addr)?)?;
        n.has_mac().then_some(n.mac)
    }

    /// Applies what a received ARP/NDP message says: `addr` on `port` is at `mac`.
    /// Frames that were waiting and can now be sent are pushed to `released` with the
    /// entry's MAC (their Ethernet destination still to be written by the caller).
    pub fn update(
        &mut self,
        now: Instant,
        port: PortId,
        addr: IpAddr,
        mac: EthernetAddress,
        kind: Update,
        released: &mut Vec<Frame>,
    ) -> Option<EthernetAddress> {
        let reachable = self.jitter(self.config.reachable_time);
        let gc = self.config.gc_stale_time;
        let Some(h) = self.find(port, addr) else {
            // Only a message that names us creates an entry (RFC 4861 §7.2.3, §7.2.5:
            // an unsolicited NA for an unknown address is ignored; RFC 826 merge).
            if kind == Update::Learned {
                let n = Neighbor {
                    port,
                    addr,
                    mac,
                    state: NeighborState::Stale,
                    deadline: now + gc,
                    probes: 0,
                    pending: Default::default(),
                    pending_len: 0,
                };
                if self.insert(n).is_some() {
                    self.arm(now + gc);
                }
                return Some(mac);
            }
            return None;
        };
        let n = self.slab.get_mut(h)?;
        if n.state == NeighborState::Static {
            return Some(n.mac);
        }
        let changed = n.mac != mac;
        let had_mac = n.has_mac();
        match (kind, n.state) {
            (_, NeighborState::Incomplete) | (_, NeighborState::Failed) => {
                n.mac = mac;
                if matches!(kind, Update::Solicited | Update::SolicitedNoOverride) {
                    n.state = NeighborState::Reachable;
                    n.deadline = now + reachable;
                } else {
                    n.state = NeighborState::Stale;
                    n.deadline = now + gc;
                }
                n.probes = 0;
                n.take_pending(released);
            }
            (Update::NoOverride | Update::SolicitedNoOverride, _) if changed => {
                // RFC 4861 §7.2.5: keep the old address, but suspect it.
                if n.state == NeighborState::Reachable {
                    n.state = NeighborState::Stale;
                    n.deadline = now + gc;
                }
            }
            (Update::Solicited | Update::SolicitedNoOverride, _) => {
                n.mac = mac;
                n.state = NeighborState::Reachable;
                n.deadline = now + reachable;
                n.probes = 0;
            }
            (Update::Override, _) | (Update::Learned, _) | (Update::NoOverride, _) => {
                if changed || !had_mac {
                    n.mac = mac;
                    n.state = NeighborState::Stale;
                    n.deadline = now + gc;
                }
            }
        }
        let (mac, at) = (n.mac, n.deadline);
        self.arm(at);
        Some(mac)
    }

    /// Runs timers due at `now`: pushes solicitations to send into `solicit`, frames whose
    /// resolution failed into `failed` (for ICMP address unreachable).
    pub fn poll(&mut self, now: Instant, solicit: &mut Vec<Solicit>, failed: &mut Vec<Frame>) {
        if now < self.next_timer {
            return;
        }
        let mut next = Instant::from_nanos(u64::MAX);
        let cfg = self.config;
        for i in 0..self.slab.slots_used() {
            let Some(h) = self.slab.handle_at(i) else {
                continue;
            };
            let reachable_stale_deadline = now + cfg.gc_stale_time;
            let Some(n) = self.slab.get_mut(h) else {
                continue;
            };
            if n.state == NeighborState::Static {
                continue;
            }
            if now < n.deadline {
                next = next.min(n.deadline);
                continue;
            }
            let mut remove = false;
            match n.state {
                NeighborState::Incomplete => {
                    if n.probes < cfg.max_multicast_solicit {
                        n.probes += 1;
                        n.deadline = now + cfg.retrans_time;
                        solicit.push(Solicit::Multicast {
                            port: n.port,
                            addr: n.addr,
                        });
                    } else {
                        n.state = NeighborState::Failed;
                        n.deadline = now + cfg.failed_hold;
                        n.take_pending(failed);
                    }
                }
                NeighborState::Reachable => {
                    n.state = NeighborState::Stale;
                    n.deadline = reachable_stale_deadline;
                }
                NeighborState::Delay => {
                    n.state = NeighborState::Probe;
                    n.probes = 1;
                    n.deadline = now + cfg.retrans_time;
                    solicit.push(Solicit::Unicast {
                        port: n.port,
                        addr: n.addr,
                        mac: n.mac,
                    });
                }
                NeighborState::Probe => {
                    if n.probes < cfg.max_unicast_solicit {
                        n.probes += 1;
                        n.deadline = now + cfg.retrans_time;
                        solicit.push(Solicit::Unicast {
                            port: n.port,
                            addr: n.addr,
                            mac: n.mac,
                        });
                    } else {
                        remove = true;
                    }
                }
                NeighborState::Stale | NeighborState::Failed => remove = true,
                NeighborState::Static => {}
            }
            if remove {
                self.remove(h, failed);
            } else if let Some(n) = self.slab.get(h) {
                next = next.min(n.deadline);
            }
        }
        self.next_timer = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{FramePool, PoolConfig};
    use core::net::Ipv4Addr;

    const P: PortId = PortId(0);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);
    const MAC2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 10]);

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n))
    }

    fn setup() -> (NeighborCache, FramePool) {
        (
            NeighborCache::new(NeighborConfig::default(), 7),
            FramePool::with_frames(64, PoolConfig::default()).unwrap(),
        )
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(1_000_000 + ms)
    }

    fn state(c: &NeighborCache, a: IpAddr) -> Option<NeighborState> {
        c.find(P, a).and_then(|h| c.get(h)).map(|n| n.state())
    }

    #[test]
    fn incomplete_queues_then_reply_releases() {
        let (mut c, pool) = setup();
        let (r, _) = c.resolve(t(0), P, ip(1), None, pool.alloc().unwrap());
        assert!(matches!(r, Resolve::Queued(Solicit::Multicast { .. })));
        // Second packet queues without a new solicitation; fourth overflows (limit 3).
        assert!(matches!(
            c.resolve(t(1), P, ip(1), None, pool.alloc().unwrap()).0,
            Resolve::Queued(Solicit::None)
        ));
        assert!(matches!(
            c.resolve(t(2), P, ip(1), None, pool.alloc().unwrap()).0,
            Resolve::Queued(Solicit::None)
        ));
        assert!(matches!(
            c.resolve(t(3), P, ip(1), None, pool.alloc().unwrap()).0,
            Resolve::Dropped(_, ResolveDrop::QueueFull)
        ));
        let mut released = Vec::new();
        assert_eq!(
            c.update(t(10), P, ip(1), MAC, Update::Solicited, &mut released),
            Some(MAC)
        );
        assert_eq!(released.len(), 3);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Reachable));
        assert!(matches!(
            c.resolve(t(11), P, ip(1), None, pool.alloc().unwrap()).0,
            Resolve::Ready(_, MAC, Solicit::None)
        ));
    }

    #[test]
    fn incomplete_retries_then_fails_and_hands_back_packets() {
        let (mut c, pool) = setup();
        c.resolve(t(0), P, ip(1), None, pool.alloc().unwrap());
        let (mut sol, mut failed) = (Vec::new(), Vec::new());
        c.poll(t(500), &mut sol, &mut failed);
        assert!(sol.is_empty());
        c.poll(t(1000), &mut sol, &mut failed);
        c.poll(t(2000), &mut sol, &mut failed);
        assert_eq!(
            sol.len(),
            2,
            "two retransmissions after the first solicitation"
        );
        assert!(failed.is_empty());
        c.poll(t(3000), &mut sol, &mut failed);
        assert_eq!(failed.len(), 1);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Failed));
        // While FAILED, new packets come straight back.
        assert!(matches!(
            c.resolve(t(3001), P, ip(1), None, pool.alloc().unwrap()).0,
            Resolve::Dropped(_, ResolveDrop::Failed)
        ));
        c.poll(t(6000), &mut sol, &mut failed);
        assert_eq!(state(&c, ip(1)), None);
        assert!(c.is_empty());
    }

    #[test]
    fn reachable_stale_delay_probe_cycle() {
        let (mut c, pool) = setup();
        let mut v = Vec::new();
        c.resolve(t(0), P, ip(1), None, pool.alloc().unwrap());
        c.update(t(0), P, ip(1), MAC, Update::Solicited, &mut v);
        let (mut sol, mut failed) = (Vec::new(), Vec::new());
        // Reachable time is 15-45 s after jitter.
        c.poll(t(14_000), &mut sol, &mut failed);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Reachable));
        c.poll(t(46_000), &mut sol, &mut failed);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Stale));
        // Use moves it to DELAY and still sends.
        assert!(matches!(
            c.resolve(t(47_000), P, ip(1), None, pool.alloc().unwrap())
                .0,
            Resolve::Ready(_, MAC, _)
        ));
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Delay));
        c.poll(t(52_000), &mut sol, &mut failed);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Probe));
        assert_eq!(
            sol,
            vec![Solicit::Unicast {
                port: P,
                addr: ip(1),
                mac: MAC
            }]
        );
        // A reply confirms it.
        c.update(t(52_100), P, ip(1), MAC, Update::Solicited, &mut v);
        assert_eq!(state(&c, ip(1)), Some(NeighborState::Reachable));
    }

    #[test]
    fn probe_without_answer_removes_entry() {
        let (mut c, pool) = setup();
        let mut v = Vec::new();
        c.update(t(0), P, ip(2), MAC, Update::Learned, &mut v);
        assert_eq!(state(&c, ip(2)), Some(NeighborState::Stale));
        c.resolve(t(1), P, ip(2), None, pool.alloc().unwrap());
        let (mut sol, mut failed) = (Vec::new(), Vec::new());
        for s in 1..20 {
            c.poll(t(s * 1000 + 1), &mut sol, &mut failed);
        }
        assert_eq!(sol.len(), 3);
        assert_eq!(state(&c, ip(2)), None);
    }

    #[test]
    fn unsolicited_updates_follow_rfc4861_7_2_5() {
        let (mut c, pool) = setup();
        let mut v = Vec::new();
        // Unknown address: unsolicited announcements create nothing.
        assert_eq!(
            c.update(t(0), P, ip(3), MAC, Update::Override, &mut v),
            None
        );
        assert!(c.is_empty());
        c.resolve(t(0), P, ip(3), None, pool.alloc().unwrap());
        c.update(t(0), P, ip(3), MAC, Update::Solicited, &mut v);
        // Override flag clear and a different MAC: keep the old one, go STALE.
        c.update(t(1), P, ip(3), MAC2, Update::NoOverride, &mut v);
        assert_eq!(c.peek_mac(P, ip(3)), Some(MAC));
        assert_eq!(state(&c, ip(3)), Some(NeighborState::Stale));
        // Gratuitous ARP / NA with override: take the new MAC.
        c.update(t(2), P, ip(3), MAC2, Update::Override, &mut v);
        assert_eq!(c.peek_mac(P, ip(3)), Some(MAC2));
    }

    #[test]
    fn static_entries_never_change_or_expire() {
        let (mut c, _) = setup();
        let mut v = Vec::new();
        assert!(c.add_static(P, ip(4), MAC));
        c.update(t(0), P, ip(4), MAC2, Update::Override, &mut v);
        let (mut sol, mut failed) = (Vec::new(), Vec::new());
        c.poll(t(10_000_000), &mut sol, &mut failed);
        assert_eq!(c.peek_mac(P, ip(4)), Some(MAC));
        assert_eq!(state(&c, ip(4)), Some(NeighborState::Static));
        c.flush();
        assert_eq!(c.len(), 1);
        assert!(c.delete(P, ip(4)));
        assert!(c.is_empty());
    }

    #[test]
    fn full_table_refuses_new_entries() {
        let cfg = NeighborConfig {
            capacity: 2,
            ..Default::default()
        };
        let mut c = NeighborCache::new(cfg, 1);
        let pool = FramePool::with_frames(8, PoolConfig::default()).unwrap();
        c.resolve(t(0), P, ip(1), None, pool.alloc().unwrap());
        c.resolve(t(0), P, ip(2), None, pool.alloc().unwrap());
        assert!(matches!(
            c.resolve(t(0), P, ip(3), None, pool.alloc().unwrap()).0,
            Resolve::Dropped(_, ResolveDrop::TableFull)
        ));
        // The refused frame went back to the pool once dropped; two wait in the cache.
        assert_eq!(pool.available(), 6);
    }

    #[test]
    fn stale_hint_falls_back_to_lookup() {
        let (mut c, pool) = setup();
        let mut v = Vec::new();
        let (_, h) = c.resolve(t(0), P, ip(1), None, pool.alloc().unwrap());
        c.delete(P, ip(1));
        c.update(t(0), P, ip(1), MAC, Update::Learned, &mut v);
        let (r, h2) = c.resolve(t(1), P, ip(1), h, pool.alloc().unwrap());
        assert!(matches!(r, Resolve::Ready(_, MAC, _)));
        assert_ne!(h, h2);
    }
}
