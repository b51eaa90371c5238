//! In-memory point-to-point links: two ends, each a bounded lock-free queue per
//! direction, so the ends may live on different threads.
//!
//! Frames move without a copy (the frame handle moves). A full queue drops the frame and
//! counts it, like a device queue; an optional loss hook decides per frame whether the
//! link drops it (tests and the simulator inject loss with it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use stack::Frame;

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
            },
            MemLink {
                tx: b,
                rx: a,
                loss: None,
            },
        )
    }

    /// Sets a hook that may drop frames this end sends.
    pub fn set_loss(&mut self, hook: LossHook) {
        self.loss = Some(hook);
    }

    /// Sends every frame in `frames` (leaving it empty); returns how many entered the
    /// link (the rest were dropped and counted).
    pub fn send_batch(&mut self, frames: &mut Vec<Frame>) -> usize {
        let mut n = 0;
        for f in frames.drain(..) {
            if let Some(hook) = self.loss.as_mut() {
                if hook(&f) {
                    self.tx.dropped_loss.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            match self.tx.queue.push(f) {
                Ok(()) => n += 1,
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
        a.set_loss(Box::new(|f: &Frame| f.data()[0] % 2 == 0));
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
}
