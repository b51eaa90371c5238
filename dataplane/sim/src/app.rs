//! Applications that run on simulated nodes: ping (ICMP echo), constant-rate UDP flows
//! and TCP flows (bulk transfers).
//!
//! An application is driven by the runtime: `tick` when its timer fires (it sends and
//! returns when it next wants to run), `on_event` for stack events addressed to it, and
//! for a UDP flow `on_datagram` for each datagram its sink received. A TCP flow's client
//! is also polled every time the runtime services its node (it sends as the send buffer
//! frees up), and its server side is a listener the runtime polls on the node that owns
//! the destination: it accepts, reads and hands the bytes to the flow to verify. The
//! applications are an enum rather than trait objects so that the summary can show each
//! kind's own statistics.
//!
//! **Extension point:** a new kind is a new [`AppConfig`] and [`AppState`] variant and
//! its arm in the `match`es of [`App`]; a receiving side is a sink the runtime polls
//! when it services the node (as `Sim` does for UDP sinks and TCP listeners in
//! `world.rs`), and its line in `summary.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use stack::stack::{IcmpErrorKind, UdpHandle};
use stack::{Duration, EchoRequest, Event, Instant, SocketError, Stack, TcpHandle};

use crate::{AppId, NodeId};

/// Running statistics of a delay (RTT or one-way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DelayStats {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Sum of the samples in nanoseconds.
    pub sum_ns: u128,
}

impl DelayStats {
    /// Adds a sample.
    pub fn add(&mut self, d: Duration) {
        if self.count == 0 || d < self.min {
            self.min = d;
        }
        if d > self.max {
            self.max = d;
        }
        self.count += 1;
        self.sum_ns += u128::from(d.as_nanos());
    }

    /// The mean, or zero without samples.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.sum_ns / u128::from(self.count)) as u64)
        }
    }
}

impl fmt::Display for DelayStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("-");
        }
        write!(
            f,
            "{}/{}/{}",
            fmt_duration(self.min),
            fmt_duration(self.mean()),
            fmt_duration(self.max)
        )
    }
}

/// A duration as milliseconds with microsecond precision ("12.345ms").
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_nanos() / 1_000;
    format!("{}.{:03}ms", us / 1_000, us % 1_000)
}

/// A ping: echo requests at a fixed interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// The destination.
    pub dst: IpAddr,
    /// First request at this time.
    pub start: Instant,
    /// Time between requests.
    pub interval: Duration,
    /// Requests to send; `None` sends until the run ends.
    pub count: Option<u64>,
    /// ICMP data bytes per request.
    pub size: usize,
    /// TTL / hop limit; the stack's default when `None`.
    pub ttl: Option<u8>,
}

/// A constant-rate UDP flow: datagrams of `size` bytes every `interval` from `start`
/// until `stop`, each carrying the flow id, a sequence number and its send time, to a
/// sink the runtime binds on the node that owns `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFlowConfig {
    /// Destination address and port.
    pub dst: SocketAddr,
    /// First datagram at this time.
    pub start: Instant,
    /// No datagram at or after this time; `None` sends until the run ends.
    pub stop: Option<Instant>,
    /// Time between datagrams.
    pub interval: Duration,
    /// Payload bytes per datagram (at least [`UDP_HEADER`]).
    pub size: usize,
}

impl UdpFlowConfig {
    /// The interval that sends `bits_per_s` of payload in datagrams of `size` bytes.
    pub fn interval_for_rate(bits_per_s: u64, size: usize) -> Duration {
        let bits = size as u128 * 8 * 1_000_000_000;
        Duration::from_nanos((bits / u128::from(bits_per_s.max(1))).max(1) as u64)
    }
}

/// Bytes of a flow datagram's own header: flow id (4), sequence number (8), send time in
/// nanoseconds (8), all big-endian.
pub const UDP_HEADER: usize = 20;

/// A TCP flow: at `start` the client connects to `dst`, sends `bytes` bytes of a
/// pattern that depends on the flow and the offset ([`tcp_pattern`]), and shuts its
/// direction down; a listener the runtime opens on the node that owns `dst` accepts,
/// reads to the end of the stream, verifies every byte and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFlowConfig {
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The client connects at this time.
    pub start: Instant,
    /// Bytes to transfer.
    pub bytes: u64,
}

/// Configuration of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppConfig {
    /// ICMP echo.
    Ping(PingConfig),
    /// A constant-rate UDP flow.
    Udp(UdpFlowConfig),
    /// A TCP bulk transfer.
    Tcp(TcpFlowConfig),
}

/// An ICMP error a ping received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingError {
    /// When it arrived.
    pub at: Instant,
    /// Sequence number of the request it quotes.
    pub seq: u16,
    /// Who sent it.
    pub from: IpAddr,
    /// What it says.
    pub kind: IcmpErrorKind,
}

/// Errors a ping keeps in full (more are only counted).
pub const MAX_KEPT_ERRORS: usize = 1024;

/// What a ping saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingStats {
    /// Requests handed to the stack.
    pub sent: u64,
    /// Requests the stack refused to send (no route, no source address, ...).
    pub send_failures: u64,
    /// Replies matched to an outstanding request.
    pub received: u64,
    /// Replies for a request already answered (or never sent).
    pub duplicates: u64,
    /// ICMP errors about our requests.
    pub errors: u64,
    /// The first [`MAX_KEPT_ERRORS`] errors in full.
    pub error_log: Vec<PingError>,
    /// Round-trip times.
    pub rtt: DelayStats,
}

impl PingStats {
    /// Requests with neither a reply nor an error.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received + self.errors)
    }
}

/// A running ping.
#[derive(Debug)]
pub struct Ping {
    config: PingConfig,
    ident: u16,
    next_seq: u16,
    outstanding: BTreeMap<u16, Instant>,
    stats: PingStats,
}

impl Ping {
    fn new(config: PingConfig, ident: u16) -> Self {
        Ping {
            config,
            ident,
            next_seq: 1,
            outstanding: BTreeMap::new(),
            stats: PingStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PingConfig {
        &self.config
    }

    /// The echo identifier.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// What it saw so far.
    pub fn stats(&self) -> &PingStats {
        &self.stats
    }

    fn tick(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        let done = self.stats.sent + self.stats.send_failures;
        if self.config.count.is_some_and(|c| done >= c) {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let req = EchoRequest {
            dst: self.config.dst,
            ident: self.ident,
            seq,
            data_len: self.config.size,
            ttl: self.config.ttl,
        };
        match stack.send_echo_request(now, req) {
            Ok(()) => {
                self.stats.sent += 1;
                self.outstanding.insert(seq, now);
            }
            Err(_) => self.stats.send_failures += 1,
        }
        let done = done + 1;
        if self.config.count.is_some_and(|c| done >= c) {
            None
        } else {
            Some(now + self.config.interval)
        }
    }

    fn on_event(&mut self, e: &Event) {
        match *e {
            Event::EchoReply { at, seq, .. } => match self.outstanding.remove(&seq) {
                Some(sent) => {
                    self.stats.received += 1;
                    self.stats.rtt.add(at - sent);
                }
                None => self.stats.duplicates += 1,
            },
            Event::IcmpError {
                at,
                from,
                kind,
                echo: Some((_, seq)),
                ..
            } => {
                if self.outstanding.remove(&seq).is_some() {
                    self.stats.errors += 1;
                    if self.stats.error_log.len() < MAX_KEPT_ERRORS {
                        self.stats.error_log.push(PingError {
                            at,
                            seq,
                            from,
                            kind,
                        });
                    }
                }
            }
            Event::IcmpError { echo: None, .. } => {}
        }
    }
}

/// What a UDP flow saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpFlowStats {
    /// Datagrams handed to the stack.
    pub sent: u64,
    /// Datagrams the stack refused (no route, ...), or not sent for want of a socket.
    pub send_failures: u64,
    /// Distinct datagrams that reached the sink.
    pub delivered: u64,
    /// Copies of datagrams already delivered.
    pub duplicated: u64,
    /// Datagrams that arrived after a later one.
    pub reordered: u64,
    /// ICMP errors the sending socket reported.
    pub icmp_errors: u64,
    /// One-way delays of delivered datagrams.
    pub delay: DelayStats,
}

impl UdpFlowStats {
    /// Sent datagrams not delivered (by the time of asking: those still in flight count).
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.delivered)
    }
}

/// A running UDP flow.
#[derive(Debug)]
pub struct UdpFlow {
    config: UdpFlowConfig,
    id: AppId,
    socket: Option<UdpHandle>,
    next_seq: u64,
    highest: Option<u64>,
    seen: Vec<u64>,
    payload: Vec<u8>,
    stats: UdpFlowStats,
}

impl UdpFlow {
    fn new(config: UdpFlowConfig, id: AppId) -> Self {
        let size = config.size.max(UDP_HEADER);
        UdpFlow {
            config,
            id,
            socket: None,
            next_seq: 0,
            highest: None,
            seen: Vec::new(),
            payload: vec![0; size],
            stats: UdpFlowStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &UdpFlowConfig {
        &self.config
    }

    /// What it saw so far.
    pub fn stats(&self) -> &UdpFlowStats {
        &self.stats
    }

    fn tick(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        if self.config.stop.is_some_and(|s| now >= s) {
            return None;
        }
        if self.socket.is_none() {
            let any = match self.config.dst {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            match stack.udp_bind(SocketAddr::new(any, 0)) {
                Ok(h) => self.socket = Some(h),
                Err(_) => {
                    self.stats.send_failures += 1;
                    return Some(now + self.config.interval);
                }
            }
        }
        let h = self.socket?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.payload[0..4].copy_from_slice(&self.id.0.to_be_bytes());
        self.payload[4..12].copy_from_slice(&seq.to_be_bytes());
        self.payload[12..20].copy_from_slice(&now.as_nanos().to_be_bytes());
        match stack.udp_send_to(now, h, self.config.dst, &self.payload) {
            Ok(()) => self.stats.sent += 1,
            Err(_) => self.stats.send_failures += 1,
        }
        while let Ok(Some(_)) = stack.udp_take_error(h) {
            self.stats.icmp_errors += 1;
        }
        Some(now + self.config.interval)
    }

    /// A datagram of this flow reached its sink at `now`.
    fn on_datagram(&mut self, now: Instant, seq: u64, sent: Instant) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if seq >= self.next_seq {
            return; // never sent: a corrupted datagram whose checksum still held
        }
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.stats.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.stats.delivered += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.stats.reordered += 1;
        } else {
            self.highest = Some(seq);
        }
        self.stats.delay.add(now - sent);
    }
}

/// Reads a flow datagram's header: (flow, sequence number, send time).
pub fn parse_flow_header(payload: &[u8]) -> Option<(AppId, u64, Instant)> {
    let h = payload.get(..UDP_HEADER)?;
    let id = u32::from_be_bytes(h[0..4].try_into().ok()?);
    let seq = u64::from_be_bytes(h[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(h[12..20].try_into().ok()?);
    Some((AppId(id), seq, Instant::from_nanos(sent)))
}

/// The byte at `offset` of TCP flow `flow`'s stream: a mix of both, so that a byte
/// delivered at the wrong offset (or to the wrong flow) does not match.
pub fn tcp_pattern(flow: AppId, offset: u64) -> u8 {
    let z = (offset ^ (u64::from(flow.0) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (z >> 56) as u8
}

/// What a TCP flow saw (the client's side and the server's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpFlowStats {
    /// When the client's connection reached ESTABLISHED.
    pub connected_at: Option<Instant>,
    /// Bytes the client's stack accepted to send.
    pub sent: u64,
    /// Bytes the server read that matched the pattern at their offset.
    pub delivered: u64,
    /// Bytes the server read that did not.
    pub corrupted: u64,
    /// When the server read the end of a stream that held every byte intact.
    pub completed_at: Option<Instant>,
    /// Why the flow failed (connection refused, reset, timed out, cut short), if it did.
    pub error: Option<String>,
}

/// A running TCP flow (its client; the runtime's listener feeds it what the server
/// reads).
#[derive(Debug)]
pub struct TcpFlow {
    config: TcpFlowConfig,
    id: AppId,
    socket: Option<TcpHandle>,
    local: Option<SocketAddr>,
    shut: bool,
    done: bool,
    chunk: Vec<u8>,
    stats: TcpFlowStats,
}

/// Bytes the client offers its stack in one call.
const TCP_CHUNK: usize = 16 * 1024;

impl TcpFlow {
    fn new(config: TcpFlowConfig, id: AppId) -> Self {
        TcpFlow {
            config,
            id,
            socket: None,
            local: None,
            shut: false,
            done: false,
            chunk: Vec::with_capacity(TCP_CHUNK),
            stats: TcpFlowStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TcpFlowConfig {
        &self.config
    }

    /// What it saw so far.
    pub fn stats(&self) -> &TcpFlowStats {
        &self.stats
    }

    /// The client's local address, once it connected.
    pub fn local(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Whether every byte arrived intact and the server read the end of the stream.
    pub fn is_complete(&self) -> bool {
        self.stats.completed_at.is_some()
    }

    /// Time from the start to ESTABLISHED at the client.
    pub fn setup_time(&self) -> Option<Duration> {
        self.stats.connected_at.map(|t| t - self.config.start)
    }

    /// Time from the start to the server reading the end of the complete stream.
    pub fn completion_time(&self) -> Option<Duration> {
        self.stats.completed_at.map(|t| t - self.config.start)
    }

    /// Bytes delivered intact per simulated second, in bits, over the completion time.
    pub fn goodput_bps(&self) -> Option<u64> {
        let ns = self.completion_time()?.as_nanos().max(1);
        Some((u128::from(self.stats.delivered) * 8 * 1_000_000_000 / u128::from(ns)) as u64)
    }

    fn fail(&mut self, why: String) {
        if self.stats.error.is_none() {
            self.stats.error = Some(why);
        }
    }

    fn tick(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        if self.socket.is_some() || self.done {
            return None;
        }
        match stack.tcp_connect(now, self.config.dst, None) {
            Ok(h) => {
                self.socket = Some(h);
                self.local = stack.tcp_connection(h).map(|t| t.endpoints().0);
            }
            Err(e) => {
                self.fail(format!("connect: {e}"));
                self.done = true;
            }
        }
        None
    }

    /// Runs the client whenever its node is serviced: notes the handshake's end, sends
    /// while the send buffer takes bytes, shuts down after the last one, and closes
    /// once the server's end of stream arrives.
    fn poll(&mut self, now: Instant, stack: &mut Stack) {
        let Some(h) = self.socket.filter(|_| !self.done) else {
            return;
        };
        let Some(state) = stack.tcp_state(h) else {
            self.done = true;
            return;
        };
        if let Some(e) = stack.tcp_connection(h).and_then(|t| t.error()) {
            self.fail(format!("client: {e}"));
            self.done = true;
            let _ = stack.tcp_abort(now, h);
            return;
        }
        if !state.is_synchronized() {
            return;
        }
        if self.stats.connected_at.is_none() {
            self.stats.connected_at = Some(now);
        }
        while !self.shut && stack.tcp_readiness(h).is_some_and(|r| r.writable) {
            let left = self.config.bytes - self.stats.sent;
            if left == 0 {
                break;
            }
            let n = left.min(TCP_CHUNK as u64) as usize;
            let off = self.stats.sent;
            self.chunk.clear();
            self.chunk
                .extend((0..n as u64).map(|i| tcp_pattern(self.id, off + i)));
            match stack.tcp_send(now, h, &self.chunk) {
                Ok(0) => break,
                Ok(k) => self.stats.sent += k as u64,
                Err(e) => {
                    self.fail(format!("client: send: {e}"));
                    self.done = true;
                    let _ = stack.tcp_abort(now, h);
                    return;
                }
            }
        }
        if !self.shut && self.stats.sent == self.config.bytes {
            if let Err(e) = stack.tcp_shutdown(now, h) {
                self.fail(format!("client: shutdown: {e}"));
                self.done = true;
                let _ = stack.tcp_abort(now, h);
                return;
            }
            self.shut = true;
        }
        if self.shut {
            let mut sink = [0u8; 256];
            loop {
                match stack.tcp_recv(h, &mut sink) {
                    Ok(0) => {
                        let _ = stack.tcp_close(now, h);
                        self.done = true;
                        return;
                    }
                    Ok(_) => {} // the server sends nothing; discard
                    Err(SocketError::WouldBlock) => return,
                    Err(e) => {
                        self.fail(format!("client: {e}"));
                        self.done = true;
                        let _ = stack.tcp_abort(now, h);
                        return;
                    }
                }
            }
        }
    }

    /// The server read `data` of this flow's stream.
    fn on_data(&mut self, data: &[u8]) {
        let off = self.stats.delivered + self.stats.corrupted;
        let good = data
            .iter()
            .zip(off..)
            .filter(|&(&b, o)| b == tcp_pattern(self.id, o))
            .count() as u64;
        self.stats.delivered += good;
        self.stats.corrupted += data.len() as u64 - good;
    }

    /// The server reached the end of this flow's stream (`Ok`) or the connection
    /// failed there (`Err`).
    fn on_end(&mut self, now: Instant, end: Result<(), String>) {
        let got = self.stats.delivered + self.stats.corrupted;
        match end {
            Err(e) => self.fail(format!("server: {e}")),
            Ok(()) if got != self.config.bytes => self.fail(format!(
                "server: stream ended after {got} of {} bytes",
                self.config.bytes
            )),
            Ok(()) if self.stats.corrupted > 0 => {
                self.fail(format!("server: {} bytes corrupted", self.stats.corrupted))
            }
            Ok(()) => self.stats.completed_at = Some(now),
        }
    }
}

/// The state of an application, by kind.
#[derive(Debug)]
pub enum AppState {
    /// ICMP echo.
    Ping(Ping),
    /// A constant-rate UDP flow.
    Udp(UdpFlow),
    /// A TCP bulk transfer.
    Tcp(TcpFlow),
}

/// An application placed on a node.
#[derive(Debug)]
pub struct App {
    /// Its name in summaries.
    pub name: String,
    /// The node it runs on.
    pub node: NodeId,
    /// Its state and statistics.
    pub state: AppState,
}

impl App {
    pub(crate) fn new(name: String, node: NodeId, config: AppConfig, id: AppId) -> Self {
        let state = match config {
            // Unique per run, so that a reply can never reach the wrong ping.
            AppConfig::Ping(c) => AppState::Ping(Ping::new(c, 0x1000u16.wrapping_add(id.0 as u16))),
            AppConfig::Udp(c) => AppState::Udp(UdpFlow::new(c, id)),
            AppConfig::Tcp(c) => AppState::Tcp(TcpFlow::new(c, id)),
        };
        App { name, node, state }
    }

    /// When the application first runs.
    pub fn start(&self) -> Instant {
        match &self.state {
            AppState::Ping(p) => p.config.start,
            AppState::Udp(u) => u.config.start,
            AppState::Tcp(t) => t.config.start,
        }
    }

    /// The echo identifier, for applications that use one.
    pub(crate) fn echo_ident(&self) -> Option<u16> {
        match &self.state {
            AppState::Ping(p) => Some(p.ident),
            AppState::Udp(_) | AppState::Tcp(_) => None,
        }
    }

    /// Runs the application's timer; returns when it next wants to run.
    pub(crate) fn tick(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        match &mut self.state {
            AppState::Ping(p) => p.tick(now, stack),
            AppState::Udp(u) => u.tick(now, stack),
            AppState::Tcp(t) => t.tick(now, stack),
        }
    }

    /// A stack event addressed to this application.
    pub(crate) fn on_event(&mut self, e: &Event) {
        match &mut self.state {
            AppState::Ping(p) => p.on_event(e),
            AppState::Udp(_) | AppState::Tcp(_) => {}
        }
    }

    /// A datagram for this application reached its sink.
    pub(crate) fn on_datagram(&mut self, now: Instant, seq: u64, sent: Instant) {
        if let AppState::Udp(u) = &mut self.state {
            u.on_datagram(now, seq, sent);
        }
    }

    /// Runs a TCP flow's client (the runtime calls it whenever it services the node).
    pub(crate) fn poll(&mut self, now: Instant, stack: &mut Stack) {
        if let AppState::Tcp(t) = &mut self.state {
            t.poll(now, stack);
        }
    }

    /// The server side read `data` of this TCP flow's stream.
    pub(crate) fn on_tcp_data(&mut self, data: &[u8]) {
        if let AppState::Tcp(t) = &mut self.state {
            t.on_data(data);
        }
    }

    /// The server side reached the end of this TCP flow's stream, or failed.
    pub(crate) fn on_tcp_end(&mut self, now: Instant, end: Result<(), String>) {
        if let AppState::Tcp(t) = &mut self.state {
            t.on_end(now, end);
        }
    }

    /// The ping, if this is one.
    pub fn as_ping(&self) -> Option<&Ping> {
        match &self.state {
            AppState::Ping(p) => Some(p),
            _ => None,
        }
    }

    /// The UDP flow, if this is one.
    pub fn as_udp(&self) -> Option<&UdpFlow> {
        match &self.state {
            AppState::Udp(u) => Some(u),
            _ => None,
        }
    }

    /// The TCP flow, if this is one.
    pub fn as_tcp(&self) -> Option<&TcpFlow> {
        match &self.state {
            AppState::Tcp(t) => Some(t),
            _ => None,
        }
    }
}
