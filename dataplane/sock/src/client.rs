//! The Rust client: attach to a running dataplane and use its UDP sockets through the
//! shared rings.
//!
//! ```no_run
//! use dpsock::{Client, UdpSocket};
//! let client = Client::attach("/run/dataplane-apps.sock")?;
//! let sock = UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap())?;
//! sock.send_to(b"hello", "203.0.113.2:7".parse().unwrap())?;
//! let mut buf = [0u8; 2048];
//! let (n, from) = sock.recv_from(&mut buf)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A [`Client`] is cheap to clone and may be shared between threads (calls take a lock
//! briefly; blocking waits happen outside it). A socket is bound on every shard of the
//! daemon (datagrams for it may arrive on any), sends through the first, and receives
//! from all. Sends are queued, not awaited: an error the daemon reports for one (no
//! route, say) comes back from the socket's next call, as with an ICMP error on a kernel
//! socket. If the daemon goes away, every call fails with `ConnectionAborted`.
//!
//! Payload lives in the application's buffer area in the shared memory
//! ([`crate::shm`]): datagrams in send and receive slots, a TCP connection's bytes in its
//! send and receive rings, which the daemon's stack uses as its own buffers. The
//! `std`-like calls copy between the caller's buffer and that memory (the stack copies
//! between it and frames); `send_with`/`recv_with` and `write_with`/`read_with` lend the
//! memory itself, so the only copy is the stack's. Lent closures run under the client's
//! lock and must not call the client.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::shm::{op, Entry, Region, Rings, DGRAM_MAX, UDP_TX_SLOTS};

/// Received datagrams a socket keeps on the client side before it drops.
const CLIENT_QUEUE: usize = 1024;

struct Inner {
    region: Arc<Region>,
    stream: UnixStream,
    /// Per shard: the descriptor that wakes it when it sleeps.
    wake: Vec<UnixStream>,
    shards: u32,
    seq: u64,
    /// Completions of requests, by sequence number, until their caller takes them.
    done: HashMap<u64, Entry>,
    /// Per (shard, daemon socket id): the client socket key.
    route: HashMap<(u32, u32), u64>,
    /// Per client socket: received datagrams, the first error, drops.
    queues: HashMap<u64, SockState>,
    next_key: u64,
    dead: bool,
    scratch: Entry,
    /// The shard of the next connect (round robin).
    next_shard: u32,
    /// Per shard: UDP send slots used (the next slot is this modulo the slot count).
    udp_tx_next: Vec<u32>,
}

/// A datagram waiting in a receive slot: its shard, where it is, how long, the slot
/// extent's control word, the sender.
struct Dgram {
    shard: u32,
    off: usize,
    len: usize,
    ctl: usize,
    from: SocketAddr,
}

#[derive(Default)]
struct SockState {
    /// UDP: datagrams received (in receive slots of the buffer area).
    rx: VecDeque<Dgram>,
    /// TCP: the connection's rings in the buffer area.
    rings: Option<Rings>,
    /// TCP: bytes committed to the send ring and acknowledged (totals).
    committed: u64,
    acked: u64,
    /// TCP: bytes announced readable and read (totals).
    readable: u64,
    consumed: u64,
    /// TCP: bytes read whose TCP_CONSUME is not posted yet (the request ring was full).
    owed: u64,
    /// TCP: end of stream, the connect result, a failure.
    eof: bool,
    connected: Option<i32>,
    closed: Option<i32>,
    /// A UDP socket.
    udp: bool,
    /// A listener's accepted connections: (socket key, peer).
    accepted: VecDeque<(u64, u32, u32, SocketAddr)>,
    /// A queued send the daemon refused: returned by the socket's next call.
    error: Option<i32>,
    /// An ICMP error about a datagram sent: only through `take_error`, as on an
    /// unconnected kernel socket.
    icmp: Option<i32>,
    dropped: u64,
}

/// An attachment to a dataplane daemon.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Mutex<Inner>>,
    sleeper: Arc<Sleeper>,
}

/// What a waiting caller sleeps on, outside the client's lock.
struct Sleeper {
    region: Arc<Region>,
    wake: UnixStream,
}

impl Sleeper {
    /// Sleeps until the daemon queues a completion or `d` passes.
    fn sleep(&self, d: Duration) {
        let flag = self.region.client_asleep();
        flag.store(1, std::sync::atomic::Ordering::SeqCst);
        // Checked after raising the flag: a completion queued before it is seen here,
        // one queued after it writes a wake-up byte.
        let pending = (0..self.region.shards())
            .any(|s| self.region.completions(s).is_some_and(|r| !r.is_empty()));
        if !pending {
            let _ = self
                .wake
                .set_read_timeout(Some(d.max(Duration::from_micros(1))));
            let mut b = [0u8; 64];
            let _ = (&self.wake).read(&mut b);
        }
        flag.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

fn gone() -> io::Error {
    io::Error::new(
        ErrorKind::ConnectionAborted,
        "the dataplane daemon went away (restarted or stopped); attach again",
    )
}

fn errno(r: i32) -> io::Error {
    io::Error::from_raw_os_error(-r)
}

impl Client {
    /// Attaches to the daemon listening at `path` (its configuration's
    /// `sockets.path`).
    pub fn attach(path: impl AsRef<Path>) -> io::Result<Client> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach the dataplane at {}: {e}", path.display()),
            )
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        // Our wake-up pair: the daemon gets one end with the greeting and writes to it
        // when it queues a completion while we sleep; we sleep reading the other.
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        {
            use std::os::fd::AsRawFd;
            crate::sys::send_with_fds(&stream, crate::hello().as_bytes(), &[wake_tx.as_raw_fd()])?;
        }
        drop(wake_tx);
        let mut buf = [0u8; 512];
        let (n, fds) = crate::sys::recv_with_fds(&stream, &mut buf)?;
        let mut fds = fds.into_iter();
        let fd = fds.next();
        let wake: Vec<UnixStream> = fds.map(UnixStream::from).collect();
        let reply = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        if let Some(why) = reply.strip_prefix("ERR ") {
            return Err(io::Error::new(
                ErrorKind::PermissionDenied,
                format!("the dataplane refused the attach: {why}"),
            ));
        }
        let Some(fd) = fd.filter(|_| reply.starts_with("OK")) else {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("unexpected answer from the dataplane: {reply:?}"),
            ));
        };
        let region = Region::open(std::fs::File::from(fd))
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e.0))?;
        stream.set_nonblocking(true)?;
        let shards = region.shards();
        if wake.len() != shards as usize {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "the dataplane sent no wake-up descriptor per shard",
            ));
        }
        for w in &wake {
            w.set_nonblocking(true)?;
        }
        let region = Arc::new(region);
        Ok(Client {
            sleeper: Arc::new(Sleeper {
                region: region.clone(),
                wake: wake_rx,
            }),
            inner: Arc::new(Mutex::new(Inner {
                region,
                stream,
                wake,
                shards,
                seq: 0,
                done: HashMap::new(),
                route: HashMap::new(),
                queues: HashMap::new(),
                next_key: 1,
                dead: false,
                scratch: Entry::default(),
                next_shard: 0,
                udp_tx_next: vec![0; shards as usize],
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The daemon's shards (rings).
    pub fn shards(&self) -> u32 {
        self.lock().shards
    }

    /// A no-op request to shard 0 and its completion: the ring round trip.
    pub fn nop(&self) -> io::Result<()> {
        let seq = self.submit(0, Entry::new(op::NOP, 0))?;
        self.wait(seq, None).map(|_| ())
    }

    /// Queues `entry` (its `seq` set here) on `shard`'s request ring, waiting for room;
    /// returns the sequence number.
    fn submit(&self, shard: u32, mut entry: Entry) -> io::Result<u64> {
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.lock();
                if g.dead {
                    return Err(gone());
                }
                g.seq += 1;
                let seq = g.seq;
                entry.reset_seq(seq);
                let pushed = g
                    .region
                    .requests(shard)
                    .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no such shard"))?
                    .push(&entry);
                if pushed {
                    g.wake(shard);
                    return Ok(seq);
                }
                g.pump();
            }
            backoff.wait(self)?;
        }
    }

    /// Waits for the completion of `seq`.
    fn wait(&self, seq: u64, timeout: Option<Duration>) -> io::Result<Entry> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.lock();
                g.pump();
                if let Some(e) = g.done.remove(&seq) {
                    return Ok(e);
                }
                if g.dead {
                    return Err(gone());
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "the dataplane did not answer",
                ));
            }
            backoff.wait(self)?;
        }
    }

    /// Binds (`UDP_BIND`) or listens (`TCP_LISTEN`) on every shard: the first picks
    /// the port, the others take the same address. Returns the socket's key, its id on
    /// each shard and the bound address.
    fn bind_all(
        &self,
        opcode: u8,
        addr: SocketAddr,
        arg: u64,
    ) -> io::Result<(u64, Vec<u32>, SocketAddr)> {
        let shards = self.shards();
        let mut e = Entry::new(opcode, 0);
        e.set_addr(addr);
        e.set_arg(arg);
        let first = self.call(0, e)?;
        let key = first.arg();
        let local = first
            .addr()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bind answered no address"))?;
        let mut ids = vec![first.sock()];
        for s in 1..shards {
            let mut e = Entry::new(opcode, 0);
            e.set_addr(local);
            e.set_arg(arg);
            match self.call(s, e) {
                Ok(c) => {
                    ids.push(c.sock());
                    // One key for the socket: this shard's events join the first's.
                    let mut g = self.lock();
                    g.route.insert((s, c.sock()), key);
                    if let Some(extra) = g.queues.remove(&c.arg()) {
                        let st = g.queues.entry(key).or_default();
                        st.rx.extend(extra.rx);
                        st.accepted.extend(extra.accepted);
                    }
                }
                Err(err) => {
                    for (shard, id) in ids.iter().enumerate() {
                        let mut c = Entry::new(op::CLOSE, 0);
                        c.set_sock(*id);
                        let _ = self.submit(shard as u32, c);
                    }
                    self.forget(key, &ids);
                    return Err(err);
                }
            }
        }
        Ok((key, ids, local))
    }

    /// Drops a socket's routes and state.
    fn forget(&self, key: u64, ids: &[u32]) {
        let mut g = self.lock();
        for (shard, id) in ids.iter().enumerate() {
            g.route.remove(&(shard as u32, *id));
        }
        g.queues.remove(&key);
    }

    /// Submits and waits, turning a negative result into an error.
    fn call(&self, shard: u32, entry: Entry) -> io::Result<Entry> {
        let seq = self.submit(shard, entry)?;
        let e = self.wait(seq, Some(Duration::from_secs(10)))?;
        if e.result() < 0 {
            return Err(errno(e.result()));
        }
        Ok(e)
    }

    /// Checks whether the daemon closed the attach connection.
    fn check_alive(&self) -> io::Result<()> {
        let mut g = self.lock();
        if g.dead {
            return Err(gone());
        }
        let mut b = [0u8; 16];
        match (&g.stream).read(&mut b) {
            Ok(0) => {
                g.dead = true;
                Err(gone())
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(_) => {
                g.dead = true;
                Err(gone())
            }
            Ok(_) => Ok(()),
        }
    }
}

impl Entry {
    fn reset_seq(&mut self, seq: u64) {
        let op = self.op();
        let (sock, addr, arg, len) = (self.sock(), self.addr(), self.arg(), self.len());
        self.reset(op, seq);
        self.set_sock(sock);
        if let Some(a) = addr {
            self.set_addr(a);
        }
        self.set_arg(arg);
        self.set_len(len);
    }
}

impl Inner {
    /// Posts TCP_CONSUME of `n` bytes on `shard`'s socket `id`; false when the request
    /// ring is full (try again later).
    fn post_consume(&mut self, shard: u32, id: u32, n: u64) -> bool {
        self.seq += 1;
        let mut e = Entry::new(op::TCP_CONSUME, self.seq);
        e.set_sock(id);
        e.set_arg(n);
        let pushed = self.region.requests(shard).is_some_and(|q| q.push(&e));
        if pushed {
            self.wake(shard);
        }
        pushed
    }

    /// Wakes `shard` if it sleeps (a full wake-up socket means one is pending).
    fn wake(&self, shard: u32) {
        if self
            .region
            .asleep(shard)
            .is_some_and(|a| a.load(std::sync::atomic::Ordering::SeqCst) != 0)
        {
            if let Some(w) = self.wake.get(shard as usize) {
                let _ = (&*w).write(&[1]);
            }
        }
    }

    /// Takes every completion waiting on every shard: datagrams to their sockets'
    /// queues, errors to their sockets, request completions to `done`.
    fn pump(&mut self) {
        for shard in 0..self.shards {
            while let Some(ring) = self.region.completions(shard) {
                match ring.pop(&mut self.scratch) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        // The daemon never breaks a ring; treat it as gone.
                        self.dead = true;
                        break;
                    }
                }
                let e = &self.scratch;
                let key = self.route.get(&(shard, e.sock())).copied();
                match e.op() {
                    op::UDP_RECV | op::SOCK_ERROR => {
                        let Some(key) = key else { continue };
                        let st = self.queues.entry(key).or_default();
                        if e.op() == op::SOCK_ERROR {
                            st.icmp = Some(e.result());
                        } else {
                            let (off, len) = e.buf();
                            let d = Dgram {
                                shard,
                                off: off as usize,
                                len: len as usize,
                                ctl: e.arg() as usize,
                                from: e.addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                            };
                            if st.rx.len() >= CLIENT_QUEUE {
                                st.dropped += 1;
                                consume_slot(&self.region, &d);
                            } else {
                                st.rx.push_back(d);
                            }
                        }
                    }
                    op::UDP_SEND
                    | op::CLOSE
                    | op::TCP_SEND
                    | op::TCP_SHUTDOWN
                    | op::TCP_CONSUME => {
                        // Not awaited: keep only their errors.
                        if e.result() < 0 {
                            if let Some(key) = key {
                                self.queues
                                    .entry(key)
                                    .or_default()
                                    .error
                                    .get_or_insert(e.result());
                            }
                        }
                    }
                    op::TCP_ACCEPTED => {
                        let Some(key) = key else { continue };
                        let conn = e.arg() as u32;
                        let peer = e.addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                        let ckey = self.next_key;
                        self.next_key += 1;
                        self.route.insert((shard, conn), ckey);
                        self.queues.insert(
                            ckey,
                            SockState {
                                connected: Some(0),
                                rings: valid_rings(&self.region, e),
                                ..SockState::default()
                            },
                        );
                        self.queues
                            .entry(key)
                            .or_default()
                            .accepted
                            .push_back((ckey, shard, conn, peer));
                    }
                    op::TCP_CONNECTED
                    | op::TCP_DATA
                    | op::TCP_EOF
                    | op::TCP_SENT
                    | op::TCP_CLOSED => {
                        let Some(key) = key else { continue };
                        let st = self.queues.entry(key).or_default();
                        match e.op() {
                            op::TCP_CONNECTED => st.connected = Some(e.result()),
                            op::TCP_DATA => st.readable = st.readable.wrapping_add(e.arg()),
                            op::TCP_EOF => st.eof = true,
                            op::TCP_SENT => st.acked = st.acked.wrapping_add(e.arg()),
                            _ => st.closed = Some(e.result()),
                        }
                    }
                    opcode => {
                        let seq = e.seq();
                        let mut done = e.clone();
                        // A new socket's events may follow its completion at once:
                        // its route exists from here on, its key in `arg`.
                        if matches!(opcode, op::UDP_BIND | op::TCP_LISTEN | op::TCP_CONNECT)
                            && done.result() >= 0
                        {
                            let k = self.next_key;
                            self.next_key += 1;
                            self.route.insert((shard, done.sock()), k);
                            self.queues.insert(
                                k,
                                SockState {
                                    udp: opcode == op::UDP_BIND,
                                    rings: if opcode == op::TCP_CONNECT {
                                        valid_rings(&self.region, e)
                                    } else {
                                        None
                                    },
                                    ..SockState::default()
                                },
                            );
                            done.set_arg(k);
                        }
                        self.done.insert(seq, done);
                    }
                }
            }
        }
    }
}

/// The rings an entry names, if they lie inside the buffer area.
fn valid_rings(region: &Region, e: &Entry) -> Option<Rings> {
    let r = Rings::get(e)?;
    let ok = |off: u64, len: u64| {
        len > 0
            && region.payload(off as usize, len as usize).is_some()
            && len <= u64::from(u32::MAX)
    };
    (ok(r.tx_off, r.tx_len) && ok(r.rx_off, r.rx_len)).then_some(r)
}

/// Room a writer waits for before it writes: what it wants, or a quarter of the send
/// ring, whichever is less (like Linux's minimum write space), so that a writer on a
/// full ring writes in batches rather than a few bytes per acknowledgement.
fn wspace(ring: u64, want: u64) -> u64 {
    want.min(ring / 4).max(1)
}

/// Counts a datagram's receive slot consumed (the daemon may reuse it).
fn consume_slot(region: &Region, d: &Dgram) {
    if let Some(c) = region.payload_u32(d.ctl) {
        c.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// Copies `data` into the ring of `len` bytes at `off`, starting `pos` bytes in
/// (wrapping).
fn ring_write(region: &Region, off: u64, len: u64, pos: u64, data: &[u8]) {
    let start = (pos % len) as usize;
    let first = data.len().min(len as usize - start);
    if let Some(d) = region.payload_mut(off as usize + start, first) {
        d.copy_from_slice(&data[..first]);
    }
    if let Some(d) = region.payload_mut(off as usize, data.len() - first) {
        d.copy_from_slice(&data[first..]);
    }
}

/// Copies from the ring of `len` bytes at `off`, starting `pos` bytes in (wrapping),
/// into `out`.
fn ring_read(region: &Region, off: u64, len: u64, pos: u64, out: &mut [u8]) {
    let start = (pos % len) as usize;
    let first = out.len().min(len as usize - start);
    let n = out.len();
    if let Some(s) = region.payload(off as usize + start, first) {
        out[..first].copy_from_slice(s);
    }
    if let Some(s) = region.payload(off as usize, n - first) {
        out[first..].copy_from_slice(s);
    }
}

/// Spin, then yield, then sleep with growing pauses (up to 1 ms), checking now and then
/// that the daemon is still there.
struct Backoff {
    n: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { n: 0 }
    }

    fn wait(&mut self, c: &Client) -> io::Result<()> {
        self.n += 1;
        if self.n < 64 {
            std::hint::spin_loop();
        } else if self.n < 128 {
            std::thread::yield_now();
        } else {
            // Up to 2 ms: the daemon wakes us as soon as a completion arrives.
            let us = (1u64 << ((self.n - 128) / 4).min(11)).min(2_000);
            c.sleeper.sleep(Duration::from_micros(us));
            if self.n.is_multiple_of(16) {
                c.check_alive()?;
            }
        }
        Ok(())
    }
}

/// A UDP socket of the dataplane, like `std::net::UdpSocket`.
pub struct UdpSocket {
    client: Client,
    key: u64,
    /// The daemon's socket id on each shard.
    ids: Vec<u32>,
    local: SocketAddr,
    timeout: Option<Duration>,
    nonblocking: bool,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port; the unspecified address: every
    /// address of the family) on every shard of the daemon.
    pub fn bind(client: &Client, addr: SocketAddr) -> io::Result<UdpSocket> {
        let (key, ids, local) = client.bind_all(op::UDP_BIND, addr, 0)?;
        Ok(UdpSocket {
            client: client.clone(),
            key,
            ids,
            local,
            timeout: None,
            nonblocking: false,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Sets a timeout for [`UdpSocket::recv_from`] (`None`: wait forever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "zero timeout"));
        }
        self.timeout = t;
        Ok(())
    }

    /// Makes [`UdpSocket::recv_from`] return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.nonblocking = on;
        Ok(())
    }

    /// The pending error of this socket, cleared: a refused send, else the last ICMP
    /// error about a datagram it sent (port unreachable is `ConnectionRefused`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let mut g = self.client.lock();
        g.pump();
        Ok(g.queues
            .get_mut(&self.key)
            .and_then(|s| s.error.take().or_else(|| s.icmp.take()))
            .map(errno))
    }

    /// Sets the daemon-side receive queue of this socket, in bytes (whole 2 KiB
    /// datagrams, at least one), on every shard.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        let v = u32::try_from(bytes).unwrap_or(u32::MAX);
        for (shard, id) in self.ids.iter().enumerate() {
            self.client
                .setopt(shard as u32, *id, crate::shm::opt::SO_RCVBUF, v)?;
        }
        Ok(())
    }

    /// Datagrams dropped on the client side because nobody read them.
    pub fn dropped(&self) -> u64 {
        self.client
            .lock()
            .queues
            .get(&self.key)
            .map_or(0, |s| s.dropped)
    }

    fn pending_error(&self, g: &mut Inner) -> io::Result<()> {
        match g.queues.get_mut(&self.key).and_then(|s| s.error.take()) {
            Some(e) => Err(errno(e)),
            None => Ok(()),
        }
    }

    /// Queues `buf` as one datagram to `dst`; returns its length. At most
    /// [`DGRAM_MAX`] bytes. The datagram is copied once, into a send slot of the
    /// shared buffer area; the daemon builds the frame from the slot.
    pub fn send_to(&self, buf: &[u8], dst: SocketAddr) -> io::Result<usize> {
        if buf.len() > DGRAM_MAX {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        self.send_with(dst, |slot| {
            slot[..buf.len()].copy_from_slice(buf);
            buf.len()
        })
    }

    /// Sends one datagram to `dst` written in place: `fill` gets a send slot of the
    /// shared buffer area ([`DGRAM_MAX`] bytes) and returns the datagram's length
    /// (cut to the slot). The daemon builds the frame from the slot: the datagram's
    /// only copy. `fill` runs under the client's lock: it must not call the client.
    pub fn send_with(
        &self,
        dst: SocketAddr,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> io::Result<usize> {
        let mut fill = Some(fill);
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                if g.dead {
                    return Err(gone());
                }
                self.pending_error(&mut g)?;
                let next = g.udp_tx_next[0];
                let done = g
                    .region
                    .udp_tx_done(0)
                    .map_or(0, |d| d.load(std::sync::atomic::Ordering::Acquire));
                let ring_room = g.region.requests(0).is_some_and(|r| r.has_room());
                if next.wrapping_sub(done) < UDP_TX_SLOTS && ring_room {
                    let off = g.region.udp_tx_slot(0, next);
                    let n = match (g.region.payload_mut(off, DGRAM_MAX), fill.take()) {
                        (Some(slot), Some(f)) => f(slot).min(DGRAM_MAX),
                        _ => return Err(io::Error::from_raw_os_error(libc::EFAULT)),
                    };
                    g.seq += 1;
                    let mut e = Entry::new(op::UDP_SEND, g.seq);
                    e.set_sock(self.ids[0]);
                    e.set_addr(dst);
                    e.set_buf(off as u64, n as u32);
                    // Room was checked under the lock; we are the only producer.
                    if g.region.requests(0).is_some_and(|r| r.push(&e)) {
                        g.udp_tx_next[0] = next.wrapping_add(1);
                        g.wake(0);
                        return Ok(n);
                    }
                    return Err(gone());
                }
                g.pump();
            }
            backoff.wait(&self.client)?;
        }
    }

    /// Receives one datagram into `buf` (cut to its length), returning the datagram's
    /// length and sender; waits unless non-blocking, up to the read timeout. The
    /// datagram is copied once, from its receive slot in the shared buffer area (the
    /// daemon wrote it there from the frame).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_with(|d, from| {
            let n = d.len().min(buf.len());
            buf[..n].copy_from_slice(&d[..n]);
            (d.len(), from)
        })
    }

    /// Receives one datagram and lends it to `f` in place (its receive slot in the
    /// shared buffer area: the frame's payload was copied there once, and that is the
    /// only copy); the slot is reused after `f` returns. Waits like
    /// [`UdpSocket::recv_from`]. `f` runs under the client's lock: it must not call
    /// the client.
    pub fn recv_with<R>(&self, f: impl FnOnce(&[u8], SocketAddr) -> R) -> io::Result<R> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        let mut f = Some(f);
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                if let Some(d) = g.queues.get_mut(&self.key).and_then(|s| s.rx.pop_front()) {
                    let bytes = g.region.payload(d.off, d.len.min(DGRAM_MAX)).unwrap_or(&[]);
                    let r = f.take().map(|f| f(bytes, d.from));
                    consume_slot(&g.region, &d);
                    g.wake(d.shard);
                    if let Some(r) = r {
                        return Ok(r);
                    }
                }
                self.pending_error(&mut g)?;
                if g.dead {
                    return Err(gone());
                }
            }
            if self.nonblocking {
                return Err(io::Error::new(ErrorKind::WouldBlock, "no datagram"));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(ErrorKind::WouldBlock, "timed out"));
            }
            backoff.wait(&self.client)?;
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        for (shard, id) in self.ids.iter().enumerate() {
            let mut c = Entry::new(op::CLOSE, 0);
            c.set_sock(*id);
            let _ = self.client.submit(shard as u32, c);
        }
        self.client.forget(self.key, &self.ids);
    }
}

/// A TCP listener of the dataplane, like `std::net::TcpListener`: listening on every
/// shard (a connection lives on the shard its packets arrive at).
pub struct TcpListener {
    client: Client,
    key: u64,
    ids: Vec<u32>,
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` (the port must be given) with a backlog of 128 per shard.
    pub fn bind(client: &Client, addr: SocketAddr) -> io::Result<TcpListener> {
        let (key, ids, local) = client.bind_all(op::TCP_LISTEN, addr, 128)?;
        Ok(TcpListener {
            client: client.clone(),
            key,
            ids,
            local,
        })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// The send ring (SO_SNDBUF) of connections accepted from now on, in bytes (never
    /// less than the stack's own send buffer), out of the application's buffer memory.
    pub fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.setopt_all(crate::shm::opt::SO_SNDBUF, bytes)
    }

    /// The receive ring (SO_RCVBUF) of connections accepted from now on, in bytes
    /// (never less than the stack's own receive buffer).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.setopt_all(crate::shm::opt::SO_RCVBUF, bytes)
    }

    fn setopt_all(&self, name: u32, bytes: usize) -> io::Result<()> {
        let v = u32::try_from(bytes).unwrap_or(u32::MAX);
        for (shard, id) in self.ids.iter().enumerate() {
            self.client.setopt(shard as u32, *id, name, v)?;
        }
        Ok(())
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                let next = g
                    .queues
                    .get_mut(&self.key)
                    .and_then(|s| s.accepted.pop_front());
                if let Some((key, shard, id, peer)) = next {
                    let s = TcpStream {
                        client: self.client.clone(),
                        key,
                        shard,
                        id,
                        local: self.local,
                        peer,
                        timeout: None,
                    };
                    return Ok((s, peer));
                }
                if g.dead {
                    return Err(gone());
                }
            }
            backoff.wait(&self.client)?;
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        for (shard, id) in self.ids.iter().enumerate() {
            let mut c = Entry::new(op::CLOSE, 0);
            c.set_sock(*id);
            let _ = self.client.submit(shard as u32, c);
        }
        self.client.forget(self.key, &self.ids);
    }
}

/// A TCP connection of the dataplane, like `std::net::TcpStream` (`Read`, `Write`).
pub struct TcpStream {
    client: Client,
    key: u64,
    shard: u32,
    id: u32,
    local: SocketAddr,
    peer: SocketAddr,
    timeout: Option<Duration>,
}

impl TcpStream {
    /// Connects to `remote` and waits until the connection is established.
    pub fn connect(client: &Client, remote: SocketAddr) -> io::Result<TcpStream> {
        Self::connect_with_buffers(client, remote, 0, 0)
    }

    /// Like [`TcpStream::connect`], with the send and receive rings of `send` and
    /// `recv` bytes (SO_SNDBUF, SO_RCVBUF; 0: the defaults, 512 and 256 KiB; never less than
    /// the stack's own buffers). They come out of the application's buffer memory:
    /// `ENOBUFS` when it has no room.
    pub fn connect_with_buffers(
        client: &Client,
        remote: SocketAddr,
        send: usize,
        recv: usize,
    ) -> io::Result<TcpStream> {
        let clamp = |v: usize| u64::from(u32::try_from(v).unwrap_or(u32::MAX));
        let shard = {
            let mut g = client.lock();
            let s = g.next_shard % g.shards.max(1);
            g.next_shard = g.next_shard.wrapping_add(1);
            s
        };
        let mut e = Entry::new(op::TCP_CONNECT, 0);
        e.set_addr(remote);
        e.set_arg((clamp(send) << 32) | clamp(recv));
        let c = client.call(shard, e)?;
        let s = TcpStream {
            client: client.clone(),
            key: c.arg(),
            shard,
            id: c.sock(),
            local: c.addr().unwrap_or(remote),
            peer: remote,
            timeout: None,
        };
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = client.lock();
                g.pump();
                match g.queues.get(&s.key).and_then(|st| st.connected) {
                    Some(0) => return Ok(s),
                    Some(r) => return Err(errno(r)),
                    None => {}
                }
                if g.dead {
                    return Err(gone());
                }
            }
            backoff.wait(client)?;
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Keepalive probes after `idle` without traffic (whole seconds, at least 1), or
    /// none; the connection is dropped when the peer stops answering them.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        let secs = idle.map_or(0, |d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
        self.client
            .setopt(self.shard, self.id, crate::shm::opt::SO_KEEPALIVE, secs)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.client.setopt(
            self.shard,
            self.id,
            crate::shm::opt::TCP_NODELAY,
            u32::from(on),
        )
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// Sets a timeout for reads (`None`: wait forever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.timeout = t;
        Ok(())
    }

    /// Ends our direction (`Write` or `Both`: FIN after the queued bytes).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        if how == std::net::Shutdown::Read {
            return Ok(());
        }
        let mut e = Entry::new(op::TCP_SHUTDOWN, 0);
        e.set_sock(self.id);
        self.client.submit(self.shard, e).map(|_| ())
    }

    /// Waits until every byte written has entered the dataplane's stack (the daemon
    /// took every send request before a no-op queued behind them).
    fn drain(&self) -> io::Result<()> {
        let seq = self.client.submit(self.shard, Entry::new(op::NOP, 0))?;
        self.client.wait(seq, None)?;
        let mut g = self.client.lock();
        match g.queues.get_mut(&self.key) {
            Some(st) => match st.closed.or(st.error.take()) {
                Some(r) => Err(errno(r)),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Reads in place: `f` gets the received bytes that lie contiguously in the
    /// connection's receive ring in the shared buffer area (the frames' payload was
    /// copied there once, and that is the only copy) and returns how many it took;
    /// their room is then given back. Waits like [`Read::read`]; `Ok(0)` at the end of
    /// the stream. `f` runs under the client's lock: it must not call the client.
    pub fn read_with(&mut self, f: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        let mut f = Some(f);
        self.read_inner(&mut |region, r, pos, avail| {
            let start = pos % r.rx_len;
            let n = avail.min(r.rx_len - start) as usize;
            let bytes = region
                .payload((r.rx_off + start) as usize, n)
                .unwrap_or(&[]);
            f.take().map_or(0, |f| f(bytes).min(bytes.len()))
        })
    }

    /// Waits for readable bytes, then lets `take(region, rings, position, available)`
    /// take some; posts their consumption.
    fn read_inner(
        &mut self,
        take: &mut dyn FnMut(&Region, &Rings, u64, u64) -> usize,
    ) -> io::Result<usize> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                let dead = g.dead;
                let g = &mut *g;
                let Some(st) = g.queues.get_mut(&self.key) else {
                    return Err(io::Error::from_raw_os_error(libc::EBADF));
                };
                let avail = st.readable.wrapping_sub(st.consumed);
                if let (Some(r), true) = (st.rings, avail > 0) {
                    let n = take(&g.region, &r, st.consumed, avail) as u64;
                    st.consumed = st.consumed.wrapping_add(n);
                    st.owed += n;
                    let owed = st.owed;
                    if owed > 0 && g.post_consume(self.shard, self.id, owed) {
                        if let Some(st) = g.queues.get_mut(&self.key) {
                            st.owed = 0;
                        }
                    }
                    return Ok(n as usize);
                }
                if st.owed > 0 {
                    let owed = st.owed;
                    if g.post_consume(self.shard, self.id, owed) {
                        if let Some(st) = g.queues.get_mut(&self.key) {
                            st.owed = 0;
                        }
                    }
                }
                let Some(st) = g.queues.get(&self.key) else {
                    return Err(io::Error::from_raw_os_error(libc::EBADF));
                };
                if st.eof {
                    return Ok(0);
                }
                if let Some(r) = st.closed {
                    return Err(errno(r));
                }
                if dead {
                    return Err(gone());
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(ErrorKind::WouldBlock, "timed out"));
            }
            backoff.wait(&self.client)?;
        }
    }

    /// Writes in place: `f` gets the free room that lies contiguously in the
    /// connection's send ring in the shared buffer area and returns how many bytes it
    /// wrote there; the stack builds frames from the ring, so that is the only copy.
    /// Waits for room. `f` runs under the client's lock: it must not call the client.
    pub fn write_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> io::Result<usize> {
        let mut f = Some(f);
        self.write_inner(u64::MAX, &mut |region, r, pos, free| {
            let start = pos % r.tx_len;
            let n = free.min(r.tx_len - start) as usize;
            match (region.payload_mut((r.tx_off + start) as usize, n), f.take()) {
                (Some(room), Some(f)) => f(room).min(n),
                _ => 0,
            }
        })
    }

    /// Waits for room for `want` bytes or a quarter of the ring ([`wspace`]), then lets
    /// `put(region, rings, position, free)` write some; posts them.
    fn write_inner(
        &mut self,
        want: u64,
        put: &mut dyn FnMut(&Region, &Rings, u64, u64) -> usize,
    ) -> io::Result<usize> {
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                if g.dead {
                    return Err(gone());
                }
                let g = &mut *g;
                let Some(st) = g.queues.get_mut(&self.key) else {
                    return Err(io::Error::from_raw_os_error(libc::EBADF));
                };
                if let Some(r) = st.closed.or(st.error.take()) {
                    return Err(errno(r));
                }
                let Some(r) = st.rings else {
                    return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
                };
                let used = st.committed.wrapping_sub(st.acked).min(r.tx_len);
                let free = r.tx_len - used;
                let room = g.region.requests(self.shard).is_some_and(|q| q.has_room());
                if free >= wspace(r.tx_len, want) && room {
                    let pos = st.committed;
                    let n = put(&g.region, &r, pos, free) as u64;
                    if n == 0 {
                        return Ok(0);
                    }
                    g.seq += 1;
                    let mut e = Entry::new(op::TCP_SEND, g.seq);
                    e.set_sock(self.id);
                    e.set_arg(n);
                    if !g.region.requests(self.shard).is_some_and(|q| q.push(&e)) {
                        return Err(gone());
                    }
                    if let Some(st) = g.queues.get_mut(&self.key) {
                        st.committed = st.committed.wrapping_add(n);
                    }
                    g.wake(self.shard);
                    return Ok(n as usize);
                }
            }
            backoff.wait(&self.client)?;
        }
    }
}

impl Read for TcpStream {
    /// Copies received bytes out of the shared receive ring (the second copy after
    /// frame to ring; [`TcpStream::read_with`] avoids it).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_inner(&mut |region, r, pos, avail| {
            let n = (buf.len() as u64).min(avail) as usize;
            ring_read(region, r.rx_off, r.rx_len, pos, &mut buf[..n]);
            n
        })
    }
}

impl Write for TcpStream {
    /// Copies `buf` into the shared send ring (the stack then builds frames from the
    /// ring: a second copy; [`TcpStream::write_with`] avoids the first).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.write_inner(buf.len() as u64, &mut |region, r, pos, free| {
            let n = (buf.len() as u64).min(free) as usize;
            ring_write(region, r.tx_off, r.tx_len, pos, &buf[..n]);
            n
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let mut c = Entry::new(op::CLOSE, 0);
        c.set_sock(self.id);
        let _ = self.client.submit(self.shard, c);
        self.client.forget_one(self.key, self.shard, self.id);
    }
}

impl Client {
    fn setopt(&self, shard: u32, sock: u32, name: u32, value: u32) -> io::Result<()> {
        let mut e = Entry::new(op::SETOPT, 0);
        e.set_sock(sock);
        e.set_arg((u64::from(name) << 32) | u64::from(value));
        self.call(shard, e).map(|_| ())
    }

    fn forget_one(&self, key: u64, shard: u32, id: u32) {
        let mut g = self.lock();
        g.route.remove(&(shard, id));
        g.queues.remove(&key);
    }
}

/// What a [`Poller`] waits for on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Data (or a connection, an end of stream, an error) to read.
    pub readable: bool,
    /// Room to write (TCP: a quarter of the send ring free, or more).
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// A ready socket, as [`Poller::wait`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token the socket was registered with.
    pub token: usize,
    /// Something to read: a datagram, bytes, a connection to accept, the end of the
    /// stream or an error.
    pub readable: bool,
    /// Room to write.
    pub writable: bool,
}

/// A socket a [`Poller`] can watch.
pub trait Source {
    /// The client and the socket's key in it.
    fn source(&self) -> (&Client, u64);
}

impl Source for UdpSocket {
    fn source(&self) -> (&Client, u64) {
        (&self.client, self.key)
    }
}

impl Source for TcpListener {
    fn source(&self) -> (&Client, u64) {
        (&self.client, self.key)
    }
}

impl Source for TcpStream {
    fn source(&self) -> (&Client, u64) {
        (&self.client, self.key)
    }
}

/// Readiness waits on many sockets of one client, like a level-triggered `epoll`:
/// register sockets with a token and an [`Interest`], then [`Poller::wait`].
pub struct Poller {
    client: Client,
    watched: Vec<(usize, u64, Interest)>,
}

impl Poller {
    /// A poller for the sockets of `client`.
    pub fn new(client: &Client) -> Poller {
        Poller {
            client: client.clone(),
            watched: Vec::new(),
        }
    }

    /// Watches `s` under `token` (replacing an earlier registration of the token).
    pub fn register(
        &mut self,
        s: &impl Source,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let (c, key) = s.source();
        if !Arc::ptr_eq(&c.inner, &self.client.inner) {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "a socket of another client",
            ));
        }
        self.watched.retain(|w| w.0 != token);
        self.watched.push((token, key, interest));
        Ok(())
    }

    /// Stops watching `token`.
    pub fn deregister(&mut self, token: usize) {
        self.watched.retain(|w| w.0 != token);
    }

    /// Fills `events` with the ready sockets, waiting up to `timeout` (`None`: until one
    /// is ready); returns how many.
    pub fn wait(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        events.clear();
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                for &(token, key, want) in &self.watched {
                    let Some(st) = g.queues.get(&key) else {
                        // Closed under us: report it readable, the next call says why.
                        events.push(Event {
                            token,
                            readable: true,
                            writable: false,
                        });
                        continue;
                    };
                    let readable = !st.rx.is_empty()
                        || st.readable != st.consumed
                        || !st.accepted.is_empty()
                        || st.eof
                        || st.closed.is_some()
                        || st.error.is_some()
                        || st.connected.is_some_and(|r| r < 0);
                    // UDP sends are queued, never refused for room.
                    let writable = st.udp
                        || (st.connected == Some(0)
                            && st.closed.is_none()
                            && st.rings.is_some_and(|r| {
                                let used = st.committed.wrapping_sub(st.acked).min(r.tx_len);
                                r.tx_len - used >= wspace(r.tx_len, u64::MAX)
                            }));
                    let (r, w) = (readable && want.readable, writable && want.writable);
                    if r || w {
                        events.push(Event {
                            token,
                            readable: r,
                            writable: w,
                        });
                    }
                }
                if !events.is_empty() {
                    return Ok(events.len());
                }
                if g.dead {
                    return Err(gone());
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(0);
            }
            backoff.wait(&self.client)?;
        }
    }
}
