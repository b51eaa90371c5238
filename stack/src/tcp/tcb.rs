//! The transmission control block and the RFC 9293 state machine.
//!
//! Input follows the event processing of RFC 9293 §3.10.7 in its order (acceptability,
//! RST, SYN, ACK, data, FIN), with RFC 5961's defences against blind RST, SYN and data
//! injection, RFC 7323's timestamps (PAWS, RTT samples) and window scaling. Output is
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
use crate::time::{Duration, Instant};
use crate::wire::tcp::{TcpControl, TcpRepr};

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
    // Timing (RFC 6298), nanoseconds; srtt 0 = no sample yet.
    srtt: u64,
    rttvar: u64,
    rto: u64,
    rtt_probe: Option<(Seq, Instant)>,
    retries: u8,
    dupacks: u8,
    delack_segs: u8,
    ka_probes: u8,
    rtx_at: Option<Instant>,
    delack_at: Option<Instant>,
    close_at: Option<Instant>,
    ka_at: Option<Instant>,
    cc: Cc,
    ooo: Assembler,
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
            srtt: 0,
            rttvar: 0,
            rto: cfg.initial_rto.as_nanos(),
            rtt_probe: None,
            retries: 0,
            dupacks: 0,
            delack_segs: 0,
            ka_probes: 0,
            rtx_at: None,
            delack_at: None,
            close_at: None,
            ka_at: None,
            cc: Cc::new(cfg.congestion, u32::from(mtu_mss)),
            ooo: Assembler::default(),
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

    /// Handles one segment for this connection (RFC 9293 §3.10.7.3, §3.10.7.4).
    pub(crate) fn input(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seg: &TcpRepr<'_>,
        sh: &mut Shared,
    ) -> Outcome {
        match self.state {
            TcpState::SynSent => return self.input_syn_sent(now, cfg, seg),
            TcpState::Closed | TcpState::Listen => return Outcome::drop(DropReason::TcpUnexpected),
            _ => {}
        }
        let seq = Seq(seg.seq_number);
        let rst = seg.control == TcpControl::Rst;
        let syn = seg.control == TcpControl::Syn;
        if self.state == TcpState::SynReceived && syn && seq == self.irs && seg.ack_number.is_none()
        {
            // The peer's SYN again: our SYN-ACK was lost. Send it again.
            self.snd_nxt = self.iss;
            return Outcome::default();
        }
        // RFC 7323 §5.3: PAWS.
        if self.has(TS_OK) && !rst {
            if let Some((tsval, _)) = seg.timestamp {
                if (tsval.wrapping_sub(self.ts_recent) as i32) < 0 {
                    self.flags |= ACK_NOW;
                    return Outcome::drop(DropReason::TcpPaws);
                }
            }
        }
        // First: is the segment acceptable (§3.10.7.4 table)?
        let len = seg.segment_len() as u32;
        let wnd = self.rcv_wnd();
        let in_wnd = |s: Seq| self.rcv_nxt <= s && s < self.rcv_nxt + wnd;
        let acceptable = match (len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => in_wnd(seq),
            // A zero window still takes ACKs, URGs and RSTs (§3.10.7.4): the data is
            // trimmed off below.
            (_, 0) => seq == self.rcv_nxt && seg.ack_number.is_some(),
            (_, _) => in_wnd(seq) || in_wnd(seq + (len - 1)),
        };
        if !acceptable {
            if !rst {
                self.flags |= ACK_NOW;
            }
            return Outcome::drop(DropReason::TcpOutOfWindow);
        }
        // Second: RST (RFC 5961 §3.2): exactly RCV.NXT resets, else a challenge ACK.
        if rst {
            if seq != self.rcv_nxt {
                self.challenge_ack(now, cfg, sh);
                return Outcome::drop(DropReason::TcpChallengeAck);
            }
            match self.state {
                TcpState::SynReceived if self.listener.is_some() => {
                    // Back to LISTEN: the half-open connection goes away (§3.10.7.4).
                    self.fail(TcpError::Refused);
                }
                TcpState::SynReceived => self.fail(TcpError::Refused),
                TcpState::Closing | TcpState::LastAck | TcpState::TimeWait => {
                    self.state = TcpState::Closed;
                    self.stop_timers();
                }
                _ => self.fail(TcpError::Reset),
            }
            return Outcome::default();
        }
        // Fourth: a SYN in a synchronized state draws a challenge ACK (RFC 5961 §4.2).
        if syn {
            self.challenge_ack(now, cfg, sh);
            return Outcome::drop(DropReason::TcpChallengeAck);
        }
        // Fifth: the ACK.
        let Some(ack) = seg.ack_number.map(Seq) else {
            return Outcome::drop(DropReason::TcpUnexpected);
        };
        if self.state == TcpState::SynReceived {
            if self.snd_una < ack && ack <= self.snd_max {
                self.establish(cfg);
                self.snd_wnd = u32::from(seg.window_len) << self.snd_shift;
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq;
                self.snd_wl2 = ack;
            } else {
                return Outcome {
                    drop: Some(DropReason::TcpBadAck),
                    reset: Some(reset_for(seg)),
                };
            }
        }
        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        if ack > self.snd_max || ack < self.snd_una - self.max_snd_wnd {
            self.challenge_ack(now, cfg, sh);
            return Outcome::drop(DropReason::TcpBadAck);
        }
        if self.has(TS_OK) {
            // RFC 7323 §4.3: remember the timestamp to echo.
            if let Some((tsval, _)) = seg.timestamp {
                if seq <= self.last_ack_sent && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0 {
                    self.ts_recent = tsval;
                }
            }
        }
        if let Some(idle) = cfg.keepalive {
            self.ka_at = Some(now + idle);
            self.ka_probes = 0;
        }
        let wnd = u32::from(seg.window_len) << self.snd_shift;
        if ack > self.snd_una {
            self.new_ack(now, cfg, ack, seg);
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && seg.control != TcpControl::Fin
            && wnd == self.snd_wnd
            && self.snd_max > self.snd_una
            && wnd != 0
        {
            self.dup_ack();
        }
        // Window update (§3.10.7.4, fifth, ESTABLISHED).
        if self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack) {
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
        }
        if self.has(FIN_ACKED) {
            match self.state {
                TcpState::FinWait1 => {
                    self.state = TcpState::FinWait2;
                    if self.has(APP_CLOSED) {
                        // Do not wait for ever on a peer that never closes.
                        self.close_at = Some(now + cfg.time_wait);
                    }
                }
                TcpState::Closing => self.enter_time_wait(now, cfg),
                TcpState::LastAck => {
                    self.state = TcpState::Closed;
                    self.stop_timers();
                    return Outcome::default();
                }
                _ => {}
            }
        }
        // Seventh: the data.
        let mut drop = None;
        let mut data_end = seq + seg.payload.len() as u32;
        if !seg.payload.is_empty() {
            match self.state {
                TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2 => {
                    drop = self.receive_data(now, cfg, seq, seg.payload);
                }
                _ => data_end = seq, // Already closed by the peer: ignore (§3.10.7.4).
            }
        }
        // Eighth: the FIN, once everything before it is in.
        if seg.control == TcpControl::Fin {
            if self.has(FIN_RCVD) {
                if self.state == TcpState::TimeWait {
                    // A retransmitted FIN: acknowledge it, restart the 2 MSL wait.
                    self.flags |= ACK_NOW;
                    self.close_at = Some(now + cfg.time_wait);
                }
            } else if data_end == self.rcv_nxt {
                self.rcv_nxt = self.rcv_nxt + 1;
                self.flags |= FIN_RCVD | ACK_NOW;
                match self.state {
                    TcpState::SynReceived | TcpState::Established => {
                        self.state = TcpState::CloseWait
                    }
                    TcpState::FinWait1 if self.has(FIN_ACKED) => self.enter_time_wait(now, cfg),
                    TcpState::FinWait1 => self.state = TcpState::Closing,
                    TcpState::FinWait2 => self.enter_time_wait(now, cfg),
                    _ => {}
                }
            } else {
                // A FIN past a hole: it comes again once the hole is filled.
                self.flags |= ACK_NOW;
            }
        }
        Outcome { drop, reset: None }
    }

    /// SYN-SENT (RFC 9293 §3.10.7.3).
    fn input_syn_sent(&mut self, now: Instant, cfg: &TcpConfig, seg: &TcpRepr<'_>) -> Outcome {
        let ack = seg.ack_number.map(Seq);
        if let Some(ack) = ack {
            if ack <= self.iss || ack > self.snd_max {
                if seg.control == TcpControl::Rst {
                    return Outcome::drop(DropReason::TcpBadAck);
                }
                return Outcome {
                    drop: Some(DropReason::TcpBadAck),
                    reset: Some(reset_for(seg)),
                };
            }
        }
        match seg.control {
            TcpControl::Rst => {
                // Only with an acceptable ACK (RFC 5961 §3.2 for SYN-SENT).
                if ack.is_some() {
                    self.fail(TcpError::Refused);
                    return Outcome::default();
                }
                Outcome::drop(DropReason::TcpUnexpected)
            }
            TcpControl::Syn => {
                self.irs = Seq(seg.seq_number);
                self.rcv_nxt = self.irs + 1;
                self.negotiate(cfg, seg);
                self.rcv_adv = self.rcv_nxt + (self.rx.free().min(65535) as u32);
                self.flags |= ACK_NOW;
                match ack {
                    Some(ack) => {
                        // Our SYN is acknowledged: ESTABLISHED.
                        self.snd_una = ack;
                        self.snd_nxt = self.snd_nxt.max(ack);
                        self.snd_wl2 = ack;
                        self.retries = 0;
                        self.rtx_at = None;
                        self.state = TcpState::Established;
                        if self.has(FIN_QUEUED) {
                            self.state = TcpState::FinWait1;
                        }
                        if let Some((_, t)) = self.rtt_probe.take() {
                            self.rtt_sample(cfg, now.saturating_since(t).as_nanos());
                        }
                        if let Some(idle) = cfg.keepalive {
                            self.ka_at = Some(now + idle);
                        }
                    }
                    None => {
                        // Simultaneous open (§3.5, figure 8): SYN-RECEIVED, our SYN
                        // goes again with an ACK.
                        self.state = TcpState::SynReceived;
                        self.snd_nxt = self.iss;
                        self.flags &= !ACK_NOW;
                    }
                }
                Outcome::default()
            }
            _ => Outcome::drop(DropReason::TcpUnexpected),
        }
    }

    /// SYN-RECEIVED to ESTABLISHED: the buffers of a passive open exist from now on.
    fn establish(&mut self, cfg: &TcpConfig) {
        if self.rx.capacity() == 0 {
            self.rx = RingBuffer::new(cfg.rx_buffer);
        }
        if self.tx.capacity() == 0 {
            self.tx = RingBuffer::new(cfg.tx_buffer);
        }
        self.state = if self.has(FIN_QUEUED) {
            TcpState::FinWait1
        } else {
            TcpState::Established
        };
    }

    /// An ACK that acknowledges new data (RFC 9293 §3.10.7.4, RFC 6298 §5, RFC 6582).
    fn new_ack(&mut self, now: Instant, cfg: &TcpConfig, ack: Seq, seg: &TcpRepr<'_>) {
        let mut acked = ack - self.snd_una;
        if self.snd_una == self.iss {
            acked -= 1; // our SYN
        }
        let data = (acked as usize).min(self.tx.len());
        if self.has(FIN_QUEUED) && acked as usize > self.tx.len() {
            self.flags |= FIN_ACKED;
        }
        self.tx.discard(data);
        let flight_before = self.snd_max - self.snd_una;
        self.snd_una = ack;
        self.snd_nxt = self.snd_nxt.max(ack);
        self.retries = 0;
        // RTT: from the echoed timestamp (RFC 7323 §4.1), else from the timed segment
        // (Karn's rule: never a retransmitted one).
        let mut sample = None;
        if self.has(TS_OK) {
            if let Some((_, tsecr)) = seg.timestamp.filter(|t| t.1 != 0) {
                let ms = self.ts_now(now).wrapping_sub(tsecr);
                if ms < 60_000 {
                    sample = Some(u64::from(ms) * 1_000_000);
                }
            }
        } else if let Some((s, t)) = self.rtt_probe {
            if ack > s {
                sample = Some(now.saturating_since(t).as_nanos());
                self.rtt_probe = None;
            }
        }
        if let Some(r) = sample {
            self.rtt_sample(cfg, r);
        }
        // Congestion control.
        if self.has(IN_RECOVERY) {
            if ack >= self.recover {
                // Full acknowledgment (RFC 6582 §3.2 step 3): deflate, leave recovery.
                let flight = self.snd_max - self.snd_una;
                self.cc.cwnd = self
                    .cc
                    .ssthresh
                    .min(flight.max(self.cc.mss()) + self.cc.mss());
                self.flags &= !IN_RECOVERY;
                self.dupacks = 0;
            } else {
                // Partial acknowledgment (step 4): send the next hole, deflate by what
                // was acked, add back one segment.
                self.flags |= FAST_RTX;
                let mss = self.cc.mss();
                self.cc.cwnd = self.cc.cwnd.saturating_sub(acked);
                if acked >= mss {
                    self.cc.cwnd += mss;
                }
                self.cc.cwnd = self.cc.cwnd.max(mss);
            }
        } else {
            self.dupacks = 0;
            let limited = flight_before < self.cc.cwnd / 2;
            if !limited {
                self.cc.on_ack(
                    now,
                    acked,
                    (self.srtt != 0).then(|| Duration::from_nanos(self.srtt)),
                );
            }
        }
        // RFC 6298 §5.2/5.3: stop the timer when all is acked, else restart it.
        self.rtx_at = if self.snd_una == self.snd_max {
            None
        } else {
            Some(now + Duration::from_nanos(self.rto))
        };
    }

    /// A duplicate ACK (RFC 5681 §2, §3.2; RFC 6582 §3.2).
    fn dup_ack(&mut self) {
        self.dupacks = self.dupacks.saturating_add(1);
        let mss = self.cc.mss();
        if self.has(IN_RECOVERY) {
            self.cc.cwnd = self.cc.cwnd.saturating_add(mss);
        } else if self.dupacks == 3 && self.snd_una >= self.recover {
            // Fast retransmit (RFC 6582 §3.2 step 2): the third duplicate, and not an
            // echo of data sent before the last recovery or timeout.
            let flight = self.snd_max - self.snd_una;
            self.cc.on_loss(flight);
            self.cc.cwnd = self.cc.ssthresh + 3 * mss;
            self.recover = self.snd_max;
            self.flags |= FAST_RTX | IN_RECOVERY;
            if self.rtt_probe.is_some_and(|(s, _)| s >= self.snd_una) {
                self.rtt_probe = None;
            }
        }
    }

    /// A round-trip sample (RFC 6298 §2.2, §2.3), nanoseconds.
    fn rtt_sample(&mut self, cfg: &TcpConfig, r: u64) {
        if self.srtt == 0 {
            self.srtt = r.max(1);
            self.rttvar = r / 2;
        } else {
            let diff = self.srtt.abs_diff(r);
            self.rttvar = (3 * self.rttvar + diff) / 4;
            self.srtt = ((7 * self.srtt + r) / 8).max(1);
        }
        // G, the clock granularity, is 1 ms (the timestamp clock).
        let rto = self.srtt + (4 * self.rttvar).max(1_000_000);
        self.rto = rto.clamp(cfg.min_rto.as_nanos(), cfg.max_rto.as_nanos());
    }

    /// Stores in-window data (RFC 9293 §3.10.7.4, seventh), in order or not; decides on
    /// the ACK (RFC 5681 §4.2, RFC 9293 §3.8.6.3).
    fn receive_data(
        &mut self,
        now: Instant,
        cfg: &TcpConfig,
        seq: Seq,
        data: &[u8],
    ) -> Option<DropReason> {
        let (mut seq, mut data) = (seq, data);
        if seq < self.rcv_nxt {
            let skip = (self.rcv_nxt - seq) as usize;
            if skip >= data.len() {
                self.flags |= ACK_NOW;
                return None;
            }
            data = &data[skip..];
            seq = self.rcv_nxt;
        }
        let off = seq - self.rcv_nxt;
        if self.has(APP_CLOSED) {
            // Nobody will read it: take it and forget it.
            if off == 0 {
                self.rcv_nxt = self.rcv_nxt + data.len() as u32;
            }
            self.flags |= ACK_NOW;
            return None;
        }
        if off == 0 {
            let n = self.rx.write_at(0, data);
            let had_holes = !self.ooo.is_empty();
            let total = if had_holes {
                self.ooo.add(0, n as u32);
                self.ooo.take_front() as usize
            } else {
                n
            };
            self.rx.commit(total);
            self.rcv_nxt = self.rcv_nxt + total as u32;
            if had_holes || n < data.len() || cfg.delayed_ack == Duration::ZERO {
                self.flags |= ACK_NOW;
            } else {
                self.delack_segs += 1;
                if self.delack_segs >= 2 {
                    self.flags |= ACK_NOW;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(now + cfg.delayed_ack);
                }
            }
            None
        } else {
            // Out of order: keep it in the free space, ACK at once (a duplicate ACK
            // with SACK blocks).
            self.flags |= ACK_NOW;
            let n = self.rx.write_at(off as usize, data);
            if n == 0 {
                return Some(DropReason::TcpOutOfWindow);
            }
            if !self.ooo.add(off, off + n as u32) {
                return Some(DropReason::TcpOooOverflow);
            }
            self.recent_sack = seq;
            None
        }
    }

    /// The next segment to send, if any; call until `None`.
    pub(crate) fn next_segment(&mut self, now: Instant, cfg: &TcpConfig) -> Option<OutSegment> {
        match self.state {
            TcpState::Closed | TcpState::Listen => return None,
            TcpState::SynSent | TcpState::SynReceived if self.snd_nxt == self.iss => {
                return Some(self.syn_segment(now, cfg));
            }
            TcpState::SynSent => return None,
            TcpState::TimeWait | TcpState::SynReceived => {
                return self
                    .has(ACK_NOW)
                    .then(|| self.ack_segment(now, 0, 0, TcpControl::None, self.snd_nxt));
            }
            _ => {}
        }
        let data_end = self.snd_una + self.tx.len() as u32;
        let fin_state = matches!(
            self.state,
            TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck
        );
        if self.has(FAST_RTX) {
            self.flags &= !FAST_RTX;
            if self.snd_max > self.snd_una {
                let len = self.tx.len().min(usize::from(self.eff_mss()));
                let fin = fin_state
                    && len == self.tx.len()
                    && self.has(FIN_QUEUED)
                    && self.snd_max > data_end;
                let ctl = if fin {
                    TcpControl::Fin
                } else {
                    TcpControl::None
                };
                let seg = self.ack_segment(now, 0, len, ctl, self.snd_una);
                let end = self.snd_una + len as u32 + u32::from(fin);
                self.snd_nxt = self.snd_nxt.max(end);
                self.rtx_at
                    .get_or_insert(now + Duration::from_nanos(self.rto));
                return Some(seg);
            }
        }
        if self.snd_nxt <= data_end {
            let off = (self.snd_nxt - self.snd_una) as usize;
            let avail = self.tx.len() - off;
            let flight = self.snd_nxt - self.snd_una;
            let win = self.snd_wnd.min(self.cc.cwnd);
            let usable = win.saturating_sub(flight) as usize;
            let mss = usize::from(self.eff_mss());
            let mut len = avail.min(mss).min(usable);
            if self.has(FORCE_ONE) {
                // A zero-window probe (RFC 9293 §3.8.6.1): one byte past the window.
                self.flags &= !FORCE_ONE;
                if len == 0 && avail > 0 {
                    len = 1;
                }
            }
            let fin = fin_state && self.has(FIN_QUEUED) && off + len == self.tx.len();
            // Nagle (RFC 9293 §3.7.4) and sender SWS avoidance: hold a short segment
            // while data is in flight.
            let hold = len < mss && flight > 0 && !fin && !(self.has(NODELAY) && len == avail);
            if (len > 0 && !hold) || fin {
                let ctl = if fin {
                    TcpControl::Fin
                } else if len == avail {
                    TcpControl::Psh
                } else {
                    TcpControl::None
                };
                let seq = self.snd_nxt;
                let seg = self.ack_segment(now, off, len, ctl, seq);
                self.snd_nxt = seq + len as u32 + u32::from(fin);
                if self.snd_nxt > self.snd_max {
                    if self.rtt_probe.is_none() && !self.has(TS_OK) && seq >= self.snd_max {
                        self.rtt_probe = Some((seq, now));
                    }
                    self.snd_max = self.snd_nxt;
                }
                if self.rtx_at.is_none() {
                    self.rtx_at = Some(now + Duration::from_nanos(self.rto));
                }
                return Some(seg);
            }
            if avail > 0 && self.snd_wnd == 0 && self.rtx_at.is_none() {
                // Zero window: the persist timer (the retransmission timer doubles as it).
                self.rtx_at = Some(now + Duration::from_nanos(self.rto));
            }
        }
        if self.has(KA_PROBE) {
            // A keepalive (RFC 9293 §3.8.4): SEG.SEQ = SND.NXT - 1, no data.
            self.flags &= !KA_PROBE;
            return Some(self.ack_segment(now, 0, 0, TcpControl::None, self.snd_una - 1));
        }
        if self.has(ACK_NOW) {
            return Some(self.ack_segment(now, 0, 0, TcpControl::None, self.snd_nxt));
        }
        None
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with our options.
    fn syn_segment(&mut self, now: Instant, cfg: &TcpConfig) -> OutSegment {
        let passive = self.state == TcpState::SynReceived;
        let window = if passive {
            cfg.rx_buffer
        } else {
            self.rx.free()
        }
        .min(65535) as u16;
        let offer = |ours: bool, theirs: bool| ours && (!passive || theirs);
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            control: TcpControl::Syn,
            seq_number: self.iss.0,
            ack_number: passive.then_some(self.rcv_nxt.0),
            window_len: window,
            window_scale: offer(cfg.window_scale, self.has(WS_OK)).then_some(self.rcv_shift),
            max_seg_size: Some(self.adv_mss),
            sack_permitted: offer(cfg.sack, self.has(SACK_OK)),
            sack_ranges: [None; 3],
            timestamp: offer(cfg.timestamps, self.has(TS_OK))
                .then(|| (self.ts_now(now), if passive { self.ts_recent } else { 0 })),
            payload: &[],
        };
        if passive {
            self.last_ack_sent = self.rcv_nxt;
            self.flags &= !ACK_NOW;
        }
        if self.snd_max == self.iss && self.rtt_probe.is_none() {
            self.rtt_probe = Some((self.iss, now));
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        if self.rtx_at.is_none() {
            self.rtx_at = Some(now + Duration::from_nanos(self.rto));
        }
        OutSegment {
            repr,
            data_off: 0,
            data_len: 0,
        }
    }

    /// A segment of the synchronized states: ACK, window, timestamps, SACK blocks.
    fn ack_segment(
        &mut self,
        now: Instant,
        data_off: usize,
        data_len: usize,
        control: TcpControl,
        seq: Seq,
    ) -> OutSegment {
        let free = if self.rx.capacity() == 0 {
            self.rcv_wnd() as usize
        } else {
            self.rx.free()
        };
        let field = (free >> self.rcv_shift).min(65535);
        let edge = self.rcv_nxt + ((field as u32) << self.rcv_shift);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        let mut sack_ranges = [None; 3];
        if self.has(SACK_OK) && !self.ooo.is_empty() {
            // RFC 2018 §4: the block holding the latest segment first, then others.
            let base = self.rcv_nxt;
            let blocks = self.ooo.ranges().iter().map(|&(s, e)| (base + s, base + e));
            let mut i = 0;
            if let Some(first) = blocks
                .clone()
                .find(|&(s, e)| s <= self.recent_sack && self.recent_sack < e)
            {
                sack_ranges[0] = Some((first.0 .0, first.1 .0));
                i = 1;
            }
            for (s, e) in blocks {
                if i == 3 {
                    break;
                }
                if Some((s.0, e.0)) != sack_ranges[0] {
                    sack_ranges[i] = Some((s.0, e.0));
                    i += 1;
                }
            }
        }
        self.last_ack_sent = self.rcv_nxt;
        self.flags &= !ACK_NOW;
        self.delack_at = None;
        self.delack_segs = 0;
        OutSegment {
            repr: TcpRepr {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                control,
                seq_number: seq.0,
                ack_number: Some(self.rcv_nxt.0),
                window_len: field as u16,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges,
                timestamp: self.has(TS_OK).then(|| (self.ts_now(now), self.ts_recent)),
                payload: &[],
            },
            data_off,
            data_len,
        }
    }

    /// The send buffer's bytes for a segment from [`next_segment`](Self::next_segment).
    pub(crate) fn tx_bytes(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        self.tx.get(off, len)
    }

    /// The earliest timer deadline.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        [self.rtx_at, self.delack_at, self.close_at, self.ka_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers due at `now` (RFC 6298 §5.4–5.7, RFC 9293 §3.8.6.1, §3.8.4).
    pub(crate) fn on_timer(&mut self, now: Instant, cfg: &TcpConfig) {
        if self.close_at.is_some_and(|t| now >= t) {
            // TIME-WAIT over (or an abandoned FIN-WAIT-2).
            self.state = TcpState::Closed;
            self.stop_timers();
            return;
        }
        if self.delack_at.is_some_and(|t| now >= t) {
            self.delack_at = None;
            self.flags |= ACK_NOW;
        }
        if self.rtx_at.is_some_and(|t| now >= t) {
            self.rtx_at = None;
            if self.state.is_synchronized() && self.snd_wnd == 0 && !self.tx.is_empty() {
                // Persist: probe the zero window, back off, never give up (RFC 1122
                // §4.2.2.17).
                self.flags |= FORCE_ONE;
                self.snd_nxt = self.snd_una;
                self.rto = (self.rto * 2).min(cfg.max_rto.as_nanos());
            } else if self.snd_max != self.snd_una || !self.state.is_synchronized() {
                self.retries += 1;
                let limit = if self.state.is_synchronized() {
                    cfg.max_retries
                } else {
                    cfg.syn_retries
                };
                if self.retries > limit {
                    self.fail(TcpError::TimedOut);
                    return;
                }
                if self.state.is_synchronized() {
                    self.cc.on_rto(self.snd_max - self.snd_una);
                }
                self.flags &= !(IN_RECOVERY | FAST_RTX);
                self.dupacks = 0;
                self.recover = self.snd_max;
                // Go back: everything unacknowledged is sent again (RFC 6298 §5.4),
                // the timer backs off (§5.5), Karn's rule drops the sample.
                self.snd_nxt = self.snd_una;
                self.rto = (self.rto * 2).min(cfg.max_rto.as_nanos());
                self.rtt_probe = None;
            }
        }
        if self.ka_at.is_some_and(|t| now >= t) {
            if self.ka_probes >= cfg.keepalive_probes {
                self.fail(TcpError::TimedOut);
                return;
            }
            self.ka_probes += 1;
            self.flags |= KA_PROBE;
            self.ka_at = Some(now + cfg.keepalive_interval);
        }
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
        n
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
