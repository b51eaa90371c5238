//! The runtime: nodes, links, applications and scripted actions on one virtual clock.
//!
//! Everything that happens is an event in one queue ordered by (time, sequence number),
//! the sequence number being the order events were scheduled in, so two runs of the same
//! topology with the same seed process the same events in the same order. Nodes live in
//! a `BTreeMap` by id and links and applications in vectors by id, so every iteration
//! order is fixed too. The seed of the simulation derives one seed per node (its stack's
//! randomness) and one per link direction (its impairments).
//!
//! After the runtime touches a node (a frame arrived, a timer or an application ran) it
//! *services* it: moves the frames the stack queued onto the links, hands the stack's
//! events to the applications they belong to, and schedules the stack's next timer.
//! First, though, it runs the node's TCP flows (clients send as their send buffers free
//! up) and its TCP listeners (servers accept and read), so that what they queue leaves
//! in the same service.

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use drivers::{Capture, CaptureError};
use stack::wire::EthernetAddress;
use stack::{
    Duration, Event, Frame, FramePool, Instant, InterfaceConfig, IpCidr, IpPrefix, PoolConfig,
    PortId, RouteTarget, SocketError, Stack, StackConfig, TcpHandle,
};

use crate::app::{parse_flow_header, App, AppConfig};
use crate::link::{DirStats, Direction, LinkConfig};
use crate::{AppId, LinkId, NodeId};

/// Events a run may process before [`Sim::run_until`] gives up, unless changed with
/// [`Sim::set_step_budget`].
pub const DEFAULT_STEP_BUDGET: u64 = 200_000_000;

/// Frames of each node's pool unless [`Sim::set_pool_frames`] says otherwise: 1 MiB of
/// 2 KiB frames, mapped when the node is made (see `prefault`), so a topology costs about
/// 1 MiB per node; frames in flight belong to the pool of the node that made them.
pub const DEFAULT_POOL_FRAMES: u32 = 512;

/// The most frames a node's pool may have (512 MiB of memory, all of it mapped).
pub const MAX_POOL_FRAMES: u32 = 1 << 18;

/// The poll time a neighbor cache reports when it has nothing to time.
const NEVER: Instant = Instant::from_nanos(u64::MAX);

/// Why a simulation could not be built or run.
#[derive(Debug)]
pub enum SimError {
    /// The topology is inconsistent (an unknown node, an address a stack refused...).
    Build(String),
    /// The run processed its whole step budget without finishing.
    StepBudget {
        /// The budget.
        budget: u64,
        /// Simulated time when it ran out.
        at: Instant,
        /// Events processed in this run.
        processed: u64,
        /// Events still queued.
        queued: usize,
    },
    /// A scripted action failed when it ran.
    Action {
        /// When.
        at: Instant,
        /// The action as written.
        action: String,
        /// Why.
        why: String,
    },
    /// A capture file could not be written.
    Capture(CaptureError),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Build(s) => f.write_str(s),
            SimError::StepBudget {
                budget,
                at,
                processed,
                queued,
            } => write!(
                f,
                "step budget of {budget} events exhausted: the run does not converge \
                 (simulated time {}, {processed} events processed, {queued} events queued)",
                fmt_instant(*at)
            ),
            SimError::Action { at, action, why } => {
                write!(f, "at {}: {action}: {why}", fmt_instant(*at))
            }
            SimError::Capture(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SimError {}

impl From<CaptureError> for SimError {
    fn from(e: CaptureError) -> Self {
        SimError::Capture(e)
    }
}

/// An instant as seconds with nanoseconds ("1.000250000s").
pub fn fmt_instant(t: Instant) -> String {
    let n = t.as_nanos();
    format!("{}.{:09}s", n / 1_000_000_000, n % 1_000_000_000)
}

/// Whether a node forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A host: drops what is not addressed to it.
    Host,
    /// A router: forwards.
    Router,
}

/// A scripted change at a simulated time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Cut a link: frames in flight and queued are lost, new ones dropped. The ports stay
    /// up (no carrier signal), so the stacks notice only through neighbor unreachability
    /// detection, as with a failure in the middle of a path.
    LinkDown(LinkId),
    /// Repair a link.
    LinkUp(LinkId),
    /// Add (or replace) a static route.
    RouteAdd {
        /// Where.
        node: NodeId,
        /// The prefix.
        prefix: IpPrefix,
        /// Its target.
        target: RouteTarget,
    },
    /// Remove a route.
    RouteRemove {
        /// Where.
        node: NodeId,
        /// The prefix.
        prefix: IpPrefix,
    },
    /// Stop a node: its ports go down (everything it receives or sends is dropped and
    /// counted as `port_down`); its tables are kept.
    NodeStop(NodeId),
    /// Start a stopped node again.
    NodeStart(NodeId),
}

/// A frame recorded on a link by [`Sim::record_link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// When it arrived at the far end.
    pub at: Instant,
    /// Direction: 0 from end `a` to end `b`, 1 back.
    pub dir: u8,
    /// The bytes as delivered (after any corruption).
    pub data: Vec<u8>,
}

/// One end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEnd {
    /// The node.
    pub node: NodeId,
    /// Its port.
    pub port: PortId,
}

pub(crate) struct Link {
    pub name: String,
    pub config: LinkConfig,
    pub ends: [LinkEnd; 2],
    pub up: bool,
    pub dirs: [Direction; 2],
    pub pcap: Option<Capture<BufWriter<File>>>,
    pub record: Option<Vec<CapturedFrame>>,
    pub hook: Option<LinkHook>,
}

/// What a link hook decides for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookVerdict {
    /// Deliver it (perhaps rewritten by the hook).
    Pass,
    /// Drop it (counted as `hook_drops`).
    Drop,
    /// Deliver it this much later than the link would.
    Delay(Duration),
}

/// A hook on a link ([`Sim::set_link_hook`]): called with the time, the direction (0 from
/// end `a` to `b`) and the frame after the link's own impairments spared it; it may
/// rewrite the frame and decides what happens to it.
pub type LinkHook = Box<dyn FnMut(Instant, u8, &mut Frame) -> HookVerdict>;

pub(crate) struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub stack: Stack,
    /// Per port (by index), the link and the direction this node sends on.
    pub ports: Vec<(LinkId, u8)>,
    /// The time of the scheduled timer event, if any.
    pub timer_at: Option<Instant>,
    /// Echo identifiers of the applications on this node.
    pub idents: Vec<(u16, AppId)>,
    /// UDP sinks bound on this node: (wildcard address and port, socket).
    pub sinks: Vec<(std::net::SocketAddr, stack::UdpHandle)>,
    /// TCP flows whose client runs on this node.
    pub tcp_clients: Vec<AppId>,
    /// TCP listeners for flows to this node: (wildcard address and port, socket).
    pub tcp_listeners: Vec<(std::net::SocketAddr, TcpHandle)>,
    /// Connections the listeners accepted, with the flow each belongs to (`None`: a
    /// connection from no flow of ours, read and discarded).
    pub tcp_servers: Vec<(TcpHandle, Option<AppId>)>,
    pub running: bool,
    pub record_events: bool,
    pub events: Vec<Event>,
}

enum Ev {
    Arrive { link: LinkId, dir: u8, frame: Frame },
    TxDone { link: LinkId, dir: u8 },
    Timer { node: NodeId },
    App { app: AppId },
    Action { index: usize },
}

struct Queued {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed, so that the max-heap pops the earliest (time, sequence) first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Queued>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }
}

/// Writes into every frame of a fresh pool once, so that its pages are mapped while the
/// topology is built rather than one by one while the run is timed.
fn prefault(pool: &FramePool) {
    let mut frames = Vec::with_capacity(pool.capacity() as usize);
    while let Some(mut f) = pool.alloc() {
        if let Ok(b) = f.append(1) {
            b[0] = 0;
        }
        frames.push(f);
    }
}

/// SplitMix64: derives independent seeds from the one seed of a run.
pub fn derive_seed(seed: u64, kind: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(kind.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(index.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    for _ in 0..2 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
    }
    z
}

/// The network laboratory: a topology of stacks on a virtual clock.
pub struct Sim {
    seed: u64,
    now: Instant,
    nodes: BTreeMap<NodeId, Node>,
    names: BTreeMap<String, NodeId>,
    links: Vec<Link>,
    apps: Vec<App>,
    actions: Vec<(Action, String)>,
    queue: Queue,
    step_budget: u64,
    events_processed: u64,
    pool_frames: u32,
    dup_pool: FramePool,
    tx: Vec<Frame>,
    rx_buf: Vec<u8>,
    ready: Vec<PortId>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .field("apps", &self.apps.len())
            .field("queued", &self.queue.heap.len())
            .finish()
    }
}

fn build<E: fmt::Display>(what: impl fmt::Display) -> impl FnOnce(E) -> SimError {
    move |e| SimError::Build(format!("{what}: {e}"))
}

impl Sim {
    /// An empty laboratory whose every random choice follows from `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            seed,
            now: Instant::ZERO,
            nodes: BTreeMap::new(),
            names: BTreeMap::new(),
            links: Vec::new(),
            apps: Vec::new(),
            actions: Vec::new(),
            queue: Queue::default(),
            step_budget: DEFAULT_STEP_BUDGET,
            events_processed: 0,
            pool_frames: DEFAULT_POOL_FRAMES,
            // Copies made by duplication; a copy that finds it empty is not made.
            dup_pool: FramePool::with_frames(1024, PoolConfig::default())
                .expect("the default pool configuration is valid"),
            tx: Vec::with_capacity(256),
            rx_buf: vec![0; 65536],
            ready: Vec::new(),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }

    /// Events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.heap.len()
    }

    /// Sets how many events one call of a `run_*` method may process.
    pub fn set_step_budget(&mut self, budget: u64) {
        self.step_budget = budget;
    }

    /// Sets the frame pool size of nodes added from now on (16 to [`MAX_POOL_FRAMES`]).
    pub fn set_pool_frames(&mut self, frames: u32) {
        self.pool_frames = frames.clamp(16, MAX_POOL_FRAMES);
    }

    /// Adds a host or router named `name` with the stack's default configuration.
    pub fn add_node(&mut self, name: &str, kind: NodeKind) -> Result<NodeId, SimError> {
        let config = match kind {
            NodeKind::Host => StackConfig::host(name),
            NodeKind::Router => StackConfig::router(name),
        };
        self.add_node_with(config)
    }

    /// Adds a node with a given stack configuration (its name is `config.name`).
    pub fn add_node_with(&mut self, config: StackConfig) -> Result<NodeId, SimError> {
        let name = config.name.clone();
        if self.names.contains_key(&name) {
            return Err(SimError::Build(format!("node {name:?} is defined twice")));
        }
        if self.nodes.len() >= 1 << 24 {
            return Err(SimError::Build("too many nodes (at most 2^24)".into()));
        }
        let id = NodeId(self.nodes.len() as u32);
        let pool = FramePool::with_frames(self.pool_frames, PoolConfig::default())
            .map_err(build(format_args!("node {name}: frame pool")))?;
        prefault(&pool);
        let kind = if config.forwarding {
            NodeKind::Router
        } else {
            NodeKind::Host
        };
        let stack = Stack::new(config, pool, derive_seed(self.seed, 1, u64::from(id.0)));
        self.names.insert(name.clone(), id);
        self.nodes.insert(
            id,
            Node {
                name,
                kind,
                stack,
                ports: Vec::new(),
                timer_at: None,
                idents: Vec::new(),
                sinks: Vec::new(),
                tcp_clients: Vec::new(),
                tcp_listeners: Vec::new(),
                tcp_servers: Vec::new(),
                running: true,
                record_events: false,
                events: Vec::new(),
            },
        );
        Ok(id)
    }

    /// The node named `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.names.get(name).copied()
    }

    /// Node ids in order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied()
    }

    fn node(&self, id: NodeId) -> Result<&Node, SimError> {
        self.nodes
            .get(&id)
            .ok_or_else(|| SimError::Build(format!("no node {}", id.0)))
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, SimError> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| SimError::Build(format!("no node {}", id.0)))
    }

    /// A node's name.
    pub fn node_name(&self, id: NodeId) -> Option<&str> {
        self.nodes.get(&id).map(|n| n.name.as_str())
    }

    /// A node's kind.
    pub fn node_kind(&self, id: NodeId) -> Option<NodeKind> {
        self.nodes.get(&id).map(|n| n.kind)
    }

    /// A node's stack, for its counters, tables and configuration.
    pub fn stack(&self, id: NodeId) -> Option<&Stack> {
        self.nodes.get(&id).map(|n| &n.stack)
    }

    /// A node's stack to change (routes, neighbors). Frames it queues leave, and timers
    /// it arms are scheduled, the next time the runtime touches the node.
    pub fn stack_mut(&mut self, id: NodeId) -> Option<&mut Stack> {
        self.nodes.get_mut(&id).map(|n| &mut n.stack)
    }

    /// Joins a new port of `a` (with addresses `a_addrs`) to a new port of `b` by a link.
    /// Ports are named `NODE-ethN`; their MACs are `02:` and the node id and port index.
    pub fn connect(
        &mut self,
        a: NodeId,
        a_addrs: &[IpCidr],
        b: NodeId,
        b_addrs: &[IpCidr],
        config: LinkConfig,
    ) -> Result<LinkId, SimError> {
        if a == b {
            return Err(SimError::Build("a link needs two different nodes".into()));
        }
        let id = LinkId(self.links.len() as u32);
        let name = format!("{}-{}", self.node(a)?.name, self.node(b)?.name);
        let pa = self.add_port(a, a_addrs, id, 0)?;
        let pb = self.add_port(b, b_addrs, id, 1)?;
        let index = u64::from(id.0) * 2;
        self.links.push(Link {
            name,
            config,
            ends: [LinkEnd { node: a, port: pa }, LinkEnd { node: b, port: pb }],
            up: true,
            dirs: [
                Direction::new(derive_seed(self.seed, 2, index)),
                Direction::new(derive_seed(self.seed, 2, index + 1)),
            ],
            pcap: None,
            record: None,
            hook: None,
        });
        Ok(id)
    }

    fn add_port(
        &mut self,
        node: NodeId,
        addrs: &[IpCidr],
        link: LinkId,
        dir: u8,
    ) -> Result<PortId, SimError> {
        let n = self.node_mut(node)?;
        let index = n.ports.len();
        if index > usize::from(u16::MAX) {
            return Err(SimError::Build(format!("node {}: too many ports", n.name)));
        }
        let id = node.0;
        let mac = EthernetAddress([
            0x02,
            (id >> 16) as u8,
            (id >> 8) as u8,
            id as u8,
            (index >> 8) as u8,
            index as u8,
        ]);
        let mut cfg = InterfaceConfig::new(format!("{}-eth{index}", n.name), mac);
        for a in addrs {
            cfg = match *a {
                IpCidr::V4(c) => cfg.with_ipv4(c),
                IpCidr::V6(c) => cfg.with_ipv6(c),
            };
        }
        let port = n
            .stack
            .add_port(cfg)
            .map_err(build(format_args!("node {}", n.name)))?;
        n.ports.push((link, dir));
        Ok(port)
    }

    /// Adds a static route on a node now.
    pub fn add_route(
        &mut self,
        node: NodeId,
        prefix: IpPrefix,
        target: RouteTarget,
    ) -> Result<(), SimError> {
        let n = self.node_mut(node)?;
        n.stack
            .add_route(prefix, target)
            .map(|_| ())
            .map_err(build(format_args!("node {}: route {prefix}", n.name)))
    }

    /// Places an application on a node; it starts at its configured start time.
    pub fn add_app(
        &mut self,
        node: NodeId,
        name: &str,
        config: AppConfig,
    ) -> Result<AppId, SimError> {
        self.node(node)?;
        let id = AppId(self.apps.len() as u32);
        let tcp = match &config {
            AppConfig::Udp(u) => {
                self.bind_sink(u.dst)?;
                false
            }
            AppConfig::Tcp(t) => {
                self.listen(t.dst)?;
                true
            }
            AppConfig::Ping(_) => false,
        };
        let app = App::new(name.to_string(), node, config, id);
        let start = app.start().max(self.now);
        if let Some(ident) = app.echo_ident() {
            self.node_mut(node)?.idents.push((ident, id));
        }
        if tcp {
            self.node_mut(node)?.tcp_clients.push(id);
        }
        self.apps.push(app);
        self.queue.push(start, Ev::App { app: id });
        Ok(id)
    }

    /// The node that owns `addr`, if any.
    pub fn owner_of(&self, addr: std::net::IpAddr) -> Option<NodeId> {
        self.nodes.iter().find_map(|(&id, n)| {
            n.stack
                .ports()
                .iter()
                .any(|p| match addr {
                    std::net::IpAddr::V4(a) => p.has_ipv4(a),
                    std::net::IpAddr::V6(a) => p.has_ipv6(a),
                })
                .then_some(id)
        })
    }

    /// Binds a sink for UDP flows to `dst` on the node that owns its address (once per
    /// node, family and port): a wildcard socket whose datagrams the runtime hands to the
    /// flows they name. A destination nobody owns gets no sink: its flows lose every
    /// datagram.
    fn bind_sink(&mut self, dst: std::net::SocketAddr) -> Result<(), SimError> {
        let Some(owner) = self.owner_of(dst.ip()) else {
            return Ok(());
        };
        let any = match dst {
            std::net::SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            std::net::SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let local = std::net::SocketAddr::new(any, dst.port());
        let n = self.node_mut(owner)?;
        if n.sinks.iter().any(|(a, _)| *a == local) {
            return Ok(());
        }
        let h = n
            .stack
            .udp_bind(local)
            .map_err(build(format_args!("node {}: UDP sink {local}", n.name)))?;
        // A sink is drained whenever its node is serviced; the limit only matters for a
        // burst of datagrams in one batch.
        let _ = n.stack.udp_set_queue_limit(h, 4096);
        n.sinks.push((local, h));
        Ok(())
    }

    /// Opens a listener for TCP flows to `dst` on the node that owns its address (once
    /// per node, family and port), on the wildcard address: the runtime accepts its
    /// connections, reads them and hands the bytes to the flow whose client connected.
    /// A destination nobody owns gets no listener: its flows never connect.
    fn listen(&mut self, dst: std::net::SocketAddr) -> Result<(), SimError> {
        let Some(owner) = self.owner_of(dst.ip()) else {
            return Ok(());
        };
        let any = match dst {
            std::net::SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            std::net::SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let local = std::net::SocketAddr::new(any, dst.port());
        let n = self.node_mut(owner)?;
        if n.tcp_listeners.iter().any(|(a, _)| *a == local) {
            return Ok(());
        }
        let h = n
            .stack
            .tcp_listen(local, 128)
            .map_err(build(format_args!("node {}: TCP listener {local}", n.name)))?;
        n.tcp_listeners.push((local, h));
        Ok(())
    }

    /// An application.
    pub fn app(&self, id: AppId) -> Option<&App> {
        self.apps.get(id.0 as usize)
    }

    /// Every application, by id.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    /// Schedules `action` at `at`; `label` names it in errors (for example the topology
    /// file's line).
    pub fn schedule(&mut self, at: Instant, action: Action, label: impl Into<String>) {
        let index = self.actions.len();
        self.actions.push((action, label.into()));
        self.queue.push(at.max(self.now), Ev::Action { index });
    }

    /// The link's name (`A-B` by default).
    pub fn link_name(&self, id: LinkId) -> Option<&str> {
        self.links.get(id.0 as usize).map(|l| l.name.as_str())
    }

    /// Renames a link (for summaries and capture file names).
    pub fn set_link_name(&mut self, id: LinkId, name: &str) {
        if let Some(l) = self.links.get_mut(id.0 as usize) {
            l.name = name.to_string();
        }
    }

    /// The link called `name`.
    pub fn link_id(&self, name: &str) -> Option<LinkId> {
        self.links
            .iter()
            .position(|l| l.name == name)
            .map(|i| LinkId(i as u32))
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The two ends of a link.
    pub fn link_ends(&self, id: LinkId) -> Option<[LinkEnd; 2]> {
        self.links.get(id.0 as usize).map(|l| l.ends)
    }

    /// Counters of a link: `[a→b, b→a]`.
    pub fn link_stats(&self, id: LinkId) -> Option<[DirStats; 2]> {
        self.links
            .get(id.0 as usize)
            .map(|l| [l.dirs[0].stats, l.dirs[1].stats])
    }

    /// Writes every frame delivered on the link, both ways, to a pcap file with simulated
    /// timestamps.
    pub fn capture_link(&mut self, id: LinkId, path: &Path) -> Result<(), SimError> {
        let l = self
            .links
            .get_mut(id.0 as usize)
            .ok_or_else(|| SimError::Build(format!("no link {}", id.0)))?;
        l.pcap = Some(Capture::create(path, 0)?);
        Ok(())
    }

    /// Puts `hook` on a link, replacing any: it sees every frame the link's impairments
    /// let through, in both directions, and may drop, delay or rewrite it (a test's way
    /// to inject exactly the fault it needs).
    pub fn set_link_hook(&mut self, id: LinkId, hook: LinkHook) {
        if let Some(l) = self.links.get_mut(id.0 as usize) {
            l.hook = Some(hook);
        }
    }

    /// Keeps every frame delivered on the link in memory (see [`Sim::captured`]).
    pub fn record_link(&mut self, id: LinkId) {
        if let Some(l) = self.links.get_mut(id.0 as usize) {
            l.record.get_or_insert_with(Vec::new);
        }
    }

    /// Frames recorded on a link.
    pub fn captured(&self, id: LinkId) -> &[CapturedFrame] {
        self.links
            .get(id.0 as usize)
            .and_then(|l| l.record.as_deref())
            .unwrap_or(&[])
    }

    /// Keeps every stack event of a node (see [`Sim::events`]).
    pub fn record_events(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.record_events = true;
        }
    }

    /// Stack events recorded on a node, oldest first.
    pub fn events(&self, id: NodeId) -> &[Event] {
        self.nodes.get(&id).map_or(&[], |n| n.events.as_slice())
    }

    /// Flushes the capture files.
    pub fn flush_captures(&mut self) -> Result<(), SimError> {
        for l in &mut self.links {
            if let Some(c) = &mut l.pcap {
                c.flush()?;
            }
        }
        Ok(())
    }

    /// Runs until the queue holds nothing before `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: Instant) -> Result<(), SimError> {
        self.run(Some(end))
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.run(Some(self.now + d))
    }

    /// Runs until nothing is left to happen: no frame in flight, no timer, no
    /// application with work left. A run that never gets there ends with
    /// [`SimError::StepBudget`].
    pub fn run_until_idle(&mut self) -> Result<(), SimError> {
        self.run(None)
    }

    fn run(&mut self, end: Option<Instant>) -> Result<(), SimError> {
        let mut processed = 0u64;
        while let Some(top) = self.queue.heap.peek() {
            if end.is_some_and(|e| top.at > e) {
                break;
            }
            if processed >= self.step_budget {
                return Err(SimError::StepBudget {
                    budget: self.step_budget,
                    at: self.now,
                    processed,
                    queued: self.queue.heap.len(),
                });
            }
            let Some(q) = self.queue.heap.pop() else {
                break;
            };
            processed += 1;
            self.events_processed += 1;
            self.now = q.at;
            self.step(q.ev)?;
        }
        if let Some(e) = end {
            self.now = self.now.max(e);
        }
        Ok(())
    }

    fn step(&mut self, ev: Ev) -> Result<(), SimError> {
        let now = self.now;
        match ev {
            Ev::Arrive { link, dir, frame } => {
                let l = &mut self.links[link.0 as usize];
                if !l.up {
                    l.dirs[usize::from(dir)].stats.down_drops += 1;
                    return Ok(());
                }
                l.dirs[usize::from(dir)].stats.delivered += 1;
                if let Some(c) = &mut l.pcap {
                    c.capture(&frame, now)?;
                }
                if let Some(r) = &mut l.record {
                    r.push(CapturedFrame {
                        at: now,
                        dir,
                        data: frame.data().to_vec(),
                    });
                }
                let to = l.ends[1 - usize::from(dir)];
                if let Some(n) = self.nodes.get_mut(&to.node) {
                    n.stack.receive(now, to.port, frame);
                }
                self.service(to.node);
            }
            Ev::TxDone { link, dir } => {
                let l = &mut self.links[link.0 as usize];
                start_tx(l, link, dir, &mut self.queue, now, &self.dup_pool);
            }
            Ev::Timer { node } => {
                let Some(n) = self.nodes.get_mut(&node) else {
                    return Ok(());
                };
                if n.timer_at != Some(now) {
                    return Ok(()); // superseded by an earlier timer
                }
                n.timer_at = None;
                n.stack.poll(now);
                self.service(node);
            }
            Ev::App { app } => {
                let a = &mut self.apps[app.0 as usize];
                let node = a.node;
                if let Some(n) = self.nodes.get_mut(&node) {
                    if let Some(next) = a.tick(now, &mut n.stack) {
                        self.queue.push(next.max(now), Ev::App { app });
                    }
                }
                self.service(node);
            }
            Ev::Action { index } => self.apply(index)?,
        }
        Ok(())
    }

    fn apply(&mut self, index: usize) -> Result<(), SimError> {
        let (action, label) = self.actions[index].clone();
        let now = self.now;
        let fail = |why: String| SimError::Action {
            at: now,
            action: label.clone(),
            why,
        };
        match action {
            Action::LinkDown(id) | Action::LinkUp(id) => {
                let up = matches!(action, Action::LinkUp(_));
                let l = self
                    .links
                    .get_mut(id.0 as usize)
                    .ok_or_else(|| fail(format!("no link {}", id.0)))?;
                l.up = up;
                if !up {
                    for d in &mut l.dirs {
                        d.stats.down_drops += d.queue.len() as u64;
                        d.queue.clear();
                    }
                }
            }
            Action::RouteAdd {
                node,
                prefix,
                target,
            } => {
                let n = self
                    .nodes
                    .get_mut(&node)
                    .ok_or_else(|| fail(format!("no node {}", node.0)))?;
                n.stack
                    .add_route(prefix, target)
                    .map_err(|e| fail(e.to_string()))?;
                self.service(node);
            }
            Action::RouteRemove { node, prefix } => {
                let n = self
                    .nodes
                    .get_mut(&node)
                    .ok_or_else(|| fail(format!("no node {}", node.0)))?;
                n.stack
                    .remove_route(prefix)
                    .map_err(|e| fail(e.to_string()))?;
                self.service(node);
            }
            Action::NodeStop(node) | Action::NodeStart(node) => {
                let up = matches!(action, Action::NodeStart(_));
                let n = self
                    .nodes
                    .get_mut(&node)
                    .ok_or_else(|| fail(format!("no node {}", node.0)))?;
                n.running = up;
                for i in 0..n.ports.len() {
                    n.stack
                        .set_port_up(PortId(i as u16), up)
                        .map_err(|e| fail(e.to_string()))?;
                }
                self.service(node);
            }
        }
        Ok(())
    }

    /// Whether a node is running (not stopped by [`Action::NodeStop`]).
    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.running)
    }

    /// Moves a node's queued frames onto its links, hands its events to applications and
    /// schedules its next timer.
    fn service(&mut self, id: NodeId) {
        let Sim {
            nodes,
            links,
            apps,
            queue,
            tx,
            dup_pool,
            now,
            rx_buf,
            ready,
            ..
        } = self;
        let now = *now;
        let Some(n) = nodes.get_mut(&id) else {
            return;
        };
        service_tcp(n, apps, now, rx_buf);
        // Only the ports that queued something: a router's ports are many, mostly idle.
        n.stack.take_tx_ready(ready);
        for port in ready.drain(..) {
            let Some(&(link, dir)) = n.ports.get(usize::from(port.0)) else {
                continue;
            };
            n.stack.drain_tx(port, tx, usize::MAX);
            if tx.is_empty() {
                continue;
            }
            let l = &mut links[link.0 as usize];
            for frame in tx.drain(..) {
                send(l, link, dir, frame, queue, now, dup_pool);
            }
        }
        while let Some(e) = n.stack.pop_event() {
            let ident = match e {
                Event::EchoReply { ident, .. } => Some(ident),
                Event::IcmpError { echo, .. } => echo.map(|(i, _)| i),
            };
            if let Some(app) = ident.and_then(|i| n.idents.iter().find(|(x, _)| *x == i)) {
                apps[app.1 .0 as usize].on_event(&e);
            }
            if n.record_events {
                n.events.push(e);
            }
        }
        for &(_, h) in &n.sinks {
            while let Some((len, _from)) = n.stack.udp_recv_from(h, rx_buf) {
                let Some((app, seq, sent)) = parse_flow_header(&rx_buf[..len]) else {
                    continue;
                };
                if let Some(a) = apps.get_mut(app.0 as usize) {
                    a.on_datagram(now, seq, sent);
                }
            }
        }
        if let Some(t) = n.stack.poll_at().filter(|&t| t != NEVER) {
            if n.timer_at.is_none_or(|s| t < s) {
                let t = t.max(now);
                n.timer_at = Some(t);
                queue.push(t, Ev::Timer { node: id });
            }
        }
    }
}

/// Runs a node's TCP flows: its clients send what their send buffers take, its
/// listeners' new connections are matched to the flows whose clients opened them, and
/// every accepted connection is read to its end, the bytes handed to its flow.
fn service_tcp(n: &mut Node, apps: &mut [App], now: Instant, rx_buf: &mut [u8]) {
    let Node {
        stack,
        tcp_clients,
        tcp_listeners,
        tcp_servers,
        ..
    } = n;
    for &a in tcp_clients.iter() {
        if let Some(app) = apps.get_mut(a.0 as usize) {
            app.poll(now, stack);
        }
    }
    for &(_, l) in tcp_listeners.iter() {
        while let Some(c) = stack.tcp_accept(l) {
            let flow = stack.tcp_connection(c).and_then(|t| {
                let (local, remote) = t.endpoints();
                apps.iter().position(|a| {
                    a.as_tcp().is_some_and(|f| {
                        f.local() == Some(remote) && f.config().dst.port() == local.port()
                    })
                })
            });
            tcp_servers.push((c, flow.map(|i| AppId(i as u32))));
        }
    }
    tcp_servers.retain(|&(h, flow)| {
        let mut app = flow.and_then(|a| apps.get_mut(a.0 as usize));
        loop {
            match stack.tcp_recv(h, rx_buf) {
                Ok(0) => {
                    if let Some(a) = app.as_mut() {
                        a.on_tcp_end(now, Ok(()));
                    }
                    let _ = stack.tcp_close(now, h);
                    return false;
                }
                Ok(k) => {
                    if let Some(a) = app.as_mut() {
                        a.on_tcp_data(&rx_buf[..k]);
                    }
                }
                Err(SocketError::WouldBlock) => return true,
                Err(e) => {
                    if let Some(a) = app.as_mut() {
                        a.on_tcp_end(now, Err(e.to_string()));
                    }
                    let _ = stack.tcp_abort(now, h);
                    return false;
                }
            }
        }
    });
}

/// Hands a frame to one direction of a link: on the wire at once when the transmitter
/// is idle and nothing waits, else into the queue (dropped at its tail when full).
///
/// The transmitter is a time (`busy_until`), not a state with an event of its own, so an
/// idle link costs one event per frame (its arrival); a `TxDone` event is scheduled only
/// while frames wait, at the time the transmitter frees up.
fn send(
    l: &mut Link,
    id: LinkId,
    dir: u8,
    frame: Frame,
    queue: &mut Queue,
    now: Instant,
    dup_pool: &FramePool,
) {
    let up = l.up;
    let limit = l.config.queue_limit;
    let d = &mut l.dirs[usize::from(dir)];
    d.stats.offered += 1;
    if !up {
        d.stats.down_drops += 1;
        return;
    }
    let busy = d.busy_until > now;
    if !busy && d.queue.is_empty() {
        transmit(l, id, dir, frame, queue, now, dup_pool);
        return;
    }
    if d.queue.len() >= limit {
        d.stats.queue_drops += 1;
        return;
    }
    if d.queue.is_empty() {
        queue.push(d.busy_until, Ev::TxDone { link: id, dir });
    }
    d.queue.push_back(frame);
    d.stats.max_queue = d.stats.max_queue.max(d.queue.len());
}

/// The transmitter of a direction is free: the next queued frame goes on the wire, and
/// the next `TxDone` is scheduled while more wait.
fn start_tx(
    l: &mut Link,
    id: LinkId,
    dir: u8,
    queue: &mut Queue,
    now: Instant,
    dup_pool: &FramePool,
) {
    let Some(frame) = l.dirs[usize::from(dir)].queue.pop_front() else {
        return;
    };
    transmit(l, id, dir, frame, queue, now, dup_pool);
    let d = &l.dirs[usize::from(dir)];
    if !d.queue.is_empty() {
        queue.push(d.busy_until, Ev::TxDone { link: id, dir });
    }
}

/// Serializes a frame from `now` and decides its fate: lost, or scheduled to arrive
/// (perhaps late, twice, or corrupted).
fn transmit(
    l: &mut Link,
    id: LinkId,
    dir: u8,
    mut frame: Frame,
    queue: &mut Queue,
    now: Instant,
    dup_pool: &FramePool,
) {
    let cfg = &l.config;
    let d = &mut l.dirs[usize::from(dir)];
    let ser = cfg.serialization(frame.len());
    d.busy_until = now + ser;
    d.stats.transmitted += 1;
    d.stats.bytes += frame.len() as u64;
    let fate = d.fate(cfg, frame.data());
    if fate.lost {
        d.stats.lost += 1;
        return;
    }
    let mut at = now + ser + cfg.delay + fate.extra;
    if fate.extra > Duration::ZERO {
        d.stats.reordered += 1;
    }
    if let Some((off, mask)) = fate.corrupt {
        if let Some(b) = frame.data_mut().get_mut(off) {
            *b ^= mask;
            d.stats.corrupted += 1;
        }
    }
    if let Some(hook) = &mut l.hook {
        match hook(now, dir, &mut frame) {
            HookVerdict::Pass => {}
            HookVerdict::Drop => {
                d.stats.hook_drops += 1;
                return;
            }
            HookVerdict::Delay(extra) => at += extra,
        }
    }
    let copy = if fate.duplicate {
        dup_pool.alloc().and_then(|mut copy| {
            let buf = copy.append(frame.len()).ok()?;
            buf.copy_from_slice(frame.data());
            Some(copy)
        })
    } else {
        None
    };
    queue.push(
        at,
        Ev::Arrive {
            link: id,
            dir,
            frame,
        },
    );
    if let Some(copy) = copy {
        d.stats.duplicated += 1;
        queue.push(
            at,
            Ev::Arrive {
                link: id,
                dir,
                frame: copy,
            },
        );
    }
}
