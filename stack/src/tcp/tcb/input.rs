//! Segment arrival (RFC 9293 §3.10.7): SYN-SENT, then the acceptability test, RST, SYN,
//! ACK (with RFC 5961's checks, RTT samples, congestion control and fast recovery),
//! data and FIN; and ICMP errors about our segments (RFC 5927).

use super::*;

impl Tcb {
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
                if (tsval.wrapping_sub(self.ts_recent) as i32) < 0 && !self.disordered_ack(seg) {
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
            // Wholly below RCV.NXT and no further back than a buffer: what was received
            // already, sent again (or a keepalive), not a segment outside the window.
            let old = seq + len <= self.rcv_nxt
                && self.rcv_nxt - seq <= (self.rx.capacity() as u32).max(65535);
            return Outcome::drop(if old && !rst {
                DropReason::TcpDuplicate
            } else {
                DropReason::TcpOutOfWindow
            });
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
        if let Some(idle) = self.ka_idle {
            self.ka_at = Some(now + idle);
            self.ka_probes = 0;
        }
        let wnd = u32::from(seg.window_len) << self.snd_shift;
        // RFC 5681 §2: a duplicate acknowledgment (what NewReno counts).
        let dup = ack == self.snd_una
            && seg.payload.is_empty()
            && seg.control != TcpControl::Fin
            && wnd == self.snd_wnd
            && self.snd_max > self.snd_una
            && wnd != 0;
        let cumulative = ack > self.snd_una;
        let acked = if cumulative {
            self.new_ack(now, cfg, ack, seg)
        } else {
            0
        };
        // The scoreboard (RFC 6675 §4 Update), then what the ACK means for recovery.
        let sack_new = self.has(SACK_OK) && self.update_scoreboard(seg);
        self.on_ack_recovery(cumulative, acked, dup, sack_new);
        // Window update (§3.10.7.4, fifth, ESTABLISHED).
        if self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack) {
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
        }
        if self.has(PERSIST) && self.snd_wnd > 0 {
            // The window opened after zero-window probes: send from SND.UNA again (a
            // probe byte the receiver refused must not become a hole), with a fresh
            // timer and no probe backoff (RFC 9293 §3.8.6.1).
            self.flags &= !PERSIST;
            self.persist_shift = 0;
            self.snd_nxt = self.snd_una;
            self.rtx_at = None;
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

    /// A duplicate ACK that was merely reordered behind a later segment, which PAWS
    /// would drop for its older timestamp (as Linux's `tcp_disordered_ack`): no data,
    /// SYN, FIN or RST, at RCV.NXT, acknowledging SND.UNA with the same window (so it
    /// changes nothing but the SACK scoreboard, whose blocks loss recovery needs), and
    /// no older than one RTO. Its timestamp is not remembered.
    fn disordered_ack(&self, seg: &TcpRepr<'_>) -> bool {
        let Some((tsval, _)) = seg.timestamp else {
            return false;
        };
        let age_ms = self.ts_recent.wrapping_sub(tsval);
        seg.payload.is_empty()
            && matches!(seg.control, TcpControl::None | TcpControl::Psh)
            && Seq(seg.seq_number) == self.rcv_nxt
            && seg.ack_number == Some(self.snd_una.0)
            && u32::from(seg.window_len) << self.snd_shift == self.snd_wnd
            && self.snd_wnd != 0
            && u64::from(age_ms) * 1_000_000 <= self.rto
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
                        if let Some(idle) = self.ka_idle {
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
    /// Returns the bytes it acknowledged.
    fn new_ack(&mut self, now: Instant, cfg: &TcpConfig, ack: Seq, seg: &TcpRepr<'_>) -> u32 {
        let mut acked = ack - self.snd_una;
        if self.snd_una == self.iss {
            acked -= 1; // our SYN
        }
        let data = (acked as usize).min(self.tx.len());
        if self.has(FIN_QUEUED) && acked as usize > self.tx.len() {
            self.flags |= FIN_ACKED;
        }
        self.tx.discard(data);
        self.sacked.advance(ack - self.snd_una);
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
                // An echo of a segment sent before the last timeout is Karn's ambiguity
                // again: the ACK was most likely drawn by the retransmission (a
                // duplicate at the receiver, which echoes its older TS.Recent, RFC 7323
                // §4.3), and the sample would count the whole timeout as round trip.
                let stale = self.has(TIMED_OUT) && (tsecr.wrapping_sub(self.rto_tsval) as i32) < 0;
                if !stale {
                    self.flags &= !TIMED_OUT;
                }
                if ms < 60_000 && !stale {
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
        // Congestion control: growth outside recovery (in recovery, see `recovery`).
        if !self.has(IN_RECOVERY) {
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
        acked
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
                // Two segments or more call for an ACK (RFC 5681 §4.2), sent by the
                // next flush (`promote_ack`): at once, or after the receive batch.
                self.delack_segs = self.delack_segs.saturating_add(1);
                if self.delack_segs >= ACK_COALESCE_MAX {
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

    /// An ICMP error about the segment with sequence number `seq`; true when it changed
    /// something. Ignored unless `seq` is in flight (RFC 5927 §4.1).
    pub(crate) fn icmp_error(&mut self, seq: u32, hard: bool, mtu: Option<u32>) -> bool {
        let seq = Seq(seq);
        if seq < self.snd_una || seq >= self.snd_max {
            return false;
        }
        if let Some(mtu) = mtu {
            // RFC 1191 §6.3 / RFC 8201 §5.2: the MSS follows the path MTU (IPv4 at
            // least 68, IPv6 at least 1280), then what was lost is sent again.
            let (floor, headers) = if self.remote.is_ipv4() {
                (68, 40)
            } else {
                (1280, 60)
            };
            let mss = (mtu.max(floor) - headers).max(64) as u16;
            if mss < self.smss {
                self.smss = mss;
                self.snd_nxt = self.snd_una;
                return true;
            }
            return false;
        }
        if hard && self.state == TcpState::SynSent {
            self.fail(TcpError::Refused);
            return true;
        }
        false
    }
}
