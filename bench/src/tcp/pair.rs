//! Two stacks in one process joined by in-memory frames: request/response, connection
//! rate and idle connections.

use std::net::SocketAddr;
use std::time::Instant as WallInstant;

use stack::{Frame, Instant, PortId, SocketError, Stack, TcpConfig, TcpHandle};

use super::host;

/// Client address (stack a) and server address (stack b).
pub(crate) const A_IP: &str = "10.0.0.1/24";
/// Server address (stack b).
pub(crate) const B_IP: &str = "10.0.0.2/24";

/// Stack a (client) and stack b (server) on one link, with the wall clock as theirs.
pub(crate) struct Pair {
    pub(crate) a: Stack,
    pub(crate) b: Stack,
    start: WallInstant,
    frames: Vec<Frame>,
}

/// The server's address at `port`.
pub(crate) fn server(port: u16) -> SocketAddr {
    SocketAddr::new([10, 0, 0, 2].into(), port)
}

impl Pair {
    pub(crate) fn new(tcp: &TcpConfig, mtu: u16, pool_frames: u32) -> Pair {
        Pair {
            a: host("a", A_IP, 1, mtu, tcp.clone(), pool_frames),
            b: host("b", B_IP, 2, mtu, tcp.clone(), pool_frames),
            start: WallInstant::now(),
            frames: Vec::with_capacity(1024),
        }
    }

    /// The stacks' clock.
    pub(crate) fn now(&self) -> Instant {
        Instant::from_nanos(1_000_000_000 + self.start.elapsed().as_nanos() as u64)
    }

    /// Moves a's frames to b, then b's to a, then runs the timers that are due.
    pub(crate) fn step(&mut self) -> Instant {
        let t = self.now();
        let p = PortId(0);
        self.a.drain_tx(p, &mut self.frames, usize::MAX);
        if !self.frames.is_empty() {
            self.b.receive_batch(t, p, &mut self.frames);
            self.frames.clear();
        }
        self.b.drain_tx(p, &mut self.frames, usize::MAX);
        if !self.frames.is_empty() {
            self.a.receive_batch(t, p, &mut self.frames);
            self.frames.clear();
        }
        for st in [&mut self.a, &mut self.b] {
            if st.poll_at().is_some_and(|at| at <= t) {
                st.poll(t);
            }
        }
        t
    }

    /// Steps until `f` gives a value; an error after 10 s without one.
    pub(crate) fn until<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Pair) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        let t0 = WallInstant::now();
        let mut i = 0u32;
        loop {
            if let Some(v) = f(self)? {
                return Ok(v);
            }
            self.step();
            i = i.wrapping_add(1);
            if i.is_multiple_of(1024) && t0.elapsed().as_secs() > 10 {
                return Err(format!("stalled waiting for {what}"));
            }
        }
    }

    /// Reads exactly `buf.len()` bytes from `h` on the chosen stack, stepping meanwhile.
    pub(crate) fn read_exact(
        &mut self,
        on_b: bool,
        h: TcpHandle,
        buf: &mut [u8],
    ) -> Result<(), String> {
        let mut got = 0;
        self.until("data", |p| {
            let st = if on_b { &mut p.b } else { &mut p.a };
            loop {
                match st.tcp_recv(h, &mut buf[got..]) {
                    Ok(0) if got < buf.len() => return Err("end of stream".into()),
                    Ok(n) => got += n,
                    Err(SocketError::WouldBlock) => break,
                    Err(e) => return Err(format!("recv: {e}")),
                }
                if got == buf.len() {
                    break;
                }
            }
            Ok((got == buf.len()).then_some(()))
        })
    }

    /// Writes all of `data` to `h` on the chosen stack, stepping when the buffer is full.
    pub(crate) fn write_all(
        &mut self,
        on_b: bool,
        h: TcpHandle,
        data: &[u8],
    ) -> Result<(), String> {
        let mut sent = 0;
        self.until("send space", |p| {
            let t = p.now();
            let st = if on_b { &mut p.b } else { &mut p.a };
            sent += st
                .tcp_send(t, h, &data[sent..])
                .map_err(|e| format!("send: {e}"))?;
            Ok((sent == data.len()).then_some(()))
        })
    }

    /// Connects a to `server` and accepts on `l`: (client, server) handles.
    pub(crate) fn connect(
        &mut self,
        l: TcpHandle,
        to: SocketAddr,
    ) -> Result<(TcpHandle, TcpHandle), String> {
        let t = self.now();
        let c = self
            .a
            .tcp_connect(t, to, None)
            .map_err(|e| format!("connect: {e}"))?;
        let s = self.until("accept", |p| Ok(p.b.tcp_accept(l)))?;
        Ok((c, s))
    }
}

/// The size of a request and of a response.
pub(crate) const MSG: usize = 64;

/// Request/response transactions per second on one connection for about `secs`:
/// (transactions, seconds).
pub(crate) fn rr(tcp: &TcpConfig, mtu: u16, secs: f64) -> Result<(u64, f64), String> {
    let mut p = Pair::new(tcp, mtu, 1024);
    let l =
        p.b.tcp_listen(server(5002), 4)
            .map_err(|e| format!("listen: {e}"))?;
    let (c, s) = p.connect(l, server(5002))?;
    p.a.tcp_set_nodelay(c, true).map_err(|e| e.to_string())?;
    p.b.tcp_set_nodelay(s, true).map_err(|e| e.to_string())?;
    let req = [0x11u8; MSG];
    let resp = [0x22u8; MSG];
    let mut buf = [0u8; MSG];
    let mut one = |p: &mut Pair| -> Result<(), String> {
        p.write_all(false, c, &req)?;
        p.read_exact(true, s, &mut buf)?;
        p.write_all(true, s, &resp)?;
        p.read_exact(false, c, &mut buf)
    };
    for _ in 0..1000 {
        one(&mut p)?;
    }
    let t0 = WallInstant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        for _ in 0..256 {
            one(&mut p)?;
        }
        n += 256;
    }
    Ok((n, t0.elapsed().as_secs_f64()))
}

/// Listener ports of the connection-rate and idle runs (each gives the client a range
/// of ephemeral ports).
const FIRST_PORT: u16 = 6000;

/// Ephemeral ports per (client address, server address and port).
const EPHEMERAL_PER_PORT: usize = 16384;

/// New connections per second for about `secs` (at most `max`): connect, request,
/// response, the client closes, the server reads the end and closes, until the server's
/// socket is gone (the client's stays in TIME-WAIT). (connections, seconds, sockets left).
pub(crate) fn cps(
    tcp: &TcpConfig,
    mtu: u16,
    secs: f64,
    max: usize,
) -> Result<(u64, f64, usize), String> {
    let ports = max.div_ceil(EPHEMERAL_PER_PORT - 64).max(1);
    let cfg = TcpConfig {
        max_sockets: max + ports + 16,
        ..tcp.clone()
    };
    let mut p = Pair::new(&cfg, mtu, 1024);
    let ls = (0..ports)
        .map(|i| p.b.tcp_listen(server(FIRST_PORT + i as u16), 64))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("listen: {e}"))?;
    let req = [0x11u8; MSG];
    let resp = [0x22u8; MSG];
    let mut buf = [0u8; MSG];
    let t0 = WallInstant::now();
    let mut n = 0u64;
    while (n as usize) < max && (!n.is_multiple_of(64) || t0.elapsed().as_secs_f64() < secs) {
        let i = n as usize % ports;
        let (c, s) = p.connect(ls[i], server(FIRST_PORT + i as u16))?;
        p.write_all(false, c, &req)?;
        p.read_exact(true, s, &mut buf)?;
        p.write_all(true, s, &resp)?;
        p.read_exact(false, c, &mut buf)?;
        let t = p.now();
        p.a.tcp_close(t, c).map_err(|e| format!("close: {e}"))?;
        p.until("the client's FIN", |p| match p.b.tcp_recv(s, &mut buf) {
            Ok(0) => Ok(Some(())),
            Ok(_) => Err("unexpected data".into()),
            Err(SocketError::WouldBlock) => Ok(None),
            Err(e) => Err(format!("recv: {e}")),
        })?;
        let t = p.now();
        p.b.tcp_close(t, s).map_err(|e| format!("close: {e}"))?;
        p.until("the server's socket to go", |p| {
            Ok(p.b.tcp_state(s).is_none().then_some(()))
        })?;
        n += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((n, secs, p.b.tcp_socket_count() - ports))
}

/// Heap figures of `n` idle connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle {
    /// Connections established.
    pub(crate) conns: usize,
    /// Heap bytes per socket (one end of a connection), all included.
    pub(crate) per_socket: f64,
    /// Of which allocated when the stacks were built (socket slab, tables, timer heap
    /// sized by `max_sockets`), per socket.
    pub(crate) eager_per_socket: f64,
    /// Seconds to establish them.
    pub(crate) secs: f64,
}

/// Establishes `n` idle connections between the stacks and measures the heap they
/// take from the counting allocator (`None` without it).
pub(crate) fn idle(tcp: &TcpConfig, mtu: u16, n: usize) -> Result<Option<Idle>, String> {
    let Some(base0) = crate::lpm::counting::live() else {
        return Ok(None);
    };
    let ports = n.div_ceil(EPHEMERAL_PER_PORT - 64).max(1);
    let small = TcpConfig {
        max_sockets: ports + 16,
        ..tcp.clone()
    };
    // The stacks' own heap (frame pools, ports) without the per-socket tables.
    let fixed = {
        let p = Pair::new(&small, mtu, 4096);
        let after = crate::lpm::counting::live().unwrap_or(0);
        drop(p);
        after.saturating_sub(base0)
    };
    let mut handles: Vec<TcpHandle> = Vec::with_capacity(2 * n);
    let mut ls = Vec::with_capacity(ports);
    let cfg = TcpConfig {
        max_sockets: n + ports + 16,
        ..tcp.clone()
    };
    let live0 = crate::lpm::counting::live().unwrap_or(0);
    let mut p = Pair::new(&cfg, mtu, 4096);
    let live1 = crate::lpm::counting::live().unwrap_or(0);
    for i in 0..ports {
        ls.push(
            p.b.tcp_listen(server(FIRST_PORT + i as u16), 1024)
                .map_err(|e| format!("listen: {e}"))?,
        );
    }
    let t0 = WallInstant::now();
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(512);
        for k in 0..batch {
            let i = (made + k) % ports;
            let t = p.now();
            let c =
                p.a.tcp_connect(t, server(FIRST_PORT + i as u16), None)
                    .map_err(|e| format!("connect {}: {e}", made + k))?;
            handles.push(c);
        }
        let mut accepted = 0;
        p.until("accepts", |p| {
            for &l in &ls {
                while let Some(s) = p.b.tcp_accept(l) {
                    handles.push(s);
                    accepted += 1;
                }
            }
            Ok((accepted == batch).then_some(()))
        })?;
        made += batch;
    }
    // Let the last ACKs land.
    for _ in 0..8 {
        p.step();
    }
    let secs = t0.elapsed().as_secs_f64();
    let live2 = crate::lpm::counting::live().unwrap_or(0);
    let sockets = 2.0 * n as f64;
    let eager = live1.saturating_sub(live0).saturating_sub(fixed) as f64;
    let total = live2.saturating_sub(live0).saturating_sub(fixed) as f64;
    drop(p);
    Ok(Some(Idle {
        conns: n,
        per_socket: total / sockets,
        eager_per_socket: eager / sockets,
        secs,
    }))
}
