//! TCP on the stack: the socket table, demultiplexing of segments, segments to frames,
//! timers, and the socket API (`tcp_listen`, `tcp_accept`, `tcp_connect`, `tcp_send`,
//! `tcp_recv`, `tcp_shutdown`, `tcp_close`, `tcp_abort`, `tcp_state`,
//! `tcp_readiness`).
//!
//! Connections are found by a hash of their 4-tuple (one lookup per segment), then
//! listeners by local address (exact, then the wildcard of the family). Control blocks
//! live in a slab sized at construction ([`TcpConfig::max_sockets`]); a connection's
//! byte buffers are allocated when it is set up. A segment for no socket is answered
//! with a reset (RFC 9293 §3.10.7.1). Initial sequence numbers follow RFC 6528 and
//! ephemeral ports RFC 6056 algorithm 3, both from a SipHash key drawn from the seed.

use core::cmp::Reverse;
use core::net::{IpAddr, SocketAddr};
use std::collections::{BinaryHeap, VecDeque};

use rustc_hash::FxHashMap;

use super::udp::EPHEMERAL_FIRST;
use super::{SendError, SocketError, Stack};
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::mem::{Frame, FramePool, Slab};
use crate::route::NextHop;
use crate::tcp::hash::SipKey;
use crate::tcp::seq::Seq;
use crate::tcp::tcb::{reset_for, Shared, Tcb};
use crate::tcp::{Listener, Readiness, Socket, TcpConfig, TcpHandle, TcpState};
use crate::time::Instant;
use crate::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::wire::tcp::{TcpControl, TcpPacket, TcpRepr};
use crate::wire::IpProtocol;

use super::input::ETH_LEN;

type Tuple = (SocketAddr, SocketAddr);

/// Connections a receive batch may hold flushes back for.
const DEFERRED_MAX: usize = 256;

/// The TCP sockets of a stack.
pub(super) struct TcpSockets {
    sockets: Slab<Socket>,
    conns: FxHashMap<Tuple, TcpHandle>,
    listeners: FxHashMap<SocketAddr, TcpHandle>,
    key: SipKey,
    next_ephemeral: u32,
    shared: Shared,
    /// The latest time the stack was given, for calls that take none (`tcp_recv`).
    now: Instant,
    due: Vec<TcpHandle>,
    /// While a receive batch runs: connections whose flush waits for its end (ACK
    /// coalescing); `None` outside a batch. Bounded by its capacity: past it, flushes
    /// happen at once.
    deferred: Option<Vec<TcpHandle>>,
    /// The list's storage between batches.
    deferred_spare: Vec<TcpHandle>,
    /// Deadlines by slot index, earliest first. Lazy: an entry may be stale (the
    /// deadline moved later, or the slot was reused); it is checked when it comes due.
    /// A connection adds one only when its earliest deadline moves earlier than the one
    /// it has queued, so entries stay about one per connection.
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl TcpSockets {
    pub(super) fn new(cfg: &TcpConfig, seed: u64) -> Self {
        let n = cfg.max_sockets;
        TcpSockets {
            sockets: Slab::with_capacity(n),
            conns: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            listeners: FxHashMap::default(),
            key: SipKey::from_seed(seed ^ 0x7463_705f_6b65_7921),
            next_ephemeral: 0,
            shared: Shared::default(),
            now: Instant::ZERO,
            due: Vec::with_capacity(n),
            deferred: None,
            deferred_spare: Vec::with_capacity(DEFERRED_MAX),
            timers: BinaryHeap::with_capacity(2 * n),
        }
    }

    fn conn(&self, h: TcpHandle) -> Option<&Tcb> {
        match self.sockets.get(h.0)? {
            Socket::Conn(t) => Some(t),
            Socket::Listen(_) => None,
        }
    }

    fn conn_mut(&mut self, h: TcpHandle) -> Option<&mut Tcb> {
        match self.sockets.get_mut(h.0)? {
            Socket::Conn(t) => Some(t),
            Socket::Listen(_) => None,
        }
    }

    fn listener_mut(&mut self, h: TcpHandle) -> Option<&mut Listener> {
        match self.sockets.get_mut(h.0)? {
            Socket::Listen(l) => Some(l),
            Socket::Conn(_) => None,
        }
    }

    /// The 4-tuple as hash input: addresses as 16 bytes (IPv4 mapped), then ports.
    fn tuple_bytes(local: SocketAddr, remote: SocketAddr) -> [u8; 36] {
        let mut b = [0u8; 36];
        let v6 = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        b[..16].copy_from_slice(&v6(local.ip()));
        b[16..32].copy_from_slice(&v6(remote.ip()));
        b[32..34].copy_from_slice(&local.port().to_be_bytes());
        b[34..36].copy_from_slice(&remote.port().to_be_bytes());
        b
    }

    /// RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a
    /// 4 µs clock. Also a per-connection timestamp offset (RFC 7323 §5.4).
    fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> (Seq, u32) {
        let h = self.key.hash(&Self::tuple_bytes(local, remote));
        let m = (now.as_nanos() / 4000) as u32;
        (Seq((h as u32).wrapping_add(m)), (h >> 32) as u32)
    }
}

/// MSS values a SYN cookie can carry (3 bits), ascending.
const COOKIE_MSS: [u16; 8] = [536, 1220, 1300, 1400, 1440, 1460, 4312, 8960];

impl TcpSockets {
    /// The cookie's keyed hash: 4-tuple, the client's ISN and the time counter.
    fn cookie_hash(&self, local: SocketAddr, remote: SocketAddr, irs: u32, t: u32) -> u32 {
        let mut b = [0u8; 41];
        b[..36].copy_from_slice(&Self::tuple_bytes(local, remote));
        b[36..40].copy_from_slice(&irs.to_be_bytes());
        b[40] = t as u8;
        (self.key.hash(&b) >> 8) as u32 & 0x00ff_ffff
    }

    /// The SYN cookie counter: 64 s periods, 5 bits.
    fn cookie_time(now: Instant) -> u32 {
        ((now.as_nanos() / 64_000_000_000) & 31) as u32
    }

    /// A SYN-ACK whose ISN is a SYN cookie (RFC 4987 §3.6): 5 bits of time, 3 bits of
    /// MSS, 24 bits of keyed hash. No window scale, SACK or timestamps are offered.
    fn cookie_syn_ack(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &TcpRepr<'_>,
        our_mss: u16,
        rx_buffer: usize,
    ) -> TcpRepr<'static> {
        let peer = syn.max_seg_size.unwrap_or(536);
        let idx = COOKIE_MSS.iter().rposition(|&m| m <= peer).unwrap_or(0) as u32;
        let t = Self::cookie_time(now);
        let cookie = t << 27 | idx << 24 | self.cookie_hash(local, remote, syn.seq_number, t);
        TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            control: TcpControl::Syn,
            seq_number: cookie,
            ack_number: Some(syn.seq_number.wrapping_add(1)),
            window_len: rx_buffer.min(65535) as u16,
            window_scale: None,
            max_seg_size: Some(our_mss),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        }
    }

    /// The MSS kept in the cookie an ACK returns, if the cookie is ours and fresh (this
    /// period or the one before).
    fn check_cookie(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &TcpRepr<'_>,
    ) -> Option<u16> {
        let cookie = ack.ack_number?.wrapping_sub(1);
        let irs = ack.seq_number.wrapping_sub(1);
        let t = cookie >> 27;
        if Self::cookie_time(now).wrapping_sub(t) & 31 > 1 {
            return None;
        }
        (cookie & 0x00ff_ffff == self.cookie_hash(local, remote, irs, t))
            .then(|| COOKIE_MSS[((cookie >> 24) & 7) as usize])
    }
}

/// Builds a frame holding Ethernet space, the IP header and a TCP segment whose payload
/// is `a` then `b`.
#[allow(clippy::too_many_arguments)]
fn build_segment(
    pool: &FramePool,
    ident: u16,
    ttl: u8,
    src: IpAddr,
    dst: IpAddr,
    repr: &TcpRepr<'_>,
    a: &[u8],
    b: &[u8],
) -> Option<Frame> {
    let tcp_len = repr.header_len() + a.len() + b.len();
    let mut f = pool.alloc()?;
    let seg: &mut [u8] = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_len,
                hop_limit: ttl,
                dont_frag: true,
                ident,
            };
            f.append(ETH_LEN + ip.buffer_len() + tcp_len).ok()?;
            let d = f.data_mut();
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut d[ETH_LEN..]));
            &mut d[ETH_LEN + ip.buffer_len()..]
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_len,
                hop_limit: ttl,
            };
            f.append(ETH_LEN + ip.buffer_len() + tcp_len).ok()?;
            let d = f.data_mut();
            ip.emit(&mut Ipv6Packet::new_unchecked(&mut d[ETH_LEN..]));
            &mut d[ETH_LEN + ip.buffer_len()..]
        }
        _ => return None,
    };
    let hl = repr.header_len();
    repr.emit(&mut TcpPacket::new_unchecked(&mut *seg), src, dst);
    if !a.is_empty() || !b.is_empty() {
        seg[hl..hl + a.len()].copy_from_slice(a);
        seg[hl + a.len()..hl + a.len() + b.len()].copy_from_slice(b);
        TcpPacket::new_unchecked(&mut *seg).fill_checksum(src, dst);
    }
    Some(f)
}

impl Stack {
    /// A TCP segment for one of our addresses: `seg` is the TCP header and payload.
    pub(super) fn tcp_input(
        &mut self,
        now: Instant,
        port: PortId,
        seg: &[u8],
        src: IpAddr,
        dst: IpAddr,
    ) {
        self.tcp.now = now;
        let Ok(pkt) = TcpPacket::new_checked(seg) else {
            return self.count_drop(port, DropReason::TcpMalformed);
        };
        let Ok(repr) = TcpRepr::parse(&pkt, src, dst) else {
            return self.count_drop(port, DropReason::TcpMalformed);
        };
        if repr.src_port == 0 || repr.dst_port == 0 {
            return self.count_drop(port, DropReason::TcpMalformed);
        }
        let local = SocketAddr::new(dst, repr.dst_port);
        let remote = SocketAddr::new(src, repr.src_port);
        if let Some(&h) = self.tcp.conns.get(&(local, remote)) {
            let Some(Socket::Conn(tcb)) = self.tcp.sockets.get_mut(h.0) else {
                self.tcp.conns.remove(&(local, remote));
                return self.count_drop(port, DropReason::TcpUnexpected);
            };
            self.ports[usize::from(port.0)].counters.delivered += 1;
            let before = tcb.state;
            let out = tcb.input(now, &self.config.tcp, &repr, &mut self.tcp.shared);
            if out.drop.is_none()
                && out.reset.is_none()
                && tcb.state == before
                && tcb.can_defer_flush()
            {
                if let Some(d) = self.tcp.deferred.as_mut() {
                    if d.len() < d.capacity() {
                        if tcb.defer_flush() {
                            d.push(h);
                        }
                        return;
                    }
                }
            }
            if let Some(r) = out.drop {
                self.count_drop(port, r);
            }
            if let Some(rst) = out.reset {
                self.tcp_send_bare(now, port, dst, src, &rst);
            }
            return self.tcp_after(now, h, before);
        }
        if let Some(l) = self.tcp_find_listener(local) {
            return self.tcp_listen_input(now, port, l, local, remote, &repr);
        }
        // RFC 9293 §3.10.7.1: CLOSED. A reset answers anything but a reset.
        self.count_drop(port, DropReason::TcpNoListener);
        if repr.control != TcpControl::Rst {
            self.tcp_send_bare(now, port, dst, src, &reset_for(&repr));
        }
    }

    /// An ICMP error quoting a segment of ours (RFC 1122 §4.2.3.9, RFC 5927): only when
    /// the quoted sequence number is in flight (RFC 5927 §4.1). "Too big" lowers the MSS
    /// to the path MTU and sends again at once (RFC 1191, RFC 8201); port or protocol
    /// unreachable during SYN-SENT refuses the connection; other errors are soft.
    pub(super) fn tcp_icmp_error(
        &mut self,
        now: Instant,
        ours: IpAddr,
        theirs: IpAddr,
        quote: &[u8],
        kind: super::IcmpErrorKind,
    ) {
        let Some(q) = quote.first_chunk::<8>() else {
            return;
        };
        let local = SocketAddr::new(ours, u16::from_be_bytes([q[0], q[1]]));
        let remote = SocketAddr::new(theirs, u16::from_be_bytes([q[2], q[3]]));
        let seq = u32::from_be_bytes([q[4], q[5], q[6], q[7]]);
        let Some(&h) = self.tcp.conns.get(&(local, remote)) else {
            return;
        };
        let Some(tcb) = self.tcp.conn_mut(h) else {
            return;
        };
        let before = tcb.state;
        let hard = match kind {
            super::IcmpErrorKind::Unreachable(code) => {
                // IPv4 protocol (2) or port (3) unreachable; IPv6 port unreachable (4).
                if ours.is_ipv4() {
                    code == 2 || code == 3
                } else {
                    code == 4
                }
            }
            _ => false,
        };
        let mtu = match kind {
            super::IcmpErrorKind::TooBig(mtu) => Some(mtu),
            _ => None,
        };
        if !tcb.icmp_error(seq, hard, mtu) {
            return;
        }
        self.tcp_after(now, h, before);
    }

    fn tcp_find_listener(&self, local: SocketAddr) -> Option<TcpHandle> {
        if self.tcp.listeners.is_empty() {
            return None;
        }
        self.tcp.listeners.get(&local).copied().or_else(|| {
            let any = match local.ip() {
                IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
            };
            self.tcp
                .listeners
                .get(&SocketAddr::new(any, local.port()))
                .copied()
        })
    }

    /// LISTEN (RFC 9293 §3.10.7.2), with the backlog bounding half-open and
    /// not-yet-accepted connections: when it is full, the oldest half-open connection
    /// makes room (a SYN flood cannot lock out a legitimate client), else the SYN is
    /// dropped.
    fn tcp_listen_input(
        &mut self,
        now: Instant,
        port: PortId,
        lh: TcpHandle,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
    ) {
        if seg.control == TcpControl::Rst {
            return self.count_drop(port, DropReason::TcpUnexpected);
        }
        if seg.ack_number.is_some() {
            if self.config.tcp.syn_cookies
                && matches!(
                    seg.control,
                    TcpControl::None | TcpControl::Psh | TcpControl::Fin
                )
            {
                if let Some(mss) = self.tcp.check_cookie(now, local, remote, seg) {
                    return self.tcp_cookie_accept(now, port, lh, local, remote, seg, mss);
                }
            }
            self.count_drop(port, DropReason::TcpUnexpected);
            return self.tcp_send_bare(now, port, local.ip(), remote.ip(), &reset_for(seg));
        }
        if seg.control != TcpControl::Syn {
            return self.count_drop(port, DropReason::TcpUnexpected);
        }
        let Some(l) = self.tcp.listener_mut(lh) else {
            return;
        };
        if l.accept.len() + l.half_open.len() >= l.backlog {
            if self.config.tcp.syn_cookies && l.accept.len() < l.backlog {
                // RFC 4987 §3.6: answer without keeping state.
                let mtu = self.ports[usize::from(port.0)].config.mtu;
                let ours = mss_for(mtu, local.ip());
                let rx = self.config.tcp.rx_buffer;
                let syn_ack = self.tcp.cookie_syn_ack(now, local, remote, seg, ours, rx);
                self.ports[usize::from(port.0)].counters.delivered += 1;
                return self.tcp_send_bare(now, port, local.ip(), remote.ip(), &syn_ack);
            }
            match l.half_open.pop_front() {
                Some(old) => {
                    self.count_drop(port, DropReason::TcpSynQueueEvicted);
                    self.tcp_remove(old);
                }
                None => return self.count_drop(port, DropReason::TcpListenOverflow),
            }
        }
        if self.tcp.sockets.len() >= self.tcp.sockets.capacity() {
            return self.count_drop(port, DropReason::TcpTableFull);
        }
        let mtu = self.ports[usize::from(port.0)].config.mtu;
        let mss = mss_for(mtu, local.ip());
        let (iss, ts_off) = self.tcp.isn(now, local, remote);
        let mut tcb = Tcb::accept_syn(&self.config.tcp, local, remote, iss, ts_off, mss, seg, lh);
        tcb.port = port;
        let Ok(h) = self.tcp.sockets.insert(Socket::Conn(tcb)) else {
            return self.count_drop(port, DropReason::TcpTableFull);
        };
        let h = TcpHandle(h);
        self.tcp.conns.insert((local, remote), h);
        if let Some(l) = self.tcp.listener_mut(lh) {
            l.half_open.push_back(h);
        }
        self.ports[usize::from(port.0)].counters.delivered += 1;
        self.tcp_flush(now, h);
    }

    /// The ACK that returned a valid SYN cookie: the connection, straight to the accept
    /// queue, then the segment's own data.
    #[allow(clippy::too_many_arguments)]
    fn tcp_cookie_accept(
        &mut self,
        now: Instant,
        port: PortId,
        lh: TcpHandle,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &TcpRepr<'_>,
        peer_mss: u16,
    ) {
        let Some(l) = self.tcp.listener_mut(lh) else {
            return;
        };
        if l.accept.len() >= l.backlog {
            return self.count_drop(port, DropReason::TcpListenOverflow);
        }
        if self.tcp.sockets.len() >= self.tcp.sockets.capacity() {
            return self.count_drop(port, DropReason::TcpTableFull);
        }
        let mtu = self.ports[usize::from(port.0)].config.mtu;
        let (_, ts_off) = self.tcp.isn(now, local, remote);
        let iss = Seq(seg.ack_number.unwrap_or(0)) - 1;
        let cfg = &self.config.tcp;
        let mut tcb = Tcb::from_cookie(
            cfg,
            local,
            remote,
            iss,
            ts_off,
            mss_for(mtu, local.ip()),
            peer_mss,
            seg,
            lh,
        );
        tcb.port = port;
        let out = tcb.input(now, cfg, seg, &mut self.tcp.shared);
        let Ok(h) = self.tcp.sockets.insert(Socket::Conn(tcb)) else {
            return self.count_drop(port, DropReason::TcpTableFull);
        };
        let h = TcpHandle(h);
        self.tcp.conns.insert((local, remote), h);
        if let Some(l) = self.tcp.listener_mut(lh) {
            l.accept.push_back(h);
        }
        self.ports[usize::from(port.0)].counters.delivered += 1;
        if let Some(r) = out.drop {
            self.count_drop(port, r);
        }
        self.tcp_after(now, h, TcpState::Established);
    }

    /// After input, a timer or a call: queue moves on establishment, removal when
    /// CLOSED, then whatever is due goes out.
    fn tcp_after(&mut self, now: Instant, h: TcpHandle, before: TcpState) {
        let Some(tcb) = self.tcp.conn(h) else { return };
        let state = tcb.state;
        let listener = tcb.listener;
        if before == TcpState::SynReceived
            && state != TcpState::SynReceived
            && state != TcpState::Closed
        {
            if let Some(l) = listener.and_then(|l| self.tcp.listener_mut(l)) {
                l.half_open.retain(|&x| x != h);
                l.accept.push_back(h);
            }
        }
        if state == TcpState::Closed {
            return self.tcp_closed(h);
        }
        self.tcp_flush(now, h);
    }

    /// A connection reached CLOSED: its 4-tuple is free; its slot too when nobody holds
    /// the handle (the application closed it, or it was never accepted).
    fn tcp_closed(&mut self, h: TcpHandle) {
        let Some(tcb) = self.tcp.conn(h) else { return };
        let tuple = (tcb.local, tcb.remote);
        let removable = tcb.app_closed() || tcb.listener.is_some();
        if self.tcp.conns.get(&tuple) == Some(&h) {
            self.tcp.conns.remove(&tuple);
        }
        if removable {
            self.tcp_remove(h);
        }
    }

    /// Forgets a connection entirely.
    fn tcp_remove(&mut self, h: TcpHandle) {
        let Some(Socket::Conn(tcb)) = self.tcp.sockets.remove(h.0) else {
            return;
        };
        let tuple = (tcb.local, tcb.remote);
        if self.tcp.conns.get(&tuple) == Some(&h) {
            self.tcp.conns.remove(&tuple);
        }
        if let Some(l) = tcb.listener.and_then(|l| self.tcp.listener_mut(l)) {
            l.half_open.retain(|&x| x != h);
            l.accept.retain(|&x| x != h);
        }
    }

    /// Puts the connection's earliest deadline in the timer heap if it is earlier than
    /// the one it has there.
    fn tcp_schedule(&mut self, h: TcpHandle) {
        let Some(t) = self.tcp.conn_mut(h) else {
            return;
        };
        let Some(at) = t.poll_at() else {
            return;
        };
        if t.scheduled.is_some_and(|s| s <= at) {
            return;
        }
        t.scheduled = Some(at);
        self.tcp.timers.push(Reverse((at, h.0.index())));
    }

    /// Sends what the connection has to send, then schedules its timers.
    fn tcp_flush(&mut self, now: Instant, h: TcpHandle) {
        self.tcp_flush_segments(now, h);
        self.tcp_schedule(h);
    }

    fn tcp_flush_segments(&mut self, now: Instant, h: TcpHandle) {
        let ttl = self.config.default_ttl;
        if let Some(t) = self.tcp.conn_mut(h) {
            t.promote_ack();
        }
        loop {
            let Some(Socket::Conn(tcb)) = self.tcp.sockets.get_mut(h.0) else {
                return;
            };
            let Some(seg) = tcb.next_segment(now, &self.config.tcp) else {
                return;
            };
            let (src, dst, origin) = (tcb.local.ip(), tcb.remote.ip(), tcb.port);
            let (a, b) = tcb.tx_bytes(seg.data_off, seg.data_len);
            self.ip_ident = self.ip_ident.wrapping_add(1);
            let frame = build_segment(&self.pool, self.ip_ident, ttl, src, dst, &seg.repr, a, b);
            match frame {
                Some(f) => self.tcp_output(now, f, dst, origin),
                None => {
                    // The segment counts as sent; the retransmission timer recovers it.
                    return self.count_drop(origin, DropReason::PoolExhausted);
                }
            }
        }
    }

    /// A receive batch begins: established connections' flushes wait for its end, so
    /// that one ACK covers the batch's in-order segments (up to `ACK_COALESCE_MAX`) and
    /// data the ACKs let out leaves in one burst.
    pub(super) fn tcp_batch_begin(&mut self) {
        if self.tcp.deferred.is_none() {
            self.tcp.deferred = Some(core::mem::take(&mut self.tcp.deferred_spare));
        }
    }

    /// The receive batch ended: the flushes it held back.
    pub(super) fn tcp_batch_end(&mut self, now: Instant) {
        let Some(mut d) = self.tcp.deferred.take() else {
            return;
        };
        for &h in &d {
            if let Some(t) = self.tcp.conn_mut(h) {
                t.undefer_flush();
                self.tcp_flush(now, h);
            }
        }
        d.clear();
        self.tcp.deferred_spare = d;
    }

    /// A segment of no connection (a reset, a SYN cookie), out through the routes or
    /// `port` (where it came from, for link-local peers).
    fn tcp_send_bare(
        &mut self,
        now: Instant,
        port: PortId,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr<'_>,
    ) {
        let ident = self.next_ident();
        let ttl = self.config.default_ttl;
        match build_segment(&self.pool, ident, ttl, src, dst, repr, &[], &[]) {
            Some(f) => self.tcp_output(now, f, dst, port),
            None => self.count_drop(port, DropReason::PoolExhausted),
        }
    }

    fn tcp_output(&mut self, now: Instant, f: Frame, dst: IpAddr, port: PortId) {
        let _ = match dst {
            IpAddr::V4(d) => self.output_v4(now, f, d, port),
            IpAddr::V6(d) => self.output_v6(now, f, d, port),
        };
    }

    /// When a TCP timer is next due (possibly early: a stale heap entry).
    pub(super) fn tcp_poll_at(&self) -> Option<Instant> {
        self.tcp.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs the TCP timers due at `now`: the heap entries that came due, each checked
    /// against its connection's real deadlines.
    pub(super) fn tcp_poll(&mut self, now: Instant) {
        self.tcp.now = now;
        let mut due = core::mem::take(&mut self.tcp.due);
        due.clear();
        while let Some(&Reverse((at, index))) = self.tcp.timers.peek() {
            if at > now {
                break;
            }
            self.tcp.timers.pop();
            if let Some(h) = self.tcp.sockets.handle_at(index) {
                due.push(TcpHandle(h));
            }
        }
        for &h in &due {
            let cfg = &self.config.tcp;
            let Some(tcb) = self.tcp.conn_mut(h) else {
                continue;
            };
            tcb.scheduled = None;
            if tcb.poll_at().is_some_and(|at| at <= now) {
                let before = tcb.state;
                tcb.on_timer(now, cfg);
                self.tcp_after(now, h, before);
            } else {
                self.tcp_schedule(h);
            }
        }
        self.tcp.due = due;
    }

    fn ours(&self, ip: IpAddr) -> bool {
        self.ports.iter().any(|p| match ip {
            IpAddr::V4(a) => p.has_ipv4(a),
            IpAddr::V6(a) => p.has_ipv6(a),
        })
    }

    /// Listens on `local` (one of our addresses, or the unspecified address of a family
    /// for all of them). `backlog` bounds connections in the handshake plus those not
    /// yet accepted.
    pub fn tcp_listen(
        &mut self,
        local: SocketAddr,
        backlog: usize,
    ) -> Result<TcpHandle, SocketError> {
        if !local.ip().is_unspecified() && !self.ours(local.ip()) {
            return Err(SocketError::AddrNotAvailable(local.ip()));
        }
        if local.port() == 0 {
            return Err(SocketError::BadDestination);
        }
        if self.tcp.listeners.contains_key(&local) {
            return Err(SocketError::AddrInUse(local));
        }
        let backlog = backlog.clamp(1, self.config.tcp.max_sockets);
        let l = Listener {
            local,
            backlog,
            accept: VecDeque::with_capacity(backlog),
            half_open: VecDeque::with_capacity(backlog),
        };
        let h = self
            .tcp
            .sockets
            .insert(Socket::Listen(l))
            .map_err(|_| SocketError::TableFull)?;
        self.tcp.listeners.insert(local, TcpHandle(h));
        Ok(TcpHandle(h))
    }

    /// The next established connection of a listener.
    pub fn tcp_accept(&mut self, listener: TcpHandle) -> Option<TcpHandle> {
        let h = self.tcp.listener_mut(listener)?.accept.pop_front()?;
        if let Some(t) = self.tcp.conn_mut(h) {
            t.listener = None;
        }
        Some(h)
    }

    /// Opens a connection to `remote` (RFC 9293 §3.10.1). The local address defaults
    /// to the source address of the route; the port, when 0 or not given, is an
    /// ephemeral one (RFC 6056 algorithm 3).
    pub fn tcp_connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<TcpHandle, SocketError> {
        self.tcp.now = now;
        let rip = remote.ip();
        let unicast = match rip {
            IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
        };
        if remote.port() == 0 || !unicast {
            return Err(SocketError::BadDestination);
        }
        let port = match self.routes.route_for(rip) {
            Some(NextHop::Connected { port }) | Some(NextHop::Gateway { port, .. }) => port,
            _ => return Err(SocketError::Send(SendError::NoRoute)),
        };
        let p = &self.ports[usize::from(port.0)];
        let mtu = p.config.mtu;
        let lip = match local.map(|l| l.ip()) {
            Some(ip) if !ip.is_unspecified() => {
                if ip.is_ipv4() != rip.is_ipv4() {
                    return Err(SocketError::FamilyMismatch);
                }
                if !self.ours(ip) {
                    return Err(SocketError::AddrNotAvailable(ip));
                }
                ip
            }
            _ => match rip {
                IpAddr::V4(d) => IpAddr::V4(
                    p.ipv4_source_for(d)
                        .ok_or(SocketError::Send(SendError::NoSourceAddress))?,
                ),
                IpAddr::V6(d) => IpAddr::V6(p.ipv6_source_for(d)),
            },
        };
        let lport = match local.map(|l| l.port()) {
            Some(p) if p != 0 => p,
            _ => self.tcp_ephemeral(lip, remote)?,
        };
        let local = SocketAddr::new(lip, lport);
        if self.tcp.conns.contains_key(&(local, remote)) {
            return Err(SocketError::AddrInUse(local));
        }
        let (iss, ts_off) = self.tcp.isn(now, local, remote);
        let mut tcb = Tcb::connect(
            &self.config.tcp,
            local,
            remote,
            iss,
            ts_off,
            mss_for(mtu, lip),
        );
        tcb.port = port;
        let h = TcpHandle(
            self.tcp
                .sockets
                .insert(Socket::Conn(tcb))
                .map_err(|_| SocketError::TableFull)?,
        );
        self.tcp.conns.insert((local, remote), h);
        self.tcp_flush(now, h);
        Ok(h)
    }

    /// RFC 6056 §3.3.3 (algorithm 3): port = min + (next_ephemeral + F(local IP, remote
    /// IP, remote port, key)) mod range, next_ephemeral advancing on every try.
    fn tcp_ephemeral(&mut self, lip: IpAddr, remote: SocketAddr) -> Result<u16, SocketError> {
        let num = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        let mut b = TcpSockets::tuple_bytes(SocketAddr::new(lip, 0), remote);
        b[32] = 0xe9; // domain separation from the ISN hash
        let offset = self.tcp.key.hash(&b) as u32;
        for _ in 0..num {
            let port =
                EPHEMERAL_FIRST + (offset.wrapping_add(self.tcp.next_ephemeral) % num) as u16;
            self.tcp.next_ephemeral = self.tcp.next_ephemeral.wrapping_add(1);
            let local = SocketAddr::new(lip, port);
            if !self.tcp.conns.contains_key(&(local, remote))
                && self.tcp_find_listener(local).is_none()
            {
                return Ok(port);
            }
        }
        Err(SocketError::NoEphemeralPort)
    }

    fn tcp_conn_checked(&mut self, h: TcpHandle) -> Result<&mut Tcb, SocketError> {
        match self.tcp.sockets.get_mut(h.0) {
            Some(Socket::Conn(t)) if !t.app_closed() => Ok(t),
            Some(Socket::Listen(_)) => Err(SocketError::InvalidState(TcpState::Listen)),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// Queues bytes to send; returns how many fit the send buffer (0 when full).
    pub fn tcp_send(
        &mut self,
        now: Instant,
        h: TcpHandle,
        data: &[u8],
    ) -> Result<usize, SocketError> {
        self.tcp.now = now;
        let t = self.tcp_conn_checked(h)?;
        if let Some(e) = t.error() {
            return Err(SocketError::Connection(e));
        }
        if !t.can_send() {
            return Err(SocketError::InvalidState(t.state));
        }
        let n = t.send(data);
        self.tcp_flush(now, h);
        Ok(n)
    }

    /// Reads received bytes: `Ok(0)` is the end of the stream (the peer's FIN, or
    /// nothing more will come); [`SocketError::WouldBlock`] when nothing is there yet;
    /// the connection's error once it failed and its data is read (also for an empty
    /// `buf`, to ask for it).
    pub fn tcp_recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, SocketError> {
        let now = self.tcp.now;
        let t = self.tcp_conn_checked(h)?;
        let n = t.recv(buf);
        if n > 0 {
            self.tcp_flush(now, h);
            return Ok(n);
        }
        if t.recv_queued() > 0 {
            return Ok(0); // an empty buffer
        }
        if t.fin_received() {
            return Ok(0);
        }
        if let Some(e) = t.error() {
            return Err(SocketError::Connection(e));
        }
        if t.state == TcpState::Closed {
            return Ok(0);
        }
        Err(SocketError::WouldBlock)
    }

    /// Ends our direction (FIN after the queued data); receiving goes on (half-close).
    pub fn tcp_shutdown(&mut self, now: Instant, h: TcpHandle) -> Result<(), SocketError> {
        self.tcp.now = now;
        let t = self.tcp_conn_checked(h)?;
        let before = t.state;
        t.shutdown();
        self.tcp_after(now, h, before);
        Ok(())
    }

    /// Closes the socket: a listener stops (its unaccepted connections are reset); a
    /// connection finishes on its own (FIN, TIME-WAIT) and the handle is void. Unread
    /// data makes it a reset instead (RFC 1122 §4.2.2.13).
    pub fn tcp_close(&mut self, now: Instant, h: TcpHandle) -> Result<(), SocketError> {
        self.tcp.now = now;
        match self.tcp.sockets.get_mut(h.0) {
            Some(Socket::Listen(l)) => {
                let pending: Vec<TcpHandle> =
                    l.accept.iter().chain(&l.half_open).copied().collect();
                let local = l.local;
                for c in pending {
                    let _ = self.tcp_abort(now, c);
                }
                self.tcp.listeners.remove(&local);
                self.tcp.sockets.remove(h.0);
                Ok(())
            }
            Some(Socket::Conn(t)) if !t.app_closed() => {
                if t.recv_queued() > 0 {
                    return self.tcp_abort(now, h);
                }
                let before = t.state;
                t.release(now, &self.config.tcp);
                if t.state == TcpState::Closed {
                    self.tcp_remove(h);
                    return Ok(());
                }
                self.tcp_after(now, h, before);
                Ok(())
            }
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// Aborts a connection with a reset (RFC 9293 §3.10.5); the handle is void.
    pub fn tcp_abort(&mut self, now: Instant, h: TcpHandle) -> Result<(), SocketError> {
        self.tcp.now = now;
        let Some(Socket::Conn(t)) = self.tcp.sockets.get_mut(h.0) else {
            return Err(SocketError::InvalidHandle);
        };
        let (src, dst, port) = (t.local.ip(), t.remote.ip(), t.port);
        let rst = t.abort();
        if let Some(rst) = rst {
            self.tcp_send_bare(now, port, src, dst, &rst);
        }
        self.tcp_remove(h);
        Ok(())
    }

    /// The state of a socket (`Listen` for a listener); `None` for a void handle.
    pub fn tcp_state(&self, h: TcpHandle) -> Option<TcpState> {
        match self.tcp.sockets.get(h.0)? {
            Socket::Listen(_) => Some(TcpState::Listen),
            Socket::Conn(t) => Some(t.state),
        }
    }

    /// What a socket is ready for; `None` for a void handle.
    pub fn tcp_readiness(&self, h: TcpHandle) -> Option<Readiness> {
        Some(match self.tcp.sockets.get(h.0)? {
            Socket::Listen(l) => Readiness {
                acceptable: !l.accept.is_empty(),
                ..Readiness::default()
            },
            Socket::Conn(t) => Readiness {
                readable: t.recv_queued() > 0 || t.fin_received() || t.error().is_some(),
                writable: t.can_send() && t.send_free() > 0 && t.error().is_none(),
                closed: t.state == TcpState::Closed,
                acceptable: false,
            },
        })
    }

    /// The connection's control block, to inspect (negotiated options, windows).
    pub fn tcp_connection(&self, h: TcpHandle) -> Option<&Tcb> {
        self.tcp.conn(h)
    }

    /// Turns Nagle's algorithm off (`true`) or on for one connection.
    pub fn tcp_set_nodelay(&mut self, h: TcpHandle, nodelay: bool) -> Result<(), SocketError> {
        self.tcp_conn_checked(h)?.set_nodelay(nodelay);
        Ok(())
    }

    /// Keepalives for one connection (RFC 1122 §4.2.3.6): probes after `idle` without
    /// traffic, every `TcpConfig::keepalive_interval`, the connection dropped after
    /// `keepalive_probes` unanswered; `None` turns them off.
    pub fn tcp_set_keepalive(
        &mut self,
        now: Instant,
        h: TcpHandle,
        idle: Option<crate::time::Duration>,
    ) -> Result<(), SocketError> {
        self.tcp_conn_checked(h)?.set_keepalive(now, idle);
        self.tcp_schedule(h);
        Ok(())
    }

    /// Moves a connection's send and receive buffers into caller storage (bytes they
    /// hold move along; afterwards stream bytes lie at `position % capacity`, counted
    /// from the move). Each storage must be at least as large as the buffer it
    /// replaces ([`Tcb::buffer_capacities`]); otherwise both are handed back.
    #[allow(clippy::type_complexity)]
    pub fn tcp_move_buffers(
        &mut self,
        h: TcpHandle,
        tx: Box<dyn crate::tcp::ring::RingStorage>,
        rx: Box<dyn crate::tcp::ring::RingStorage>,
    ) -> Result<
        (),
        (
            Box<dyn crate::tcp::ring::RingStorage>,
            Box<dyn crate::tcp::ring::RingStorage>,
        ),
    > {
        match self.tcp_conn_checked(h) {
            Ok(t) => t.move_buffers(tx, rx),
            Err(_) => Err((tx, rx)),
        }
    }

    /// Sends `n` bytes the caller wrote in place into the send buffer's free space
    /// (right after the queued bytes, in the storage of [`Stack::tcp_move_buffers`]);
    /// returns how many were taken (never more than the free space).
    pub fn tcp_send_committed(
        &mut self,
        now: Instant,
        h: TcpHandle,
        n: usize,
    ) -> Result<usize, SocketError> {
        self.tcp.now = now;
        let t = self.tcp_conn_checked(h)?;
        if let Some(e) = t.error() {
            return Err(SocketError::Connection(e));
        }
        if !t.can_send() {
            return Err(SocketError::InvalidState(t.state));
        }
        let n = t.send_commit(n);
        self.tcp_flush(now, h);
        Ok(n)
    }

    /// Drops up to `n` received bytes the caller read in place (from the receive
    /// buffer's storage); returns how many. Like [`Stack::tcp_recv`], it may open the
    /// window.
    pub fn tcp_recv_consume(&mut self, h: TcpHandle, n: usize) -> Result<usize, SocketError> {
        let now = self.tcp.now;
        let t = self.tcp_conn_checked(h)?;
        let n = t.recv_consume(n);
        if n > 0 {
            self.tcp_flush(now, h);
        }
        Ok(n)
    }

    /// How the received stream ends, once every received byte has been read: `None`
    /// while more may come, `Some(Ok(()))` at the end of the stream (FIN, or closed),
    /// `Some(Err(_))` when the connection failed. Unread bytes don't count: this looks
    /// past them.
    pub fn tcp_stream_end(&self, h: TcpHandle) -> Option<Result<(), SocketError>> {
        let t = match self.tcp.sockets.get(h.0) {
            Some(Socket::Conn(t)) if !t.app_closed() => t,
            _ => return Some(Err(SocketError::InvalidHandle)),
        };
        if t.fin_received() {
            return Some(Ok(()));
        }
        if let Some(e) = t.error() {
            return Some(Err(SocketError::Connection(e)));
        }
        if t.state == TcpState::Closed {
            return Some(Ok(()));
        }
        None
    }

    /// Number of TCP sockets (listeners and connections, TIME-WAIT included).
    pub fn tcp_socket_count(&self) -> usize {
        self.tcp.sockets.len()
    }
}

/// The MSS we announce on a port (RFC 9293 §3.7.1): the MTU less the IP and TCP headers.
fn mss_for(mtu: u16, ip: IpAddr) -> u16 {
    let headers = if ip.is_ipv4() { 40 } else { 60 };
    mtu.saturating_sub(headers).max(64)
}
