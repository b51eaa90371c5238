//! Applications' shared-memory sockets, as a shard serves them.
//!
//! Each attached application has, on each shard, a request ring it produces and a
//! completion ring the shard produces ([`dpsock::shm`]). Once per round the shard takes
//! up to [`REQUESTS_PER_ROUND`] requests (only while its completion ring has room for
//! their answers: an application that does not read its completions stops being served,
//! nobody else does), then moves datagrams waiting on the application's sockets into
//! the completion ring; what does not fit waits in the stack's socket queue, whose
//! overflow is counted as `udp_socket_queue_full`.
//!
//! Everything read from the ring is validated ([`dpsock::shm::Entry`] cuts lengths;
//! socket ids are looked up in this application's own table, so one application can
//! never name another's socket). A ring found broken (hostile indices) detaches the
//! application on this shard.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use dpsock::shm::{op, opt, Entry, Region, ENTRIES};
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

/// Bytes a connection may hold for the application beyond the stack's send buffer:
/// the client's send credit (the client waits when it is used up).
use dpsock::shm::TCP_CREDIT;

/// A socket of an application.
enum Sock {
    Udp(UdpHandle, bool),
    Listen(TcpHandle),
    Conn(Box<Conn>),
}

/// A TCP connection of an application.
struct Conn {
    h: TcpHandle,
    /// Bytes from TCP_SEND the stack's send buffer had no room for yet.
    pending: VecDeque<u8>,
    /// TCP_CONNECTED sent.
    reported: bool,
    /// TCP_EOF or TCP_CLOSED sent.
    finished: bool,
    /// The application asked for FIN (after `pending`).
    shutdown: bool,
    shut_done: bool,
    /// The application closed it: released once `pending` is out.
    closing: bool,
}

impl Conn {
    fn new(h: TcpHandle, reported: bool) -> Conn {
        Conn {
            h,
            pending: VecDeque::new(),
            reported,
            finished: false,
            shutdown: false,
            shut_done: false,
            closing: false,
        }
    }
}

/// One application as one shard serves it.
pub struct AppConn {
    /// The attachment's id (the control plane's).
    pub id: u64,
    region: Arc<Region>,
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
        region: Arc<Region>,
        shard: u32,
        max: u32,
        client_wake: Option<Arc<std::os::unix::net::UnixStream>>,
    ) -> AppConn {
        AppConn {
            id,
            region,
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
                Some(Sock::Listen(_)) => self.serve_listener(stack, &cmp, id, &mut work),
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

    /// Moves a UDP socket's datagrams and error; false when the ring is full.
    fn serve_udp(
        &mut self,
        stack: &mut Stack,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Sock::Udp(h, v6)) = self.sockets[id] else {
            return true;
        };
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
            self.cmp.reset(op::UDP_RECV, 0);
            self.cmp.set_sock(id as u32);
            let Some((n, from)) = stack.udp_recv_from(h, self.cmp.data_mut()) else {
                return true;
            };
            self.cmp.set_len(n);
            self.cmp.set_addr(from);
            if !self.push(cmp) {
                return false;
            }
            self.counters.delivered += 1;
            *work += 1;
        }
    }

    /// Announces a listener's new connections; false when the ring (or quota) is full.
    fn serve_listener(
        &mut self,
        stack: &mut Stack,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Sock::Listen(l)) = self.sockets[id] else {
            return true;
        };
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
            let conn = self.insert(Sock::Conn(Box::new(Conn::new(c, true))));
            self.cmp.reset(op::TCP_ACCEPTED, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_arg(u64::from(conn));
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

    /// Moves a connection's queued bytes into the stack, its received bytes and state
    /// changes to the application; false when the ring is full.
    fn serve_conn(
        &mut self,
        stack: &mut Stack,
        now: stack::Instant,
        cmp: &dpsock::shm::Ring<'_>,
        id: usize,
        work: &mut usize,
    ) -> bool {
        let Some(Sock::Conn(c)) = self.sockets[id].as_mut() else {
            return true;
        };
        let h = c.h;
        // Queued bytes into the stack's send buffer; the credit goes back.
        let mut taken = 0usize;
        while !c.pending.is_empty() {
            let (front, _) = c.pending.as_slices();
            match stack.tcp_send(now, h, front) {
                Ok(0) => break,
                Ok(n) => {
                    c.pending.drain(..n);
                    taken += n;
                }
                Err(_) => {
                    // The connection cannot send any more: drop what waits.
                    taken += c.pending.len();
                    c.pending.clear();
                }
            }
        }
        if c.pending.is_empty() && c.shutdown && !c.shut_done {
            c.shut_done = true;
            let _ = stack.tcp_shutdown(now, h);
        }
        if c.closing {
            if c.pending.is_empty() {
                let _ = stack.tcp_close(now, h);
                self.sockets[id] = None;
                self.free.push(id as u32);
                self.open -= 1;
            }
            return true;
        }
        if taken > 0 {
            if !Self::room(cmp) {
                // Credit is only returned, never lost: count it back.
                return false;
            }
            self.cmp.reset(op::TCP_SENT, 0);
            self.cmp.set_sock(id as u32);
            self.cmp.set_arg(taken as u64);
            if !self.push(cmp) {
                return false;
            }
            *work += 1;
        }
        let Some(Sock::Conn(c)) = self.sockets[id].as_mut() else {
            return true;
        };
        if !c.reported {
            let state = stack.tcp_state(h);
            let failed = matches!(state, None | Some(TcpState::Closed));
            if failed || !matches!(state, Some(TcpState::SynSent | TcpState::SynReceived)) {
                if !Self::room(cmp) {
                    return false;
                }
                c.reported = true;
                let r = if failed {
                    match stack.tcp_recv(h, &mut []) {
                        Err(e) => errno_of(e),
                        Ok(_) => -libc::ECONNREFUSED,
                    }
                } else {
                    0
                };
                self.cmp.reset(op::TCP_CONNECTED, 0);
                self.cmp.set_sock(id as u32);
                self.cmp.set_result(r);
                if failed {
                    if let Some(Sock::Conn(c)) = self.sockets[id].as_mut() {
                        c.finished = true;
                    }
                }
                if !self.push(cmp) {
                    return false;
                }
                *work += 1;
            } else {
                return true;
            }
        }
        // Received bytes, then the end of the stream or the error.
        loop {
            let Some(Sock::Conn(c)) = self.sockets[id].as_ref() else {
                return true;
            };
            if c.finished {
                return true;
            }
            if !Self::room(cmp) {
                return false;
            }
            self.cmp.reset(op::TCP_DATA, 0);
            self.cmp.set_sock(id as u32);
            match stack.tcp_recv(h, self.cmp.data_mut()) {
                Ok(0) => {
                    self.cmp.reset(op::TCP_EOF, 0);
                    self.cmp.set_sock(id as u32);
                    self.finish(id);
                }
                Ok(n) => {
                    self.cmp.set_len(n);
                    self.counters.delivered += 1;
                }
                Err(SocketError::WouldBlock) => return true,
                Err(e) => {
                    self.cmp.reset(op::TCP_CLOSED, 0);
                    self.cmp.set_sock(id as u32);
                    self.cmp.set_result(errno_of(e));
                    self.finish(id);
                }
            }
            if !self.push(cmp) {
                return false;
            }
            *work += 1;
        }
    }

    fn finish(&mut self, id: usize) {
        if let Some(Some(Sock::Conn(c))) = self.sockets.get_mut(id) {
            c.finished = true;
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
                Some(addr) => match stack.udp_bind(addr) {
                    Ok(h) => {
                        let local = stack.udp_local_addr(h).unwrap_or(addr);
                        let id = self.insert(Sock::Udp(h, local.is_ipv6()));
                        self.cmp.set_sock(id);
                        self.cmp.set_addr(local);
                    }
                    Err(e) => self.refuse(errno_of(e)),
                },
            },
            op::UDP_SEND => {
                let sock = self.sockets.get(self.req.sock() as usize);
                let (Some(Some(Sock::Udp(h, _))), Some(dst)) = (sock, self.req.addr()) else {
                    self.refuse(-libc::EBADF);
                    return Some(&self.cmp);
                };
                match stack.udp_send_to(now, *h, dst, self.req.data()) {
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
                            let id = self.insert(Sock::Listen(h));
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
                Some(remote) => match self.connect(stack, now, remote) {
                    Ok((h, local)) => {
                        let id = self.insert(Sock::Conn(Box::new(Conn::new(h, false))));
                        self.cmp.set_sock(id);
                        self.cmp.set_addr(local);
                    }
                    Err(e) => self.refuse(errno_of(e)),
                },
            },
            op::TCP_SEND => {
                let data = self.req.data();
                match self.sockets.get_mut(self.req.sock() as usize) {
                    Some(Some(Sock::Conn(c))) if !c.closing && !c.shutdown => {
                        if c.pending.len() + data.len() > TCP_CREDIT {
                            // The client overran its credit: refuse the excess.
                            self.refuse(-libc::ENOBUFS);
                        } else {
                            c.pending.extend(data);
                            return None;
                        }
                    }
                    Some(Some(Sock::Conn(_))) => self.refuse(-libc::EPIPE),
                    _ => self.refuse(-libc::EBADF),
                }
            }
            op::TCP_SHUTDOWN => match self.sockets.get_mut(self.req.sock() as usize) {
                Some(Some(Sock::Conn(c))) => c.shutdown = true,
                _ => self.refuse(-libc::EBADF),
            },
            op::CLOSE => {
                let id = self.req.sock() as usize;
                match self.sockets.get_mut(id) {
                    Some(Some(Sock::Conn(c))) => {
                        // Released once its queued bytes are in the stack.
                        c.closing = true;
                        c.shutdown = true;
                        return Some(&self.cmp);
                    }
                    Some(slot @ Some(_)) => {
                        match slot.take() {
                            Some(Sock::Udp(h, _)) => stack.udp_close(h),
                            Some(Sock::Listen(h)) => {
                                let _ = stack.tcp_close(now, h);
                            }
                            _ => {}
                        }
                        self.free.push(id as u32);
                        self.open -= 1;
                    }
                    _ => self.refuse(-libc::EBADF),
                }
            }
            op::SETOPT => {
                let (name, value) = ((self.req.arg() >> 32) as u32, self.req.arg() as u32);
                let r = match (self.sockets.get(self.req.sock() as usize), name) {
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
                    (Some(Some(Sock::Udp(h, _))), opt::SO_RCVBUF) => stack
                        .udp_set_queue_limit(*h, (value as usize / dpsock::shm::DATA_MAX).max(1))
                        .map_err(errno_of),
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
    /// closed or shut down finish with FIN, and resets the rest.
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
            if !(c.closing || c.shutdown) {
                continue;
            }
            while !c.pending.is_empty() {
                let (front, _) = c.pending.as_slices();
                match stack.tcp_send(now, c.h, front) {
                    Ok(n) if n > 0 => {
                        c.pending.drain(..n);
                    }
                    _ => break,
                }
            }
            if c.pending.is_empty() {
                if !c.shut_done {
                    let _ = stack.tcp_shutdown(now, c.h);
                }
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
                Sock::Udp(h, _) => stack.udp_close(h),
                // A dead application's connections are reset: nobody will read them.
                Sock::Conn(c) => {
                    let _ = stack.tcp_abort(now, c.h);
                }
                Sock::Listen(h) => {
                    let _ = stack.tcp_close(now, h);
                }
            }
        }
        self.free.clear();
        self.open = 0;
    }
}
