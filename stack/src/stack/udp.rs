//! UDP sockets (RFC 768) on the stack: bind, send, receive, ICMP errors.
//!
//! A socket is bound to a local address and port: a specific address of ours, or the
//! unspecified address of its family (a wildcard: every address of that family; IPv6
//! wildcards do not take IPv4). A datagram is delivered to the socket bound to its
//! exact destination, else to the family's wildcard on that port; with neither, it is
//! counted (`udp_no_listener`) and answered with ICMP port unreachable (RFC 1122
//! §4.1.3.1). Checksums: a zero checksum is accepted over IPv4 and refused over IPv6
//! (RFC 8200 §8.1); sent datagrams always carry one.
//!
//! Received datagrams wait in their socket's queue as the frames they arrived in (no
//! copy until [`Stack::udp_recv_from`]); a full queue drops and counts
//! (`udp_socket_queue_full`), per socket and per port. An ICMP error quoting a datagram
//! a socket sent is kept on that socket ([`Stack::udp_take_error`]).
//!
//! Ephemeral ports follow RFC 6056 algorithm 1 (a random port, then the next free one),
//! from the injected randomness, in 49152–65535.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::input::ETH_LEN;
use super::{IcmpErrorKind, SendError, Stack};
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::Frame;
use crate::route::NextHop;
use crate::time::Instant;
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::wire::udp::{UdpPacket, UdpRepr};
use crate::wire::IpProtocol;

/// Datagrams a socket holds before it drops, unless set with
/// [`Stack::udp_set_queue_limit`].
pub const DEFAULT_QUEUE: usize = 64;

/// The first ephemeral port (RFC 6335 dynamic range).
pub const EPHEMERAL_FIRST: u16 = 49152;

/// A UDP socket of one stack. Stale handles (of a closed socket) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpHandle {
    index: u32,
    generation: u32,
}

/// Why a socket call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketError {
    /// The handle is not (or no longer) a socket of this stack.
    InvalidHandle,
    /// Another socket is bound to this address and port.
    AddrInUse(SocketAddr),
    /// The address is not one of ours.
    AddrNotAvailable(IpAddr),
    /// Every ephemeral port of this address is taken.
    NoEphemeralPort,
    /// The destination's family differs from the socket's.
    FamilyMismatch,
    /// The destination port is 0, or the address is not unicast.
    BadDestination,
    /// The datagram cannot be sent.
    Send(SendError),
    /// The socket table is full.
    TableFull,
    /// Nothing to read yet (TCP).
    WouldBlock,
    /// The TCP socket's state does not allow the call (a listener, or a connection
    /// closed for sending).
    InvalidState(crate::tcp::TcpState),
    /// The TCP connection failed.
    Connection(crate::tcp::TcpError),
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::InvalidHandle => f.write_str("no such socket"),
            SocketError::AddrInUse(a) => write!(f, "{a} is already bound"),
            SocketError::AddrNotAvailable(a) => write!(f, "{a} is not an address of this stack"),
            SocketError::NoEphemeralPort => f.write_str("no free ephemeral port"),
            SocketError::FamilyMismatch => f.write_str("address family differs from the socket's"),
            SocketError::BadDestination => {
                f.write_str("destination is not a unicast address and port")
            }
            SocketError::Send(e) => write!(f, "{e}"),
            SocketError::TableFull => f.write_str("too many sockets"),
            SocketError::WouldBlock => f.write_str("no data yet"),
            SocketError::InvalidState(s) => write!(f, "not possible in state {s}"),
            SocketError::Connection(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SocketError {}

impl From<SendError> for SocketError {
    fn from(e: SendError) -> Self {
        SocketError::Send(e)
    }
}

/// A received datagram waiting in its socket's queue.
struct Datagram {
    frame: Frame,
    /// Payload offset and length in `frame`.
    off: usize,
    len: usize,
    from: SocketAddr,
}

struct Socket {
    local: SocketAddr,
    queue: VecDeque<Datagram>,
    limit: usize,
    dropped: u64,
    error: Option<IcmpErrorKind>,
}

struct Slot {
    generation: u32,
    socket: Option<Socket>,
}

/// The UDP sockets of a stack.
#[derive(Default)]
pub(super) struct UdpSockets {
    slots: Vec<Slot>,
    free: Vec<u32>,
    bound: FxHashMap<SocketAddr, u32>,
    /// The next ephemeral port to try.
    next_ephemeral: u16,
}

impl UdpSockets {
    fn get(&self, h: UdpHandle) -> Option<&Socket> {
        let s = self.slots.get(h.index as usize)?;
        (s.generation == h.generation).then_some(())?;
        s.socket.as_ref()
    }

    fn get_mut(&mut self, h: UdpHandle) -> Option<&mut Socket> {
        let s = self.slots.get_mut(h.index as usize)?;
        (s.generation == h.generation).then_some(())?;
        s.socket.as_mut()
    }

    /// The socket a datagram to `dst` belongs to.
    fn lookup(&self, dst: SocketAddr) -> Option<u32> {
        if self.bound.is_empty() {
            return None;
        }
        self.bound.get(&dst).copied().or_else(|| {
            let any = match dst.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            self.bound.get(&SocketAddr::new(any, dst.port())).copied()
        })
    }

    /// Whether `addr` (port included) is taken, also through a wildcard or, for a
    /// wildcard, by any specific address of its family.
    fn conflicts(&self, addr: SocketAddr) -> bool {
        if self.bound.contains_key(&addr) {
            return true;
        }
        if addr.ip().is_unspecified() {
            self.bound
                .keys()
                .any(|k| k.port() == addr.port() && k.is_ipv4() == addr.is_ipv4())
        } else {
            self.lookup(addr).is_some()
        }
    }
}

impl Stack {
    /// Binds a UDP socket to `local`: one of this stack's addresses or the unspecified
    /// address of a family (every address of it); port 0 picks a free ephemeral port.
    pub fn udp_bind(&mut self, local: SocketAddr) -> Result<UdpHandle, SocketError> {
        let ip = local.ip();
        let ours = |p: &crate::iface::Port| match ip {
            IpAddr::V4(a) => p.has_ipv4(a),
            IpAddr::V6(a) => p.has_ipv6(a),
        };
        if !ip.is_unspecified() && !self.ports.iter().any(ours) {
            return Err(SocketError::AddrNotAvailable(ip));
        }
        let local = if local.port() == 0 {
            self.udp_ephemeral(ip)?
        } else if self.udp.conflicts(local) {
            return Err(SocketError::AddrInUse(local));
        } else {
            local
        };
        let socket = Socket {
            local,
            queue: VecDeque::new(),
            limit: DEFAULT_QUEUE,
            dropped: 0,
            error: None,
        };
        let index = match self.udp.free.pop() {
            Some(i) => {
                self.udp.slots[i as usize].socket = Some(socket);
                i
            }
            None => {
                self.udp.slots.push(Slot {
                    generation: 0,
                    socket: Some(socket),
                });
                (self.udp.slots.len() - 1) as u32
            }
        };
        self.udp.bound.insert(local, index);
        Ok(UdpHandle {
            index,
            generation: self.udp.slots[index as usize].generation,
        })
    }

    /// RFC 6056 algorithm 1: a random start in the ephemeral range, then the next free
    /// port.
    fn udp_ephemeral(&mut self, ip: IpAddr) -> Result<SocketAddr, SocketError> {
        let range = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        if self.udp.next_ephemeral == 0 {
            let r = (self.random_u64() % u64::from(range)) as u16;
            self.udp.next_ephemeral = EPHEMERAL_FIRST + r;
        }
        for _ in 0..range {
            let port = self.udp.next_ephemeral;
            self.udp.next_ephemeral = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            let addr = SocketAddr::new(ip, port);
            if !self.udp.conflicts(addr) {
                return Ok(addr);
            }
        }
        Err(SocketError::NoEphemeralPort)
    }

    /// The address a socket is bound to.
    pub fn udp_local_addr(&self, h: UdpHandle) -> Result<SocketAddr, SocketError> {
        self.udp
            .get(h)
            .map(|s| s.local)
            .ok_or(SocketError::InvalidHandle)
    }

    /// Sets how many datagrams the socket holds before it drops (at least 1).
    pub fn udp_set_queue_limit(&mut self, h: UdpHandle, limit: usize) -> Result<(), SocketError> {
        let s = self.udp.get_mut(h).ok_or(SocketError::InvalidHandle)?;
        s.limit = limit.max(1);
        Ok(())
    }

    /// Datagrams waiting, and datagrams dropped because the queue was full.
    pub fn udp_queue(&self, h: UdpHandle) -> Result<(usize, u64), SocketError> {
        self.udp
            .get(h)
            .map(|s| (s.queue.len(), s.dropped))
            .ok_or(SocketError::InvalidHandle)
    }

    /// The ICMP error last reported for a datagram this socket sent, cleared.
    pub fn udp_take_error(&mut self, h: UdpHandle) -> Result<Option<IcmpErrorKind>, SocketError> {
        let s = self.udp.get_mut(h).ok_or(SocketError::InvalidHandle)?;
        Ok(s.error.take())
    }

    /// Closes a socket; its waiting datagrams go back to their pool.
    pub fn udp_close(&mut self, h: UdpHandle) {
        let Some(slot) = self.udp.slots.get_mut(h.index as usize) else {
            return;
        };
        if slot.generation != h.generation {
            return;
        }
        if let Some(s) = slot.socket.take() {
            slot.generation = slot.generation.wrapping_add(1);
            self.udp.bound.remove(&s.local);
            self.udp.free.push(h.index);
        }
    }

    /// Copies the next datagram into `buf` (truncating it to `buf.len()`), returning
    /// the datagram's full length and its sender; `None` when the queue is empty or the
    /// handle is stale.
    pub fn udp_recv_from(&mut self, h: UdpHandle, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let s = self.udp.get_mut(h)?;
        let d = s.queue.pop_front()?;
        let payload = &d.frame.data()[d.off..d.off + d.len];
        let n = payload.len().min(buf.len());
        buf[..n].copy_from_slice(&payload[..n]);
        Some((d.len, d.from))
    }

    /// Sends `payload` to `dst` from the socket: the source address is the socket's,
    /// or for a wildcard the address of the outgoing port.
    pub fn udp_send_to(
        &mut self,
        now: Instant,
        h: UdpHandle,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<(), SocketError> {
        let local = self.udp.get(h).ok_or(SocketError::InvalidHandle)?.local;
        if dst.port() == 0 {
            return Err(SocketError::BadDestination);
        }
        match (local.ip(), dst.ip()) {
            (IpAddr::V4(src), IpAddr::V4(d)) => {
                self.udp_send_v4(now, src, local.port(), d, dst.port(), payload)
            }
            (IpAddr::V6(src), IpAddr::V6(d)) => {
                self.udp_send_v6(now, src, local.port(), d, dst.port(), payload)
            }
            _ => Err(SocketError::FamilyMismatch),
        }
    }

    /// The source address this stack would give a packet to `dst` (the address of the
    /// outgoing port), if it has a route and an address of that family there.
    pub fn source_address_for(&self, dst: IpAddr) -> Option<IpAddr> {
        let port = self.egress(dst).ok()?;
        let p = &self.ports[usize::from(port.0)];
        match dst {
            IpAddr::V4(d) => p.ipv4_source_for(d).map(IpAddr::V4),
            IpAddr::V6(d) => Some(IpAddr::V6(p.ipv6_source_for(d))),
        }
    }

    /// The egress port of a locally originated packet to `dst`.
    fn egress(&self, dst: IpAddr) -> Result<PortId, SocketError> {
        match self.routes.route_for(dst) {
            Some(NextHop::Connected { port }) | Some(NextHop::Gateway { port, .. }) => Ok(port),
            _ => Err(SendError::NoRoute.into()),
        }
    }

    fn udp_send_v4(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) -> Result<(), SocketError> {
        if dst.is_unspecified() || dst.is_multicast() || dst.is_broadcast() {
            return Err(SocketError::BadDestination);
        }
        let port = self.egress(IpAddr::V4(dst))?;
        let src = if src.is_unspecified() {
            self.ports[usize::from(port.0)]
                .ipv4_source_for(dst)
                .ok_or(SendError::NoSourceAddress)?
        } else {
            src
        };
        let udp = UdpRepr {
            src_port: sport,
            dst_port: dport,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp.buffer_len(payload.len()),
            hop_limit: self.config.default_ttl,
            dont_frag: false,
            ident: self.next_ident(),
        };
        let mut f = self.pool.alloc().ok_or(SendError::PoolExhausted)?;
        if f.append(ETH_LEN + ip.buffer_len() + ip.payload_len)
            .is_err()
            || ip.payload_len > usize::from(u16::MAX) - 20
        {
            return Err(SendError::TooBig.into());
        }
        let mut pkt = Ipv4Packet::new_unchecked(&mut f.data_mut()[ETH_LEN..]);
        ip.emit(&mut pkt);
        udp.emit_with_payload(
            &mut UdpPacket::new_unchecked(pkt.payload_mut()),
            IpAddr::V4(src),
            IpAddr::V4(dst),
            payload,
        );
        self.output_v4(now, f, dst, port)?;
        Ok(())
    }

    fn udp_send_v6(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        sport: u16,
        dst: Ipv6Addr,
        dport: u16,
        payload: &[u8],
    ) -> Result<(), SocketError> {
        if dst.is_unspecified() || dst.is_multicast() {
            return Err(SocketError::BadDestination);
        }
        let port = if crate::addr::v6::is_link_local(dst) {
            if self.ports.is_empty() {
                return Err(SendError::NoRoute.into());
            }
            PortId(0)
        } else {
            self.egress(IpAddr::V6(dst))?
        };
        let src = if src.is_unspecified() {
            self.ports[usize::from(port.0)].ipv6_source_for(dst)
        } else {
            src
        };
        let udp = UdpRepr {
            src_port: sport,
            dst_port: dport,
        };
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp.buffer_len(payload.len()),
            hop_limit: self.config.default_ttl,
        };
        let mut f = self.pool.alloc().ok_or(SendError::PoolExhausted)?;
        if f.append(ETH_LEN + ip.buffer_len() + ip.payload_len)
            .is_err()
            || ip.payload_len > usize::from(u16::MAX)
        {
            return Err(SendError::TooBig.into());
        }
        let mut pkt = Ipv6Packet::new_unchecked(&mut f.data_mut()[ETH_LEN..]);
        ip.emit(&mut pkt);
        udp.emit_with_payload(
            &mut UdpPacket::new_unchecked(pkt.payload_mut()),
            IpAddr::V6(src),
            IpAddr::V6(dst),
            payload,
        );
        self.output_v6(now, f, dst, port)?;
        Ok(())
    }

    /// Delivers a checked datagram (`frame`, the UDP header `l4` bytes into it) to its
    /// socket. Returns the frame when no socket is bound to the destination, for the
    /// caller's port unreachable.
    pub(super) fn udp_deliver(
        &mut self,
        port: PortId,
        frame: Frame,
        l4: usize,
        src: IpAddr,
        dst: IpAddr,
    ) -> Option<Frame> {
        let d = frame.data();
        let (sport, dport) = (
            u16::from_be_bytes([d[l4], d[l4 + 1]]),
            u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]),
        );
        let len = usize::from(u16::from_be_bytes([d[l4 + 4], d[l4 + 5]]));
        let Some(index) = self.udp.lookup(SocketAddr::new(dst, dport)) else {
            return Some(frame);
        };
        let Some(s) = self.udp.slots[index as usize].socket.as_mut() else {
            return Some(frame);
        };
        if s.queue.len() >= s.limit {
            s.dropped += 1;
            self.count_drop(port, DropReason::UdpSocketQueueFull);
            return None;
        }
        s.queue.push_back(Datagram {
            frame,
            off: l4 + 8,
            len: len.saturating_sub(8),
            from: SocketAddr::new(src, sport),
        });
        self.ports[usize::from(port.0)].counters.delivered += 1;
        None
    }

    /// Records an ICMP error quoting a datagram one of our sockets sent (`quote`: the
    /// quoted UDP header onwards).
    pub(super) fn udp_icmp_error(&mut self, inner_src: IpAddr, quote: &[u8], kind: IcmpErrorKind) {
        let Some(q) = quote.first_chunk::<2>() else {
            return;
        };
        let sport = u16::from_be_bytes(*q);
        if let Some(i) = self.udp.lookup(SocketAddr::new(inner_src, sport)) {
            if let Some(s) = self.udp.slots[i as usize].socket.as_mut() {
                s.error = Some(kind);
            }
        }
    }
}
