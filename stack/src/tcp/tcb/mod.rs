//! The transmission control block and the RFC 9293 state machine.
//!
//! Input follows the event processing of RFC 9293 §3.10.7 in its order (acceptability,
//! RST, SYN, ACK, data, FIN), with RFC 5961's defences against blind RST, SYN and data
//! injection, RFC 7323's timestamps (PAWS, RTT samples) and window scaling; loss
//! recovery (RFC 6675 with SACK, RFC 6582 without) is in `recovery`. Output is
//! pulled: [`Tcb::next_segment`] says what to send next, or nothing. Timers (RFC 6298
//! retransmission with backoff, delayed ACK, zero-window probes, keepalive, TIME-WAIT)
//! are deadlines the stack checks through [`Tcb::poll_at`] and [`Tcb::on_timer`].

use core::net::SocketAddr;

use super::assembler::Assembler;
use super::cc::Cc;
use super::ring::RingBuffer;
use super::seq::Seq;
use super::{TcpConfig, TcpError, TcpHandle, TcpState};
use crate::counters::DropReason;
use crate::iface::PortId;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{TcpControl, TcpRepr};

mod input;
mod output;
mod recovery;
mod timer;

// Flags of a connection.
const TS_OK: u16 = 1 << 0;
const SACK_OK: u16 = 1 << 1;
const FIN_QUEUED: u16 = 1 << 2;
const FIN_RCVD: u16 = 1 << 3;
const FIN_ACKED: u16 = 1 << 4;
const ACK_NOW: u16 = 1 << 5;
const APP_CLOSED: u16 = 1 << 6;
const NODELAY: u16 = 1 << 7;
const FAST_RTX: u16 = 1 << 8;
const IN_RECOVERY: u16 = 1 << 9;
const FORCE_ONE: u16 = 1 << 10;
const KA_PROBE: u16 = 1 << 11;
const WS_OK: u16 = 1 << 12;
const PERSIST: u16 = 1 << 13;
const TIMED_OUT: u16 = 1 << 14;
/// The connection's flush waits for the end of the receive batch (`Stack::tcp_input`).
const FLUSH_DEFERRED: u16 = 1 << 15;

/// In-order full segments a receive batch may take before it must ACK at once; fewer
/// are acknowledged together when the batch ends (ACK coalescing, as Linux does for
/// what GRO merged). Outside a batch, every second segment is ACKed.
const ACK_COALESCE_MAX: u8 = 16;

/// RFC 9293 §3.7.1 default send MSS when the peer names none: 536 for IPv4; RFC 8200
/// §8.3 gives 1220 for IPv6.
fn default_mss(remote: SocketAddr) -> u16 {
    if remote.is_ipv4() {
        536
    } else {
        1220
    }
}

/// A segment to send: the header (with an empty payload) and where its payload lies in
/// the send buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutSegment {
    pub repr: TcpRepr<'static>,
    pub data_off: usize,
    pub data_len: usize,
}

/// What became of an input segment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Outcome {
    /// The segment was dropped for this reason (an ACK may still be due).
    pub drop: Option<DropReason>,
    /// Answer with this reset (RFC 9293 §3.10.7.3/§3.10.7.4).
    pub reset: Option<TcpRepr<'static>>,
}

impl Outcome {
    fn drop(reason: DropReason) -> Self {
        Outcome {
            drop: Some(reason),
            reset: None,
        }
    }
}

/// State the connections of one stack share: the challenge ACK budget (RFC 5961 §7).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shared {
    pub challenge_window: Instant,
    pub challenge_sent: u32,
}

/// A reset answering `seg` (RFC 9293 §3.10.7.1): `<SEQ=SEG.ACK><CTL=RST>` when it
/// carries an ACK, else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
pub(crate) fn reset_for(seg: &TcpRepr<'_>) -> TcpRepr<'static> {
    let (seq, ack) = match seg.ack_number {
        Some(ack) => (ack, None),
        None => (
            0,
            Some(seg.seq_number.wrapping_add(seg.segment_len() as u32)),
        ),
    };
    TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        control: TcpControl::Rst,
        seq_number: seq,
        ack_number: ack,
        window_len: 0,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    }
}

/// A TCP connection: RFC 9293 §3.3.1's send and receive sequence variables, options,
/// timers, congestion state, and its two byte buffers.
#[derive(Debug)]
pub struct Tcb {
    pub(crate) state: TcpState,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// The listener that spawned it, until accepted.
    pub(crate) listener: Option<TcpHandle>,
    /// The earliest deadline this connection has in the stack's timer heap.
    pub(crate) scheduled: Option<Instant>,
    /// The port its segments leave by when the route does not say (link-local peers).
    pub(crate) port: PortId,
    error: Option<TcpError>,
    flags: u16,
    // Send sequence space.
    iss: Seq,
    snd_una: Seq,
    snd_nxt: Seq,
    /// The highest sequence number sent (SND.NXT moves back on a timeout).
    snd_max: Seq,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: Seq,
    snd_wl2: Seq,
    /// NewReno's `recover` (RFC 6582 §3.2).
    recover: Seq,
    // Receive sequence space.
    irs: Seq,
    rcv_nxt: Seq,
    /// The right edge of the window we last advertised (never moved left).
    rcv_adv: Seq,
    last_ack_sent: Seq,
    /// The most recent out-of-order block received, for the first SACK block.
    recent_sack: Seq,
    // Options.
    smss: u16,
    adv_mss: u16,
    snd_shift: u8,
    rcv_shift: u8,
    ts_recent: u32,
    ts_offset: u32,
    /// Our timestamp clock at the last retransmission timeout (with `TIMED_OUT`).
    rto_tsval: u32,
    // Timing (RFC 6298), nanoseconds; srtt 0 = no sample yet.
    srtt: u64,
    rttvar: u64,
    rto: u64,
    rtt_probe: Option<(Seq, Instant)>,
    retries: u8,
    dupacks: u8,
    delack_segs: u8,
    ka_probes: u8,
    /// Zero-window probes sent since the window closed (their backoff).
    persist_shift: u8,
    rtx_at: Option<Instant>,
    delack_at: Option<Instant>,
    close_at: Option<Instant>,
    ka_at: Option<Instant>,
    /// Keepalive idle time of this connection (the stack's `TcpConfig::keepalive`
    /// unless set with `Stack::tcp_set_keepalive`).
    ka_idle: Option<crate::time::Duration>,
    cc: Cc,
    ooo: Assembler,
    /// The peer's SACK blocks (RFC 2018) as offsets from SND.UNA: the sender's scoreboard.
    sacked: Assembler,
    /// The highest sequence number retransmitted in this recovery (RFC 6675 HighRxt).
    rtx_hi: Seq,
    /// RFC 6675 RescueRxt: a rescue retransmission is allowed while SND.UNA is above it.
    rescue_rxt: Seq,
    /// RFC 6675 `pipe`: octets deemed in the network during SACK recovery.
    pipe: u32,
    tx: RingBuffer,
    rx: RingBuffer,
}

impl Tcb {
    fn new(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        mtu_mss: u16,
    ) -> Tcb {
        let mut rcv_shift = 0;
        while cfg.window_scale && rcv_shift < 14 && (cfg.rx_buffer >> rcv_shift) > 65535 {
            rcv_shift += 1;
        }
        Tcb {
            state: TcpState::Closed,
            local,
            remote,
            listener: None,
            scheduled: None,
            port: PortId(0),
            error: None,
            flags: if cfg.nodelay { NODELAY } else { 0 },
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: iss,
            recover: iss,
            irs: Seq(0),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            last_ack_sent: Seq(0),
            recent_sack: Seq(0),
            smss: default_mss(remote).min(mtu_mss),
            adv_mss: mtu_mss,
            snd_shift: 0,
            rcv_shift,
            ts_recent: 0,
            ts_offset,
            rto_tsval: 0,
            srtt: 0,
            rttvar: 0,
            rto: cfg.initial_rto.as_nanos(),
            rtt_probe: None,
            retries: 0,
            dupacks: 0,
            delack_segs: 0,
            ka_probes: 0,
            persist_shift: 0,
            rtx_at: None,
            delack_at: None,
            close_at: None,
            ka_at: None,
            ka_idle: cfg.keepalive,
            cc: Cc::new(cfg.congestion, u32::from(mtu_mss)),
            ooo: Assembler::default(),
            sacked: Assembler::default(),
            rtx_hi: iss,
            rescue_rxt: iss,
            pipe: 0,
            tx: RingBuffer::default(),
            rx: RingBuffer::default(),
        }
    }

    /// An active open (RFC 9293 §3.10.1): SYN-SENT, buffers allocated, the SYN due.
    pub(crate) fn connect(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        mtu_mss: u16,
    ) -> Tcb {
        let mut t = Tcb::new(cfg, local, remote, iss, ts_offset, mtu_mss);
        t.state = TcpState::SynSent;
        t.tx = RingBuffer::new(cfg.tx_buffer);
        t.rx = RingBuffer::new(cfg.rx_buffer);
        t
    }

    /// A connection from a SYN that reached a listener (RFC 9293 §3.10.7.2): SYN-RECEIVED,
    /// the SYN-ACK due. Buffers are allocated only once the handshake completes, so that
    /// half-open connections cost their control block alone.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn accept_syn(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        mtu_mss: u16,
        syn: &TcpRepr<'_>,
        listener: TcpHandle,
    ) -> Tcb {
        let mut t = Tcb::new(cfg, local, remote, iss, ts_offset, mtu_mss);
        t.state = TcpState::SynReceived;
        t.listener = Some(listener);
        t.irs = Seq(syn.seq_number);
        t.rcv_nxt = t.irs + 1;
        t.rcv_adv = t.rcv_nxt + cfg.rx_buffer.min(65535) as u32;
        t.negotiate(cfg, syn);
        t
    }

    /// A connection whose SYN-ACK was a SYN cookie (RFC 4987 §3.6), from the ACK that
    /// returned it: ESTABLISHED at once, with the MSS the cookie kept and no other
    /// option (the cookie has no room for them).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_cookie(
        cfg: &TcpConfig,
        local: SocketAddr,
        remote: SocketAddr,
        iss: Seq,
        ts_offset: u32,
        mtu_mss: u16,
        peer_mss: u16,
        ack: &TcpRepr<'_>,
        listener: TcpHandle,
    ) -> Tcb {
        let mut t = Tcb::new(cfg, local, remote, iss, ts_offset, mtu_mss);
        t.state = TcpState::Established;
        t.listener = Some(listener);
        t.rcv_shift = 0;
        t.irs = Seq(ack.seq_number) - 1;
        t.rcv_nxt = Seq(ack.seq_number);
        t.rcv_adv = t.rcv_nxt + cfg.rx_buffer.min(65535) as u32;
        t.last_ack_sent = t.rcv_nxt;
        t.snd_una = iss + 1;
        t.snd_nxt = iss + 1;
        t.snd_max = iss + 1;
        t.recover = iss + 1;
        t.smss = peer_mss.min(mtu_mss).max(64);
        t.snd_wnd = u32::from(ack.window_len);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = Seq(ack.seq_number);
        t.snd_wl2 = iss + 1;
        t.cc.set_mss(u32::from(t.smss));
        t.tx = RingBuffer::new(cfg.tx_buffer);
        t.rx = RingBuffer::new(cfg.rx_buffer);
        t
    }

    /// Takes the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2, §3.2,
    /// RFC 2018 §2): each is on only when both sides offer it.
    fn negotiate(&mut self, cfg: &TcpConfig, syn: &TcpRepr<'_>) {
        let peer_mss = syn.max_seg_size.unwrap_or(default_mss(self.remote));
        self.smss = peer_mss.min(self.adv_mss).max(64);
        match syn.window_scale {
            Some(shift) if cfg.window_scale => {
                self.flags |= WS_OK;
                self.snd_shift = shift;
            }
            _ => {
                self.snd_shift = 0;
                self.rcv_shift = 0;
            }
        }
        if let (Some((tsval, _)), true) = (syn.timestamp, cfg.timestamps) {
            self.flags |= TS_OK;
            self.ts_recent = tsval;
        }
        if syn.sack_permitted && cfg.sack {
            self.flags |= SACK_OK;
        }
        // The SYN's window is never scaled (RFC 7323 §2.2).
        self.snd_wnd = u32::from(syn.window_len);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = Seq(syn.seq_number);
        self.cc.set_mss(u32::from(self.eff_mss()));
    }

    #[inline]
    fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    /// Before a flush: two in-order segments or more not yet acknowledged call for an
    /// ACK now (RFC 5681 §4.2; the receive batch may have held it back).
    #[inline]
    pub(crate) fn promote_ack(&mut self) {
        if self.delack_segs >= 2 {
            self.flags |= ACK_NOW;
        }
    }

    /// True when nothing in the last input asks for a segment at once (an ACK that may
    /// not wait, a state change is the caller's to check).
    #[inline]
    pub(crate) fn can_defer_flush(&self) -> bool {
        !self.has(ACK_NOW)
    }

    /// Marks the flush as deferred to the end of the receive batch; false when it
    /// already was.
    #[inline]
    pub(crate) fn defer_flush(&mut self) -> bool {
        let first = !self.has(FLUSH_DEFERRED);
        self.flags |= FLUSH_DEFERRED;
        first
    }

    /// Clears the deferred-flush mark (the batch ended).
    #[inline]
    pub(crate) fn undefer_flush(&mut self) {
        self.flags &= !FLUSH_DEFERRED;
    }

    /// The connection's state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// Local and remote addresses.
    pub fn endpoints(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }

    /// Why the connection failed, if it did.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// The send MSS (the peer's limit and ours).
    pub fn mss(&self) -> u16 {
        self.smss
    }

    /// True when timestamps were negotiated.
    pub fn timestamps(&self) -> bool {
        self.has(TS_OK)
    }

    /// True when SACK was negotiated.
    pub fn sack(&self) -> bool {
        self.has(SACK_OK)
    }

    /// The window scale shifts `(ours, theirs)` when negotiated.
    pub fn window_scale(&self) -> Option<(u8, u8)> {
        self.has(WS_OK).then_some((self.rcv_shift, self.snd_shift))
    }

    /// The congestion window, bytes.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto)
    }

    /// `(SND.UNA, SND.NXT, RCV.NXT, RCV.WND)` (RFC 9293 §3.3.1).
    pub fn sequence_space(&self) -> (u32, u32, u32, u32) {
        (
            self.snd_una.0,
            self.snd_nxt.0,
            self.rcv_nxt.0,
            self.rcv_wnd(),
        )
    }

    /// The peer's window, bytes (scaled).
    pub fn send_window(&self) -> u32 {
        self.snd_wnd
    }

    /// True during fast recovery (RFC 6582).
    pub fn in_recovery(&self) -> bool {
        self.has(IN_RECOVERY)
    }

    /// During SACK-based recovery, RFC 6675's `pipe`: the bytes deemed in the network
    /// (neither acknowledged, SACKed nor lost, plus those sent again); else the bytes
    /// sent and not yet acknowledged.
    pub fn pipe(&self) -> u32 {
        if self.sack_recovery() {
            self.pipe
        } else {
            self.snd_max - self.snd_una
        }
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight(&self) -> u32 {
        self.snd_nxt - self.snd_una
    }

    pub(crate) fn app_closed(&self) -> bool {
        self.has(APP_CLOSED)
    }

    /// Payload bytes per segment: the MSS less the timestamp option (RFC 7323 §3.2).
    fn eff_mss(&self) -> u16 {
        if self.has(TS_OK) {
            self.smss - 12
        } else {
            self.smss
        }
    }

    fn ts_now(&self, now: Instant) -> u32 {
        ((now.as_nanos() / 1_000_000) as u32).wrapping_add(self.ts_offset)
    }

    /// The window we advertise from `rcv_nxt`, bytes.
    fn rcv_wnd(&self) -> u32 {
        if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        }
    }

    /// The interval before the next zero-window probe: the RTO, doubled for each probe
    /// already sent (RFC 9293 §3.8.6.1 SHLD-30), at most the largest RTO.
    fn persist_interval(&self, cfg: &TcpConfig) -> Duration {
        let backed_off = self.rto.saturating_mul(1 << self.persist_shift);
        Duration::from_nanos(backed_off.min(cfg.max_rto.as_nanos()))
    }

    /// Marks the connection as failed and CLOSED.
    fn fail(&mut self, e: TcpError) {
        self.state = TcpState::Closed;
        self.error = Some(e);
        self.stop_timers();
    }

    fn stop_timers(&mut self) {
        self.rtx_at = None;
        self.delack_at = None;
        self.close_at = None;
        self.ka_at = None;
    }

    fn enter_time_wait(&mut self, now: Instant, cfg: &TcpConfig) {
        self.state = TcpState::TimeWait;
        self.stop_timers();
        self.close_at = Some(now + cfg.time_wait);
    }

    /// An ACK that RFC 5961 asks for instead of acting on a suspicious segment, within
    /// the stack-wide budget (§7).
    fn challenge_ack(&mut self, now: Instant, cfg: &TcpConfig, sh: &mut Shared) {
        if now.saturating_since(sh.challenge_window) >= Duration::from_secs(1) {
            sh.challenge_window = now;
            sh.challenge_sent = 0;
        }
        if sh.challenge_sent < cfg.challenge_ack_limit {
            sh.challenge_sent += 1;
            self.flags |= ACK_NOW;
        }
    }

    /// The send buffer's bytes for a segment from [`next_segment`](Self::next_segment).
    pub(crate) fn tx_bytes(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        self.tx.get(off, len)
    }

    /// Turns keepalives on with `idle` time (RFC 1122 §4.2.3.6) or off, for this
    /// connection only; an established connection's timer starts from `now`.
    pub(crate) fn set_keepalive(&mut self, now: Instant, idle: Option<crate::time::Duration>) {
        self.ka_idle = idle;
        self.ka_probes = 0;
        self.ka_at = if self.state.is_synchronized() {
            idle.map(|d| now + d)
        } else {
            None
        };
    }

    pub(crate) fn set_nodelay(&mut self, on: bool) {
        if on {
            self.flags |= NODELAY;
        } else {
            self.flags &= !NODELAY;
        }
    }

    /// Queues bytes to send; returns how many fit.
    pub(crate) fn send(&mut self, data: &[u8]) -> usize {
        self.tx.enqueue(data)
    }

    /// True when `send` may take bytes in this state.
    pub(crate) fn can_send(&self) -> bool {
        matches!(
            self.state,
            TcpState::SynSent | TcpState::SynReceived | TcpState::Established | TcpState::CloseWait
        ) && !self.has(FIN_QUEUED)
    }

    /// Free bytes in the send buffer.
    pub(crate) fn send_free(&self) -> usize {
        if self.state == TcpState::SynReceived && self.tx.capacity() == 0 {
            return 0;
        }
        self.tx.free()
    }

    /// Takes received bytes. After a read that opens the window by a useful amount
    /// (RFC 9293 §3.8.6.2.2: two segments or half the buffer), a window update is due.
    pub(crate) fn recv(&mut self, out: &mut [u8]) -> usize {
        let n = self.rx.dequeue(out);
        self.read_done(n);
        n
    }

    /// Drops up to `n` received bytes that were read in place (from the receive
    /// buffer's storage); returns how many. The window opens as after [`Tcb::recv`].
    pub(crate) fn recv_consume(&mut self, n: usize) -> usize {
        let n = n.min(self.rx.len());
        self.rx.discard(n);
        self.read_done(n);
        n
    }

    /// Makes up to `n` bytes written in place into the send buffer's free space
    /// (at the tail) part of the stream; returns how many.
    pub(crate) fn send_commit(&mut self, n: usize) -> usize {
        let n = n.min(self.tx.free());
        self.tx.commit(n);
        n
    }

    /// Moves the send and receive buffers into caller storage (see
    /// [`RingBuffer::move_to_storage`]); refused (both handed back, nothing moved)
    /// when either is smaller than the buffer it replaces.
    #[allow(clippy::type_complexity)]
    pub(crate) fn move_buffers(
        &mut self,
        tx: Box<dyn super::ring::RingStorage>,
        rx: Box<dyn super::ring::RingStorage>,
    ) -> Result<
        (),
        (
            Box<dyn super::ring::RingStorage>,
            Box<dyn super::ring::RingStorage>,
        ),
    > {
        if tx.bytes().len() < self.tx.capacity() || rx.bytes().len() < self.rx.capacity() {
            return Err((tx, rx));
        }
        // Both fit (checked above), so neither is refused.
        let _ = self.tx.move_to_storage(tx);
        let _ = self.rx.move_to_storage(rx);
        Ok(())
    }

    /// The send and receive buffers' capacities.
    pub fn buffer_capacities(&self) -> (usize, usize) {
        (self.tx.capacity(), self.rx.capacity())
    }

    /// Received bytes not yet read.
    pub fn recv_available(&self) -> usize {
        self.rx.len()
    }

    /// The window after a read of `n` bytes.
    fn read_done(&mut self, n: usize) {
        if n > 0 && self.state.is_synchronized() {
            let edge = self.rcv_nxt + ((self.rx.free() >> self.rcv_shift) << self.rcv_shift) as u32;
            let grow = if edge > self.rcv_adv {
                edge - self.rcv_adv
            } else {
                0
            };
            let mss = u32::from(self.eff_mss());
            if grow >= (2 * mss).min(self.rx.capacity() as u32 / 2) {
                self.flags |= ACK_NOW;
            }
        }
    }

    /// Bytes waiting to be read.
    pub(crate) fn recv_queued(&self) -> usize {
        self.rx.len()
    }

    /// True once the peer's FIN has been received.
    pub(crate) fn fin_received(&self) -> bool {
        self.has(FIN_RCVD)
    }

    /// Bytes queued to send, not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.tx.len()
    }

    /// Our side is done sending (RFC 9293 §3.10.4 CLOSE): a FIN follows the queued data.
    pub(crate) fn shutdown(&mut self) {
        match self.state {
            TcpState::SynSent => {
                self.state = TcpState::Closed;
                self.stop_timers();
            }
            TcpState::SynReceived => self.flags |= FIN_QUEUED,
            TcpState::Established => {
                self.flags |= FIN_QUEUED;
                self.state = TcpState::FinWait1;
            }
            TcpState::CloseWait => {
                self.flags |= FIN_QUEUED;
                self.state = TcpState::LastAck;
            }
            _ => {}
        }
    }

    /// The application let go of the connection: it finishes on its own.
    pub(crate) fn release(&mut self, now: Instant, cfg: &TcpConfig) {
        self.flags |= APP_CLOSED;
        self.shutdown();
        if self.state == TcpState::FinWait2 && self.close_at.is_none() {
            self.close_at = Some(now + cfg.time_wait);
        }
    }

    /// Aborts (RFC 9293 §3.10.5 ABORT): the reset to send, if the peer knows of us.
    pub(crate) fn abort(&mut self) -> Option<TcpRepr<'static>> {
        let rst = matches!(
            self.state,
            TcpState::SynReceived
                | TcpState::Established
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::CloseWait
        )
        .then(|| TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            control: TcpControl::Rst,
            seq_number: self.snd_nxt.0,
            ack_number: None,
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        });
        self.fail(TcpError::Aborted);
        rst
    }
}
