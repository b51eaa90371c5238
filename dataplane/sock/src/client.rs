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

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::shm::{op, Entry, Region, DATA_MAX};

/// Received datagrams a socket keeps on the client side before it drops.
const CLIENT_QUEUE: usize = 1024;

struct Inner {
    region: Region,
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
}

#[derive(Default)]
struct SockState {
    rx: VecDeque<(Vec<u8>, SocketAddr)>,
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
        (&stream).write_all(crate::hello().as_bytes())?;
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
        Ok(Client {
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
                match e.op() {
                    op::UDP_RECV | op::SOCK_ERROR => {
                        let Some(&key) = self.route.get(&(shard, e.sock())) else {
                            continue;
                        };
                        let st = self.queues.entry(key).or_default();
                        if e.op() == op::SOCK_ERROR {
                            st.icmp = Some(e.result());
                        } else if let Some(from) = e.addr() {
                            if st.rx.len() >= CLIENT_QUEUE {
                                st.dropped += 1;
                            } else {
                                st.rx.push_back((e.data().to_vec(), from));
                            }
                        }
                    }
                    op::UDP_SEND | op::CLOSE => {
                        // Queued sends are not awaited: keep only their errors.
                        if e.result() < 0 {
                            if let Some(&key) = self.route.get(&(shard, e.sock())) {
                                self.queues
                                    .entry(key)
                                    .or_default()
                                    .error
                                    .get_or_insert(e.result());
                            }
                        }
                    }
                    _ => {
                        let seq = e.seq();
                        self.done.insert(seq, e.clone());
                    }
                }
            }
        }
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
            let us = (1u64 << ((self.n - 128) / 8).min(10)).min(1000);
            std::thread::sleep(Duration::from_micros(us));
            if self.n % 16 == 0 {
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
        let shards = client.shards();
        let mut e = Entry::new(op::UDP_BIND, 0);
        e.set_addr(addr);
        let first = client.call(0, e)?;
        let local = first
            .addr()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "bind answered no address"))?;
        let mut ids = vec![first.sock()];
        for s in 1..shards {
            let mut e = Entry::new(op::UDP_BIND, 0);
            e.set_addr(local);
            match client.call(s, e) {
                Ok(c) => ids.push(c.sock()),
                Err(err) => {
                    for (shard, id) in ids.iter().enumerate() {
                        let mut c = Entry::new(op::CLOSE, 0);
                        c.set_sock(*id);
                        let _ = client.submit(shard as u32, c);
                    }
                    return Err(err);
                }
            }
        }
        let key = {
            let mut g = client.lock();
            let key = g.next_key;
            g.next_key += 1;
            for (shard, id) in ids.iter().enumerate() {
                g.route.insert((shard as u32, *id), key);
            }
            g.queues.insert(key, SockState::default());
            key
        };
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
    /// [`DATA_MAX`] bytes.
    pub fn send_to(&self, buf: &[u8], dst: SocketAddr) -> io::Result<usize> {
        if buf.len() > DATA_MAX {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        {
            let mut g = self.client.lock();
            self.pending_error(&mut g)?;
        }
        let mut e = Entry::new(op::UDP_SEND, 0);
        e.set_sock(self.ids[0]);
        e.set_addr(dst);
        e.set_data(buf);
        self.client.submit(0, e)?;
        Ok(buf.len())
    }

    /// Receives one datagram into `buf` (cut to its length), returning the datagram's
    /// length and sender; waits unless non-blocking, up to the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut backoff = Backoff::new();
        loop {
            {
                let mut g = self.client.lock();
                g.pump();
                if let Some((d, from)) = g.queues.get_mut(&self.key).and_then(|s| s.rx.pop_front())
                {
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    return Ok((d.len(), from));
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
        let mut g = self.client.lock();
        for (shard, id) in self.ids.iter().enumerate() {
            g.route.remove(&(shard as u32, *id));
        }
        g.queues.remove(&self.key);
    }
}
