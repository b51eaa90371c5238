//! `dataplane run`: the imperative shell around the stack.
//!
//! [`run`] opens each configured port's driver, builds the [`Stack`] from the
//! configuration, and drives it from one worker thread pinned to the first configured
//! core: receive up to [`BATCH`] frames per port and queue, hand them to
//! [`Stack::receive_batch`], run [`Stack::poll`] when [`Stack::poll_at`] is due, drain each
//! port's transmit queue and send it. Frames the driver does not take are dropped and
//! counted (`tx-unsent`). The clock is `std::time::Instant`, turned into the stack's
//! [`Instant`] here at the edge; the stack never reads one.
//!
//! On the worker, per packet: no allocation (the batch `Vec`s are reused), no lock, no log
//! line, no system call beyond what the drivers do to receive and transmit.
//!
//! With `idle = "poll-then-sleep"`, after the configured number of empty rounds the
//! worker sleeps in `poll(2)` on the drivers' descriptors and the shutdown descriptor,
//! for at most [`SLEEP_MAX`] or until the next stack timer, whichever is sooner; while
//! it stays idle it sleeps again after each empty round, and any frame resets the count.
//!
//! Not yet here (issue 4): one worker per configured core with flow-hash sharding
//! (only the first core is used), the control socket, metrics, capture and logging.
//! SIGINT/SIGTERM stop the worker; the drivers are dropped (AF_XDP detaches its XDP
//! program) and the final per-port counters are printed.

use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd};

use drivers::{AfPacket, AfPacketConfig, AfXdp, AfXdpConfig, Driver, DriverStats, Shutdown};
use drivers::{Tap, TapConfig};
use stack::{DropReason, Duration, FramePool, Instant, PoolConfig, PortCounters, PortId, Stack};

use crate::config::{Config, DriverKind, IdlePolicy, Steering};

/// Most frames received from one queue, or sent to one port, per step.
pub const BATCH: usize = 64;

/// Longest sleep of an idle worker, so that stack timers and the shutdown flag are seen.
pub const SLEEP_MAX: std::time::Duration = std::time::Duration::from_millis(10);

/// Frames in the heap pool of the stack (when the first port is not AF_XDP) and of
/// each AF_PACKET/TAP driver.
const HEAP_FRAMES: u32 = 4096;

/// One port as the worker sees it: its driver and the worker's own counters.
struct RunPort {
    name: String,
    driver: Box<dyn Driver>,
    queues: u16,
    /// Frames drained from the stack that the driver did not take.
    tx_unsent: u64,
    /// Driver calls that failed after start.
    errors: u64,
}

/// Final counters of one port, printed at shutdown.
#[derive(Debug, Clone)]
pub struct PortReport {
    /// The port's name.
    pub name: String,
    /// The stack's counters of the port.
    pub stack: PortCounters,
    /// The driver's counters.
    pub driver: DriverStats,
    /// Frames the driver did not take (dropped by the runtime).
    pub tx_unsent: u64,
    /// Driver calls that failed while running.
    pub errors: u64,
}

/// What a run leaves: the signal that ended it and each port's counters.
#[derive(Debug, Clone)]
pub struct Report {
    /// The signal that requested the stop.
    pub signal: Option<i32>,
    /// Counters, in port order.
    pub ports: Vec<PortReport>,
}

impl Report {
    /// The counters as text: one block per port, drops by reason by name (only those
    /// that happened).
    pub fn render(&self) -> String {
        let mut s = String::new();
        for p in &self.ports {
            let c = &p.stack;
            let _ = writeln!(
                s,
                "port {}: rx {} packets {} bytes, tx {} packets {} bytes, forwarded {}, delivered {}, icmp-errors {}",
                p.name, c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.forwarded, c.delivered, c.icmp_errors_sent
            );
            let d = &p.driver;
            let _ = writeln!(
                s,
                "  driver: rx {} tx {} rx-errors {} tx-errors {} rx-dropped {} tx-dropped {} rx-pool-empty {}; tx-unsent {}, driver-errors {}",
                d.rx_packets, d.tx_packets, d.rx_errors, d.tx_errors, d.rx_dropped, d.tx_dropped, d.rx_pool_empty, p.tx_unsent, p.errors
            );
            let mut drops = String::new();
            for &r in DropReason::ALL {
                let n = c.drops_for(r);
                if n > 0 {
                    let _ = write!(drops, " {}={n}", r.name());
                }
            }
            if drops.is_empty() {
                drops.push_str(" none");
            }
            let _ = writeln!(s, "  drops:{drops}");
        }
        s
    }
}

/// Opens the drivers, builds the stack, runs one pinned worker until SIGINT/SIGTERM,
/// and returns the final counters. Errors are one line for the user.
pub fn run(config: &Config, shutdown: &Shutdown) -> Result<Report, String> {
    let core = pick_core(config)?;
    // The drivers are opened and used on the worker thread, which owns them.
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("dp-worker-0".into())
            .spawn_scoped(s, || {
                if let Some(c) = core {
                    if !core_affinity::set_for_current(c) {
                        return Err(format!("cannot pin the worker to core {}", c.id));
                    }
                }
                let (mut stack, mut ports) = open(config)?;
                eprintln!(
                    "dataplane: {} running, {} ports, worker on core {}",
                    config.name,
                    ports.len(),
                    core.map_or("any".to_string(), |c| c.id.to_string())
                );
                worker(&mut stack, &mut ports, config.workers.idle, shutdown);
                Ok(report(&stack, &ports, shutdown))
                // `ports` (the drivers) drop here: sockets close, XDP detaches.
            })
            .map_err(|e| format!("cannot start the worker thread: {e}"))?
            .join()
            .map_err(|_| "the worker thread panicked".to_string())?
    })
}

/// The first configured core, checked against this machine's.
fn pick_core(config: &Config) -> Result<Option<core_affinity::CoreId>, String> {
    let Some(&want) = config.workers.cores.first() else {
        return Ok(None);
    };
    let ids = core_affinity::get_core_ids()
        .ok_or_else(|| "cannot list this machine's cores".to_string())?;
    ids.into_iter()
        .find(|c| c.id == want)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{}: workers.cores: core {want} is not available on this machine",
                config.origin
            )
        })
}

fn heap_pool() -> Result<FramePool, String> {
    FramePool::with_frames(HEAP_FRAMES, PoolConfig::default())
        .map_err(|e| format!("cannot allocate a frame pool: {e}"))
}

/// Opens every port's driver and builds the stack on the first AF_XDP port's UMEM pool
/// (zero copy on that port) or on a heap pool.
fn open(config: &Config) -> Result<(Stack, Vec<RunPort>), String> {
    let mut ports = Vec::with_capacity(config.ports.len());
    let mut xdp_pool = None;
    let heap = heap_pool()?;
    for (i, p) in config.ports.iter().enumerate() {
        let where_ = |e: drivers::DriverError| format!("ports[{i}] ({}): {e}", p.name);
        let driver: Box<dyn Driver> = match p.driver {
            DriverKind::AfXdp => {
                let mut c = AfXdpConfig::new(&p.interface).with_queues(p.queues);
                if p.steering == Steering::Host {
                    c = c.host(p.addresses());
                }
                c.mode = p.steering.mode();
                let d = AfXdp::open(&c).map_err(where_)?;
                if i == 0 {
                    xdp_pool = Some(d.pool().clone());
                }
                Box::new(d)
            }
            DriverKind::AfPacket => Box::new(
                AfPacket::open(&AfPacketConfig::new(&p.interface), heap_pool()?)
                    .map_err(where_)?,
            ),
            DriverKind::Tap => {
                let mut c = TapConfig::new(&p.interface).with_queues(p.queues);
                if let Some(mac) = p.mac {
                    c = c.with_mac(mac);
                }
                Box::new(Tap::open(&c, heap_pool()?).map_err(where_)?)
            }
            DriverKind::Memory => {
                return Err(format!(
                    "ports[{i}] ({}): driver \"memory\" has no peer outside the process; `run` needs afxdp, afpacket or tap",
                    p.name
                ))
            }
        };
        let queues = driver.link().queues.clamp(1, p.queues.max(1));
        ports.push(RunPort {
            name: p.name.clone(),
            driver,
            queues,
            tx_unsent: 0,
            errors: 0,
        });
    }
    let pool = xdp_pool.unwrap_or(heap);
    let seed = seed();
    let stack = config
        .build_stack(pool, seed, |i, _| ports[i].driver.link().mac)
        .map_err(|e| e.to_string())?;
    Ok((stack, ports))
}

/// A seed that differs between runs (the stack's sequence numbers and ports come from
/// it, so a fixed one would make them predictable).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The stack's clock: nanoseconds since the run started, offset by one second so that
/// no timer sits at zero.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_secs(1) + Duration::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}

/// The worker loop; returns when a shutdown is requested.
fn worker(stack: &mut Stack, ports: &mut [RunPort], idle: IdlePolicy, shutdown: &Shutdown) {
    let clock = Clock(std::time::Instant::now());
    let mut rx = Vec::with_capacity(BATCH);
    let mut tx = Vec::with_capacity(BATCH);
    let mut sleeper = Sleeper::new(ports, shutdown);
    let mut empty = 0u32;
    while !shutdown.requested() {
        let now = clock.now();
        let mut work = 0usize;
        for (i, p) in ports.iter_mut().enumerate() {
            for q in 0..p.queues {
                match p.driver.recv(q, &mut rx, BATCH) {
                    Ok(0) => {}
                    Ok(n) => {
                        work += n;
                        stack.receive_batch(now, PortId(i as u16), &mut rx);
                    }
                    Err(_) => p.errors += 1,
                }
                // Frames left by a failed call go back to their pool.
                rx.clear();
            }
        }
        if stack.poll_at().is_some_and(|t| t <= now) {
            stack.poll(now);
        }
        for (i, p) in ports.iter_mut().enumerate() {
            loop {
                let n = stack.drain_tx(PortId(i as u16), &mut tx, BATCH);
                if n == 0 {
                    break;
                }
                work += n;
                if p.driver.send(0, &mut tx).is_err() {
                    p.errors += 1;
                }
                // What the device did not take now is dropped, not retried: the stack's
                // queue behind it is already bounded.
                p.tx_unsent += tx.len() as u64;
                tx.clear();
            }
        }
        if work > 0 {
            empty = 0;
            continue;
        }
        empty = empty.saturating_add(1);
        if let IdlePolicy::PollThenSleep { empty_polls } = idle {
            if empty >= empty_polls {
                let wait = stack.poll_at().map_or(SLEEP_MAX, |t| {
                    std::time::Duration::from_nanos(t.saturating_since(clock.now()).as_nanos())
                        .min(SLEEP_MAX)
                });
                // The count is not reset: an idle worker that wakes to nothing sleeps
                // again after one round, not after another `empty_polls`.
                sleeper.sleep(wait);
            }
        }
    }
}

/// The `poll(2)` set of an idle worker: every port queue's descriptor and the shutdown
/// descriptor, built once.
struct Sleeper {
    fds: Vec<libc::pollfd>,
}

impl Sleeper {
    fn new(ports: &[RunPort], shutdown: &Shutdown) -> Sleeper {
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
        Sleeper { fds }
    }

    /// Sleeps until a descriptor is readable or `wait` (rounded up to a millisecond)
    /// has passed. Errors (EINTR from the signal) just end the sleep.
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

fn report(stack: &Stack, ports: &[RunPort], shutdown: &Shutdown) -> Report {
    Report {
        signal: shutdown.signal(),
        ports: ports
            .iter()
            .zip(stack.ports())
            .map(|(p, sp)| PortReport {
                name: p.name.clone(),
                stack: sp.counters().clone(),
                driver: p.driver.stats(),
                tx_unsent: p.tx_unsent,
                errors: p.errors,
            })
            .collect(),
    }
}
