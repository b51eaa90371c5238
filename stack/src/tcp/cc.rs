//! Congestion control: the window's growth and its cut on loss. Slow start and the
//! loss responses follow RFC 5681; growth in congestion avoidance is NewReno's
//! (RFC 5681 §3.1) or CUBIC's (RFC 9438). Fast retransmit and recovery (RFC 6582) live
//! in the connection, which calls [`Cc::on_loss`] on entry and [`Cc::on_rto`] on a
//! retransmission timeout.

use crate::time::{Duration, Instant};

/// Which congestion control algorithm a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// NewReno: additive increase, halving on loss (RFC 5681, RFC 6582).
    NewReno,
    /// CUBIC (RFC 9438): cubic growth around the last maximum, β = 0.7.
    #[default]
    Cubic,
}

/// CUBIC's constants (RFC 9438 §4.1): C = 0.4, β = 0.7.
const CUBIC_C: f64 = 0.4;
const CUBIC_BETA: f64 = 0.7;
/// Most SMSS one ACK may add to cwnd in slow start (RFC 3465 §2.3 `L`, raised for the
/// stretch ACKs of batched receivers).
const SLOW_START_L: u32 = 16;

/// The congestion state of one connection, in bytes.
#[derive(Debug, Clone)]
pub struct Cc {
    algo: CongestionControl,
    /// The congestion window.
    pub cwnd: u32,
    /// The slow start threshold.
    pub ssthresh: u32,
    mss: u32,
    /// Bytes acked in congestion avoidance not yet turned into growth (NewReno).
    acked_acc: u32,
    // CUBIC (RFC 9438 §4): in segments (f32 keeps the state small).
    w_max: f32,
    k: f32,
    w_est: f32,
    epoch: Option<Instant>,
}

impl Cc {
    /// Initial state: IW = min(10 MSS, max(2 MSS, 14600)) (RFC 6928), ssthresh unbounded.
    pub fn new(algo: CongestionControl, mss: u32) -> Self {
        let mss = mss.max(1);
        Cc {
            algo,
            cwnd: (10 * mss).min((2 * mss).max(14600)),
            ssthresh: u32::MAX,
            mss,
            acked_acc: 0,
            w_max: 0.0,
            k: 0.0,
            w_est: 0.0,
            epoch: None,
        }
    }

    /// Sets the MSS once negotiated; the initial window follows it.
    pub fn set_mss(&mut self, mss: u32) {
        *self = Cc::new(self.algo, mss);
    }

    /// `acked` new bytes were acknowledged outside recovery.
    pub fn on_ack(&mut self, now: Instant, acked: u32, srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 slow start, with appropriate byte counting (RFC 3465). A
            // stretch ACK (receivers coalesce the ACKs of a receive batch, ours up to 16
            // segments) counts for what it covers, up to 16 SMSS, as Linux credits one.
            self.cwnd = self
                .cwnd
                .saturating_add(acked.min(self.mss.saturating_mul(SLOW_START_L)));
            return;
        }
        match self.algo {
            CongestionControl::NewReno => self.reno_ca(acked),
            CongestionControl::Cubic => self.cubic_ca(now, acked, srtt),
        }
    }

    fn reno_ca(&mut self, acked: u32) {
        // cwnd += SMSS*SMSS/cwnd per ACK, done as one SMSS per cwnd of bytes acked.
        self.acked_acc = self.acked_acc.saturating_add(acked);
        if self.acked_acc >= self.cwnd {
            self.acked_acc -= self.cwnd;
            self.cwnd = self.cwnd.saturating_add(self.mss);
        }
    }

    fn cubic_ca(&mut self, now: Instant, acked: u32, srtt: Option<Duration>) {
        let mss = self.mss as f32;
        let cwnd_seg = self.cwnd as f32 / mss;
        let epoch = *self.epoch.get_or_insert_with(|| {
            // A new epoch (RFC 9438 §4.2): after slow start with no loss yet, W_max is
            // the current window and K = 0.
            if self.w_max < cwnd_seg {
                self.w_max = cwnd_seg;
                self.k = 0.0;
            }
            self.w_est = cwnd_seg;
            now
        });
        let rtt = srtt.map_or(0.1, |d| d.as_nanos() as f32 / 1e9);
        let t = now.saturating_since(epoch).as_nanos() as f32 / 1e9;
        // RFC 9438 §4.2: the target is W_cubic(t + RTT), within [cwnd, 1.5 cwnd].
        let dt = t + rtt - self.k;
        let target = (CUBIC_C as f32 * dt * dt * dt + self.w_max).clamp(cwnd_seg, 1.5 * cwnd_seg);
        // RFC 9438 §4.3: the Reno-friendly estimate.
        let alpha = 3.0 * (1.0 - CUBIC_BETA as f32) / (1.0 + CUBIC_BETA as f32);
        let acked_seg = acked as f32 / mss;
        self.w_est += alpha * acked_seg / cwnd_seg;
        let w_cubic_t = CUBIC_C as f32 * (t - self.k).powi(3) + self.w_max;
        let next = if w_cubic_t < self.w_est {
            self.w_est
        } else {
            // RFC 9438 §4.4: cwnd += (target - cwnd) / cwnd per segment acked.
            cwnd_seg + (target - cwnd_seg) / cwnd_seg * acked_seg
        };
        let next = (next * mss) as u32;
        self.cwnd = next.max(self.cwnd);
    }

    /// Entering fast recovery with `flight` bytes outstanding (RFC 5681 §3.2 step 2,
    /// RFC 9438 §4.6): the new ssthresh; the caller inflates cwnd.
    pub fn on_loss(&mut self, flight: u32) {
        match self.algo {
            CongestionControl::NewReno => {
                self.ssthresh = (flight / 2).max(2 * self.mss);
            }
            CongestionControl::Cubic => {
                let cwnd_seg = self.cwnd as f32 / self.mss as f32;
                // Fast convergence (RFC 9438 §4.7).
                self.w_max = if cwnd_seg < self.w_max {
                    cwnd_seg * (1.0 + CUBIC_BETA as f32) / 2.0
                } else {
                    cwnd_seg
                };
                self.k = (self.w_max * (1.0 - CUBIC_BETA as f32) / CUBIC_C as f32).cbrt();
                let base = self.cwnd.min(flight.max(self.mss));
                self.ssthresh = ((base as f64 * CUBIC_BETA) as u32).max(2 * self.mss);
                self.epoch = None;
            }
        }
        self.acked_acc = 0;
    }

    /// A retransmission timeout (RFC 5681 §3.1 eq. 4; RFC 9438 §4.8): ssthresh as for a
    /// loss, cwnd back to one segment.
    pub fn on_rto(&mut self, flight: u32) {
        self.on_loss(flight);
        self.cwnd = self.mss;
    }

    /// The smallest window: one segment.
    pub fn mss(&self) -> u32 {
        self.mss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reno_halves_and_grows_linearly() {
        let mut cc = Cc::new(CongestionControl::NewReno, 1000);
        assert_eq!(cc.cwnd, 10_000);
        cc.on_ack(Instant::ZERO, 1000, None);
        assert_eq!(cc.cwnd, 11_000);
        cc.on_loss(20_000);
        assert_eq!(cc.ssthresh, 10_000);
        cc.cwnd = cc.ssthresh;
        for _ in 0..10 {
            cc.on_ack(Instant::ZERO, 1000, None);
        }
        assert_eq!(cc.cwnd, 11_000);
        cc.on_rto(8000);
        assert_eq!((cc.cwnd, cc.ssthresh), (1000, 4000));
    }

    #[test]
    fn cubic_cuts_by_beta_and_regrows() {
        let mut cc = Cc::new(CongestionControl::Cubic, 1000);
        cc.on_loss(10_000);
        assert_eq!(cc.ssthresh, 7000);
        cc.cwnd = cc.ssthresh;
        let mut now = Instant::from_secs(1);
        for _ in 0..1000 {
            now += Duration::from_millis(1);
            cc.on_ack(now, 1000, Some(Duration::from_millis(10)));
        }
        assert!(cc.cwnd > 10_000, "cwnd {}", cc.cwnd);
    }
}
