//! Timers (RFC 6298 §5 retransmission with backoff, persist probes, delayed ACK,
//! keepalive, TIME-WAIT): the earliest deadline and what happens when it passes.

use super::*;

impl Tcb {
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
                // §4.2.2.17). The backoff is the probes' own: the retransmission
                // timeout stays what the path's round trip says (RFC 6298).
                self.flags |= FORCE_ONE | PERSIST;
                self.snd_nxt = self.snd_una;
                self.persist_shift = (self.persist_shift + 1).min(16);
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
                    self.flags |= TIMED_OUT;
                    self.rto_tsval = self.ts_now(now);
                }
                self.flags &= !(IN_RECOVERY | FAST_RTX);
                self.sacked.clear();
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
}
