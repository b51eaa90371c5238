//! Applications that run on simulated nodes: ping (ICMP echo) and, as the stack grows
//! sockets, traffic flows.
//!
//! An application is driven by the runtime: [`App::tick`] when its timer fires (it
//! sends and returns when it next wants to run) and [`App::on_event`] for stack events
//! addressed to it. The applications are an enum rather than trait objects so that the
//! summary can show each kind's own statistics; a new kind (TCP flows, issue 7) is a new
//! variant, its config in [`AppConfig`] and its arm in the three `match`es here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use stack::stack::IcmpErrorKind;
use stack::{Duration, EchoRequest, Event, Instant, Stack};

use crate::NodeId;

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

/// Configuration of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppConfig {
    /// ICMP echo.
    Ping(PingConfig),
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

/// The state of an application, by kind.
#[derive(Debug)]
pub enum AppState {
    /// ICMP echo.
    Ping(Ping),
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
    pub(crate) fn new(name: String, node: NodeId, config: AppConfig, ident: u16) -> Self {
        let state = match config {
            AppConfig::Ping(c) => AppState::Ping(Ping::new(c, ident)),
        };
        App { name, node, state }
    }

    /// When the application first runs.
    pub fn start(&self) -> Instant {
        match &self.state {
            AppState::Ping(p) => p.config.start,
        }
    }

    /// The echo identifier, for applications that use one.
    pub(crate) fn echo_ident(&self) -> Option<u16> {
        match &self.state {
            AppState::Ping(p) => Some(p.ident),
        }
    }

    /// Runs the application's timer; returns when it next wants to run.
    pub(crate) fn tick(&mut self, now: Instant, stack: &mut Stack) -> Option<Instant> {
        match &mut self.state {
            AppState::Ping(p) => p.tick(now, stack),
        }
    }

    /// A stack event addressed to this application.
    pub(crate) fn on_event(&mut self, e: &Event) {
        match &mut self.state {
            AppState::Ping(p) => p.on_event(e),
        }
    }

    /// The ping, if this is one.
    pub fn as_ping(&self) -> Option<&Ping> {
        match &self.state {
            AppState::Ping(p) => Some(p),
        }
    }
}
