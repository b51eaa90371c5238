//! One shard: a worker thread's stack, the ports it owns, and its poll loop.
//!
//! Each port is owned by one shard, which alone receives from and transmits on its
//! driver. A frame received on a port goes, by flow hash ([`stack::flow`]), to one
//! shard: the owner keeps its share and hands the rest over bounded lock-free queues
//! (`inbound`), so every frame of a flow meets the same stack, in order. ARP and NDP
//! frames are answered by the owner and copied to every other shard, whose neighbor
//! caches learn from them ([`Stack::snoop_neighbor`]). A shard that has frames to send
//! on a port it does not own hands them to the owner (`outbound`), which sends them with
//! its own. Queues that are full drop and count; nothing waits.
//!
//! Per packet: no allocation (batch vectors are reused), no lock, no log line, no system
//! call beyond the drivers' own. Once per round the shard checks one atomic for a new
//! route table and pops its command queue (work from the control plane, as closures).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use drivers::{Capture, Driver, DriverStats, Shutdown};
use stack::flow::{self, Dispatch};
use stack::{Frame, PortCounters, PortId, Stack};

use super::{Clock, Shared, BATCH, SLEEP_MAX};
use crate::config::IdlePolicy;

/// A frame on its way between shards.
pub struct Handoff {
    /// The port it arrived on (inbound) or leaves by (outbound).
    pub port: PortId,
    /// The frame.
    pub frame: Frame,
    /// A copy of ARP/NDP for the neighbor cache only.
    pub snoop: bool,
}

/// Work the control plane runs on a shard, between two rounds.
pub type Command = Box<dyn FnOnce(&mut Shard) + Send>;

/// What other threads use to reach one shard.
pub struct ShardLink {
    /// Frames this shard is to process (received by a port's owner).
    pub inbound: ArrayQueue<Handoff>,
    /// Frames this shard is to send on ports it owns (from other shards).
    pub outbound: ArrayQueue<Handoff>,
    /// Control-plane work.
    pub commands: ArrayQueue<Command>,
    /// Set while the shard sleeps (idle policy `poll-then-sleep`): whoever queues work
    /// for it then writes a byte to `wake_tx`. Busy shards cost their producers one
    /// atomic load per batch, no system call.
    sleeping: AtomicBool,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl ShardLink {
    /// Queues of `depth` frames each (commands: 64) and the wake-up pair.
    pub fn new(depth: usize) -> std::io::Result<ShardLink> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(ShardLink {
            inbound: ArrayQueue::new(depth),
            outbound: ArrayQueue::new(depth),
            commands: ArrayQueue::new(64),
            sleeping: AtomicBool::new(false),
            wake_tx,
            wake_rx,
        })
    }

    /// A descriptor that wakes the shard (for an application's client library).
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake_tx.as_raw_fd()
    }

    /// Wakes the shard if it sleeps; call after queueing work for it.
    pub fn notify(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            // A full socket buffer means a wake-up is already pending.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// Whether work waits in any of the shard's queues.
    fn has_work(&self) -> bool {
        !self.inbound.is_empty() || !self.outbound.is_empty() || !self.commands.is_empty()
    }

    /// Empties the wake-up socket.
    fn drain_wake(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Counters of the hand-offs between shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HandoffCounters {
    /// Received frames this shard handed to another shard.
    pub rx_out: u64,
    /// Received frames another shard handed to this one.
    pub rx_in: u64,
    /// Received frames dropped because the target shard's queue was full.
    pub rx_full: u64,
    /// Frames this shard handed to a port's owner for transmission.
    pub tx_out: u64,
    /// Frames other shards handed to this one for transmission.
    pub tx_in: u64,
    /// Frames to transmit dropped because the owner's queue was full.
    pub tx_full: u64,
    /// ARP/NDP copies sent to other shards.
    pub snoop_out: u64,
    /// ARP/NDP copies not made (pool empty or queue full).
    pub snoop_lost: u64,
}

/// A port as its owning shard holds it.
pub struct OwnedPort {
    /// Index in the configuration (and `PortId`).
    pub index: usize,
    /// The driver.
    pub driver: Box<dyn Driver + Send>,
    /// Receive queues polled.
    pub queues: u16,
    /// Frames drained from the stack (or handed over) that the driver did not take.
    pub tx_unsent: u64,
    /// Driver calls that failed after start.
    pub errors: u64,
    /// A packet capture in progress.
    pub capture: Option<(std::path::PathBuf, Capture)>,
}

/// One port's counters as a shard reports them.
#[derive(Debug, Clone)]
pub struct ShardPortStats {
    /// This shard's stack counters for the port.
    pub stack: PortCounters,
    /// The driver's counters, from the owner only.
    pub driver: Option<DriverStats>,
    /// Frames the driver did not take (owner only).
    pub tx_unsent: u64,
    /// Failed driver calls (owner only).
    pub errors: u64,
}

/// A snapshot of one shard.
#[derive(Debug, Clone)]
pub struct ShardStats {
    /// Shard number.
    pub shard: usize,
    /// The core it is pinned to.
    pub core: Option<usize>,
    /// Per port, in port order.
    pub ports: Vec<ShardPortStats>,
    /// Hand-offs between shards.
    pub handoff: HandoffCounters,
    /// Frames the stack's pool could not supply.
    pub pool_alloc_failures: u64,
    /// Rounds of the poll loop.
    pub rounds: u64,
    /// Applications attached to this shard, and their open sockets.
    pub apps: (usize, u32),
}

/// A worker's state.
pub struct Shard {
    /// Shard number (index in `Shared::shards`).
    pub id: usize,
    /// The core it runs on.
    pub core: Option<usize>,
    /// Its stack.
    pub stack: Stack,
    /// Its ports.
    pub owned: Vec<OwnedPort>,
    /// Per port index: the position in `owned`, if this shard owns it.
    pub(super) owner_slot: Vec<Option<usize>>,
    /// Per port index: the shard that owns it.
    pub(super) owner_of: Vec<usize>,
    pub(super) shared: Arc<Shared>,
    route_gen: u64,
    /// Hand-off counters.
    pub handoff: HandoffCounters,
    rounds: u64,
    clock: Clock,
    // Reused batch buffers.
    rx: Vec<Frame>,
    local: Vec<Frame>,
    tx: Vec<Frame>,
    /// Per port: frames to receive (from `inbound`) / send (from `outbound`).
    per_port: Vec<Vec<Frame>>,
    /// Attached applications' shared-memory sockets.
    pub apps: Vec<super::apps::AppConn>,
}

impl Shard {
    /// A shard of `ports` ports owning `owned`; `owner_of[p]` is the owner of port `p`.
    pub(super) fn new(
        id: usize,
        core: Option<usize>,
        stack: Stack,
        owned: Vec<OwnedPort>,
        owner_of: Vec<usize>,
        shared: Arc<Shared>,
        clock: Clock,
    ) -> Shard {
        let n = owner_of.len();
        let mut owner_slot = vec![None; n];
        for (slot, p) in owned.iter().enumerate() {
            owner_slot[p.index] = Some(slot);
        }
        let route_gen = shared.routes.generation();
        Shard {
            id,
            core,
            stack,
            owned,
            owner_slot,
            owner_of,
            shared,
            route_gen,
            handoff: HandoffCounters::default(),
            rounds: 0,
            clock,
            rx: Vec::with_capacity(BATCH),
            local: Vec::with_capacity(BATCH),
            tx: Vec::with_capacity(BATCH),
            per_port: (0..n).map(|_| Vec::with_capacity(BATCH)).collect(),
            apps: Vec::new(),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ShardStats {
        let ports = self
            .stack
            .ports()
            .iter()
            .enumerate()
            .map(|(i, sp)| {
                let own = self
                    .owner_slot
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|s| &self.owned[s]);
                ShardPortStats {
                    stack: sp.counters().clone(),
                    driver: own.map(|o| o.driver.stats()),
                    tx_unsent: own.map_or(0, |o| o.tx_unsent),
                    errors: own.map_or(0, |o| o.errors),
                }
            })
            .collect();
        ShardStats {
            shard: self.id,
            core: self.core,
            ports,
            handoff: self.handoff.clone(),
            pool_alloc_failures: self.stack.pool().alloc_failures(),
            rounds: self.rounds,
            apps: (
                self.apps.len(),
                self.apps.iter().map(|a| a.open_sockets()).sum(),
            ),
        }
    }

    /// The position in `owned` of port `index`, if this shard owns it.
    pub fn owned_slot(&self, index: usize) -> Option<usize> {
        self.owner_slot.get(index).copied().flatten()
    }

    /// The poll loop; returns when a shutdown is requested.
    pub fn run(&mut self, idle: IdlePolicy, shutdown: &Shutdown) {
        let mut sleeper = Sleeper::new(&self.owned, shutdown, &self.shared.shards[self.id]);
        let mut empty = 0u32;
        while !shutdown.requested() {
            self.rounds += 1;
            self.control();
            let work = self.round();
            if work > 0 {
                empty = 0;
                continue;
            }
            empty = empty.saturating_add(1);
            if let IdlePolicy::PollThenSleep { empty_polls } = idle {
                if empty >= empty_polls {
                    let now = self.clock.now();
                    let wait = self.stack.poll_at().map_or(SLEEP_MAX, |t| {
                        std::time::Duration::from_nanos(t.saturating_since(now).as_nanos())
                            .min(SLEEP_MAX)
                    });
                    let link = &self.shared.shards[self.id];
                    link.sleeping.store(true, Ordering::SeqCst);
                    for a in &self.apps {
                        a.set_asleep(true);
                    }
                    // Checked after raising the flags: work queued before them is seen
                    // here, work queued after them writes a wake-up byte.
                    if !link.has_work() && !self.apps.iter().any(|a| a.has_requests()) {
                        // The count is not reset: an idle worker that wakes to nothing
                        // sleeps again after one round, not after another `empty_polls`.
                        sleeper.sleep(wait);
                    }
                    link.sleeping.store(false, Ordering::SeqCst);
                    for a in &self.apps {
                        a.set_asleep(false);
                    }
                    link.drain_wake();
                }
            }
        }
        self.close_captures();
        for app in &mut self.apps {
            app.close_all(&mut self.stack, self.clock.now());
        }
    }

    /// Detaches application `id`: its sockets close.
    pub fn detach_app(&mut self, id: u64) {
        for app in &mut self.apps {
            if app.id == id {
                app.close_all(&mut self.stack, self.clock.now());
            }
        }
        self.apps.retain(|a| a.id != id);
    }

    /// Picks up a new route table and runs queued commands.
    fn control(&mut self) {
        let g = self.shared.routes.generation();
        if g != self.route_gen {
            self.route_gen = g;
            self.stack.set_routes(self.shared.routes.current());
        }
        while let Some(cmd) = self.shared.shards[self.id].commands.pop() {
            cmd(self);
        }
    }

    /// One round: receive, process hand-offs, timers, transmit. Returns the frames
    /// handled.
    pub fn round(&mut self) -> usize {
        let now = self.clock.now();
        let mut work = self.receive(now);
        work += self.receive_inbound(now);
        for app in &mut self.apps {
            work += app.serve(&mut self.stack, now);
        }
        if self.stack.poll_at().is_some_and(|t| t <= now) {
            self.stack.poll(now);
        }
        work += self.transmit();
        work += self.transmit_outbound();
        work
    }

    /// Receives from every owned port and queue; keeps this shard's flows, hands the
    /// others over.
    fn receive(&mut self, now: stack::Instant) -> usize {
        let shards = self.shared.shards.len();
        let mut work = 0;
        for slot in 0..self.owned.len() {
            let port = PortId(self.owned[slot].index as u16);
            for q in 0..self.owned[slot].queues {
                let o = &mut self.owned[slot];
                match o.driver.recv(q, &mut self.rx, BATCH) {
                    Ok(0) => continue,
                    Ok(n) => work += n,
                    Err(_) => o.errors += 1,
                }
                if let Some((_, cap)) = &mut o.capture {
                    let _ = cap.capture_batch(&self.rx, wall_clock());
                }
                if shards == 1 {
                    self.stack.receive_batch(now, port, &mut self.rx);
                    continue;
                }
                for frame in self.rx.drain(..) {
                    let target = match flow::dispatch(frame.data()) {
                        Dispatch::Flow(h) => flow::shard_of(h, shards),
                        Dispatch::Neighbor => {
                            snoop_copies(
                                &self.shared,
                                self.id,
                                port,
                                &frame,
                                &self.stack,
                                &mut self.handoff,
                            );
                            self.id
                        }
                    };
                    if target == self.id {
                        self.local.push(frame);
                        continue;
                    }
                    let h = Handoff {
                        port,
                        frame,
                        snoop: false,
                    };
                    match self.shared.shards[target].inbound.push(h) {
                        Ok(()) => self.handoff.rx_out += 1,
                        // The frame goes back to its pool here.
                        Err(_) => self.handoff.rx_full += 1,
                    }
                }
                if shards > 1 {
                    for (s, link) in self.shared.shards.iter().enumerate() {
                        if s != self.id {
                            link.notify();
                        }
                    }
                }
                if !self.local.is_empty() {
                    self.stack.receive_batch(now, port, &mut self.local);
                }
            }
            // Frames left by a failed call go back to their pool.
            self.rx.clear();
        }
        work
    }

    /// Processes frames other shards received for this one.
    fn receive_inbound(&mut self, now: stack::Instant) -> usize {
        let link = &self.shared.shards[self.id];
        let mut n = 0;
        while n < BATCH {
            let Some(h) = link.inbound.pop() else { break };
            n += 1;
            if h.snoop {
                self.stack.snoop_neighbor(now, h.port, h.frame);
            } else if let Some(v) = self.per_port.get_mut(usize::from(h.port.0)) {
                self.handoff.rx_in += 1;
                v.push(h.frame);
            }
        }
        if n > 0 {
            for (i, v) in self.per_port.iter_mut().enumerate() {
                if !v.is_empty() {
                    self.stack.receive_batch(now, PortId(i as u16), v);
                }
            }
        }
        n
    }

    /// Sends what the stack has for each port: directly on owned ports, through the
    /// owner's queue on the others.
    fn transmit(&mut self) -> usize {
        let mut work = 0;
        for i in 0..self.owner_of.len() {
            let port = PortId(i as u16);
            loop {
                let n = self.stack.drain_tx(port, &mut self.tx, BATCH);
                if n == 0 {
                    break;
                }
                work += n;
                match self.owner_slot[i] {
                    Some(slot) => send(&mut self.owned[slot], &mut self.tx),
                    None => {
                        let q = &self.shared.shards[self.owner_of[i]].outbound;
                        for frame in self.tx.drain(..) {
                            let h = Handoff {
                                port,
                                frame,
                                snoop: false,
                            };
                            match q.push(h) {
                                Ok(()) => self.handoff.tx_out += 1,
                                Err(_) => self.handoff.tx_full += 1,
                            }
                        }
                        self.shared.shards[self.owner_of[i]].notify();
                    }
                }
            }
        }
        work
    }

    /// Sends frames other shards handed over for ports this shard owns.
    fn transmit_outbound(&mut self) -> usize {
        let link = &self.shared.shards[self.id];
        let mut n = 0;
        while n < BATCH {
            let Some(h) = link.outbound.pop() else { break };
            n += 1;
            self.handoff.tx_in += 1;
            if let Some(v) = self.per_port.get_mut(usize::from(h.port.0)) {
                v.push(h.frame);
            }
        }
        if n > 0 {
            for i in 0..self.per_port.len() {
                if self.per_port[i].is_empty() {
                    continue;
                }
                match self.owner_slot[i] {
                    Some(slot) => send(&mut self.owned[slot], &mut self.per_port[i]),
                    // Not ours after all (cannot happen): back to the pool.
                    None => self.per_port[i].clear(),
                }
            }
        }
        n
    }

    fn close_captures(&mut self) {
        for o in &mut self.owned {
            if let Some((_, mut c)) = o.capture.take() {
                let _ = c.flush();
            }
        }
    }
}

/// Copies an ARP/NDP frame to every other shard's inbound queue.
fn snoop_copies(
    shared: &Shared,
    me: usize,
    port: PortId,
    frame: &Frame,
    stack: &Stack,
    counters: &mut HandoffCounters,
) {
    for (s, link) in shared.shards.iter().enumerate() {
        if s == me {
            continue;
        }
        let Some(mut copy) = stack.pool().alloc() else {
            counters.snoop_lost += 1;
            continue;
        };
        match copy.append(frame.len()) {
            Ok(buf) => buf.copy_from_slice(frame.data()),
            Err(_) => {
                counters.snoop_lost += 1;
                continue;
            }
        }
        let h = Handoff {
            port,
            frame: copy,
            snoop: true,
        };
        match link.inbound.push(h) {
            Ok(()) => counters.snoop_out += 1,
            Err(_) => counters.snoop_lost += 1,
        }
    }
}

/// Sends `frames` on an owned port (queue 0), capturing them first; what the device
/// does not take is dropped and counted, not retried: the queues behind it are bounded.
fn send(o: &mut OwnedPort, frames: &mut Vec<Frame>) {
    if let Some((_, cap)) = &mut o.capture {
        let _ = cap.capture_batch(frames, wall_clock());
    }
    if o.driver.send(0, frames).is_err() {
        o.errors += 1;
    }
    o.tx_unsent += frames.len() as u64;
    frames.clear();
}

/// Wall-clock time for capture records (a vDSO read, no system call).
fn wall_clock() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The `poll(2)` set of an idle worker: every owned port queue's descriptor and the
/// shutdown descriptor, built once.
struct Sleeper {
    fds: Vec<libc::pollfd>,
}

impl Sleeper {
    fn new(ports: &[OwnedPort], shutdown: &Shutdown, link: &ShardLink) -> Sleeper {
        let mut fds = Vec::new();
        let mut add = |fd: i32| {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
        };
        for p in ports {
            for q in 0..p.queues {
                if let Some(fd) = p.driver.poll_fd(q) {
                    add(fd);
                }
            }
        }
        add(shutdown.as_fd().as_raw_fd());
        add(link.wake_rx.as_raw_fd());
        Sleeper { fds }
    }

    /// Sleeps until a descriptor is readable or `wait` (rounded up to a millisecond)
    /// has passed. Errors (EINTR from the signal) just end the sleep. Frames handed over
    /// by other shards wake it through the shard's wake-up socket.
    #[allow(unsafe_code)]
    fn sleep(&mut self, wait: std::time::Duration) {
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd
        // structs for the duration of the call; the descriptors stay open (owned by the
        // drivers and the Shutdown, which outlive the worker loop).
        unsafe {
            libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms);
        }
    }
}
