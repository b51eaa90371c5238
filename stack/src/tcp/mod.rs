//! TCP (RFC 9293) as sans-I/O code: the connection state machine ([`Tcb`]), its buffers
//! ([`ring`], [`assembler`]), congestion control ([`cc`]), sequence arithmetic
//! ([`seq`]) and the keyed hash behind initial sequence numbers and ephemeral ports
//! ([`hash`]). The table of sockets and the glue to frames live in `stack/tcp.rs`; the
//! socket API is on [`Stack`](crate::Stack) (`tcp_listen`, `tcp_connect`, ...).
//!
//! A connection never reads a clock or sends a frame: segments come in through
//! `Tcb::input`, timers through `Tcb::on_timer`, and what to send goes out through
//! `Tcb::next_segment`, which the stack turns into frames.

pub mod assembler;
pub mod cc;
pub mod hash;
pub mod ring;
pub mod seq;
pub(crate) mod tcb;
#[cfg(test)]
mod tests;

use core::fmt;
use core::net::SocketAddr;
use std::collections::VecDeque;

pub use cc::CongestionControl;
pub use tcb::Tcb;

use crate::mem::slab::SlabHandle;
use crate::time::Duration;

/// The connection states of RFC 9293 §3.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// No connection (or one that has ended).
    Closed,
    /// Waiting for a connection request (a listener).
    Listen,
    /// A SYN sent, waiting for the matching SYN.
    SynSent,
    /// SYN received and SYN sent, waiting for the ACK of ours.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We closed (FIN sent), waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged, waiting for the peer's FIN.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once, waiting for the ACK of our FIN.
    Closing,
    /// The peer closed first, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both closed; waiting for old segments to die out (2 MSL).
    TimeWait,
}

impl TcpState {
    /// True in the synchronized states (RFC 9293 §3.5.2): ESTABLISHED and later.
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            TcpState::Closed | TcpState::Listen | TcpState::SynSent | TcpState::SynReceived
        )
    }

    /// The RFC's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpError {
    /// The peer reset the connection (RST).
    Reset,
    /// The peer refused the connection (RST in reply to our SYN).
    Refused,
    /// Retransmissions (or keepalive probes) went unanswered.
    TimedOut,
    /// We aborted it.
    Aborted,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::Reset => "connection reset by peer",
            TcpError::Refused => "connection refused",
            TcpError::TimedOut => "connection timed out",
            TcpError::Aborted => "connection aborted",
        })
    }
}

/// TCP parameters of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Most sockets (listeners and connections) at once; their control blocks are
    /// allocated when the stack is built.
    pub max_sockets: usize,
    /// Receive buffer of a connection, bytes (allocated when it is established).
    pub rx_buffer: usize,
    /// Send buffer of a connection, bytes.
    pub tx_buffer: usize,
    /// How long TIME-WAIT lasts (2 MSL, RFC 9293 §3.4.2; also the FIN-WAIT-2 limit for
    /// connections the application closed).
    pub time_wait: Duration,
    /// Initial retransmission timeout (RFC 6298 §2.1: 1 s).
    pub initial_rto: Duration,
    /// Lower bound of the retransmission timeout (RFC 6298 §2.4 says 1 s; 200 ms as Linux).
    pub min_rto: Duration,
    /// Upper bound of the retransmission timeout (RFC 6298 §2.5: at least 60 s).
    pub max_rto: Duration,
    /// Retransmissions of data before the connection is dropped.
    pub max_retries: u8,
    /// Retransmissions of a SYN or SYN-ACK before giving up.
    pub syn_retries: u8,
    /// Delayed ACK timeout (RFC 9293 §3.8.6.3: under 0.5 s); zero acknowledges every
    /// segment at once.
    pub delayed_ack: Duration,
    /// Congestion control of new connections.
    pub congestion: CongestionControl,
    /// Disable Nagle's algorithm on new connections (RFC 9293 §3.7.4).
    pub nodelay: bool,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scale: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Keepalive idle time; `None` for no keepalives (RFC 9293 §3.8.4: off by default).
    pub keepalive: Option<Duration>,
    /// Interval between unanswered keepalive probes.
    pub keepalive_interval: Duration,
    /// Unanswered keepalive probes before the connection is dropped.
    pub keepalive_probes: u8,
    /// Challenge ACKs sent per second, all connections together (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// Answer SYNs to a listener whose half-open queue is full with SYN cookies
    /// (RFC 4987 §3.6) instead of evicting the oldest half-open connection.
    pub syn_cookies: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_sockets: 1024,
            rx_buffer: 256 * 1024,
            tx_buffer: 256 * 1024,
            time_wait: Duration::from_secs(60),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            max_retries: 15,
            syn_retries: 6,
            delayed_ack: Duration::from_millis(40),
            congestion: CongestionControl::Cubic,
            nodelay: false,
            window_scale: true,
            timestamps: true,
            sack: true,
            keepalive: None,
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
            challenge_ack_limit: 1000,
            syn_cookies: true,
        }
    }
}

/// A handle to a TCP socket (listener or connection) of one stack; it stops resolving
/// once the socket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpHandle(pub(crate) SlabHandle<Socket>);

/// What a socket is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// `tcp_recv` returns data, end of stream or an error without waiting.
    pub readable: bool,
    /// `tcp_send` takes at least one byte.
    pub writable: bool,
    /// The connection has ended (CLOSED), normally or not.
    pub closed: bool,
    /// A listener has a connection to accept.
    pub acceptable: bool,
}

/// A slot of the socket table. The slab holds slots inline (allocated once), so boxing
/// the larger variant would only add an allocation per connection.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Socket {
    Listen(Listener),
    Conn(Tcb),
}

/// A listening socket and its queues (RFC 9293 §3.10.1 LISTEN).
#[derive(Debug)]
pub(crate) struct Listener {
    pub local: SocketAddr,
    pub backlog: usize,
    /// Established connections not yet accepted.
    pub accept: VecDeque<TcpHandle>,
    /// Connections in SYN-RECEIVED, oldest first.
    pub half_open: VecDeque<TcpHandle>,
}
