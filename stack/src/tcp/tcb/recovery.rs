//! Loss recovery after duplicate acknowledgments: SACK-based recovery (RFC 6675) when
//! both sides agreed on SACK, NewReno (RFC 6582) when not.
//!
//! With SACK the sender keeps a scoreboard (`Tcb::sacked`: the peer's SACK blocks as
//! offsets from SND.UNA, RFC 6675 §4 `Update`) and decides everything from it:
//!
//! - a duplicate acknowledgment is one that SACKs octets not SACKed before (§2);
//!   recovery starts at the third, or as soon as `IsLost(HighACK + 1)` (§5 steps 2-3);
//! - entering sets `RecoveryPoint` (`recover`) to `HighData` (`snd_max`), ssthresh and
//!   cwnd to the congestion controller's reduction (§5 step 4.2), retransmits the first
//!   segment (4.3) and computes `pipe` (4.4, `SetPipe`);
//! - every later ACK below `RecoveryPoint` updates the scoreboard and `pipe` (B); while
//!   `cwnd - pipe >= SMSS` the output sends what `NextSeg` names (C): the first lost
//!   hole past `HighRxt` (`rtx_hi`, rule 1), else new data (rule 2), else the first
//!   unSACKed hole (rule 3), else once per recovery a rescue retransmission of the
//!   highest unSACKed segment (rule 4, `rescue_rxt`);
//! - an ACK at or past `RecoveryPoint` ends recovery (A).
//!
//! The scoreboard holds [`MAX_RANGES`](crate::tcp::assembler::MAX_RANGES) blocks;
//! blocks it cannot hold are forgotten, which only makes the sender more conservative
//! (it counts those octets as in flight and may send them again). Every query below
//! walks those few ranges: nothing allocates, nothing is per octet.
//!
//! Without SACK, RFC 6582: the third duplicate ACK (RFC 5681 §2 definition) retransmits
//! the first segment and inflates cwnd by three segments, each further duplicate
//! inflates it by one, each partial ACK retransmits the next unacknowledged segment and
//! deflates cwnd by what it acknowledged, the full ACK deflates it and ends recovery.

use super::*;

/// DupThresh (RFC 6675 §2, RFC 5681 §3.2).
const DUP_THRESH: u32 = 3;

/// One unSACKed stretch below the highest SACKed octet: offsets from SND.UNA, and
/// whether `IsLost` holds for its octets (all of them have the same SACKed data above).
#[derive(Debug, Clone, Copy)]
struct Hole {
    start: u32,
    end: u32,
    lost: bool,
}

impl Tcb {
    /// True while an RFC 6675 (SACK-based) recovery runs.
    #[inline]
    pub(super) fn sack_recovery(&self) -> bool {
        self.flags & (IN_RECOVERY | SACK_OK) == IN_RECOVERY | SACK_OK
    }

    /// The octets the scoreboard holds as SACKed.
    fn sacked_bytes(&self) -> u32 {
        self.sacked.ranges().iter().map(|&(s, e)| e - s).sum()
    }

    /// SACKed octets below offset `off` from SND.UNA.
    pub(super) fn sacked_below(&self, off: u32) -> u32 {
        self.sacked
            .ranges()
            .iter()
            .map(|&(s, e)| e.min(off).saturating_sub(s))
            .sum()
    }

    /// The holes of the scoreboard, lowest first, each with `IsLost` (RFC 6675 §4): at
    /// least DupThresh discontiguous SACKed blocks above it, or more than
    /// (DupThresh - 1) * SMSS SACKed octets above it.
    fn holes(&self) -> impl Iterator<Item = Hole> + '_ {
        let ranges = self.sacked.ranges();
        let mss = u32::from(self.eff_mss());
        let mut above_bytes = self.sacked_bytes();
        let mut pos = 0;
        ranges.iter().enumerate().filter_map(move |(i, &(s, e))| {
            let blocks = (ranges.len() - i) as u32;
            let hole = (pos < s).then(|| Hole {
                start: pos,
                end: s,
                lost: blocks >= DUP_THRESH || above_bytes > (DUP_THRESH - 1) * mss,
            });
            above_bytes -= e - s;
            pos = e;
            hole
        })
    }

    /// The scoreboard from the SACK blocks of an ACK (RFC 6675 §4 `Update`, RFC 2018
    /// §3): blocks within what was sent and not yet cumulatively acknowledged. True when
    /// it SACKs octets not SACKed before (or would, but the scoreboard is full): a
    /// duplicate acknowledgment in the sense of RFC 6675 §2.
    pub(super) fn update_scoreboard(&mut self, seg: &TcpRepr<'_>) -> bool {
        if seg.sack_ranges.iter().all(Option::is_none) {
            return false;
        }
        let before = self.sacked_bytes();
        let mut full = false;
        for (l, r) in seg.sack_ranges.iter().flatten() {
            let (l, r) = (Seq(*l).max(self.snd_una), Seq(*r));
            if l < r && r <= self.snd_max {
                full |= !self.sacked.add(l - self.snd_una, r - self.snd_una);
            }
        }
        full || self.sacked_bytes() > before
    }

    /// `SetPipe` (RFC 6675 §4): the octets between HighACK and HighData that are not
    /// SACKed and not deemed lost, plus those retransmitted (at or below HighRxt).
    pub(super) fn set_pipe(&mut self) {
        let high = self.snd_max - self.snd_una;
        let rtx = self.rtx_hi.max(self.snd_una) - self.snd_una;
        let resent = |s: u32, e: u32| rtx.min(e).saturating_sub(s);
        let mut pipe = 0;
        let mut top = 0;
        for h in self.holes() {
            if !h.lost {
                pipe += h.end - h.start;
            }
            pipe += resent(h.start, h.end);
        }
        if let Some(&(_, e)) = self.sacked.ranges().last() {
            top = e;
        }
        // Above the highest SACKed octet nothing is deemed lost.
        if top < high {
            pipe += high - top + resent(top, high);
        }
        self.pipe = pipe;
    }

    /// What an acknowledgment means for loss recovery, once the cumulative part is done
    /// (`new_ack`) and the scoreboard updated: leaving recovery on the full ACK, the
    /// partial ACKs, counting duplicates and entering recovery.
    ///
    /// `cumulative`: the ACK moved SND.UNA, by `acked` octets. `dup`: a duplicate ACK by
    /// RFC 5681 §2 (same ACK, no data, same window, data outstanding). `sack_new`: it
    /// SACKed new octets.
    pub(super) fn on_ack_recovery(
        &mut self,
        cumulative: bool,
        acked: u32,
        dup: bool,
        sack_new: bool,
    ) {
        let mss = self.cc.mss();
        let sack = self.has(SACK_OK);
        if self.has(IN_RECOVERY) {
            if self.snd_una >= self.recover {
                // RFC 6675 (A), RFC 6582 §3.2 step 3: the full acknowledgment ends
                // recovery; cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) avoids a
                // burst (after SACK recovery, whose cwnd is ssthresh already, only a
                // small flight lowers it).
                let flight = self.snd_max - self.snd_una;
                self.cc.cwnd = self.cc.ssthresh.min(flight.max(mss) + mss);
                self.flags &= !IN_RECOVERY;
                self.dupacks = 0;
            } else if sack {
                // RFC 6675 (B): the scoreboard is updated; the octets in the network
                // are counted again, and the output sends while cwnd - pipe >= SMSS.
                self.set_pipe();
            } else if cumulative {
                // RFC 6582 §3.2 step 4, partial acknowledgment: the first unacknowledged
                // segment goes again; cwnd deflates by what was acknowledged and gets
                // one segment back if that was at least one.
                self.flags |= FAST_RTX;
                self.cc.cwnd = self.cc.cwnd.saturating_sub(acked);
                if acked >= mss {
                    self.cc.cwnd += mss;
                }
                self.cc.cwnd = self.cc.cwnd.max(mss);
            } else if dup {
                // RFC 6582 §3.2 step 3 (RFC 5681 step 4): inflate by one segment.
                self.cc.cwnd = self.cc.cwnd.saturating_add(mss);
            }
            return;
        }
        if cumulative {
            self.dupacks = 0;
        }
        let outstanding = self.snd_max > self.snd_una;
        // No new recovery until the data sent before the last one (or before a
        // timeout) is acknowledged (RFC 6582 §3.2 step 2, RFC 6675 §5.1).
        let allowed = outstanding && self.snd_una >= self.recover;
        if sack {
            // RFC 6675 §5: duplicates are ACKs that SACK new octets, cumulative or not.
            if sack_new {
                self.dupacks = self.dupacks.saturating_add(1);
            }
            let lost_first = self.holes().next().is_some_and(|h| h.start == 0 && h.lost);
            if allowed && (u32::from(self.dupacks) >= DUP_THRESH || lost_first) {
                self.enter_sack_recovery();
            }
        } else if dup {
            self.dupacks = self.dupacks.saturating_add(1);
            if allowed && u32::from(self.dupacks) == DUP_THRESH {
                // RFC 6582 §3.2 step 2 (RFC 5681 §3.2 steps 2-3): ssthresh from the
                // flight, retransmit, cwnd = ssthresh + 3 * SMSS.
                let flight = self.snd_max - self.snd_una;
                self.cc.on_loss(flight);
                self.cc.cwnd = self.cc.ssthresh + DUP_THRESH * mss;
                self.recover = self.snd_max;
                self.rtx_hi = self.snd_una;
                self.flags |= FAST_RTX | IN_RECOVERY;
                self.forget_rtt_probe();
            }
        }
    }

    /// RFC 6675 §5 step 4.
    fn enter_sack_recovery(&mut self) {
        let flight = self.snd_max - self.snd_una;
        // (4.1) RecoveryPoint = HighData.
        self.recover = self.snd_max;
        // (4.2) ssthresh = cwnd = the controller's reduction of FlightSize (half for
        // NewReno, β = 0.7 for CUBIC, RFC 9438 §4.6).
        self.cc.on_loss(flight);
        self.cc.cwnd = self.cc.ssthresh;
        // (4.3) Retransmit HighACK + 1 (the output does, first); HighRxt covers it.
        self.rtx_hi = self.snd_una + self.first_rtx_len() as u32;
        self.rescue_rxt = self.snd_una - 1; // undefined: below any HighACK to come
        self.flags |= FAST_RTX | IN_RECOVERY;
        self.forget_rtt_probe();
        // (4.4) SetPipe; (4.5) the output goes on with (C).
        self.set_pipe();
    }

    /// Karn: a sample timed over a segment that is sent again is void.
    fn forget_rtt_probe(&mut self) {
        if self.rtt_probe.is_some_and(|(s, _)| s >= self.snd_una) {
            self.rtt_probe = None;
        }
    }

    /// The length of the first retransmission of recovery: a segment from SND.UNA, no
    /// further than the first SACKed block.
    pub(super) fn first_rtx_len(&self) -> usize {
        let mut len = self.tx.len().min(usize::from(self.eff_mss()));
        if let Some(&(s, _)) = self.sacked.ranges().first() {
            if s > 0 {
                len = len.min(s as usize);
            }
        }
        len
    }

    /// `NextSeg` (RFC 6675 §4) rules 1 and 3: one segment from the first unSACKed
    /// octet past HighRxt and below the highest SACKed octet, in a hole deemed lost
    /// (rule 1) or in any hole (rule 3). `(offset, length)` from SND.UNA.
    pub(super) fn next_hole(&self, lost_only: bool) -> Option<(usize, usize)> {
        let rtx = self.rtx_hi.max(self.snd_una) - self.snd_una;
        let mss = usize::from(self.eff_mss());
        self.holes()
            .filter(|h| h.end > rtx && (h.lost || !lost_only))
            .map(|h| {
                let start = h.start.max(rtx) as usize;
                (start, (h.end as usize - start).min(mss))
            })
            .find(|&(start, len)| len > 0 && start < self.tx.len())
            .map(|(start, len)| (start, len.min(self.tx.len() - start)))
    }

    /// `NextSeg` rule 4 (RFC 6675 §4): once per recovery (while HighACK is above
    /// RescueRxt), one segment ending with the highest unSACKed octet outstanding, so
    /// that a loss at the tail of the window does not wait for the timer.
    /// `(offset, data length, with the FIN)`; RescueRxt becomes RecoveryPoint.
    pub(super) fn rescue(&mut self) -> Option<(usize, usize, bool)> {
        if self.snd_una <= self.rescue_rxt {
            return None;
        }
        let high = self.snd_max - self.snd_una;
        // The highest unSACKed stretch: above the top block, else the last hole.
        let (start, end) = match self.sacked.ranges().last() {
            Some(&(_, e)) if e < high => (e, high),
            Some(_) => {
                let h = self.holes().last()?;
                (h.start, h.end)
            }
            None if high > 0 => (0, high),
            None => return None,
        };
        let data_end = self.tx.len() as u32;
        let fin = end > data_end;
        let end = end.min(data_end);
        let mss = u32::from(self.eff_mss());
        let start = start.min(end).max(end.saturating_sub(mss));
        if start == end && !fin {
            return None;
        }
        self.rescue_rxt = self.recover;
        Some((start as usize, (end - start) as usize, fin))
    }
}
