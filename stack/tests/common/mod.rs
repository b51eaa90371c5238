//! A tiny in-memory network for the stack's own integration tests: stacks joined by
//! point-to-point links, frames moved by hand, time advanced by hand.
#![allow(dead_code)]

use stack::addr::{Ipv4Cidr, Ipv6Cidr};
use stack::wire::EthernetAddress;
use stack::{
    Duration, Event, Frame, FramePool, Instant, InterfaceConfig, PoolConfig, PortId, Stack,
    StackConfig,
};

pub struct Net {
    pub nodes: Vec<Stack>,
    /// (node, port) <-> (node, port)
    pub links: Vec<((usize, PortId), (usize, PortId))>,
    pub now: Instant,
    buf: Vec<Frame>,
    /// Seeded loss, duplication and reordering of every frame on every link.
    pub impair: Option<Impair>,
    /// Frames held back one round (reordered), with where they go.
    held: Vec<((usize, PortId), Frame)>,
    /// Frames dropped, duplicated and reordered by `impair`.
    pub impaired: [u64; 3],
    /// Frame pools for the nodes to come, in order (else each gets a new one).
    pub pools: Vec<FramePool>,
}

/// Link impairments, each a probability per frame, drawn from a seeded generator.
#[derive(Debug, Clone, Copy)]
pub struct Impair {
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    pub rng: u64,
}

impl Impair {
    pub fn new(seed: u64, loss: f64, dup: f64, reorder: f64) -> Self {
        Impair {
            loss,
            dup,
            reorder,
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    /// A uniform draw in [0, 1) (xorshift64*).
    pub fn draw(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn mac(node: u8, port: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, node, port])
}

impl Net {
    pub fn new() -> Self {
        Net {
            nodes: Vec::new(),
            links: Vec::new(),
            now: Instant::from_secs(1),
            buf: Vec::with_capacity(256),
            impair: None,
            held: Vec::new(),
            impaired: [0; 3],
            pools: Vec::new(),
        }
    }

    pub fn add(&mut self, config: StackConfig) -> usize {
        // A pool given to reuse: its frames are already touched, which saves the page
        // faults of a fresh one in tests that build many nets.
        let pool = match self.pools.get(self.nodes.len()) {
            Some(p) => p.clone(),
            None => FramePool::with_frames(4096, PoolConfig::default()).unwrap(),
        };
        let seed = self.nodes.len() as u64 + 1;
        self.nodes.push(Stack::new(config, pool, seed));
        self.nodes.len() - 1
    }

    pub fn port(&mut self, node: usize, v4: &[&str], v6: &[&str]) -> PortId {
        let n = self.nodes[node].ports().len() as u8;
        let mut cfg = InterfaceConfig::new(format!("n{node}p{n}"), mac(node as u8, n));
        for a in v4 {
            cfg = cfg.with_ipv4(a.parse::<Ipv4Cidr>().unwrap());
        }
        for a in v6 {
            cfg = cfg.with_ipv6(a.parse::<Ipv6Cidr>().unwrap());
        }
        self.nodes[node].add_port(cfg).unwrap()
    }

    pub fn link(&mut self, a: (usize, PortId), b: (usize, PortId)) {
        self.links.push((a, b));
    }

    /// Moves frames until no stack has anything to send, advancing 1 ms per round and
    /// running timers. Returns the frames moved.
    pub fn run(&mut self, max_rounds: usize) -> usize {
        let mut moved = 0;
        for _ in 0..max_rounds {
            let mut any = !self.held.is_empty();
            let held = std::mem::take(&mut self.held);
            for (to, f) in held {
                let now = self.now;
                self.buf.push(f);
                self.nodes[to.0].receive_batch(now, to.1, &mut self.buf);
                self.buf.clear();
            }
            for i in 0..self.links.len() {
                let (a, b) = self.links[i];
                for (from, to) in [(a, b), (b, a)] {
                    self.nodes[from.0].drain_tx(from.1, &mut self.buf, usize::MAX);
                    if self.impair.is_some() && !self.buf.is_empty() {
                        any = true;
                        self.impair_batch(to);
                    }
                    if !self.buf.is_empty() {
                        any = true;
                        moved += self.buf.len();
                        let now = self.now;
                        self.nodes[to.0].receive_batch(now, to.1, &mut self.buf);
                    }
                }
            }
            self.now += Duration::from_millis(1);
            let now = self.now;
            for n in &mut self.nodes {
                n.poll(now);
                any |= n.has_tx();
            }
            if !any {
                break;
            }
        }
        moved
    }

    /// Applies `impair` to the frames in `buf` bound for `to`.
    fn impair_batch(&mut self, to: (usize, PortId)) {
        let mut imp = self.impair.take().unwrap();
        let frames: Vec<Frame> = self.buf.drain(..).collect();
        for f in frames {
            if imp.draw() < imp.loss {
                self.impaired[0] += 1;
                continue;
            }
            if imp.draw() < imp.dup {
                if let Some(mut copy) = self.nodes[to.0].pool().alloc() {
                    copy.append(f.len()).unwrap().copy_from_slice(f.data());
                    self.impaired[1] += 1;
                    self.buf.push(copy);
                }
            }
            if imp.draw() < imp.reorder {
                self.impaired[2] += 1;
                self.held.push((to, f));
            } else {
                self.buf.push(f);
            }
        }
        self.impair = Some(imp);
    }

    /// Advances time by `d` in 10 ms steps, moving frames.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10);
            self.run(100);
        }
    }

    pub fn events(&mut self, node: usize) -> Vec<Event> {
        std::iter::from_fn(|| self.nodes[node].pop_event()).collect()
    }
}
