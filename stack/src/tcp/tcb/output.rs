//! What to send next: SYN or SYN-ACK with our options, retransmissions in loss
//! recovery (the first segment, then what RFC 6675's NextSeg names while pipe leaves
//! room, see `recovery`), new data within the windows with Nagle, what a timeout
//! rewound (skipping SACKed data), FIN, probes and pure ACKs with the window,
//! timestamps and SACK blocks.

use super::*;

impl Tcb {
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
            // Fast retransmit (RFC 6675 §5 step 4.3; RFC 6582 §3.2 steps 2 and 4): the
            // segment at SND.UNA, whatever the windows say.
            self.flags &= !FAST_RTX;
            if self.snd_max > self.snd_una {
                let len = self.first_rtx_len();
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
                self.rtx_hi = self.rtx_hi.max(self.snd_una + len as u32);
                self.rtx_at
                    .get_or_insert(now + Duration::from_nanos(self.rto));
                return Some(seg);
            }
        }
        // RFC 6675 (C): in SACK recovery, send while cwnd - pipe >= SMSS what NextSeg
        // names; rule 1 (a lost hole) comes before new data.
        let sack_rec = self.sack_recovery();
        let mss = usize::from(self.eff_mss());
        let room = sack_rec && self.cc.cwnd >= self.pipe.saturating_add(mss as u32);
        if room {
            if let Some((off, len)) = self.next_hole(true) {
                return Some(self.retransmit(now, off, len, false, true));
            }
        }
        if self.snd_nxt < self.snd_max {
            // Sending again what a timeout (or a probe) rewound: skip what the peer has
            // SACKed since (RFC 6675 §5.1).
            let mut off = self.snd_nxt - self.snd_una;
            for &(s, e) in self.sacked.ranges() {
                if s <= off && off < e {
                    off = e;
                }
            }
            self.snd_nxt = self.snd_una + off;
        }
        if self.snd_nxt <= data_end {
            let off = (self.snd_nxt - self.snd_una) as usize;
            let resend = self.snd_nxt < self.snd_max;
            let mut avail = self.tx.len() - off;
            if resend {
                // Up to the next SACKed block.
                if let Some(&(s, _)) = self.sacked.ranges().iter().find(|r| r.0 as usize > off) {
                    avail = avail.min(s as usize - off);
                }
            }
            let flight = self.snd_nxt - self.snd_una;
            // What the network holds: RFC 6675's pipe in SACK recovery; else the
            // flight, less what is SACKed while sending again after a timeout.
            let in_net = if sack_rec {
                if room {
                    self.pipe
                } else {
                    self.cc.cwnd
                }
            } else if resend {
                flight - self.sacked_below(flight)
            } else {
                flight
            };
            let usable = self
                .snd_wnd
                .saturating_sub(flight)
                .min(self.cc.cwnd.saturating_sub(in_net)) as usize;
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
            // of new data while data is in flight.
            let hold =
                len < mss && flight > 0 && !fin && !resend && !(self.has(NODELAY) && len == avail);
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
                if sack_rec {
                    // (C.3, C.4)
                    self.pipe += len as u32 + u32::from(fin);
                }
                if self.rtx_at.is_none() {
                    self.rtx_at = Some(if self.has(PERSIST) {
                        now + self.persist_interval(cfg)
                    } else {
                        now + Duration::from_nanos(self.rto)
                    });
                }
                return Some(seg);
            }
            if avail > 0 && self.snd_wnd == 0 && self.rtx_at.is_none() {
                // Zero window: the persist timer (the retransmission timer doubles as it).
                self.rtx_at = Some(now + self.persist_interval(cfg));
            }
        }
        if room {
            // NextSeg rule 3 (an unSACKed hole not yet deemed lost), then rule 4 (the
            // rescue retransmission).
            if let Some((off, len)) = self.next_hole(false) {
                return Some(self.retransmit(now, off, len, false, true));
            }
            if let Some((off, len, fin)) = self.rescue() {
                return Some(self.retransmit(now, off, len, fin, false));
            }
        }
        if self.has(KA_PROBE) {
            // A keepalive (RFC 9293 §3.8.4): SEG.SEQ = SND.NXT - 1, no data.
            self.flags &= !KA_PROBE;
            return Some(self.ack_segment(now, 0, 0, TcpControl::None, self.snd_una - 1));
        }
        if self.has(ACK_NOW) {
            // A pure ACK carries SND.MAX, not a SND.NXT that a timeout or a probe moved
            // back (as BSD does): the peer may have received more than SND.NXT, and
            // would drop an ACK below its RCV.NXT unread. At the very edge of the
            // peer's window SND.MAX would not be acceptable; SND.NXT is then used.
            let seq = if self.snd_max - self.snd_una < self.snd_wnd {
                self.snd_max
            } else {
                self.snd_nxt
            };
            return Some(self.ack_segment(now, 0, 0, TcpControl::None, seq));
        }
        None
    }

    /// A retransmission in SACK recovery of `len` bytes at offset `off` (and the FIN):
    /// HighRxt moves past it unless it is the rescue (RFC 6675 (C.2)), pipe grows by it
    /// (C.4).
    fn retransmit(
        &mut self,
        now: Instant,
        off: usize,
        len: usize,
        fin: bool,
        high_rxt: bool,
    ) -> OutSegment {
        let ctl = if fin {
            TcpControl::Fin
        } else {
            TcpControl::None
        };
        let seq = self.snd_una + off as u32;
        let seg = self.ack_segment(now, off, len, ctl, seq);
        if high_rxt {
            self.rtx_hi = self.rtx_hi.max(seq + len as u32);
        }
        self.pipe += len as u32 + u32::from(fin);
        self.rtx_at
            .get_or_insert(now + Duration::from_nanos(self.rto));
        seg
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
}
