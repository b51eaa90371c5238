//! In-memory point-to-point links: two ends, each a bounded lock-free queue per
//! direction, so the ends may live on different threads.
//!
//! Frames move without a copy (the frame handle moves). A full queue drops the frame and
//! counts it, like a device queue; an optional loss hook decides per frame whether the
//! link drops it (tests and the simulator inject loss with it).
//!
//! An end is also a [`Driver`] with one queue: there, [`Driver::send`] moves only what
//! fits in the link queue and leaves the rest with the caller, while the inherent
//! [`MemLink::send_batch`] drops what does not fit, like a device queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use stack::wire::EthernetAddress;
use stack::Frame;

use crate::{Driver, DriverError, DriverStats, LinkInfo};

/// A loss hook: returns true to drop the frame.
pub type LossHook = Box<dyn FnMut(&Frame) -> bool + Send>;

struct Direction {
    queue: ArrayQueue<Frame>,
    sent: AtomicU64,
    dropped_full: AtomicU64,
    dropped_loss: AtomicU64,
}

impl Direction {
    fn new(capacity: usize) -> Self {
        Direction {
            queue: ArrayQueue::new(capacity.max(1)),
            sent: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_loss: AtomicU64::new(0),
        }
    }
}

/// Counters of one end's transmit direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemLinkStats {
    /// Frames accepted into the link.
    pub sent: u64,
    /// Frames dropped because the link queue was full.
    pub dropped_full: u64,
    /// Frames dropped by the loss hook.
    pub dropped_loss: u64,
    /// Frames waiting in the link now.
    pub queued: usize,
}

/// One end of an in-memory link.
pub struct MemLink {
    tx: Arc<Direction>,
    rx: Arc<Direction>,
    loss: Option<LossHook>,
    info: LinkInfo,
    rx_packets: u64,
    rx_bytes: u64,
    tx_bytes: u64,
}

fn default_info() -> LinkInfo {
    LinkInfo {
        name: "memlink".into(),
        mac: EthernetAddress([0x02, 0, 0, 0, 0, 0]),
        mtu: 1500,
        queues: 1,
    }
}

impl MemLink {
    /// A connected pair of ends; each direction holds up to `capacity` frames.
    pub fn pair(capacity: usize) -> (MemLink, MemLink) {
        let a = Arc::new(Direction::new(capacity));
        let b = Arc::new(Direction::new(capacity));
        (
            MemLink {
                tx: a.clone(),
                rx: b.clone(),
                loss: None,
                info: default_info(),
                rx_packets: 0,
                rx_bytes: 0,
                tx_bytes: 0,
            },
            MemLink {
                tx: b,
                rx: a,
                loss: None,
                info: default_info(),
                rx_packets: 0,
                rx_bytes: 0,
                tx_bytes: 0,
            },
        )
    }

    /// Sets a hook that may drop frames this end sends.
    pub fn set_loss(&mut self, hook: LossHook) {
        self.loss = Some(hook);
    }

    /// Sets the link facts [`Driver::link`] reports (by default: name `memlink`, MAC
    /// 02:00:00:00:00:00, MTU 1500, one queue; the queue count is always 1).
    pub fn set_link_info(&mut self, info: LinkInfo) {
        self.info = LinkInfo { queues: 1, ..info };
    }

    /// Sends every frame in `frames` (leaving it empty); returns how many entered the
    /// link (the rest were dropped and counted).
    pub fn send_batch(&mut self, frames: &mut Vec<Frame>) -> usize {
        let mut drained = std::mem::take(frames);
        let n = self.push_frames(drained.drain(..));
        // Give the (now empty) Vec back so its capacity is reused.
        *frames = drained;
        n
    }

    /// Offers each frame to the loss hook and the link queue; returns how many entered.
    fn push_frames(&mut self, frames: impl Iterator<Item = Frame>) -> usize {
        let mut n = 0;
        for f in frames {
            if let Some(hook) = self.loss.as_mut() {
                if hook(&f) {
                    self.tx.dropped_loss.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let len = f.len() as u64;
            match self.tx.queue.push(f) {
                Ok(()) => {
                    n += 1;
                    self.tx_bytes += len;
                }
                Err(_dropped) => {
                    self.tx.dropped_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.tx.sent.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Moves up to `max` received frames into `out`; returns how many.
    pub fn recv_batch(&mut self, out: &mut Vec<Frame>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.queue.pop() {
                Some(f) => {
                    self.rx_packets += 1;
                    self.rx_bytes += f.len() as u64;
                    out.push(f);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// Frames waiting to be received at this end.
    pub fn rx_pending(&self) -> usize {
        self.rx.queue.len()
    }

    /// Counters of this end's transmit direction.
    pub fn stats(&self) -> MemLinkStats {
        MemLinkStats {
            sent: self.tx.sent.load(Ordering::Relaxed),
            dropped_full: self.tx.dropped_full.load(Ordering::Relaxed),
            dropped_loss: self.tx.dropped_loss.load(Ordering::Relaxed),
            queued: self.tx.queue.len(),
        }
    }
}

impl MemLink {
    fn check_queue(&self, queue: u16) -> Result<(), DriverError> {
        if queue == 0 {
            Ok(())
        } else {
            Err(DriverError::NoSuchQueue {
                iface: self.info.name.clone(),
                queue,
                queues: 1,
            })
        }
    }
}

impl Driver for MemLink {
    fn recv(&mut self, queue: u16, out: &mut Vec<Frame>, max: usize) -> Result<usize, DriverError> {
        self.check_queue(queue)?;
        Ok(self.recv_batch(out, max))
    }

    fn send(&mut self, queue: u16, frames: &mut Vec<Frame>) -> Result<usize, DriverError> {
        self.check_queue(queue)?;
        // Only this end pushes into its transmit queue, so the room seen now can only
        // grow before the pushes below: none of them fails.
        let room = self.tx.queue.capacity() - self.tx.queue.len();
        let n = room.min(frames.len());
        let mut taken = std::mem::take(frames);
        self.push_frames(taken.drain(..n));
        *frames = taken;
        Ok(n)
    }

    fn link(&self) -> LinkInfo {
        self.info.clone()
    }

    fn poll_fd(&self, _queue: u16) -> Option<std::os::fd::RawFd> {
        None
    }

    fn stats(&self) -> DriverStats {
        let s = self.stats();
        DriverStats {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            tx_packets: s.sent,
            tx_bytes: self.tx_bytes,
            tx_dropped: s.dropped_full + s.dropped_loss,
            ..DriverStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stack::{FramePool, PoolConfig};

    fn frames(pool: &FramePool, n: usize) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let mut f = pool.alloc().unwrap();
                f.append(1).unwrap()[0] = i as u8;
                f
            })
            .collect()
    }

    #[test]
    fn frames_cross_in_order_and_queue_overflow_is_counted() {
        let pool = FramePool::with_frames(16, PoolConfig::default()).unwrap();
        let (mut a, mut b) = MemLink::pair(4);
        let mut out = frames(&pool, 6);
        assert_eq!(a.send_batch(&mut out), 4);
        assert!(out.is_empty());
        assert_eq!(a.stats().dropped_full, 2);
        assert_eq!(pool.available(), 12, "dropped frames went back to the pool");
        let mut got = Vec::new();
        assert_eq!(b.recv_batch(&mut got, 3), 3);
        assert_eq!(b.recv_batch(&mut got, 10), 1);
        let bytes: Vec<u8> = got.iter().map(|f| f.data()[0]).collect();
        assert_eq!(bytes, vec![0, 1, 2, 3]);
        // The other direction is independent.
        let mut back = frames(&pool, 1);
        b.send_batch(&mut back);
        assert_eq!(a.recv_batch(&mut got, 10), 1);
        assert_eq!(b.rx_pending(), 0);
    }

    #[test]
    fn loss_hook_drops_and_counts() {
        let pool = FramePool::with_frames(16, PoolConfig::default()).unwrap();
        let (mut a, mut b) = MemLink::pair(16);
        a.set_loss(Box::new(|f: &Frame| f.data()[0].is_multiple_of(2)));
        let mut out = frames(&pool, 10);
        assert_eq!(a.send_batch(&mut out), 5);
        assert_eq!(a.stats().dropped_loss, 5);
        let mut got = Vec::new();
        b.recv_batch(&mut got, 16);
        assert!(got.iter().all(|f| f.data()[0] % 2 == 1));
    }

    #[test]
    fn ends_work_across_threads() {
        let pool = FramePool::with_frames(64, PoolConfig::default()).unwrap();
        let (mut a, mut b) = MemLink::pair(64);
        let mut out = frames(&pool, 50);
        let t = std::thread::spawn(move || {
            a.send_batch(&mut out);
            a
        });
        let _a = t.join().unwrap();
        let mut got = Vec::new();
        assert_eq!(b.recv_batch(&mut got, 64), 50);
    }

    #[test]
    fn driver_send_leaves_what_does_not_fit() {
        let pool = FramePool::with_frames(16, PoolConfig::default()).unwrap();
        let (mut a, mut b) = MemLink::pair(4);
        let mut out = frames(&pool, 6);
        assert_eq!(Driver::send(&mut a, 0, &mut out).unwrap(), 4);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data()[0], 4, "unsent frames stay in order");
        assert_eq!(a.stats().dropped_full, 0);
        assert!(matches!(
            Driver::send(&mut a, 1, &mut out),
            Err(DriverError::NoSuchQueue { queue: 1, .. })
        ));
        let mut got = Vec::new();
        assert_eq!(Driver::recv(&mut b, 0, &mut got, 64).unwrap(), 4);
        assert_eq!(Driver::send(&mut a, 0, &mut out).unwrap(), 2);
        assert!(out.is_empty());
        let s = Driver::stats(&a);
        assert_eq!((s.tx_packets, s.tx_bytes), (6, 6));
        assert_eq!(Driver::stats(&b).rx_packets, 4);
        assert_eq!(Driver::link(&a).queues, 1);
        assert!(Driver::poll_fd(&a, 0).is_none());
    }
}
