//! Simulated point-to-point links: serialization, propagation, a drop-tail queue and
//! impairments (random and bursty loss, reordering, duplication, corruption).
//!
//! A link is full duplex: each direction has its own transmitter, queue, random
//! generator and counters. A frame handed to a direction waits in the queue (dropped at
//! the tail when the queue is full), is serialized at the link's bandwidth, then
//! arrives `delay` later at the far end, unless an impairment drops, delays, copies or
//! corrupts it. Every impairment decision draws from the direction's own generator,
//! seeded from the simulation's seed, so a run is reproducible.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stack::{Duration, Frame, Instant};

/// How a link loses frames.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Loss {
    /// No loss.
    #[default]
    None,
    /// Each frame is lost independently with this probability (Bernoulli).
    Random(f64),
    /// Gilbert–Elliott: a two-state Markov chain, stepped once per frame, that loses
    /// frames with `loss_good` in the good state and `loss_bad` in the bad state. The
    /// long-run loss rate is `(p_bg·loss_good + p_gb·loss_bad) / (p_gb + p_bg)`; losses
    /// come in bursts of mean length about `1 / p_bg` when `loss_bad` is 1.
    GilbertElliott {
        /// Probability of moving from good to bad, per frame.
        p_gb: f64,
        /// Probability of moving from bad to good, per frame.
        p_bg: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

impl Loss {
    /// The long-run fraction of frames lost.
    pub fn mean_rate(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Random(p) => p,
            Loss::GilbertElliott {
                p_gb,
                p_bg,
                loss_good,
                loss_bad,
            } => {
                if p_gb + p_bg == 0.0 {
                    loss_good
                } else {
                    (p_bg * loss_good + p_gb * loss_bad) / (p_gb + p_bg)
                }
            }
        }
    }
}

/// Properties of a link (both directions alike).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Bits per second; 0 means infinitely fast (no serialization delay).
    pub bandwidth_bps: u64,
    /// Propagation delay.
    pub delay: Duration,
    /// Frames the drop-tail queue holds besides the one being serialized.
    pub queue_limit: usize,
    /// Loss model.
    pub loss: Loss,
    /// Probability that a frame is held back by `reorder_delay`, so later frames pass it.
    pub reorder: f64,
    /// Extra delay of a reordered frame.
    pub reorder_delay: Duration,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that one byte of an IP frame is flipped in transit (see
    /// [`corrupt_offset`] for which bytes).
    pub corrupt: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            bandwidth_bps: 1_000_000_000,
            delay: Duration::from_micros(100),
            queue_limit: 100,
            loss: Loss::None,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            duplicate: 0.0,
            corrupt: 0.0,
        }
    }
}

impl LinkConfig {
    /// Time to put `bytes` on the wire (Ethernet preamble and gaps not counted).
    pub fn serialization(&self, bytes: usize) -> Duration {
        if self.bandwidth_bps == 0 {
            Duration::ZERO
        } else {
            let bits = bytes as u128 * 8 * 1_000_000_000;
            Duration::from_nanos(bits.div_ceil(u128::from(self.bandwidth_bps)) as u64)
        }
    }
}

/// Counters of one direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirStats {
    /// Frames handed to the link by the sender.
    pub offered: u64,
    /// Frames dropped at the tail of a full queue.
    pub queue_drops: u64,
    /// Frames dropped because the link was down.
    pub down_drops: u64,
    /// Frames that were serialized onto the wire.
    pub transmitted: u64,
    /// Bytes serialized onto the wire.
    pub bytes: u64,
    /// Frames lost by the loss model.
    pub lost: u64,
    /// Frames held back to be reordered.
    pub reordered: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Frames with a flipped byte.
    pub corrupted: u64,
    /// Frames a link hook dropped.
    pub hook_drops: u64,
    /// Frames (copies included) handed to the receiving node.
    pub delivered: u64,
    /// Most frames ever waiting in the queue.
    pub max_queue: usize,
}

impl DirStats {
    /// Adds `other` into `self`.
    pub fn accumulate(&mut self, other: &DirStats) {
        self.offered += other.offered;
        self.queue_drops += other.queue_drops;
        self.down_drops += other.down_drops;
        self.transmitted += other.transmitted;
        self.bytes += other.bytes;
        self.lost += other.lost;
        self.reordered += other.reordered;
        self.duplicated += other.duplicated;
        self.corrupted += other.corrupted;
        self.hook_drops += other.hook_drops;
        self.delivered += other.delivered;
        self.max_queue = self.max_queue.max(other.max_queue);
    }
}

/// What happens to a frame once it is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fate {
    /// The frame is lost.
    pub lost: bool,
    /// Extra delay (reordering).
    pub extra: Duration,
    /// A copy arrives too.
    pub duplicate: bool,
    /// Byte offset to flip and the XOR mask.
    pub corrupt: Option<(usize, u8)>,
}

/// One direction of a link.
pub(crate) struct Direction {
    pub queue: VecDeque<Frame>,
    /// The transmitter is busy until then (serializing the last frame started).
    pub busy_until: Instant,
    pub rng: SmallRng,
    pub ge_bad: bool,
    pub stats: DirStats,
}

impl Direction {
    pub fn new(seed: u64) -> Self {
        Direction {
            queue: VecDeque::new(),
            busy_until: Instant::ZERO,
            rng: SmallRng::seed_from_u64(seed),
            ge_bad: false,
            stats: DirStats::default(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        // No draw at all for a disabled impairment, so that turning one on does not
        // shift the random sequence of a link that never uses it.
        p > 0.0 && (p >= 1.0 || self.rng.random::<f64>() < p)
    }

    /// Decides the fate of a frame of `data` just serialized under `cfg`.
    pub fn fate(&mut self, cfg: &LinkConfig, data: &[u8]) -> Fate {
        let lost = match cfg.loss {
            Loss::None => false,
            Loss::Random(p) => self.chance(p),
            Loss::GilbertElliott {
                p_gb,
                p_bg,
                loss_good,
                loss_bad,
            } => {
                self.ge_bad = if self.ge_bad {
                    !self.chance(p_bg)
                } else {
                    self.chance(p_gb)
                };
                self.chance(if self.ge_bad { loss_bad } else { loss_good })
            }
        };
        if lost {
            return Fate {
                lost,
                extra: Duration::ZERO,
                duplicate: false,
                corrupt: None,
            };
        }
        let extra = if self.chance(cfg.reorder) {
            cfg.reorder_delay
        } else {
            Duration::ZERO
        };
        let duplicate = self.chance(cfg.duplicate);
        let corrupt = if self.chance(cfg.corrupt) {
            corrupt_range(data).map(|r| {
                let at = self.rng.random_range(r);
                let mask = self.rng.random_range(1..=255u8);
                (at, mask)
            })
        } else {
            None
        };
        Fate {
            lost,
            extra,
            duplicate,
            corrupt,
        }
    }
}

/// The bytes corruption may flip in a frame, or `None` for a frame it leaves alone.
///
/// Only IPv4 and IPv6 frames are corrupted, and only in bytes some checksum covers, so
/// that the receiving stack's checksums catch every flip: a real link's Ethernet FCS
/// catches errors in the Ethernet header and in ARP (which has no checksum of its own),
/// and the first 8 bytes of an IPv6 header (traffic class, flow label, payload length,
/// next header, hop limit) are covered by no checksum at all. For IPv4 every byte after
/// the Ethernet header is fair game (header checksum, then the upper-layer checksum);
/// for IPv6 the addresses (in the upper-layer pseudo-header) and everything after them.
pub fn corrupt_range(data: &[u8]) -> Option<std::ops::Range<usize>> {
    if data.len() < 14 {
        return None;
    }
    let start = match u16::from_be_bytes([data[12], data[13]]) {
        0x0800 => 14,
        0x86dd => 14 + 8,
        _ => return None,
    };
    (data.len() > start).then_some(start..data.len())
}

/// The byte a corruption of `data` would flip first: see [`corrupt_range`].
pub fn corrupt_offset(data: &[u8]) -> Option<usize> {
    corrupt_range(data).map(|r| r.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_time_of_a_full_frame() {
        let cfg = LinkConfig {
            bandwidth_bps: 10_000_000,
            ..Default::default()
        };
        // 1500 bytes at 10 Mbit/s: 1.2 ms.
        assert_eq!(cfg.serialization(1500), Duration::from_micros(1200));
        let inf = LinkConfig {
            bandwidth_bps: 0,
            ..Default::default()
        };
        assert_eq!(inf.serialization(1500), Duration::ZERO);
    }

    #[test]
    fn gilbert_elliott_mean_rate() {
        let ge = Loss::GilbertElliott {
            p_gb: 0.01,
            p_bg: 0.19,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        assert!((ge.mean_rate() - 0.05).abs() < 1e-12);
        assert_eq!(Loss::Random(0.1).mean_rate(), 0.1);
    }

    #[test]
    fn corruption_spares_arp_and_unchecked_ipv6_bytes() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(corrupt_range(&arp), None);
        let mut v6 = vec![0u8; 62];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(corrupt_range(&v6), Some(22..62));
        let mut v4 = vec![0u8; 60];
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(corrupt_offset(&v4), Some(14));
        assert_eq!(corrupt_range(&[0u8; 10]), None);
    }
}
