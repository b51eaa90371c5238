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

use std::net::SocketAddr;
use std::sync::Arc;

use dpsock::shm::{op, Entry, Region, ENTRIES};
use stack::stack::IcmpErrorKind;
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

/// One application as one shard serves it.
pub struct AppConn {
    /// The attachment's id (the control plane's).
    pub id: u64,
    region: Arc<Region>,
    shard: u32,
    sockets: Vec<Option<(UdpHandle, bool)>>,
    free: Vec<u32>,
    open: u32,
    max: u32,
    req: Entry,
    cmp: Entry,
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
    pub fn new(id: u64, region: Arc<Region>, shard: u32, max: u32) -> AppConn {
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

    /// Serves requests and delivers datagrams; returns the work done.
    pub fn serve(&mut self, stack: &mut Stack, now: stack::Instant) -> usize {
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
        // Datagrams and errors waiting on this application's sockets.
        for id in 0..self.sockets.len() {
            let Some((h, v6)) = self.sockets[id] else {
                continue;
            };
            if let Ok(Some(kind)) = stack.udp_take_error(h) {
                let mut e = Entry::new(op::SOCK_ERROR, 0);
                e.set_sock(id as u32);
                e.set_result(icmp_errno(kind, v6));
                if !cmp.push(&e) {
                    break;
                }
            }
            loop {
                if cmp.len().unwrap_or(ENTRIES) >= ENTRIES {
                    return work;
                }
                if stack.udp_queue(h).map_or(0, |q| q.0) == 0 {
                    break;
                }
                self.cmp.reset(op::UDP_RECV, 0);
                self.cmp.set_sock(id as u32);
                let Some((n, from)) = stack.udp_recv_from(h, self.cmp.data_mut()) else {
                    break;
                };
                self.cmp.set_len(n);
                self.cmp.set_addr(from);
                if !cmp.push(&self.cmp) {
                    self.broken = true;
                    return work;
                }
                self.counters.delivered += 1;
                work += 1;
            }
        }
        work
    }

    /// Runs the request in `self.req`; the completion to send, if any.
    fn execute(&mut self, stack: &mut Stack, now: stack::Instant) -> Option<&Entry> {
        let seq = self.req.seq();
        let opcode = self.req.op();
        self.cmp.reset(opcode, seq);
        self.cmp.set_sock(self.req.sock());
        match opcode {
            op::NOP => {}
            op::UDP_BIND => match self.req.addr() {
                None => self.refuse(-libc::EINVAL),
                Some(_) if self.open >= self.max => self.refuse(-libc::EMFILE),
                Some(addr) => match stack.udp_bind(addr) {
                    Ok(h) => {
                        let local = stack.udp_local_addr(h).unwrap_or(addr);
                        let id = self.insert(h, local);
                        self.cmp.set_sock(id);
                        self.cmp.set_addr(local);
                    }
                    Err(e) => self.refuse(errno_of(e)),
                },
            },
            op::UDP_SEND => {
                let (Some(h), Some(dst)) = (self.socket(self.req.sock()), self.req.addr()) else {
                    self.refuse(-libc::EBADF);
                    return Some(&self.cmp);
                };
                match stack.udp_send_to(now, h, dst, self.req.data()) {
                    // Successful sends are not answered: the client does not wait.
                    Ok(()) => return None,
                    Err(e) => self.refuse(errno_of(e)),
                }
            }
            op::CLOSE => {
                let id = self.req.sock();
                match self.socket(id) {
                    Some(h) => {
                        stack.udp_close(h);
                        self.sockets[id as usize] = None;
                        self.free.push(id);
                        self.open -= 1;
                    }
                    None => self.refuse(-libc::EBADF),
                }
            }
            _ => self.refuse(-libc::EOPNOTSUPP),
        }
        Some(&self.cmp)
    }

    fn refuse(&mut self, errno: i32) {
        self.counters.refused += 1;
        self.cmp.set_result(errno);
    }

    fn insert(&mut self, h: UdpHandle, local: SocketAddr) -> u32 {
        self.open += 1;
        let v = Some((h, local.is_ipv6()));
        match self.free.pop() {
            Some(id) => {
                self.sockets[id as usize] = v;
                id
            }
            None => {
                self.sockets.push(v);
                (self.sockets.len() - 1) as u32
            }
        }
    }

    fn socket(&self, id: u32) -> Option<UdpHandle> {
        self.sockets
            .get(id as usize)
            .copied()
            .flatten()
            .map(|s| s.0)
    }

    /// Closes every socket of the application (it detached or died).
    pub fn close_all(&mut self, stack: &mut Stack) {
        for (h, _) in self.sockets.drain(..).flatten() {
            stack.udp_close(h);
        }
        self.free.clear();
        self.open = 0;
    }
}
