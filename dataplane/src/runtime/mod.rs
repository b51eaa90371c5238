//! `dataplane run`: the imperative shell around the stack.
//!
//! [`run`] opens each configured port's driver, builds one [`stack::Stack`] per configured
//! worker core (a *shard*: its own frame pool, neighbor cache, timers and counters) and
//! runs each shard's poll loop ([`shard::Shard::run`]) on its own thread, pinned to its
//! core. Every port is owned by one shard (port `i` by shard `i % workers`), which alone
//! touches its driver; frames are spread over the shards by flow hash through bounded
//! lock-free queues, so one flow always meets one shard (see [`shard`]).
//!
//! Read-mostly state reaches the shards without a lock on the fast path: the route
//! table is published by the control plane as a new `Arc<RouteTable>` with a generation
//! number ([`RoutePublisher`]); a shard compares one atomic per round and swaps its
//! table when the number moved. Everything else the control plane does on a shard (stats
//! snapshots, neighbor edits, captures) is a closure queued on the shard's command queue
//! and run between two rounds.
//!
//! The control plane ([`crate::control`]) runs on the calling thread, off the worker
//! cores, serving the Unix control socket (`dpctl`) and, when asked, Prometheus metrics.
//! SIGINT/SIGTERM stop everything: the shards return their final counters, their drivers
//! drop (AF_XDP detaches its XDP program) and the socket file is removed.

pub mod apps;
pub mod shard;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use drivers::{AfPacket, AfPacketConfig, AfXdp, AfXdpConfig, Driver, DriverStats, Shutdown};
use drivers::{Tap, TapConfig};
use stack::route::RouteTable;
use stack::wire::EthernetAddress;
use stack::{DropReason, Duration, FramePool, Instant, PoolConfig, PortCounters};

use crate::config::{Config, DriverKind, Steering};
use shard::{OwnedPort, Shard, ShardLink, ShardStats};

/// Most frames received from one queue, or sent to one port, per step.
pub const BATCH: usize = 64;

/// Longest sleep of an idle worker, so that stack timers, hand-offs and the shutdown
/// flag are seen.
pub const SLEEP_MAX: std::time::Duration = std::time::Duration::from_millis(10);

/// Frames in each heap pool (a shard's stack without an AF_XDP port, each AF_PACKET and
/// TAP driver).
const HEAP_FRAMES: u32 = 4096;

/// Depth of each shard's hand-off queues.
const HANDOFF_DEPTH: usize = 1024;

/// The route table as published to the shards: a generation number they poll (one
/// relaxed load per round) and the table behind a lock taken only when the number
/// moved, i.e. once per change, never per packet.
pub struct RoutePublisher {
    generation: AtomicU64,
    table: Mutex<Arc<RouteTable>>,
}

impl RoutePublisher {
    fn new(table: Arc<RouteTable>) -> RoutePublisher {
        RoutePublisher {
            generation: AtomicU64::new(0),
            table: Mutex::new(table),
        }
    }

    /// The generation of the current table.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current table.
    pub fn current(&self) -> Arc<RouteTable> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publishes `table`; every shard picks it up within one round.
    pub fn publish(&self, table: Arc<RouteTable>) {
        *self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// What the shards and the control plane share.
pub struct Shared {
    /// The published route table.
    pub routes: RoutePublisher,
    /// Per shard: its hand-off and command queues.
    pub shards: Vec<ShardLink>,
}

/// A port as the control plane describes it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// The port's name.
    pub name: String,
    /// Its driver.
    pub driver: DriverKind,
    /// The kernel interface.
    pub interface: String,
    /// Its MAC address.
    pub mac: EthernetAddress,
    /// The interface's MTU as the driver found it.
    pub link_mtu: u16,
    /// The configured MTU.
    pub mtu: u16,
    /// Receive queues polled.
    pub queues: u16,
    /// The shard that owns it.
    pub owner: usize,
    /// IPv4 and IPv6 addresses with their prefix lengths.
    pub addresses: Vec<String>,
}

/// Final counters of one port, summed over the shards.
#[derive(Debug, Clone)]
pub struct PortReport {
    /// The port's name.
    pub name: String,
    /// The stack's counters of the port (all shards).
    pub stack: PortCounters,
    /// The driver's counters.
    pub driver: DriverStats,
    /// Frames the driver did not take (dropped by the runtime).
    pub tx_unsent: u64,
    /// Driver calls that failed while running.
    pub errors: u64,
}

/// Per-port totals of a set of shard snapshots.
pub fn port_totals(names: &[String], shards: &[ShardStats]) -> Vec<PortReport> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut r = PortReport {
                name: name.clone(),
                stack: PortCounters::default(),
                driver: DriverStats::default(),
                tx_unsent: 0,
                errors: 0,
            };
            for s in shards {
                if let Some(p) = s.ports.get(i) {
                    r.stack.accumulate(&p.stack);
                    if let Some(d) = &p.driver {
                        r.driver = *d;
                    }
                    r.tx_unsent += p.tx_unsent;
                    r.errors += p.errors;
                }
            }
            r
        })
        .collect()
}

/// What a run leaves: the signal that ended it and each port's and shard's counters.
#[derive(Debug, Clone)]
pub struct Report {
    /// The signal that requested the stop.
    pub signal: Option<i32>,
    /// Counters, in port order, summed over the shards.
    pub ports: Vec<PortReport>,
    /// Each shard's final snapshot.
    pub shards: Vec<ShardStats>,
}

impl Report {
    /// The counters as text: one block per port, drops by reason by name (only those
    /// that happened), then one line per shard when there are several.
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
        if self.shards.len() > 1 {
            for sh in &self.shards {
                let h = &sh.handoff;
                let rx: u64 = sh.ports.iter().map(|p| p.stack.rx_packets).sum();
                let _ = writeln!(
                    s,
                    "shard {} (core {}): rx {rx}, handoff rx-out {} rx-in {} rx-full {} tx-out {} tx-in {} tx-full {} snoop-out {} snoop-lost {}",
                    sh.shard,
                    sh.core.map_or("any".to_string(), |c| c.to_string()),
                    h.rx_out, h.rx_in, h.rx_full, h.tx_out, h.tx_in, h.tx_full, h.snoop_out, h.snoop_lost
                );
            }
        }
        s
    }
}

/// Options of a run that come from the command line rather than the file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Serve Prometheus metrics here (overrides the file's `metrics`).
    pub metrics: Option<std::net::SocketAddr>,
}

/// Opens the drivers, builds the shards, runs them and the control plane until
/// SIGINT/SIGTERM, and returns the final counters. Errors are one line for the user.
pub fn run(config: &Config, options: &RunOptions, shutdown: &Shutdown) -> Result<Report, String> {
    let cores = pick_cores(config)?;
    let workers = cores.len();
    let priority = config.workers.realtime_priority;
    if let Some(p) = priority {
        // Tried on a short-lived thread first, so that a refusal is a startup error.
        std::thread::spawn(move || set_realtime(p))
            .join()
            .map_err(|_| "the priority probe thread panicked".to_string())??;
    }
    let opened = open(config, workers)?;
    let macs: Vec<EthernetAddress> = opened.iter().map(|d| d.driver.link().mac).collect();
    let seed = seed();

    // The control plane's own stack: the master copy of routes and interface
    // configuration, validated exactly as the shards' are.
    let ctl_stack = config
        .build_stack(heap_pool(256)?, seed, |i, _| macs[i])
        .map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        routes: RoutePublisher::new(ctl_stack.routes_arc()),
        shards: (0..workers)
            .map(|_| ShardLink::new(HANDOFF_DEPTH))
            .collect::<std::io::Result<_>>()
            .map_err(|e| format!("cannot create the shards' wake-up sockets: {e}"))?,
    });

    let owner_of: Vec<usize> = (0..config.ports.len()).map(|i| i % workers).collect();
    let mut infos = Vec::with_capacity(opened.len());
    let mut per_shard: Vec<Vec<OwnedPort>> = (0..workers).map(|_| Vec::new()).collect();
    let mut xdp_pools: Vec<Option<FramePool>> = vec![None; workers];
    for (i, o) in opened.into_iter().enumerate() {
        let p = &config.ports[i];
        let link = o.driver.link();
        infos.push(PortInfo {
            name: p.name.clone(),
            driver: p.driver,
            interface: p.interface.clone(),
            mac: macs[i],
            link_mtu: link.mtu,
            mtu: p.mtu,
            queues: o.queues,
            owner: owner_of[i],
            addresses: p
                .ipv4
                .iter()
                .map(|c| c.to_string())
                .chain(p.ipv6.iter().map(|c| c.to_string()))
                .collect(),
        });
        if let (Some(pool), None) = (o.xdp_pool, &xdp_pools[owner_of[i]]) {
            xdp_pools[owner_of[i]] = Some(pool);
        }
        per_shard[owner_of[i]].push(OwnedPort {
            index: i,
            driver: o.driver,
            queues: o.queues,
            tx_unsent: 0,
            errors: 0,
            capture: None,
        });
    }

    let mut shards = Vec::with_capacity(workers);
    let clock = Clock(std::time::Instant::now());
    for (s, owned) in per_shard.into_iter().enumerate() {
        // A shard that owns an AF_XDP port builds its frames in that port's UMEM, so
        // what it originates there goes out without a copy.
        let pool = match xdp_pools[s].take() {
            Some(p) => p,
            None => heap_pool(HEAP_FRAMES)?,
        };
        let stack = config
            .build_stack(pool, seed ^ (s as u64).wrapping_mul(0x9e37_79b9), |i, _| {
                macs[i]
            })
            .map_err(|e| e.to_string())?;
        shards.push(Shard::new(
            s,
            cores[s].map(|c| c.id),
            stack,
            owned,
            owner_of.clone(),
            shared.clone(),
            clock,
        ));
    }

    let mut control = crate::control::Control::new(config, options, ctl_stack, shared, infos)?;
    let idle = config.workers.idle;
    let finals = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for (s, mut shard) in shards.into_iter().enumerate() {
            let core = cores[s];
            let h = std::thread::Builder::new()
                .name(format!("dp-worker-{s}"))
                .spawn_scoped(scope, move || {
                    if let Some(c) = core {
                        if !core_affinity::set_for_current(c) {
                            tracing::warn!(shard = s, core = c.id, "cannot pin the worker");
                        }
                    }
                    if let Some(p) = priority {
                        if let Err(e) = set_realtime(p) {
                            tracing::warn!(shard = s, "{e}");
                        }
                    }
                    shard.run(idle, shutdown);
                    shard.stats()
                    // The shard (its drivers) drops here: sockets close, XDP detaches.
                })
                .map_err(|e| format!("cannot start worker thread {s}: {e}"));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    tracing::error!("{e}");
                    break;
                }
            }
        }
        tracing::info!(
            name = %config.name,
            ports = config.ports.len(),
            workers = handles.len(),
            cores = ?config.workers.cores,
            "dataplane running"
        );
        eprintln!(
            "dataplane: {} running, {} ports, {} worker{} on core{} {}",
            config.name,
            config.ports.len(),
            handles.len(),
            if handles.len() == 1 { "" } else { "s" },
            if handles.len() == 1 { "" } else { "s" },
            cores
                .iter()
                .map(|c| c.map_or("any".to_string(), |c| c.id.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut startup = Ok(());
        if handles.len() == workers {
            startup = control.start_configured_captures(config);
            match &startup {
                Ok(()) => control.serve(shutdown),
                Err(_) => shutdown.request(),
            }
        } else {
            shutdown.request();
        }
        let mut finals = Vec::with_capacity(handles.len());
        for h in handles {
            match h.join() {
                Ok(s) => finals.push(s),
                Err(_) => return Err("a worker thread panicked".to_string()),
            }
        }
        if finals.len() != workers {
            return Err("cannot start the worker threads".to_string());
        }
        startup.map(|()| finals)
    });
    control.close();
    let finals = finals?;
    let names: Vec<String> = config.ports.iter().map(|p| p.name.clone()).collect();
    Ok(Report {
        signal: shutdown.signal(),
        ports: port_totals(&names, &finals),
        shards: finals,
    })
}

/// Puts the calling thread under SCHED_FIFO at `priority`.
#[allow(unsafe_code)]
fn set_realtime(priority: u8) -> Result<(), String> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: sched_setscheduler(2) on the calling thread (0) with a valid parameter.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "workers.realtime-priority: cannot run the workers under SCHED_FIFO priority {priority}: {} (needs root or CAP_SYS_NICE, and a real-time budget: sysctl kernel.sched_rt_runtime_us)",
            std::io::Error::last_os_error()
        ))
    }
}

/// The configured cores, checked against this machine's (`None`: not pinned, when the
/// list is empty).
fn pick_cores(config: &Config) -> Result<Vec<Option<core_affinity::CoreId>>, String> {
    if config.workers.cores.is_empty() {
        return Ok(vec![None]);
    }
    let ids = core_affinity::get_core_ids()
        .ok_or_else(|| "cannot list this machine's cores".to_string())?;
    config
        .workers
        .cores
        .iter()
        .map(|&want| {
            ids.iter()
                .find(|c| c.id == want)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{}: workers.cores: core {want} is not available on this machine",
                        config.origin
                    )
                })
        })
        .collect()
}

fn heap_pool(frames: u32) -> Result<FramePool, String> {
    FramePool::with_frames(frames, PoolConfig::default())
        .map_err(|e| format!("cannot allocate a frame pool: {e}"))
}

/// An opened port's driver.
struct Opened {
    driver: Box<dyn Driver + Send>,
    queues: u16,
    xdp_pool: Option<FramePool>,
}

/// Opens every port's driver, in configuration order; the first failure is the error.
/// With several workers an AF_XDP port's UMEM is larger: its frames also wait in the
/// shards' hand-off queues.
fn open(config: &Config, workers: usize) -> Result<Vec<Opened>, String> {
    let mut out = Vec::with_capacity(config.ports.len());
    for (i, p) in config.ports.iter().enumerate() {
        let where_ = |e: drivers::DriverError| format!("ports[{i}] ({}): {e}", p.name);
        let mut xdp_pool = None;
        let driver: Box<dyn Driver + Send> = match p.driver {
            DriverKind::AfXdp => {
                let mut c = AfXdpConfig::new(&p.interface).with_queues(p.queues);
                if workers > 1 {
                    c.frames = c.frames.max(4 * HANDOFF_DEPTH as u32 * workers as u32);
                }
                if p.steering == Steering::Host {
                    c = c.host(p.addresses());
                }
                c.mode = p.steering.mode();
                let d = AfXdp::open(&c).map_err(where_)?;
                xdp_pool = Some(d.pool().clone());
                Box::new(d)
            }
            DriverKind::AfPacket => Box::new(
                AfPacket::open(&AfPacketConfig::new(&p.interface), heap_pool(HEAP_FRAMES)?)
                    .map_err(where_)?,
            ),
            DriverKind::Tap => {
                let mut c = TapConfig::new(&p.interface).with_queues(p.queues);
                if let Some(mac) = p.mac {
                    c = c.with_mac(mac);
                }
                Box::new(Tap::open(&c, heap_pool(HEAP_FRAMES)?).map_err(where_)?)
            }
            DriverKind::Memory => {
                return Err(format!(
                    "ports[{i}] ({}): driver \"memory\" has no peer outside the process; `run` needs afxdp, afpacket or tap",
                    p.name
                ))
            }
        };
        let link = driver.link();
        if link.mtu != 0 && p.mtu > link.mtu {
            return Err(format!(
                "ports[{i}] ({}): mtu {} is larger than the interface's {} ({})",
                p.name, p.mtu, link.mtu, p.interface
            ));
        }
        let queues = link.queues.clamp(1, p.queues.max(1));
        out.push(Opened {
            driver,
            queues,
            xdp_pool,
        });
    }
    Ok(out)
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

/// The stacks' clock: nanoseconds since the run started, offset by one second so that
/// no timer sits at zero. One start for all shards, so their times agree.
#[derive(Debug, Clone, Copy)]
pub struct Clock(std::time::Instant);

impl Clock {
    /// Now, in the stack's terms.
    pub fn now(&self) -> Instant {
        Instant::from_secs(1) + Duration::from_nanos(self.0.elapsed().as_nanos() as u64)
    }
}
