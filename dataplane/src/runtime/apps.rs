//! Applications' shared-memory sockets, as a shard serves them.
//!
//! Each attached application has, on each shard, a request ring it produces and a
//! completion ring the shard produces, and a buffer area for payload shared by its
//! shards ([`dpsock::shm`]). Once per round the shard takes up to
//! [`REQUESTS_PER_ROUND`] requests (only while its completion ring has room for their
//! answers: an application that does not read its completions stops being served,
//! nobody else does), then serves the application's sockets: datagrams go from the
//! stack's socket queue into free receive slots (what does not fit waits there, its
//! overflow counted as `udp_socket_queue_full`), connections' received and acknowledged
//! bytes are announced.
//!
//! Payload is never copied by the daemon on its own account:
//! - a UDP send builds the frame straight from the application's send slot;
//! - a received datagram is written from the frame into a receive slot;
//! - a TCP connection's send and receive buffers are moved into the application's
//!   buffer area when it accepts or connects ([`Stack::tcp_move_buffers`]): the stack
//!   segments from the ring the application wrote, and writes received payload from the
//!   frame into the ring the application reads. `TCP_SEND n` / `TCP_CONSUME n` move
//!   the daemon's own indices, after checking `n` against them (free room, bytes
//!   announced); nothing the application writes into the area is trusted but payload.
//!
//! Everything read from the ring is validated ([`dpsock::shm::Entry`] cuts lengths;
//! payload references must lie in the application's own payload memory; socket ids are
//! looked up in this application's own table, so one application can never name
//! another's socket). A ring found broken (hostile indices) detaches the application on
//! this shard. Buffer memory (receive slots, connection rings) comes out of the
//! application's area, its quota: when it is used up, binds and connects fail with
//! `ENOBUFS` and accepted connections are reset.

use std::net::SocketAddr;
use std::sync::Arc;

use dpsock::shm::{
    op, opt, Area, Entry, Extent, Hold, Region, Rings, DGRAM_MAX, ENTRIES, TCP_BUFFER,
    TCP_SEND_BUFFER, UDP_RX_SLOTS,
};
use stack::stack::IcmpErrorKind;
use stack::tcp::{TcpHandle, TcpState};
use stack::{SocketError, Stack, UdpHandle};

/// Requests taken from one application per shard round.
pub const REQUESTS_PER_ROUND: usize = 64;

/// Counters of one application on one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Requests served.
    pub requests: u64,
    /// Requests refused (bad socket id, bad address, quota).
    pub refused: u64,
    /// Datagrams delivered into the completion ring.
    pub delivered: u64,
}

/// Bytes of a UDP receive extent's control word (the consumed count), before its slots.
const UDP_CTL: usize = 64;

/// A socket of an application.
enum Sock {
    Udp(Box<UdpSock>),
    Listen(Listener),
    Conn(Box<Conn>),
}

/// A UDP socket: its receive slots in the application's area.
struct UdpSock {
    h: UdpHandle,
    v6: bool,
    /// The control word, then `slots` slots of DGRAM_MAX bytes.
    rx: Extent,
    slots: u32,
    /// Datagrams written into slots (our own count).
    delivered: u32,
    /// New slots (SO_RCVBUF), taken once every slot in use is consumed.
    next: Option<(Extent, u32)>,
}

impl UdpSock {
    fn new(h: UdpHandle, v6: bool, mut rx: Extent, slots: u32) -> UdpSock {
        rx.bytes_mut()[..UDP_CTL].fill(0);
        UdpSock {
            h,
            v6,
            rx,
            slots,
            delivered: 0,
            next: None,
        }
    }

    /// Slots the application has not given back (as it claims, bounded by ours).
    fn in_use(&self) -> u32 {
        let consumed = self
            .rx
            .region()
            .payload_u32(self.rx.offset())
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Acquire));
        self.delivered.wrapping_sub(consumed).min(self.slots)
    }
}

/// A listener, with the ring sizes of connections it accepts.
struct Listener {
    h: TcpHandle,
    sndbuf: usize,
    rcvbuf: usize,
}

/// A TCP connection's buffers in the application's area: a ring's storage.
#[derive(Debug)]
struct AreaRing(Extent);

impl stack::tcp::ring::RingStorage for AreaRing {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }
    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.0.bytes_mut()
    }
}

/// A TCP connection of an application.
struct Conn {
    h: TcpHandle,
    /// The rings stay allocated while we (or the stack) may use them.
    _hold: (Hold, Hold),
    /// Bytes the application committed (TCP_SEND), since the rings moved.
    committed: u64,
    /// Bytes announced acknowledged (TCP_SENT).
    acked: u64,
    /// Bytes announced readable (TCP_DATA), and consumed (TCP_CONSUME).
    published: u64,
    consumed: u64,
    /// TCP_CONNECTED sent.
    reported: bool,
    /// TCP_EOF or TCP_CLOSED sent.
    finished: bool,
    /// The application asked for FIN: to do.
    shutdown: bool,
    /// The application asked for FIN.
    shut_down: bool,
}

impl Conn {
    fn new(h: TcpHandle, hold: (Hold, Hold), reported: bool) -> Conn {
        Conn {
            h,
            _hold: hold,
            committed: 0,
            acked: 0,
            published: 0,
            consumed: 0,
            reported,
            finished: false,
            shutdown: false,
            shut_down: false,
        }
    }
}

/// One application as one shard serves it.
pub struct AppConn {
    /// The attachment's id (the control plane's).
    pub id: u64,
    region: Arc<Region>,
    area: Area,
    /// UDP sends taken (published in the region for the client's send slots).
    udp_done: u32,
    shard: u32,
    sockets: Vec<Option<Sock>>,
    free: Vec<u32>,
    open: u32,
    max: u32,
    req: Entry,
    cmp: Entry,
    /// Where the next connect's port search starts.
    next_port: u32,
    /// The client's wake-up descriptor, written when it sleeps and we queued for it.
    client_wake: Option<Arc<std::os::unix::net::UnixStream>>,
    /// The ring was found broken: served no more.
    pub broken: bool,
    /// Counters.
    pub counters: AppCounters,
}

fn errno_of(e: SocketError) -> i32 {
    use stack::stack::SendError;
    -match e {
        SocketError::InvalidHandle => libc::EBADF,
        SocketError::AddrInUse(_) => libc::EADDRINUSE,
        SocketError::AddrNotAvailable(_) => libc::EADDRNOTAVAIL,
        SocketError::NoEphemeralPort => libc::EAGAIN,
        SocketError::FamilyMismatch => libc::EAFNOSUPPORT,
        SocketError::BadDestination => libc::EINVAL,
        SocketError::Send(SendError::NoRoute) => libc::ENETUNREACH,
        SocketError::Send(SendError::PoolExhausted) => libc::ENOBUFS,
        SocketError::Send(SendError::TooBig) => libc::EMSGSIZE,
        SocketError::Send(SendError::NoSourceAddress) => libc::EADDRNOTAVAIL,
        SocketError::Send(SendError::BadDestination) => libc::EINVAL,
        SocketError::TableFull => libc::ENFILE,
        SocketError::WouldBlock => libc::EAGAIN,
        SocketError::InvalidState(_) => libc::ENOTCONN,
        SocketError::Connection(e) => match e {
            stack::tcp::TcpError::Reset => libc::ECONNRESET,
            stack::tcp::TcpError::Refused => libc::ECONNREFUSED,
            stack::tcp::TcpError::TimedOut => libc::ETIMEDOUT,
            stack::tcp::TcpError::Aborted => libc::ECONNABORTED,
        },
    }
}

/// The errno Linux gives a UDP socket for an ICMP error (RFC 1122 §4.2.3.9 mapping).
fn icmp_errno(kind: IcmpErrorKind, v6: bool) -> i32 {
    -match kind {
        IcmpErrorKind::TimeExceeded => libc::EHOSTUNREACH,
        IcmpErrorKind::TooBig(_) => libc::EMSGSIZE,
        IcmpErrorKind::ParamProblem => libc::EPROTO,
        IcmpErrorKind::Unreachable(code) => match (v6, code) {
            (false, 0) | (true, 0) => libc::ENETUNREACH,
            (false, 3) | (true, 4) => libc::ECONNREFUSED,
            (false, 2) => libc::ENOPROTOOPT,
            (false, 4) => libc::EMSGSIZE,
            (true, 1) | (false, 9) | (false, 10) | (false, 13) => libc::EACCES,
            _ => libc::EHOSTUNREACH,
        },
    }
}

impl AppConn {
    /// Application `id`'s rings of `shard` in `region`, with at most `max` sockets.
    pub fn new(
        id: u64,
        area: Area,
        shard: u32,
        max: u32,
        client_wake: Option<Arc<std::os::unix::net::UnixStream>>,
    ) -> AppConn {
        AppConn {
            id,
            region: area.region().clone(),
            area,
            udp_done: 0,
            shard,
            sockets: Vec::new(),
            free: Vec::new(),
            open: 0,
            max,
            req: Entry::default(),
            cmp: Entry::default(),
            next_port: 0,
            client_wake,
            broken: false,
            counters: AppCounters::default(),
        }
    }

    /// Sockets open.
    pub fn open_sockets(&self) -> u32 {
        self.open
    }

    /// Raises or lowers this shard's "asleep" flag in the application's region.
    pub fn set_asleep(&self, on: bool) {
        if let Some(a) = self.region.asleep(self.shard) {
            a.store(u32::from(on), std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Whether requests wait (a broken ring counts as none: it is not served).
    pub fn has_requests(&self) -> bool {
        !self.broken
            && self
                .region
                .requests(self.shard)
                .is_some_and(|r| r.len().is_ok_and(|n| n > 0))
    }

    /// Serves requests and delivers datagrams; returns the work done. A sleeping
    /// client is woken when there was any.
    pub fn serve(&mut self, stack: &mut Stack, now: stack::Instant) -> usize {
        let work = self.serve_rings(stack, now);
        if work > 0
            && self
                .region
                .client_asleep()
                .load(std::sync::atomic::Ordering::SeqCst)
                != 0
        {
            if let Some(w) = &self.client_wake {
                use std::io::Write as _;
                // A full socket buffer means a wake-up is already pending.
                let _ = (&**w).write(&[1]);
            }
        }
        work
    }

    fn serve_rings(&mut self, stack: &mut Stack, now: stack::Instant) -> usize {
        if self.broken {
            return 0;
        }
        let region = self.region.clone();
        let (Some(req), Some(cmp)) = (region.requests(self.shard), region.completions(self.shard))
        else {
            self.broken = true;
            return 0;
        };
        let mut work = 0;
        for _ in 0..REQUESTS_PER_ROUND {
            // Room for the answer first.
            if cmp.len().unwrap_or(ENTRIES) >= ENTRIES {
                break;
            }
            match req.pop(&mut self.req) {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => {
                    self.broken = true;
                    return work;
                }
            }
            work += 1;
            self.counters.requests += 1;
            if let Some(answer) = self.execute(stack, now) {
                // Room was checked above; a full ring here means a hostile head index.
                if !cmp.push(answer) {
                    self.broken = true;
                    return work;
                }
            }
        }
        // Datagrams, connections, bytes and errors waiting on this application's sockets.
        for id in 0..self.sockets.len() {
            let more = match self.sockets[id].as_ref() {
                Some(Sock::Udp(..)) => self.serve_udp(stack, &cmp, id, &mut work),
                Some(Sock::Listen(_)) => self.serve_listener(stack, now, &cmp, id, &mut work),
                Some(Sock::Conn(_)) => self.serve_conn(stack, now, &cmp, id, &mut work),
                None => true,
            };
            if !more {
                return work;
            }
        }
        work
    }

    /// Room for one more completion.
    fn room(cmp: &dpsock::shm::Ring<'_>) -> bool {
        cmp.len().unwrap_or(ENTRIES) < ENTRIES
    }

    /// Pushes `self.cmp`; false (and the application marked broken) if it did not fit
    /// although room was checked (a hostile head index).
    fn push(&mut self, cmp: &dpsock::shm::Ring<'_>) -> bool {
        if cmp.push(&self.cmp) {
            true
        } else {
            self.broken = true;
            false
        }
    }

    /// Moves a UDP socket's datagrams (into free receive slots) and error; false when
    /// the ring is full.
    fn serve_udp(
        &mut self,
        stack: &mut Stack,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Some(Sock::Udp(u))) = self.sockets.get_mut(id) else {
            return true;
        };
        let (h, v6) = (u.h, u.v6);
        if !Self::room(cmp) {
            return false;
        }
        if let Ok(Some(kind)) = stack.udp_take_error(h) {
            self.cmp.reset(op::SOCK_ERROR, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_result(icmp_errno(kind, v6));
            if !self.push(cmp) {
                return false;
            }
        }
        loop {
            if !Self::room(cmp) {
                return false;
            }
            if stack.udp_queue(h).map_or(0, |q| q.0) == 0 {
                return true;
            }
            let Some(Some(Sock::Udp(u))) = self.sockets.get_mut(id) else {
                return true;
            };
            let in_use = u.in_use();
            if in_use == 0 {
                if let Some((mut rx, slots)) = u.next.take() {
                    rx.bytes_mut()[..UDP_CTL].fill(0);
                    u.rx = rx;
                    u.slots = slots;
                    u.delivered = 0;
                }
            }
            if in_use >= u.slots {
                // Every slot is the application's: the datagram waits in the stack.
                return true;
            }
            let at = UDP_CTL + (u.delivered % u.slots) as usize * DGRAM_MAX;
            let Some(slot) = u.rx.bytes_mut().get_mut(at..at + DGRAM_MAX) else {
                return true;
            };
            let Some((n, from)) = stack.udp_recv_from(h, slot) else {
                return true;
            };
            u.delivered = u.delivered.wrapping_add(1);
            let (ctl, off) = (u.rx.offset(), u.rx.offset() + at);
            self.cmp.reset(op::UDP_RECV, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_buf(off as u64, n.min(DGRAM_MAX) as u32);
            self.cmp.set_arg(ctl as u64);
            self.cmp.set_addr(from);
            if !self.push(cmp) {
                return false;
            }
            self.counters.delivered += 1;
            *work += 1;
        }
    }

    /// Moves connection `h`'s buffers into rings of at least `send` and `recv` bytes
    /// in the application's area; `None` (nothing moved) when the area has no room.
    fn give_rings(
        &self,
        stack: &mut Stack,
        h: TcpHandle,
        send: usize,
        recv: usize,
    ) -> Option<(Rings, (Hold, Hold))> {
        let (tc, rc) = stack.tcp_connection(h)?.buffer_capacities();
        let tx = self.area.alloc(send.max(tc).max(1))?;
        let rx = self.area.alloc(recv.max(rc).max(1))?;
        let rings = Rings {
            tx_off: tx.offset() as u64,
            tx_len: tx.len() as u64,
            rx_off: rx.offset() as u64,
            rx_len: rx.len() as u64,
        };
        let hold = (tx.hold(), rx.hold());
        stack
            .tcp_move_buffers(h, Box::new(AreaRing(tx)), Box::new(AreaRing(rx)))
            .ok()?;
        Some((rings, hold))
    }

    /// Announces a listener's new connections; false when the ring (or quota) is full.
    fn serve_listener(
        &mut self,
        stack: &mut Stack,
        now: stack::Instant,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Some(Sock::Listen(l))) = self.sockets.get(id) else {
            return true;
        };
        let (l, sndbuf, rcvbuf) = (l.h, l.sndbuf, l.rcvbuf);
        while stack.tcp_readiness(l).is_some_and(|r| r.acceptable) {
            if !Self::room(cmp) {
                return false;
            }
            if self.open >= self.max {
                // Over quota: the connection waits in the accept queue (backlog).
                return true;
            }
            let Some(c) = stack.tcp_accept(l) else {
                return true;
            };
            let peer = stack.tcp_connection(c).map(|t| t.endpoints().1);
            let Some((rings, hold)) = self.give_rings(stack, c, sndbuf, rcvbuf) else {
                // No buffer memory left for it: reset.
                let _ = stack.tcp_abort(now, c);
                self.counters.refused += 1;
                continue;
            };
            let conn = self.insert(Sock::Conn(Box::new(Conn::new(c, hold, true))));
            self.cmp.reset(op::TCP_ACCEPTED, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_arg(u64::from(conn));
            rings.put(&mut self.cmp);
            if let Some(p) = peer {
                self.cmp.set_addr(p);
            }
            if !self.push(cmp) {
                return false;
            }
            *work += 1;
        }
        true
    }

    /// Announces a connection's state changes and its acknowledged and received bytes;
    /// false when the ring is full.
    fn serve_conn(
        &mut self,
        stack: &mut Stack,
        now: stack::Instant,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Some(Sock::Conn(c))) = self.sockets.get_mut(id) else {
            return true;
        };
        let h = c.h;
        if c.shutdown {
            c.shutdown = false;
            let _ = stack.tcp_shutdown(now, h);
        }
        if !c.reported {
            let state = stack.tcp_state(h);
            let failed = matches!(state, None | Some(TcpState::Closed));
            if failed || !matches!(state, Some(TcpState::SynSent | TcpState::SynReceived)) {
                if !Self::room(cmp) {
                    return false;
                }
                c.reported = true;
                let r = if failed {
                    match stack.tcp_stream_end(h) {
                        Some(Err(e)) => errno_of(e),
                        _ => -libc::ECONNREFUSED,
                    }
                } else {
                    0
                };
                if failed {
                    c.finished = true;
                }
                self.cmp.reset(op::TCP_CONNECTED, 0);
                self.cmp.set_sock(id as u32);
                self.cmp.set_result(r);
                if !self.push(cmp) {
                    return false;
                }
                *work += 1;
            } else {
                return true;
            }
        }
        let Some(Some(Sock::Conn(c))) = self.sockets.get_mut(id) else {
            return true;
        };
        // Acknowledged bytes free room in the send ring (also after the receiving side
        // finished); received bytes are readable.
        let (queued, readable) = stack.tcp_connection(h).map_or((0, 0), |t| {
            (t.send_queued() as u64, t.recv_available() as u64)
        });
        let acked = c.committed.saturating_sub(queued);
        let available = c.consumed + readable;
        let mut events = [(op::TCP_SENT, 0u64); 2];
        let mut n = 0;
        if acked > c.acked {
            events[n] = (op::TCP_SENT, acked - c.acked);
            n += 1;
        }
        if available > c.published && !c.finished {
            events[n] = (op::TCP_DATA, available - c.published);
            n += 1;
        }
        for &(opcode, count) in &events[..n] {
            if !Self::room(cmp) {
                return false;
            }
            if let Some(Some(Sock::Conn(c))) = self.sockets.get_mut(id) {
                if opcode == op::TCP_SENT {
                    c.acked += count;
                } else {
                    c.published += count;
                    self.counters.delivered += 1;
                }
            }
            self.cmp.reset(opcode, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_arg(count);
            if !self.push(cmp) {
                return false;
            }
            *work += 1;
        }
        if matches!(self.sockets.get(id), Some(Some(Sock::Conn(c))) if c.finished) {
            return true;
        }
        // Every byte announced: the end of the stream or the error.
        match stack.tcp_stream_end(h) {
            None => true,
            Some(end) => {
                if !Self::room(cmp) {
                    return false;
                }
                match end {
                    Ok(()) => self.cmp.reset(op::TCP_EOF, 0),
                    Err(e) => {
                        self.cmp.reset(op::TCP_CLOSED, 0);
                        self.cmp.set_result(errno_of(e));
                    }
                }
                self.cmp.set_sock(id as u32);
                self.finish(id);
                if !self.push(cmp) {
                    return false;
                }
                *work += 1;
                true
            }
        }
    }

    fn finish(&mut self, id: usize) {
        if let Some(Some(Sock::Conn(c))) = self.sockets.get_mut(id) {
            c.finished = true;
        }
    }

    /// Counts a UDP send taken, freeing its send slot for the client.
    fn udp_sent(&mut self) {
        self.udp_done = self.udp_done.wrapping_add(1);
        if let Some(d) = self.region.udp_tx_done(self.shard) {
            d.store(self.udp_done, std::sync::atomic::Ordering::Release);
        }
    }

    /// Runs the request in `self.req`; the completion to send, if any.
    fn execute(&mut self, stack: &mut Stack, now: stack::Instant) -> Option<&Entry> {
        let seq = self.req.seq();
        let opcode = self.req.op();
        self.cmp.reset(opcode, seq);
        self.cmp.set_sock(self.req.sock());
        let quota = self.open >= self.max;
        match opcode {
            op::NOP => {}
            op::UDP_BIND => match self.req.addr() {
                None => self.refuse(-libc::EINVAL),
                Some(_) if quota => self.refuse(-libc::EMFILE),
                Some(addr) => match self.area.alloc(UDP_CTL + UDP_RX_SLOTS as usize * DGRAM_MAX) {
                    None => self.refuse(-libc::ENOBUFS),
                    Some(rx) => match stack.udp_bind(addr) {
                        Ok(h) => {
                            let local = stack.udp_local_addr(h).unwrap_or(addr);
                            let u = UdpSock::new(h, local.is_ipv6(), rx, UDP_RX_SLOTS);
                            let id = self.insert(Sock::Udp(Box::new(u)));
                            self.cmp.set_sock(id);
                            self.cmp.set_addr(local);
                        }
                        Err(e) => self.refuse(errno_of(e)),
                    },
                },
            },
            op::UDP_SEND => {
                self.udp_sent();
                let region = self.region.clone();
                let (off, len) = self.req.buf();
                let sock = self.sockets.get(self.req.sock() as usize);
                let (Some(Some(Sock::Udp(u))), Some(dst)) = (sock, self.req.addr()) else {
                    self.refuse(-libc::EBADF);
                    return Some(&self.cmp);
                };
                let h = u.h;
                let payload = usize::try_from(off)
                    .ok()
                    .filter(|_| len as usize <= DGRAM_MAX)
                    .and_then(|off| region.payload(off, len as usize));
                let Some(payload) = payload else {
                    self.refuse(-libc::EFAULT);
                    return Some(&self.cmp);
                };
                // The frame is built from the application's slot: the only copy.
                match stack.udp_send_to(now, h, dst, payload) {
                    // Successful sends are not answered: the client does not wait.
                    Ok(()) => return None,
                    Err(e) => self.refuse(errno_of(e)),
                }
            }
            op::TCP_LISTEN => match self.req.addr() {
                None => self.refuse(-libc::EINVAL),
                Some(_) if quota => self.refuse(-libc::EMFILE),
                Some(addr) => {
                    let backlog = (self.req.arg() as usize).clamp(1, 4096);
                    match stack.tcp_listen(addr, backlog) {
                        Ok(h) => {
                            let id = self.insert(Sock::Listen(Listener {
                                h,
                                sndbuf: TCP_SEND_BUFFER,
                                rcvbuf: TCP_BUFFER,
                            }));
                            self.cmp.set_sock(id);
                            self.cmp.set_addr(addr);
                        }
                        Err(e) => self.refuse(errno_of(e)),
                    }
                }
            },
            op::TCP_CONNECT => match self.req.addr() {
                None => self.refuse(-libc::EINVAL),
                Some(_) if quota => self.refuse(-libc::EMFILE),
                Some(remote) => {
                    let size = |v: u64, d: usize| if v == 0 { d } else { v as usize };
                    let arg = self.req.arg();
                    let send = size(arg >> 32, TCP_SEND_BUFFER);
                    let recv = size(arg & 0xffff_ffff, TCP_BUFFER);
                    let (tc, rc) = (send.max(TCP_BUFFER), recv.max(TCP_BUFFER));
                    if self.area.alloc(tc + rc).is_none() {
                        // Checked first so that no SYN goes out for nothing.
                        self.refuse(-libc::ENOBUFS);
                        return Some(&self.cmp);
                    }
                    match self.connect(stack, now, remote) {
                        Ok((h, local)) => match self.give_rings(stack, h, send, recv) {
                            Some((rings, hold)) => {
                                let c = Conn::new(h, hold, false);
                                let id = self.insert(Sock::Conn(Box::new(c)));
                                self.cmp.set_sock(id);
                                self.cmp.set_addr(local);
                                rings.put(&mut self.cmp);
                            }
                            None => {
                                let _ = stack.tcp_abort(now, h);
                                self.refuse(-libc::ENOBUFS);
                            }
                        },
                        Err(e) => self.refuse(errno_of(e)),
                    }
                }
            },
            op::TCP_SEND => {
                let n = self.req.arg();
                match self.sockets.get_mut(self.req.sock() as usize) {
                    Some(Some(Sock::Conn(c))) => {
                        let want = usize::try_from(n).unwrap_or(usize::MAX);
                        match stack.tcp_send_committed(now, c.h, want) {
                            Ok(taken) => {
                                c.committed += taken as u64;
                                if taken == want {
                                    return None;
                                }
                                // More than the free room: a broken client.
                                self.refuse(-libc::ENOBUFS);
                            }
                            Err(SocketError::InvalidState(_)) => self.refuse(-libc::EPIPE),
                            Err(e) => self.refuse(errno_of(e)),
                        }
                    }
                    _ => self.refuse(-libc::EBADF),
                }
            }
            op::TCP_CONSUME => {
                let n = self.req.arg();
                match self.sockets.get_mut(self.req.sock() as usize) {
                    Some(Some(Sock::Conn(c))) => {
                        if n > c.published - c.consumed {
                            // More than we announced: a broken client.
                            self.refuse(-libc::EINVAL);
                        } else {
                            let done = stack.tcp_recv_consume(c.h, n as usize).unwrap_or(0);
                            c.consumed += done as u64;
                            return None;
                        }
                    }
                    _ => self.refuse(-libc::EBADF),
                }
            }
            op::TCP_SHUTDOWN => match self.sockets.get_mut(self.req.sock() as usize) {
                Some(Some(Sock::Conn(c))) => {
                    c.shutdown = true;
                    c.shut_down = true;
                }
                _ => self.refuse(-libc::EBADF),
            },
            op::CLOSE => {
                let id = self.req.sock() as usize;
                match self.sockets.get_mut(id) {
                    Some(slot @ Some(_)) => {
                        match slot.take() {
                            Some(Sock::Udp(u)) => stack.udp_close(u.h),
                            Some(Sock::Listen(l)) => {
                                let _ = stack.tcp_close(now, l.h);
                            }
                            // Finishes on its own (FIN after what was sent; a reset if
                            // received bytes were left unread); the stack keeps its
                            // rings until then.
                            Some(Sock::Conn(c)) => {
                                let _ = stack.tcp_close(now, c.h);
                            }
                            None => {}
                        }
                        self.free.push(id as u32);
                        self.open -= 1;
                    }
                    _ => self.refuse(-libc::EBADF),
                }
            }
            op::SETOPT => {
                let (name, value) = ((self.req.arg() >> 32) as u32, self.req.arg() as u32);
                let area = self.area.clone();
                let r = match (self.sockets.get_mut(self.req.sock() as usize), name) {
                    (Some(Some(Sock::Conn(c))), opt::TCP_NODELAY) => {
                        stack.tcp_set_nodelay(c.h, value != 0).map_err(errno_of)
                    }
                    (Some(Some(Sock::Conn(c))), opt::SO_KEEPALIVE) => stack
                        .tcp_set_keepalive(
                            now,
                            c.h,
                            (value > 0).then(|| stack::Duration::from_secs(u64::from(value))),
                        )
                        .map_err(errno_of),
                    (Some(Some(Sock::Udp(u))), opt::SO_RCVBUF) => {
                        let slots = (value as usize / DGRAM_MAX).clamp(1, 1 << 16);
                        match area.alloc(UDP_CTL + slots * DGRAM_MAX) {
                            None => Err(-libc::ENOBUFS),
                            Some(rx) => {
                                u.next = Some((rx, slots as u32));
                                stack.udp_set_queue_limit(u.h, slots).map_err(errno_of)
                            }
                        }
                    }
                    (Some(Some(Sock::Listen(l))), opt::SO_RCVBUF | opt::SO_SNDBUF) => {
                        let v = (value as usize).max(1);
                        if v > area.region().area().1 {
                            Err(-libc::ENOBUFS)
                        } else {
                            if name == opt::SO_RCVBUF {
                                l.rcvbuf = v;
                            } else {
                                l.sndbuf = v;
                            }
                            Ok(())
                        }
                    }
                    (Some(Some(_)), _) => Err(-libc::ENOPROTOOPT),
                    _ => Err(-libc::EBADF),
                };
                if let Err(e) = r {
                    self.refuse(e);
                }
            }
            _ => self.refuse(-libc::EOPNOTSUPP),
        }
        Some(&self.cmp)
    }

    /// Opens a connection from a local port whose return traffic this shard receives
    /// (the runtime spreads received frames by flow hash).
    fn connect(
        &mut self,
        stack: &mut Stack,
        now: stack::Instant,
        remote: SocketAddr,
    ) -> Result<(TcpHandle, SocketAddr), SocketError> {
        let shards = self.region.shards() as usize;
        if shards <= 1 {
            let h = stack.tcp_connect(now, remote, None)?;
            let local = stack
                .tcp_connection(h)
                .map_or(SocketAddr::new(remote.ip(), 0), |t| t.endpoints().0);
            return Ok((h, local));
        }
        let lip = stack
            .source_address_for(remote.ip())
            .ok_or(SocketError::Send(stack::stack::SendError::NoRoute))?;
        let start = (self.id as u32)
            .wrapping_mul(7919)
            .wrapping_add(self.next_port);
        for i in 0..16384u32 {
            let port = 49152 + ((start.wrapping_add(i)) % 16384) as u16;
            let local = SocketAddr::new(lip, port);
            let Some(hash) = stack::flow::tuple_hash(remote, local, 6) else {
                return Err(SocketError::FamilyMismatch);
            };
            if stack::flow::shard_of(hash, shards) != self.shard as usize {
                continue;
            }
            match stack.tcp_connect(now, remote, Some(local)) {
                Ok(h) => {
                    self.next_port = self.next_port.wrapping_add(i + 1);
                    return Ok((h, local));
                }
                Err(SocketError::AddrInUse(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SocketError::NoEphemeralPort)
    }

    fn refuse(&mut self, errno: i32) {
        self.counters.refused += 1;
        self.cmp.set_result(errno);
    }

    fn insert(&mut self, sock: Sock) -> u32 {
        self.open += 1;
        match self.free.pop() {
            Some(id) => {
                self.sockets[id as usize] = Some(sock);
                id
            }
            None => {
                self.sockets.push(Some(sock));
                (self.sockets.len() - 1) as u32
            }
        }
    }

    /// The application is gone: runs what it queued before it went (a close must not
    /// turn into a reset because the departure was noticed first), lets connections it
    /// shut down finish with FIN (the stack keeps their rings), and resets the rest.
    pub fn depart(&mut self, stack: &mut Stack, now: stack::Instant) {
        if !self.broken {
            let region = self.region.clone();
            if let Some(req) = region.requests(self.shard) {
                for _ in 0..ENTRIES {
                    match req.pop(&mut self.req) {
                        Ok(true) => {
                            // Nobody reads the answers any more.
                            let _ = self.execute(stack, now);
                        }
                        _ => break,
                    }
                }
            }
        }
        for id in 0..self.sockets.len() {
            let Some(Sock::Conn(c)) = self.sockets[id].as_mut() else {
                continue;
            };
            if c.shutdown {
                let _ = stack.tcp_shutdown(now, c.h);
                c.shutdown = false;
            }
            if c.shut_down {
                // Shut down: it ends with FIN, not a reset.
                let _ = stack.tcp_close(now, c.h);
                self.sockets[id] = None;
                self.open -= 1;
            }
        }
        self.close_all(stack, now);
    }

    /// Closes every socket of the application (it detached or died).
    pub fn close_all(&mut self, stack: &mut Stack, now: stack::Instant) {
        for s in self.sockets.drain(..).flatten() {
            match s {
                Sock::Udp(u) => stack.udp_close(u.h),
                // A dead application's connections are reset: nobody will read them.
                Sock::Conn(c) => {
                    let _ = stack.tcp_abort(now, c.h);
                }
                Sock::Listen(l) => {
                    let _ = stack.tcp_close(now, l.h);
                }
            }
        }
        self.free.clear();
        self.open = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stack::wire::EthernetAddress;
    use stack::{FramePool, InterfaceConfig, PoolConfig, StackConfig};

    fn host() -> Stack {
        let pool = FramePool::with_frames(512, PoolConfig::default()).unwrap();
        let mut s = Stack::new(StackConfig::host("fuzz"), pool, 7);
        s.add_port(
            InterfaceConfig::new("p0", EthernetAddress([2, 0, 0, 0, 0, 1]))
                .with_ipv4("192.0.2.1/24".parse().unwrap())
                .with_ipv6("2001:db8::1/64".parse().unwrap()),
        )
        .unwrap();
        s
    }

    /// Whatever a hostile application queues (any operation, socket id, address,
    /// argument, count and buffer reference) and scribbles into its buffer area, serving
    /// it never panics, never hands out more than the area, and once the application is
    /// gone every socket is closed and every byte of its area is back.
    #[test]
    fn hostile_requests_and_scribbles_are_contained() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut served, mut opened, mut peak) = (0, 0, 0);
        for case in 0..40 {
            let region = Arc::new(Region::create("fuzz", 1, 1 << 20).unwrap());
            let (area_off, area_len) = region.area();
            let area = Area::new(region.clone());
            let mut app = AppConn::new(case, area.clone(), 0, 8, None);
            let mut st = host();
            let mut now = stack::Instant::ZERO;
            let mut out = Entry::default();
            for _ in 0..20 {
                let req = region.requests(0).unwrap();
                for _ in 0..(rnd() % 40) {
                    let mut e = Entry::new((rnd() % 24) as u8, rnd());
                    e.set_sock((rnd() % 10) as u32);
                    let port = if rnd() % 2 == 0 { 7 } else { rnd() as u16 };
                    match rnd() % 4 {
                        0 => e.set_addr(SocketAddr::from(([192, 0, 2, 9], port))),
                        1 => e.set_addr(SocketAddr::from(([0, 0, 0, 0], port))),
                        2 => e.set_addr("[2001:db8::9]:80".parse().unwrap()),
                        _ => {}
                    }
                    e.set_arg(match rnd() % 3 {
                        0 => rnd(),
                        1 => rnd() % 70_000,
                        _ => ((rnd() % 4) << 32) | (rnd() % 3000),
                    });
                    let off = if rnd() % 2 == 0 {
                        (area_off + rnd() as usize % area_len) as u64
                    } else {
                        rnd()
                    };
                    e.set_buf(off, (rnd() % 5000) as u32);
                    let _ = req.push(&e);
                }
                // Scribbles: control words, slots and rings alike.
                for _ in 0..(rnd() % 64) {
                    let at = area_off + rnd() as usize % area_len;
                    if let Some(b) = region.payload_mut(at, 4) {
                        b.copy_from_slice(&(rnd() as u32).to_le_bytes());
                    }
                }
                app.serve(&mut st, now);
                assert!(area.used() <= area_len);
                peak = peak.max(area.used());
                let cmp = region.completions(0).unwrap();
                while cmp.pop(&mut out) == Ok(true) {
                    let creates = [op::UDP_BIND, op::TCP_LISTEN, op::TCP_CONNECT];
                    opened += usize::from(creates.contains(&out.op()) && out.result() >= 0);
                }
                now += stack::Duration::from_millis(10);
                st.poll(now);
            }
            assert!(!app.broken, "the rings were never broken");
            served += app.counters.requests;
            app.depart(&mut st, now);
            assert_eq!(app.open_sockets(), 0);
            drop(app);
            // Connections closed gracefully hold their rings in the stack until they
            // finish (here: give up on the silent peer).
            let mut later = now;
            for _ in 0..2000 {
                later += stack::Duration::from_secs(1);
                st.poll(later);
            }
            assert_eq!(st.tcp_socket_count(), 0, "case {case}");
            assert_eq!(area.used(), 0, "case {case}: the area is back");
        }
        // The cases did reach the interesting paths.
        assert!(
            served > 10_000 && opened > 100,
            "{served} requests, {opened} sockets"
        );
        assert!(
            peak > 512 << 10,
            "rings were handed out ({peak} bytes at most)"
        );
    }
}
